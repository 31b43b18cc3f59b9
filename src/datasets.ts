/**
 * Finding, loading and verifying the MNIST and Fashion-MNIST data sets.
 *
 * Each data set is four IDX files (gzipped or raw) in one folder:
 * `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
 * and `t10k-labels-idx1-ubyte`. Every load checks the files' shapes and labels
 * and, by default, the MD5 of their decompressed bytes against the canonical sums.
 *
 * @module
 */

import { type Idx, readIdxFile } from "./idx.ts";

/** node:path and node:url, imported on first use: they cost every cold start ~10 ms otherwise. */
async function nodePaths() {
  const [{ join, resolve }, { fileURLToPath }] = await Promise.all([
    import("node:path"),
    import("node:url"),
  ]);
  return { join, resolve, fileURLToPath };
}

/** The data sets this module can load. */
export type DatasetName = "mnist" | "fashion-mnist";

/**
 * The names of the data sets this module can load.
 *
 * @example Listing the data sets
 * ```ts
 * import assert from "node:assert/strict";
 * import { DATASET_NAMES } from "./datasets.ts";
 *
 * assert.deepEqual(DATASET_NAMES, ["mnist", "fashion-mnist"]);
 * ```
 */
export const DATASET_NAMES: readonly DatasetName[] = ["mnist", "fashion-mnist"];

/**
 * The base names (without `.gz`) of the four files of a data set, in load order.
 *
 * @example The train and test files
 * ```ts
 * import assert from "node:assert/strict";
 * import { DATASET_FILES } from "./datasets.ts";
 *
 * assert.equal(DATASET_FILES.length, 4);
 * assert.ok(DATASET_FILES.includes("t10k-labels-idx1-ubyte"));
 * ```
 */
export const DATASET_FILES = [
  "train-images-idx3-ubyte",
  "train-labels-idx1-ubyte",
  "t10k-images-idx3-ubyte",
  "t10k-labels-idx1-ubyte",
] as const;

/** The base name (without `.gz`) of one of the four files of a data set. */
export type DatasetFile = typeof DATASET_FILES[number];

/**
 * The canonical MD5 sums of the decompressed files of each data set, as
 * published with the data and checked by the usual loaders.
 *
 * @example Looking up a sum
 * ```ts
 * import assert from "node:assert/strict";
 * import { DATASET_MD5 } from "./datasets.ts";
 *
 * assert.equal(DATASET_MD5.mnist["train-labels-idx1-ubyte"], "a25bea736e30d166cdddb491f175f624");
 * ```
 */
export const DATASET_MD5: Readonly<Record<DatasetName, Readonly<Record<DatasetFile, string>>>> = {
  "mnist": {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
  },
  "fashion-mnist": {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
  },
};

// Shapes of the canonical data sets.
const TRAIN_COUNT = 60000;
const TEST_COUNT = 10000;
const IMAGE_ROWS = 28;
const IMAGE_COLS = 28;
const NUM_CLASSES = 10;

/** One split (train or test) of a data set. */
export interface Split {
  /**
   * `count` images of `rows * cols` u8 pixels each, row-major, one after the
   * other (a view into the decompressed file: mind `byteOffset` when using `.buffer`).
   */
  images: Uint8Array;
  /** `count` labels, each 0-9. */
  labels: Uint8Array;
  /** The number of samples. */
  count: number;
  /** Image height: 28. */
  rows: 28;
  /** Image width: 28. */
  cols: 28;
}

/** A loaded data set. */
export interface Dataset {
  /** Which data set this is. */
  name: DatasetName;
  /** The absolute path of the folder the files were read from. */
  dir: string;
  /** The 60000 training samples. */
  train: Split;
  /** The 10000 test samples. */
  test: Split;
}

/** Options of {@link findDataset}. */
export interface FindOptions {
  /**
   * A folder given by the user (`--data-dir DIR`): either the folder that holds
   * the four files or a parent that holds `<name>/`. If it holds neither, the
   * search fails rather than falling through to the defaults.
   */
  dataDir?: string;
  /**
   * The environment to read `DESIRE_DATA` from; defaults to the process
   * environment (read only if permitted). `DESIRE_DATA` names a parent folder
   * holding `<name>/`; if set and it does not hold the data set, the search fails.
   */
  env?: Record<string, string | undefined>;
}

/** Options of {@link loadDataset}. */
export interface LoadOptions extends FindOptions {
  /**
   * Whether to check the canonical sample counts and the MD5 of each
   * decompressed file (default `true`). Set to `false` to load a variant
   * with the same format; shapes and labels are checked either way.
   */
  verify?: boolean;
}

