/**
 * A/B timing of two builds of desire.wasm, interleaved in one process so that the machine's
 * drifting speed affects both alike; also checks that both end with the same weights.
 *
 *   deno run -A bench/ab.ts OLD.wasm NEW.wasm [train|infer] [blocks] [MODEL]
 *
 * e.g. `git show HEAD~1:desire.wasm > /tmp/old.wasm && deno run -A bench/ab.ts /tmp/old.wasm
 * desire.wasm train 14`. MNIST 784-1600-800-10 from Kaiming seed-0 weights (or from the weights of
 * MODEL, a trained MNIST model file: activity falls as a net trains), lr 1e-5, blocks of 250
 * samples of the epoch-0 shuffle (inference: test images), medians over the blocks.
 *
 * @module
 */
import { configure, type DesireExports, setRate } from "../src/wasm.ts";
import { defaultConfig, deriveParams, fixedRate } from "../src/params.ts";
import { kaimingMaster } from "../src/network.ts";
import { loadDataset } from "../src/datasets.ts";
import { shuffledOrder } from "../src/rng.ts";
import { loadModel } from "../src/model_file.ts";

const [fileA, fileB, mode = "train", blocksText = "10", modelPath] = Deno.args;
if (!fileA || !fileB || (mode !== "train" && mode !== "infer")) {
  console.error("usage: deno run -A bench/ab.ts OLD.wasm NEW.wasm [train|infer] [blocks] [MODEL]");
  Deno.exit(2);
}
const data = await loadDataset("mnist", { verify: false });
const config = defaultConfig([784, 1600, 800, 10]);
const params = deriveParams(config);
const initial = modelPath ? (await loadModel(modelPath)).weights : kaimingMaster(config.sizes, 0);

async function make(file: string): Promise<DesireExports> {
  const { instance } = await WebAssembly.instantiate(await Deno.readFile(file), {
    env: {
      abort() {
        throw new Error(`${file} aborted`);
      },
    },
  });
  const ex = instance.exports as unknown as DesireExports;
  configure(ex, params, 0);
  for (let l = 1; l < config.sizes.length; l++) {
    const n = config.sizes[l - 1] * config.sizes[l];
    new Int32Array(ex.memory.buffer, ex.importPtr(l), n).set(initial[l - 1]);
    ex.importWeights(l);
  }
  const r = fixedRate(1e-5);
  setRate(ex, r.mant, r.shift);
  return ex;
}

const a = await make(fileA), b = await make(fileB);
const order = shuffledOrder(0, 0, data.train.count);
const BLOCK = 250, blocks = Number(blocksText);
const times: [number[], number[]] = [[], []];

function run(ex: DesireExports, k0: number): number {
  const image = new Uint8Array(ex.memory.buffer, ex.imagePtr(), 784);
  const t0 = performance.now();
  for (let k = k0; k < k0 + BLOCK; k++) {
    const s = mode === "train" ? order[k] : k % data.test.count;
    const src = mode === "train" ? data.train : data.test;
    image.set(src.images.subarray(s * 784, s * 784 + 784));
    if (mode === "train") ex.trainSample(data.train.labels[s], 0, k);
    else ex.inferSample();
  }
  return performance.now() - t0;
}

for (let i = 0, k = 0; i < blocks; i++, k += BLOCK) {
  if (i % 2) {
    times[0].push(run(a, k));
    times[1].push(run(b, k));
  } else {
    times[1].push(run(b, k));
    times[0].push(run(a, k));
  }
}
const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
const [ra, rb] = times.map((t) => BLOCK / median(t) * 1000);
console.log(
  `${mode}: A ${ra.toFixed(0)} samples/s, B ${rb.toFixed(0)} samples/s, B/A ${
    (rb / ra).toFixed(3)
  }`,
);
let same = true;
for (let l = 1; l < config.sizes.length && same; l++) {
  const n = config.sizes[l - 1] * ((config.sizes[l] + 3) & ~3);
  const wa = new Int32Array(a.memory.buffer, a.forwardWeightsPtr(l), n);
  const wb = new Int32Array(b.memory.buffer, b.forwardWeightsPtr(l), n);
  same = wa.every((v, k) => v === wb[k]);
}
console.log(same ? "same weights" : "THE WEIGHTS DIFFER");
if (!same) Deno.exit(1);
