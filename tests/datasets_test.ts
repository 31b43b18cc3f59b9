import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  DATASET_FILES,
  DATASET_MD5,
  type DatasetName,
  DatasetNotFoundError,
  findDataset,
  loadDataset,
  loadSplit,
} from "../src/datasets.ts";
import { decodeIdx, gunzip, isGzip, readIdxFile } from "../src/idx.ts";

const SHARED = fileURLToPath(new URL("../../shared/datasets", import.meta.url));
const SRC = fileURLToPath(new URL("../src", import.meta.url));

// ---------------------------------------------------------------------------
// Helpers: tiny synthetic IDX files.

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A raw IDX images file of `count` images of rows x cols, pixel i of the file = i % 251. */
function idxImages(count: number, rows = 28, cols = 28): Uint8Array {
  const data = Array.from({ length: count * rows * cols }, (_, i) => i % 251);
  return new Uint8Array([...u32(0x803), ...u32(count), ...u32(rows), ...u32(cols), ...data]);
}

/** A raw IDX labels file. */
function idxLabels(labels: number[]): Uint8Array {
  return new Uint8Array([...u32(0x801), ...u32(labels.length), ...labels]);
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

type Files = Partial<Record<typeof DATASET_FILES[number], Uint8Array>>;

/**
 * Writes a small valid data set (3 train, 2 test samples) into `dir` as `.gz`
 * files; `raw` entries replace a file with the given bytes written without `.gz`.
 */
async function writeDataset(dir: string, raw: Files = {}): Promise<void> {
  const valid: Required<Files> = {
    "train-images-idx3-ubyte": idxImages(3),
    "train-labels-idx1-ubyte": idxLabels([5, 0, 4]),
    "t10k-images-idx3-ubyte": idxImages(2),
    "t10k-labels-idx1-ubyte": idxLabels([7, 2]),
  };
  await Deno.mkdir(dir, { recursive: true });
  for (const f of DATASET_FILES) {
    const bytes = raw[f];
    if (bytes) await Deno.writeFile(`${dir}/${f}`, bytes);
    else await Deno.writeFile(`${dir}/${f}.gz`, await gzip(valid[f]));
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "desire_datasets_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that `promise` rejects with an instance of `cls` whose message is exactly `message`. */
async function assertRejects(
  promise: Promise<unknown>,
  cls: abstract new (...args: never[]) => Error,
  message: string,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    assert.equal(err.message, message);
    return true;
  });
}

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

const GET_MNIST = "Get the four IDX files (train-images-idx3-ubyte.gz, " +
  "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) " +
  "from the MNIST database (yann.lecun.com/exdb/mnist or any mirror); " +
  "the MD5 of the decompressed files is checked. Put them, gzipped or not, " +
  "in one of these folders, or pass --data-dir DIR.";

const GET_FASHION = GET_MNIST.replace(
  "the MNIST database (yann.lecun.com/exdb/mnist or any mirror)",
  "Zalando Research's fashion-mnist repository on GitHub " +
    "(github.com/zalandoresearch/fashion-mnist) or the Debian package dataset-fashion-mnist",
);

// ---------------------------------------------------------------------------
// idx.ts

Deno.test("decodeIdx() decodes well-formed images and labels files", async (t) => {
  const cases: { name: string; bytes: Uint8Array; kind: string; dims: number[]; data: number[] }[] =
    [
      {
        name: "labels",
        bytes: idxLabels([3, 1, 4]),
        kind: "labels",
        dims: [3],
        data: [3, 1, 4],
      },
      {
        name: "images of any shape",
        bytes: idxImages(2, 1, 3),
        kind: "images",
        dims: [2, 1, 3],
        data: [0, 1, 2, 3, 4, 5],
      },
      { name: "empty labels", bytes: idxLabels([]), kind: "labels", dims: [0], data: [] },
    ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const idx = decodeIdx(c.bytes, "f");
      assert.equal(idx.kind, c.kind);
      assert.deepEqual(idx.dims, c.dims);
      assert.deepEqual([...idx.data], c.data);
    });
  }
});