/**
 * The error thrown when a data set cannot be found. Its message names every
 * folder searched and where to get the files.
 *
 * @example Catching a missing data set
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatasetNotFoundError, findDataset } from "./datasets.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const err = await findDataset("mnist", { dataDir: dir }).catch((e) => e);
 * await Deno.remove(dir);
 * assert(err instanceof DatasetNotFoundError && err instanceof Deno.errors.NotFound);
 * assert(err.searched.includes(`${dir}/mnist`));
 * ```
 */
export class DatasetNotFoundError extends Deno.errors.NotFound {
  /** The data set that was not found. */
  readonly dataset: DatasetName;
  /** The absolute paths of the folders searched, in order. */
  readonly searched: string[];

  /**
   * Creates the error.
   *
   * @param dataset The data set that was not found.
   * @param searched The folders searched, in order.
   * @param message The full message.
   */
  constructor(dataset: DatasetName, searched: string[], message: string) {
    super(message);
    this.name = "DatasetNotFoundError";
    this.dataset = dataset;
    this.searched = searched;
  }
}

const SOURCES: Record<DatasetName, string> = {
  "mnist": "the MNIST database (yann.lecun.com/exdb/mnist or any mirror)",
  "fashion-mnist":
    "Zalando Research's fashion-mnist repository on GitHub (github.com/zalandoresearch/fashion-mnist) or the Debian package dataset-fashion-mnist",
};

