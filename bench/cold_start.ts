/**
 * Cold start and per-image latency of the inference API.
 *
 * ```sh
 * deno run -A bench/cold_start.ts [--model FILE] [--runs 15] [--images 1000]
 * ```
 *
 * Model: `--model FILE`, else `~/desire-runs/mnist-s0/model-best.safetensors` if it exists,
 * else one trained here (`cli.ts train --epochs 1 --limit 2000`, MNIST 784-1600-800-10).
 *
 * 1. In-process cold start: a fresh `deno run` process (this file in child mode, which imports
 *    nothing at start-up) times `await import("../mod.ts")`, reading the model file,
 *    `loadClassifier(bytes)` and the first `classify`. Median over `--runs` processes, after
 *    one warm-up run that fills Deno's transpile cache. The same for importing only
 *    `src/classifier.ts`, and once with an empty `DENO_DIR` (nothing transpiled yet).
 * 2. Process wall time: spawn to exit of `deno run` of the same one-shot classification.
 * 3. Per-image latency in a warm process: `classify` on MNIST test images (synthetic images
 *    if the data set is missing), `classifyBatch`, and `classifyPng` (decode + classify).
 *
 * @module
 */

const SELF = new URL(import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url);

/** A fixed synthetic digit-like image (a ring), so the child needs no data set. */
function syntheticImage(): Uint8Array {
  const img = new Uint8Array(784);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const r = Math.hypot(x - 13.5, y - 13.5);
      if (r > 6 && r < 9) img[y * 28 + x] = 255;
    }
  }
  return img;
}

/** Child: one cold start, printed as JSON. */
async function child(entry: string, model: string): Promise<void> {
  if (entry === "breakdown") return breakdown(model);
  const t0 = performance.now();
  const mod = await import(entry === "classifier" ? "../src/classifier.ts" : "../mod.ts");
  const t1 = performance.now();
  const classifier = await mod.loadClassifier(model);
  const t2 = performance.now();
  const r = classifier.classify(syntheticImage());
  const t3 = performance.now();
  console.log(JSON.stringify({
    import: t1 - t0,
    load: t2 - t1,
    first: t3 - t2,
    total: t3 - t0,
    sinceStart: t3, // performance.now() counts from the runtime's time origin
    class: r.class,
  }));
}