Deno.test("decodeIdx() rejects malformed files with a TypeError naming the file", async (t) => {
  const cases: { name: string; bytes: Uint8Array; message: string }[] = [
    {
      name: "too short for a magic number",
      bytes: new Uint8Array([0, 0, 8]),
      message: "file f is too short to be an IDX file: 3 bytes (an IDX header has at least 8)",
    },
    {
      name: "wrong magic",
      bytes: new Uint8Array([...u32(0x802), ...u32(0)]),
      message:
        "file f has magic number 0x00000802 (expected 0x00000801 for u8 labels or 0x00000803 for u8 images)",
    },
    {
      name: "float data (type 0x0d)",
      bytes: new Uint8Array([...u32(0xd01), ...u32(0)]),
      message:
        "file f has magic number 0x00000d01 (expected 0x00000801 for u8 labels or 0x00000803 for u8 images)",
    },
    {
      name: "truncated header",
      bytes: idxImages(1, 2, 2).subarray(0, 10),
      message: "file f is truncated: 10 bytes, but an IDX images header has 16",
    },
    {
      name: "truncated data",
      bytes: idxImages(2, 2, 2).subarray(0, 16 + 5),
      message: "file f is truncated: its header declares 2x2x2 = 8 data bytes, but only 5 follow",
    },
    {
      name: "trailing bytes",
      bytes: new Uint8Array([...idxLabels([1, 2]), 0, 0, 0]),
      message: "file f has 3 trailing bytes: its header declares 2 = 2 data bytes, but 5 follow",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => decodeIdx(c.bytes, "f"), (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.equal(err.message, c.message);
        return true;
      });
    });
  }
});