function checkName(name: string): asserts name is DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Unknown dataset ${JSON.stringify(name)} (expected one of: ${DATASET_NAMES.join(", ")})`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw err;
  }
}

/** The paths of the four files in `dir` (`.gz` preferred), or the names of those missing. */
async function filesIn(
  dir: string,
): Promise<{ paths: string[]; missing: string[]; present: number }> {
  const { join } = await nodePaths();
  const paths: string[] = [];
  const missing: string[] = [];
  for (const base of DATASET_FILES) {
    const gz = join(dir, base + ".gz");
    const raw = join(dir, base);
    if (await exists(gz)) paths.push(gz);
    else if (await exists(raw)) paths.push(raw);
    else missing.push(base);
  }
  return { paths, missing, present: paths.length };
}

function readEnv(env: FindOptions["env"]): string | undefined {
  if (env) return env.DESIRE_DATA || undefined;
  try {
    const granted = Deno.permissions.querySync({ name: "env", variable: "DESIRE_DATA" });
    return granted.state === "granted" ? Deno.env.get("DESIRE_DATA") || undefined : undefined;
  } catch {
    return undefined;
  }
}

async function repoRoot(): Promise<string | undefined> {
  const url = new URL("..", import.meta.url);
  return url.protocol === "file:" ? (await nodePaths()).fileURLToPath(url) : undefined;
}

/**
 * Finds the folder that holds the four files of a data set.
 *
 * The search order is: `options.dataDir` (the folder itself, then
 * `<dataDir>/<name>`), `$DESIRE_DATA/<name>`, `./data/<name>` (relative to the
 * current directory), `../shared/datasets/<name>` relative to the repository
 * root, then `/usr/share/datasets/<name>`. A folder holds the data set if it
 * holds all four files, each either gzipped (`.gz`) or raw. When `dataDir`
 * (or `$DESIRE_DATA`) is given and does not hold the data set, the search
 * stops there with an error rather than silently using another folder.
 *
 * @param name The data set to find.
 * @param options Where to look first, and the environment to read `DESIRE_DATA` from.
 * @returns The absolute path of the folder that holds the four files.
 * @throws {DatasetNotFoundError} If no folder searched holds the data set:
 *   "Cannot find dataset NAME: looked in DIR, DIR (missing FILE), .... Get the four IDX files ...".
 * @throws {RangeError} If `name` is not a known data set.
 *
 * @example Finding a data set in a folder given with --data-dir
 * ```ts
 * import assert from "node:assert/strict";
 * import { DATASET_FILES, findDataset } from "./datasets.ts";
 *
 * const parent = await Deno.makeTempDir();
 * await Deno.mkdir(`${parent}/mnist`);
 * for (const f of DATASET_FILES) await Deno.writeFile(`${parent}/mnist/${f}`, new Uint8Array());
 * const asParent = await findDataset("mnist", { dataDir: parent });
 * const asFolder = await findDataset("mnist", { dataDir: `${parent}/mnist` });
 * await Deno.remove(parent, { recursive: true });
 * assert.deepEqual([asParent, asFolder], [`${parent}/mnist`, `${parent}/mnist`]);
 * ```
 */
export async function findDataset(name: DatasetName, options: FindOptions = {}): Promise<string> {
  const { join, resolve } = await nodePaths();
  checkName(name);
  const looked: string[] = [];
  const notes: string[] = [];
  const tryDir = async (dir: string): Promise<boolean> => {
    const { missing, present } = await filesIn(dir);
    looked.push(dir);
    notes.push(
      present > 0 && missing.length > 0 ? `${dir} (missing ${missing.join(", ")})` : dir,
    );
    return missing.length === 0;
  };
  const fail = (origin: string): never => {
    const files = DATASET_FILES.map((f) => f + ".gz").join(", ");
    throw new DatasetNotFoundError(
      name,
      looked,
      `Cannot find dataset ${name}: looked in ${notes.join(", ")}${origin}. ` +
        `Get the four IDX files (${files}) from ${SOURCES[name]}; ` +
        `the MD5 of the decompressed files is checked. Put them, gzipped or not, ` +
        `in one of these folders, or pass --data-dir DIR.`,
    );
  };

  if (options.dataDir !== undefined) {
    const dir = resolve(options.dataDir);
    if (await tryDir(dir)) return dir;
    if (await tryDir(join(dir, name))) return join(dir, name);
    return fail(` (given by --data-dir ${options.dataDir})`);
  }
  const envDir = readEnv(options.env);
  if (envDir !== undefined) {
    const dir = join(resolve(envDir), name);
    if (await tryDir(dir)) return dir;
    return fail(` (given by $DESIRE_DATA=${envDir})`);
  }
  const defaults = [resolve("data", name)];
  const root = await repoRoot();
  if (root !== undefined) defaults.push(resolve(root, "..", "shared", "datasets", name));
  defaults.push(join("/usr/share/datasets", name));
  for (const dir of defaults) {
    if (await tryDir(dir)) return dir;
  }
  return fail("");
}

/** The same error class as `err` with `Cannot load dataset NAME: ` prefixed to its message. */
function prefixed(name: DatasetName, err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof DatasetNotFoundError) return err;
  const message = `Cannot load dataset ${name}: ${err.message}`;
  if (err instanceof SyntaxError) return new SyntaxError(message, { cause: err });
  if (err instanceof RangeError) return new RangeError(message, { cause: err });
  if (err instanceof TypeError) return new TypeError(message, { cause: err });
  if (err instanceof Deno.errors.NotFound) return new Deno.errors.NotFound(message, { cause: err });
  return new Error(message, { cause: err });
}

/** MD5 of `bytes` in hex; node:crypto is imported on first use (it slows every cold start). */
async function md5(bytes: Uint8Array): Promise<string> {
  const { createHash } = await import("node:crypto");
  return createHash("md5").update(bytes).digest("hex");
}

function checkKind(idx: Idx, path: string, kind: "images" | "labels"): void {
  if (idx.kind !== kind) {
    throw new TypeError(`file ${path} holds ${idx.kind}, expected ${kind}`);
  }
  if (kind === "images" && (idx.dims[1] !== IMAGE_ROWS || idx.dims[2] !== IMAGE_COLS)) {
    throw new TypeError(
      `file ${path} has images of ${idx.dims[1]}x${
        idx.dims[2]
      } pixels (expected ${IMAGE_ROWS}x${IMAGE_COLS})`,
    );
  }
}

function checkLabels(labels: Uint8Array, path: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= NUM_CLASSES) {
      throw new RangeError(
        `file ${path} has label ${labels[i]} at index ${i} (labels must be 0-${NUM_CLASSES - 1})`,
      );
    }
  }
}

/**
 * Loads and checks one split from the folder that holds a data set.
 *
 * Checks, in order: each file is well-formed IDX of the right kind, images are
 * 28x28, labels are 0-9, image and label counts match, and (unless
 * `verify: false`) the count is the canonical one and each decompressed
 * file has its canonical MD5.
 *
 * @param name The data set, for messages and the canonical sums.
 * @param dir The folder that holds the files (see {@link findDataset}).
 * @param split `"train"` or `"test"` (the `t10k-` files).
 * @param options `verify: false` skips the count and MD5 checks.
 * @returns The images and labels of the split.
 * @throws {SyntaxError} If a gzipped file is not a valid gzip stream.
 * @throws {TypeError} If a file is malformed, of the wrong kind or shape, or
 *   the counts do not match.
 * @throws {RangeError} If a label is not 0-9.
 * @throws {Error} If a decompressed file does not have its canonical MD5.
 * @throws {Deno.errors.NotFound} If a file is missing.
 *
 * @example Loading a tiny unverified split
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSplit } from "./datasets.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const images = new Uint8Array(16 + 2 * 784);
 * images.set([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]);
 * await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, images);
 * await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 3, 9]));
 * const test = await loadSplit("mnist", dir, "test", { verify: false });
 * await Deno.remove(dir, { recursive: true });
 * assert.deepEqual([test.count, test.images.length, [...test.labels]], [2, 2 * 784, [3, 9]]);
 * ```
 */