/** Child: where loadClassifier's time goes, in a cold process. */
async function breakdown(model: string): Promise<void> {
  const { decodeModel } = await import("../src/model_file.ts");
  const { Network } = await import("../src/network.ts");
  const t0 = performance.now();
  const bytes = await Deno.readFile(model);
  const t1 = performance.now();
  const m = decodeModel(bytes, model);
  const t2 = performance.now();
  await Network.create(m.config, m.seed, m.weights);
  const t3 = performance.now();
  console.log(JSON.stringify({ readFile: t1 - t0, decodeModel: t2 - t1, networkCreate: t3 - t2 }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const f = (x: number, d = 1) => x.toFixed(d);

interface ChildResult {
  [key: string]: number;
  wall: number;
}

async function spawnChild(
  entry: string,
  model: string,
  env: Record<string, string> = {},
): Promise<ChildResult> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", SELF, "--child", entry, model],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = performance.now() - t0;
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(`child failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return { ...JSON.parse(text), wall };
}

async function findModel(flag?: string): Promise<string> {
  if (flag) return flag;
  const home = Deno.env.get("HOME");
  const run = `${home}/desire-runs/mnist-s0/model-best.safetensors`;
  if (home && await Deno.stat(run).then(() => true, () => false)) return run;
  const out = await Deno.makeTempDir({ prefix: "desire_cold_start_" });
  await Deno.remove(out);
  console.log(`training a model: cli.ts train --epochs 1 --limit 2000 --out ${out} …`);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", "train", "--epochs", "1", "--limit", "2000", "--out", out],
    cwd: ROOT,
    stdout: "null",
  }).output();
  if (r.code !== 0) throw new Error("training failed");
  return `${out}/model-best.safetensors`;
}

function summarize(label: string, runs: ChildResult[]): void {
  const m = (k: string) => f(median(runs.map((r) => r[k]))).padStart(5);
  console.log(
    `${label.padEnd(36)} import ${m("import")}  loadClassifier(path) ${m("load")}  ` +
      `first classify ${m("first")}  = ${m("total")} ms  (runtime start → result ` +
      `${m("sinceStart")} ms; process wall ${m("wall")} ms)`,
  );
}

async function main(): Promise<void> {
  const args = Deno.args;
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const runs = Number(opt("--runs") ?? 15);
  const nImages = Number(opt("--images") ?? 1000);
  const model = await findModel(opt("--model"));

  const { loadClassifier } = await import("../mod.ts");
  const classifier = await loadClassifier(await Deno.readFile(model));
  const size = (await Deno.stat(model)).size;
  console.log(
    `model ${model}: ${classifier.shape.join("-")} (${classifier.dataset}, ` +
      `${(size / 2 ** 20).toFixed(1)} MiB)`,
  );
  console.log(
    `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}, ` +
      `${navigator.hardwareConcurrency} cores, ${new Date().toISOString().slice(0, 10)}`,
  );
  console.log(`\ncold start, median of ${runs} fresh processes (ms):`);
  for (const entry of ["mod", "classifier"]) {
    await spawnChild(entry, model); // warm-up: fills the transpile cache
    const rs: ChildResult[] = [];
    for (let i = 0; i < runs; i++) rs.push(await spawnChild(entry, model));
    summarize(entry === "mod" ? "import mod.ts" : "import src/classifier.ts", rs);
  }
  const fresh: ChildResult[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = await Deno.makeTempDir({ prefix: "desire_deno_dir_" });
    try {
      fresh.push(await spawnChild("mod", model, { DENO_DIR: dir }));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  summarize("import mod.ts, empty DENO_DIR (3 runs)", fresh);
  const parts: ChildResult[] = [];
  for (let i = 0; i < runs; i++) parts.push(await spawnChild("breakdown", model));
  console.log(
    `loadClassifier's parts, cold (median): ` +
      ["readFile", "decodeModel", "networkCreate"].map((k) =>
        `${k} ${f(median(parts.map((r) => r[k])))} ms`
      ).join(", "),
  );

  // Per-image latency in this (warm) process.
  let images: Uint8Array[] = [];
  let labels: Uint8Array | undefined;
  try {
    const { loadDataset } = await import("../mod.ts");
    const data = await loadDataset("mnist");
    const n = Math.min(nImages, data.test.count);
    for (let k = 0; k < n; k++) images.push(data.test.images.subarray(784 * k, 784 * (k + 1)));
    labels = data.test.labels;
  } catch {
    images = Array.from({ length: nImages }, (_, k) => {
      const im = syntheticImage();
      im[k % 784] ^= 128;
      return im;
    });
  }
  for (const im of images.slice(0, 50)) classifier.classify(im); // warm the JIT
  const per: number[] = [];
  let correct = 0;
  images.forEach((im, k) => {
    const t0 = performance.now();
    const r = classifier.classify(im);
    per.push(performance.now() - t0);
    if (labels && r.class === labels[k]) correct++;
  });
  const flat = new Uint8Array(784 * images.length);
  images.forEach((im, k) => flat.set(im, 784 * k));
  const batch = classifier.classifyBatch(flat);
  const { decodePng } = await import("../mod.ts");
  const png = await pngOf(images[0]);
  const pngTimes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await classifier.classifyPng(png);
    pngTimes.push(performance.now() - t0);
  }
  const decodeTimes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await decodePng(png);
    decodeTimes.push(performance.now() - t0);
  }
  console.log(
    `\nper image (warm, ${images.length} ${labels ? "MNIST test" : "synthetic"} images): ` +
      `classify median ${f(median(per), 3)} ms, p90 ${f(quantile(per, 0.9), 3)} ms, ` +
      `p99 ${f(quantile(per, 0.99), 3)} ms` +
      (labels ? `, accuracy ${f(100 * correct / images.length, 1)} %` : ""),
  );
  console.log(
    `classifyBatch: ${f(batch.ms, 1)} ms for ${images.length} ` +
      `(${f(batch.ms / images.length, 3)} ms/image, ${
        f(1000 * images.length / batch.ms, 0)
      } images/s)`,
  );
  console.log(
    `classifyPng (28×28 gray PNG, ${png.length} B): median ${f(median(pngTimes), 3)} ms ` +
      `(decodePng alone ${f(median(decodeTimes), 3)} ms)`,
  );
}

/** A 28×28 gray PNG (filter 0, zlib via CompressionStream). */
async function pngOf(image: Uint8Array): Promise<Uint8Array> {
  const raw = new Uint8Array(28 * 29);
  for (let y = 0; y < 28; y++) raw.set(image.subarray(28 * y, 28 * y + 28), 29 * y + 1);
  const z = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate")))
      .arrayBuffer(),
  );
  const { crc32 } = await import("../src/png.ts");
  const chunk = (type: string, data: Uint8Array) => {
    const body = new Uint8Array([...new TextEncoder().encode(type), ...data]);
    const out = new Uint8Array(12 + data.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, data.length);
    out.set(body, 4);
    v.setUint32(8 + data.length, crc32(body));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 28);
  new DataView(ihdr.buffer).setUint32(4, 28);
  ihdr[8] = 8;
  return new Uint8Array([
    137,
    80,
    78,
    71,
    13,
    10,
    26,
    10,
    ...chunk("IHDR", ihdr),
    ...chunk("IDAT", z),
    ...chunk("IEND", new Uint8Array()),
  ]);
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") await child(Deno.args[1], Deno.args[2]);
  else await main();
}