Deno.test("gunzip() and readIdxFile() handle gzip and raw files", async (t) => {
  const raw = idxLabels([9, 8, 7]);
  const gz = await gzip(raw);
  await t.step("isGzip() detects the gzip magic bytes", () => {
    assert.equal(isGzip(gz), true);
    assert.equal(isGzip(raw), false);
    assert.equal(isGzip(new Uint8Array([0x1f])), false);
  });
  await t.step("gunzip() rejects a corrupt stream with a SyntaxError", async () => {
    const bad = gz.slice();
    bad[3] = 0xff; // reserved header flag bits
    await assertRejects(
      gunzip(bad, "x.gz"),
      SyntaxError,
      "file x.gz is not a valid gzip stream (invalid gzip header)",
    );
  });
  await t.step("readIdxFile() reads gzipped and raw files alike", async () => {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/a.gz`, gz);
      await Deno.writeFile(`${dir}/b`, raw);
      const a = await readIdxFile(`${dir}/a.gz`);
      const b = await readIdxFile(`${dir}/b`);
      assert.deepEqual([a.gzipped, b.gzipped], [true, false]);
      assert.deepEqual(a.bytes, raw);
      assert.deepEqual([...a.idx.data], [9, 8, 7]);
      assert.deepEqual(a.idx, b.idx);
    });
  });
});

// ---------------------------------------------------------------------------
// Finding data sets

Deno.test("findDataset() accepts --data-dir as the folder or its parent, and $DESIRE_DATA", async (t) => {
  await withTempDir(async (parent) => {
    const folder = `${parent}/mnist`;
    await writeDataset(folder);
    const cases: { name: string; options: Parameters<typeof findDataset>[1] }[] = [
      { name: "dataDir is the folder", options: { dataDir: folder, env: {} } },
      { name: "dataDir is the parent", options: { dataDir: parent, env: {} } },
      { name: "relative dataDir is resolved", options: { dataDir: relative(folder), env: {} } },
      { name: "$DESIRE_DATA is the parent", options: { env: { DESIRE_DATA: parent } } },
      {
        name: "dataDir wins over $DESIRE_DATA",
        options: { dataDir: parent, env: { DESIRE_DATA: "/nonexistent" } },
      },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        assert.equal(await findDataset("mnist", c.options), folder);
      });
    }
    await t.step("raw and gzipped files can be mixed", async () => {
      const mixed = `${parent}/mixed`;
      await writeDataset(mixed, { "t10k-labels-idx1-ubyte": idxLabels([7, 2]) });
      assert.equal(await findDataset("mnist", { dataDir: mixed }), mixed);
      const split = await loadSplit("mnist", mixed, "test", { verify: false });
      assert.deepEqual([...split.labels], [7, 2]);
    });
  });
  await t.step("without options it falls back to ../shared/datasets next to the repo", async () => {
    for (const name of ["mnist", "fashion-mnist"] as const) {
      assert.equal(await findDataset(name, { env: {} }), `${SHARED}/${name}`);
    }
  });
  await t.step("an unknown name is a RangeError", async () => {
    await assertRejects(
      findDataset("cifar" as DatasetName),
      RangeError,
      'Unknown dataset "cifar" (expected one of: mnist, fashion-mnist)',
    );
  });
});

function relative(path: string): string {
  const up = Deno.cwd().split("/").filter(Boolean).map(() => "..").join("/");
  return `${up}${path}`;
}

Deno.test("findDataset() rejects a missing dataset, listing every place it looked", async (t) => {
  await withTempDir(async (dir) => {
    await t.step("explicit dataDir that holds nothing", async () => {
      await assertRejects(
        findDataset("mnist", { dataDir: dir, env: { DESIRE_DATA: SHARED } }),
        DatasetNotFoundError,
        `Cannot find dataset mnist: looked in ${dir}, ${dir}/mnist (given by --data-dir ${dir}). ${GET_MNIST}`,
      );
    });
    await t.step("explicit dataDir that holds only some files", async () => {
      await Deno.mkdir(`${dir}/fashion-mnist`);
      await Deno.writeFile(`${dir}/fashion-mnist/train-images-idx3-ubyte.gz`, new Uint8Array());
      await Deno.writeFile(`${dir}/fashion-mnist/t10k-labels-idx1-ubyte`, new Uint8Array());
      const err = await findDataset("fashion-mnist", { dataDir: dir }).catch((e) => e);
      assert.ok(err instanceof DatasetNotFoundError);
      assert.ok(err instanceof Deno.errors.NotFound);
      assert.deepEqual(err.searched, [dir, `${dir}/fashion-mnist`]);
      assert.equal(
        err.message,
        `Cannot find dataset fashion-mnist: looked in ${dir}, ${dir}/fashion-mnist ` +
          `(missing train-labels-idx1-ubyte, t10k-images-idx3-ubyte) (given by --data-dir ${dir}). ` +
          GET_FASHION,
      );
    });
    await t.step("$DESIRE_DATA that does not hold it", async () => {
      await assertRejects(
        findDataset("mnist", { env: { DESIRE_DATA: dir } }),
        DatasetNotFoundError,
        `Cannot find dataset mnist: looked in ${dir}/mnist (given by $DESIRE_DATA=${dir}). ${GET_MNIST}`,
      );
    });
    await t.step("default places (./data, ../shared/datasets, /usr/share/datasets)", async () => {
      // Run a copy of the module from a temporary "repository" so that none of
      // the default places holds the data set, with that folder as working directory.
      const repo = `${dir}/repo`;
      await Deno.mkdir(`${repo}/src`, { recursive: true });
      for (const f of ["datasets.ts", "idx.ts"]) {
        await Deno.copyFile(`${SRC}/${f}`, `${repo}/src/${f}`);
      }
      await Deno.mkdir(`${repo}/data/mnist`, { recursive: true });
      await Deno.writeFile(`${repo}/data/mnist/train-labels-idx1-ubyte`, new Uint8Array());
      await Deno.writeFile(
        `${repo}/main.ts`,
        new TextEncoder().encode(
          `import { findDataset } from "./src/datasets.ts";\n` +
            `await findDataset("mnist").catch((e) => console.log(e.name + ": " + e.message));\n`,
        ),
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "--no-lock", "--no-check", "-R", "--allow-env", "main.ts"],
        cwd: repo,
        env: { DESIRE_DATA: "", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assert.ok(out.success);
      const shared = fileURLToPath(new URL("../shared/datasets/mnist", `file://${repo}/`));
      assert.equal(
        new TextDecoder().decode(out.stdout).trim(),
        `DatasetNotFoundError: Cannot find dataset mnist: looked in ` +
          `${repo}/data/mnist (missing train-images-idx3-ubyte, t10k-images-idx3-ubyte, ` +
          `t10k-labels-idx1-ubyte), ${shared}, /usr/share/datasets/mnist. ${GET_MNIST}`,
      );
    });
    await t.step("./data/<name> in the working directory is found first", async () => {
      const repo = `${dir}/repo`;
      await writeDataset(`${repo}/data/mnist`);
      await Deno.writeFile(
        `${repo}/main.ts`,
        new TextEncoder().encode(
          `import { findDataset } from "./src/datasets.ts";\n` +
            `console.log(await findDataset("mnist", { env: {} }));\n`,
        ),
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "--no-lock", "--no-check", "-R", "main.ts"],
        cwd: repo,
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assert.ok(out.success);
      assert.equal(new TextDecoder().decode(out.stdout).trim(), `${repo}/data/mnist`);
    });
  });
});

// ---------------------------------------------------------------------------
// Loading real data