export async function loadSplit(
  name: DatasetName,
  dir: string,
  split: "train" | "test",
  options: { verify?: boolean } = {},
): Promise<Split> {
  checkName(name);
  const verify = options.verify ?? true;
  const { join } = await nodePaths();
  const prefix = split === "train" ? "train" : "t10k";
  const imagesBase = `${prefix}-images-idx3-ubyte` as const;
  const labelsBase = `${prefix}-labels-idx1-ubyte` as const;
  try {
    const pick = async (base: string) =>
      await exists(join(dir, base + ".gz")) ? join(dir, base + ".gz") : join(dir, base);
    const [imagesPath, labelsPath] = await Promise.all([pick(imagesBase), pick(labelsBase)]);
    const [imagesFile, labelsFile] = await Promise.all([
      readIdxFile(imagesPath),
      readIdxFile(labelsPath),
    ]);
    checkKind(imagesFile.idx, imagesPath, "images");
    checkKind(labelsFile.idx, labelsPath, "labels");
    const labels = labelsFile.idx.data;
    checkLabels(labels, labelsPath);
    const count = imagesFile.idx.dims[0];
    if (labels.length !== count) {
      throw new TypeError(
        `file ${labelsPath} has ${labels.length} labels but ${imagesPath} has ${count} images (the counts must match)`,
      );
    }
    if (verify) {
      const expected = split === "train" ? TRAIN_COUNT : TEST_COUNT;
      if (count !== expected) {
        throw new TypeError(
          `file ${imagesPath} has ${count} images (the canonical ${name} ${split} split has ${expected})`,
        );
      }
      for (
        const [file, base] of [[imagesFile, imagesBase], [labelsFile, labelsBase]] as const
      ) {
        const actual = await md5(file.bytes);
        const want = DATASET_MD5[name][base];
        if (actual !== want) {
          throw new Error(
            `file ${file.path} has MD5 ${actual} (decompressed), expected ${want}: ` +
              `it is corrupt or not the canonical ${name} ${base}`,
          );
        }
      }
    }
    return { images: imagesFile.idx.data, labels, count, rows: IMAGE_ROWS, cols: IMAGE_COLS };
  } catch (err) {
    throw prefixed(name, err);
  }
}

/**
 * Finds and loads a data set, checking every file (see {@link findDataset} for
 * where it looks and {@link loadSplit} for what it checks).
 *
 * Error messages start with "Cannot load dataset NAME: file PATH ..." and say
 * what is wrong with the file, e.g.
 * "Cannot load dataset mnist: file /data/mnist/train-labels-idx1-ubyte.gz has label 12 at index 5 (labels must be 0-9)".
 *
 * @param name The data set to load.
 * @param options `dataDir` (`--data-dir`), `env` (for `DESIRE_DATA`) and
 *   `verify` (default `true`: check canonical counts and MD5 sums).
 * @returns The data set, with its folder and both splits.
 * @throws {DatasetNotFoundError} If the data set cannot be found.
 * @throws {SyntaxError} If a gzipped file is not a valid gzip stream.
 * @throws {TypeError} If a file is malformed, of the wrong kind or shape, or the counts are wrong.
 * @throws {RangeError} If a label is not 0-9.
 * @throws {Error} If a decompressed file does not have its canonical MD5.
 *
 * @example Loading a tiny unverified data set
 * ```ts
 * import assert from "node:assert/strict";
 * import { DATASET_FILES, loadDataset } from "./datasets.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const images = new Uint8Array(16 + 784);
 * images.set([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28]);
 * const labels = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 1, 7]);
 * for (const f of DATASET_FILES) {
 *   await Deno.writeFile(`${dir}/${f}`, f.includes("images") ? images : labels);
 * }
 * const data = await loadDataset("mnist", { dataDir: dir, verify: false });
 * await Deno.remove(dir, { recursive: true });
 * assert.deepEqual([data.train.count, data.test.labels[0], data.dir], [1, 7, dir]);
 * ```
 */
export async function loadDataset(name: DatasetName, options: LoadOptions = {}): Promise<Dataset> {
  const dir = await findDataset(name, options);
  const verify = { verify: options.verify ?? true };
  // Load both splits at once, but report the train split's error first so messages are stable.
  const [train, test] = await Promise.allSettled([
    loadSplit(name, dir, "train", verify),
    loadSplit(name, dir, "test", verify),
  ]);
  if (train.status === "rejected") throw train.reason;
  if (test.status === "rejected") throw test.reason;
  return { name, dir, train: train.value, test: test.value };
}
