// A second host for desire.wasm: plain Node.js and the WebAssembly API, no Deno code, written
// from docs/ABI.md alone (configuration block, derivation formulas, weight layout, calls).
// tests/hosts_test.ts runs it and compares every number with the Deno host (src/network.ts).
//
// Usage: node tests/node_host.mjs JOB.json
// JOB: { wasm: path, model: path (a desire-model .safetensors file), images: path (u8, N_0
//   bytes per image), lr: η, train: [[image, label, epoch, index], ...], infer: [image, ...] }
// Prints one JSON object: runtime ("node <version>", or "deno" if Deno runs this as Node.js),
// abiVersion, imports, selftest (checksum of a fresh instance, u32),
// config (the 2048-byte configuration block after init(), base64), trainPredictions,
// predictions, counts (per inferred image; none if the job sets noCounts), weights (master,
// [out, in] per layer, base64 of little-endian i32; if the job sets digest, none, and
// weightsSha256 is the SHA-256 of all layers' bytes instead), saturations, trainSeconds and
// inferSeconds (wall time of the training and inference loops, for bench/bench.ts).
import { readFileSync } from "node:fs";
import process from "node:process";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const module = new WebAssembly.Module(readFileSync(job.wasm));
const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`);
for (const name of imports) {
  if (name !== "env.abort") throw new Error(`desire.wasm imports ${name}`);
}

/** A fresh instance (its own memory). */
function instantiate() {
  const env = {
    abort(_msg, _file, line, col) {
      throw new Error(`desire.wasm aborted at ${line}:${col}`);
    },
  };
  const ex = new WebAssembly.Instance(module, { env }).exports;
  if (ex.abiVersion() !== 1) throw new Error(`ABI version ${ex.abiVersion()}, expected 1`);
  return ex;
}

// ---- the model file: safetensors (u64 header length, JSON header, little-endian data) ----
const file = readFileSync(job.model);
const headerLength = Number(file.readBigUInt64LE(0));
const header = JSON.parse(file.subarray(8, 8 + headerLength).toString("utf8"));
const dataStart = 8 + headerLength;
const meta = header.__metadata__;
const config = JSON.parse(meta.config);
const seed = Number(meta.seed);
const sizes = config.sizes;
const L = sizes.length - 1;
/** Layer l's master weights, [out, in] i32. */
function modelWeights(l) {
  const t = header[`linear.${l - 1}.weight`];
  if (t.dtype !== "I32" || t.shape[0] !== sizes[l] || t.shape[1] !== sizes[l - 1]) {
    throw new Error(`tensor linear.${l - 1}.weight: ${JSON.stringify(t)}`);
  }
  const [begin, end] = t.data_offsets;
  const bytes = file.subarray(dataStart + begin, dataStart + end);
  return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

// ---- the configuration block, derived as docs/ABI.md says ----
const f32 = Math.fround;
const T = config.tsteps, n = T - config.margin, theta = config.threshold;
const words = new Int32Array(512);
const bytes = new Uint8Array(words.buffer);
words[0] = T;
words[1] = config.decay;
words[2] = n;
words[3] = L;
words[4] = seed | 0;
const frac = [0];
for (let l = 0; l <= L; l++) {
  words[8 + l] = sizes[l];
  const p = l === L ? 0 : l === 0 ? config.dropIn : config.dropHid;
  words[88 + l] = Math.min(4294967295, Math.round(p * 4294967296)) | 0;
}
for (let l = 1; l <= L; l++) {
  let F = 16;
  while (F >= 1 && sizes[l - 1] * 2 ** (F + 8) > 2147483647) F--;
  frac.push(F);
  const pPrev = l === 1 ? config.dropIn : config.dropHid;
  words[24 + l] = F;
  words[40 + l] = Math.max(1, Math.round(theta * (1 - pPrev) * 2 ** F));
  words[56 + l] = Math.max(1, Math.round(theta * 2 ** F));
  words[72 + l] = l >= 2 ? Math.ceil(config.desireHid * n * 2 ** F) : 0;
}
const dOut = f32(config.desireOut);
for (let c = 0; c <= 32; c++) {
  const e = f32(c / n);
  bytes[512 + c] = e > dOut ? 1 : 0;
  bytes[576 + c] = f32(1 - e) > dOut ? 1 : 0;
}
const enc = new Uint32Array(words.buffer, 1024, 256);
const th = f32(theta);
for (let b = 0; b < 256; b++) {
  const x = f32(b / 255);
  let u = 0, w = 0;
  for (let t = 0; t < T; t++) {
    u = f32(u + x);
    if (u >= th) {
      w |= 1 << t;
      u = f32(u - th);
    }
  }
  enc[b] = w >>> 0;
}
// Learning rate: η = mant · 2^(4 − shift), 2^23 ≤ mant < 2^24.
function fixedRate(eta) {
  if (eta === 0) return [0, 0];
  let e = 23 - Math.floor(Math.log2(eta));
  let mant = Math.round(eta * 2 ** e);
  while (mant >= 2 ** 24) mant = Math.round(eta * 2 ** --e);
  while (mant < 2 ** 23) mant = Math.round(eta * 2 ** ++e);
  return e + 4 > 62 ? [0, 0] : [mant, e + 4];
}
[words[5], words[6]] = fixedRate(job.lr);

// ---- run ----
const selftest = instantiate().selftest() >>> 0;

const ex = instantiate();
const base = ex.configPtr();
new Uint8Array(ex.memory.buffer, base, 2048).set(bytes);
const rc = ex.init();
if (rc !== 0) throw new Error(`init() returned ${rc}`);
// init() may have grown the memory: views are made after it.
const mem = () => ex.memory.buffer;
const configAfter = Buffer.from(new Uint8Array(mem(), base, 2048)).toString("base64");
const P = sizes.map((s) => (s + 3) & ~3);
for (let l = 1; l <= L; l++) {
  const w = modelWeights(l), nIn = sizes[l - 1];
  const dst = new Int32Array(mem(), ex.weightsPtr(l), nIn * P[l]);
  for (let j = 0; j < sizes[l]; j++) {
    for (let i = 0; i < nIn; i++) dst[i * P[l] + j] = w[j * nIn + i];
  }
  if (ex.syncForward(l) !== 0) throw new Error(`syncForward(${l}) failed`);
}
const images = readFileSync(job.images);
const setImage = (k) =>
  new Uint8Array(mem(), ex.imagePtr(), sizes[0]).set(
    images.subarray(k * sizes[0], (k + 1) * sizes[0]),
  );
const trainPredictions = [];
let t0 = performance.now();
for (const [k, label, epoch, index] of job.train) {
  setImage(k);
  trainPredictions.push(ex.trainSample(label, epoch, index));
}
const trainSeconds = (performance.now() - t0) / 1000;
const predictions = [], counts = [];
t0 = performance.now();
for (const k of job.infer) {
  setImage(k);
  predictions.push(ex.inferSample());
  if (!job.noCounts) counts.push(Array.from(new Int32Array(mem(), ex.countsPtr(), sizes[L])));
}
const inferSeconds = (performance.now() - t0) / 1000;
const weights = [];
const digest = job.digest ? createHash("sha256") : undefined;
for (let l = 1; l <= L; l++) {
  const nIn = sizes[l - 1], src = new Int32Array(mem(), ex.weightsPtr(l), nIn * P[l]);
  const w = new Int32Array(nIn * sizes[l]);
  for (let j = 0; j < sizes[l]; j++) {
    for (let i = 0; i < nIn; i++) w[j * nIn + i] = src[i * P[l] + j];
  }
  if (digest) digest.update(new Uint8Array(w.buffer));
  else weights.push(Buffer.from(w.buffer).toString("base64"));
}
process.stdout.write(
  JSON.stringify({
    runtime: "Deno" in globalThis ? "deno" : `node ${process.version}`,
    abiVersion: ex.abiVersion(),
    imports,
    selftest,
    config: configAfter,
    trainPredictions,
    predictions,
    counts,
    weights,
    saturations: ex.saturations(),
    weightsSha256: digest?.digest("hex"),
    trainSeconds,
    inferSeconds,
  }) + "\n",
);