Deno.test("loadDataset() loads the real mnist and fashion-mnist", async (t) => {
  const expected = {
    "mnist": { train: [5, 0, 4, 1, 9], test: [7, 2, 1, 0, 4] },
    "fashion-mnist": { train: [9, 0, 0, 3, 0], test: [9, 2, 1, 1, 6] },
  };
  for (const name of ["mnist", "fashion-mnist"] as const) {
    await t.step(`${name} from --data-dir as parent`, async () => {
      const data = await loadDataset(name, { dataDir: SHARED });
      assert.equal(data.name, name);
      assert.equal(data.dir, `${SHARED}/${name}`);
      for (const split of ["train", "test"] as const) {
        const s = data[split];
        const count = split === "train" ? 60000 : 10000;
        assert.deepEqual([s.count, s.rows, s.cols], [count, 28, 28]);
        assert.equal(s.images.length, count * 784);
        assert.equal(s.labels.length, count);
        assert.deepEqual([...s.labels.subarray(0, 5)], expected[name][split]);
      }
    });
  }
  await t.step("mnist test split from --data-dir as folder and from $DESIRE_DATA", async () => {
    const viaFolder = await loadSplit(
      "mnist",
      await findDataset("mnist", { dataDir: `${SHARED}/mnist` }),
      "test",
    );
    const viaEnv = await loadSplit(
      "mnist",
      await findDataset("mnist", { env: { DESIRE_DATA: SHARED } }),
      "test",
    );
    assert.deepEqual([...viaFolder.labels.subarray(0, 3)], [7, 2, 1]);
    assert.deepEqual(viaEnv.labels, viaFolder.labels);
  });
});

// ---------------------------------------------------------------------------
// Loading bad data: one test per kind of damage, exact messages.

Deno.test("loadDataset() rejects a truncated file", async (t) => {
  await withTempDir(async (dir) => {
    await t.step("raw IDX file cut short", async () => {
      await writeDataset(`${dir}/a`, {
        "train-images-idx3-ubyte": idxImages(3).subarray(0, 16 + 784 * 2 + 100),
      });
      await assertRejects(
        loadDataset("mnist", { dataDir: `${dir}/a` }),
        TypeError,
        `Cannot load dataset mnist: file ${dir}/a/train-images-idx3-ubyte is truncated: ` +
          `its header declares 3x28x28 = 2352 data bytes, but only 1668 follow`,
      );
    });
    await t.step("gzip file cut short", async () => {
      await writeDataset(`${dir}/b`);
      const path = `${dir}/b/train-labels-idx1-ubyte.gz`;
      const gz = await Deno.readFile(path);
      await Deno.writeFile(path, gz.subarray(0, gz.length - 5));
      await assertRejects(
        loadDataset("mnist", { dataDir: `${dir}/b` }),
        SyntaxError,
        `Cannot load dataset mnist: file ${path} is not a valid gzip stream ` +
          `(corrupt gzip stream does not have a matching checksum)`,
      );
    });
    await t.step("file with trailing bytes", async () => {
      await writeDataset(`${dir}/c`, {
        "train-labels-idx1-ubyte": new Uint8Array([...idxLabels([5, 0, 4]), 0]),
      });
      await assertRejects(
        loadDataset("mnist", { dataDir: `${dir}/c` }),
        TypeError,
        `Cannot load dataset mnist: file ${dir}/c/train-labels-idx1-ubyte has 1 trailing bytes: ` +
          `its header declares 3 = 3 data bytes, but 4 follow`,
      );
    });
  });
});

Deno.test("loadDataset() rejects a corrupt gzip file", async (t) => {
  const gz = await gzip(idxImages(3));
  const cases: { name: string; corrupt: (b: Uint8Array) => Uint8Array; detail: string }[] = [
    {
      name: "damaged deflate data",
      corrupt: (b) => {
        b.fill(0xff, 10, 30);
        return b;
      },
      detail: "corrupt deflate stream",
    },
    {
      name: "damaged gzip header",
      corrupt: (b) => {
        b[2] = 7; // compression method other than deflate
        return b;
      },
      detail: "invalid gzip header",
    },
    {
      name: "wrong CRC",
      corrupt: (b) => {
        b[b.length - 6] ^= 1;
        return b;
      },
      detail: "corrupt gzip stream does not have a matching checksum",
    },
  ];
  await withTempDir(async (dir) => {
    await writeDataset(dir);
    const path = `${dir}/train-images-idx3-ubyte.gz`;
    for (const c of cases) {
      await t.step(c.name, async () => {
        await Deno.writeFile(path, c.corrupt(gz.slice()));
        await assertRejects(
          loadDataset("mnist", { dataDir: dir }),
          SyntaxError,
          `Cannot load dataset mnist: file ${path} is not a valid gzip stream (${c.detail})`,
        );
      });
    }
  });
});

Deno.test("loadDataset() rejects a file with the wrong magic number or kind", async (t) => {
  await withTempDir(async (dir) => {
    await t.step("labels file with magic 0x00000802", async () => {
      const bad = idxLabels([5, 0, 4]);
      bad[3] = 2;
      await writeDataset(`${dir}/a`, { "train-labels-idx1-ubyte": bad });
      await assertRejects(
        loadDataset("fashion-mnist", { dataDir: `${dir}/a` }),
        TypeError,
        `Cannot load dataset fashion-mnist: file ${dir}/a/train-labels-idx1-ubyte has magic number ` +
          `0x00000802 (expected 0x00000801 for u8 labels or 0x00000803 for u8 images)`,
      );
    });
    await t.step("labels where images belong", async () => {
      await writeDataset(`${dir}/b`, { "train-images-idx3-ubyte": idxLabels([5, 0, 4]) });
      await assertRejects(
        loadDataset("mnist", { dataDir: `${dir}/b` }),
        TypeError,
        `Cannot load dataset mnist: file ${dir}/b/train-images-idx3-ubyte holds labels, expected images`,
      );
    });
    await t.step("images that are not 28x28", async () => {
      await writeDataset(`${dir}/c`, { "t10k-images-idx3-ubyte": idxImages(2, 32, 32) });
      await assertRejects(
        loadDataset("mnist", { dataDir: `${dir}/c`, verify: false }),
        TypeError,
        `Cannot load dataset mnist: file ${dir}/c/t10k-images-idx3-ubyte has images of 32x32 pixels ` +
          `(expected 28x28)`,
      );
    });
  });
});

Deno.test("loadDataset() rejects a label file with count ≠ image count", async () => {
  await withTempDir(async (dir) => {
    await writeDataset(dir, { "t10k-labels-idx1-ubyte": idxLabels([7, 2, 1]) });
    await assertRejects(
      loadDataset("mnist", { dataDir: dir, verify: false }),
      TypeError,
      `Cannot load dataset mnist: file ${dir}/t10k-labels-idx1-ubyte has 3 labels but ` +
        `${dir}/t10k-images-idx3-ubyte.gz has 2 images (the counts must match)`,
    );
  });
});

Deno.test("loadDataset() rejects a label > 9", async () => {
  await withTempDir(async (dir) => {
    await writeDataset(dir);
    const path = `${dir}/train-labels-idx1-ubyte.gz`;
    await Deno.writeFile(path, await gzip(idxLabels([5, 0, 4, 1, 9, 12])));
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, await gzip(idxImages(6)));
    await assertRejects(
      loadDataset("mnist", { dataDir: dir }),
      RangeError,
      `Cannot load dataset mnist: file ${path} has label 12 at index 5 (labels must be 0-9)`,
    );
  });
});

Deno.test("loadDataset() rejects a non-canonical sample count unless verify is false", async () => {
  await withTempDir(async (dir) => {
    await writeDataset(dir);
    await assertRejects(
      loadDataset("mnist", { dataDir: dir }),
      TypeError,
      `Cannot load dataset mnist: file ${dir}/train-images-idx3-ubyte.gz has 3 images ` +
        `(the canonical mnist train split has 60000)`,
    );
    const data = await loadDataset("mnist", { dataDir: dir, verify: false });
    assert.deepEqual([data.train.count, data.test.count], [3, 2]);
    assert.deepEqual([...data.train.labels], [5, 0, 4]);
    assert.deepEqual([...data.test.images.subarray(784, 787)], [784 % 251, 785 % 251, 786 % 251]);
  });
});

Deno.test("loadDataset() rejects an MD5 mismatch in a copy of the real files", async () => {
  await withTempDir(async (dir) => {
    for (const f of DATASET_FILES) {
      if (f === "t10k-images-idx3-ubyte") continue;
      await Deno.copyFile(`${SHARED}/mnist/${f}.gz`, `${dir}/${f}.gz`);
    }
    // One pixel of the test images changed by one: a valid IDX file, but not the canonical one.
    const { bytes } = await readIdxFile(`${SHARED}/mnist/t10k-images-idx3-ubyte.gz`);
    bytes[16 + 14 * 28 + 14] ^= 1;
    const path = `${dir}/t10k-images-idx3-ubyte`;
    await Deno.writeFile(path, bytes);
    await assertRejects(
      loadDataset("mnist", { dataDir: dir }),
      Error,
      `Cannot load dataset mnist: file ${path} has MD5 ${md5(bytes)} (decompressed), expected ` +
        `${DATASET_MD5.mnist["t10k-images-idx3-ubyte"]}: it is corrupt or not the canonical ` +
        `mnist t10k-images-idx3-ubyte`,
    );
    const unverified = await loadSplit("mnist", dir, "test", { verify: false });
    assert.equal(unverified.count, 10000);
  });
});
