// Test fixtures shared by tests/classifier_test.ts and tests/serve_test.ts (not a test file):
// a tiny PNG encoder, written independently of src/png.ts (its own bitwise CRC-32, the
// platform's CompressionStream), and a small trained model built in memory.
import { encodeModel, kaimingMaster, loadDataset, Network } from "../mod.ts";
import type { Dataset, NetConfig } from "../mod.ts";

/** CRC-32 bit by bit (no table, unlike the decoder). */
export function crc32Bitwise(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** zlib (RFC 1950) compression of `data`. */
export async function zlib(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const ascii = (s: string) => new TextEncoder().encode(s);

function be32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** One chunk: length, type, data, CRC (or the given CRC). */
export function chunk(type: string, data: Uint8Array, crc?: number): Uint8Array<ArrayBuffer> {
  const typed = new Uint8Array([...ascii(type), ...data]);
  return new Uint8Array([...be32(data.length), ...typed, ...be32(crc ?? crc32Bitwise(typed))]);
}

/** The PNG signature followed by `chunks`. */
export function assemble(...chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = [137, 80, 78, 71, 13, 10, 26, 10];
  for (const c of chunks) out.push(...c);
  return new Uint8Array(out);
}

/** IHDR chunk data. */
export function ihdrData(
  width: number,
  height: number,
  { bitDepth = 8, colorType = 0, compression = 0, filter = 0, interlace = 0 } = {},
): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    ...be32(width),
    ...be32(height),
    bitDepth,
    colorType,
    compression,
    filter,
    interlace,
  ]);
}

/** Samples per pixel of each 8-bit colour type. */
export const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filtered scanlines (filter byte + row) of `pixels`, row y with filter `filters[y % n]`. */
export function filterRows(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  filters: number[],
): Uint8Array<ArrayBuffer> {
  const stride = width * channels;
  const out = new Uint8Array(height * (stride + 1));
  const px = (y: number, i: number) => (y < 0 || i < 0 ? 0 : pixels[y * stride + i]);
  for (let y = 0; y < height; y++) {
    const f = filters[y % filters.length];
    out[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const x = px(y, i), a = px(y, i - channels), b = px(y - 1, i), c = px(y - 1, i - channels);
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f] ?? 0;
      out[y * (stride + 1) + 1 + i] = (x - pred) & 255;
    }
  }
  return out;
}

/** What to encode. */
export interface PngSpec {
  width: number;
  height: number;
  /** 0 gray, 2 RGB, 4 gray + alpha, 6 RGBA (8-bit). */
  colorType?: number;
  /** width × height × channels samples. */
  pixels: Uint8Array;
  /** Row filters, cycled (default: all five). */
  filters?: number[];
  /** Split the zlib stream into IDAT chunks of at most this many bytes. */
  idatSize?: number;
  /** Ancillary chunks to put before the image data. */
  extra?: Uint8Array[];
}

/** Encodes a PNG. */
export async function encodePng(spec: PngSpec): Promise<Uint8Array<ArrayBuffer>> {
  const colorType = spec.colorType ?? 0;
  const raw = filterRows(
    spec.pixels,
    spec.width,
    spec.height,
    CHANNELS[colorType],
    spec.filters ?? [0, 1, 2, 3, 4],
  );
  const z = await zlib(raw);
  const size = spec.idatSize ?? z.length;
  const idats: Uint8Array[] = [];
  for (let o = 0; o < z.length; o += size) idats.push(chunk("IDAT", z.subarray(o, o + size)));
  return assemble(
    chunk("IHDR", ihdrData(spec.width, spec.height, { colorType })),
    ...(spec.extra ?? []),
    ...idats,
    chunk("IEND", new Uint8Array()),
  );
}

/** A 28×28 gray PNG of `image`. */
export function grayPng(image: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return encodePng({ width: 28, height: 28, pixels: image });
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let s = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

/** A small model for the tests and what it was trained on. */
export interface SmallModel {
  /** The model file's bytes. */
  bytes: Uint8Array;
  /** The MNIST data set, if it was found (else the model is untrained). */
  data?: Dataset;
}

/** Hyper-parameters of the small test network (784-64-10). */
export const SMALL_CONFIG: NetConfig = {
  sizes: [784, 64, 10],
  tsteps: 20,
  threshold: 1,
  decay: 2,
  margin: 4,
  desireHid: 0.05,
  desireOut: 0.3,
  dropIn: 0,
  dropHid: 0.3,
};

/**
 * A 784-64-10 network trained on the first `samples` MNIST training images, saved as model
 * bytes in memory. Without the data set, an untrained (Kaiming-initialised) one.
 */
export async function smallModel(samples = 2000): Promise<SmallModel> {
  let data: Dataset | undefined;
  try {
    data = await loadDataset("mnist");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const net = await Network.create(SMALL_CONFIG, 0);
  if (data) {
    net.setLearningRate(1e-4); // fast: ≈ 70 % test accuracy after 2,000 samples
    for (let k = 0; k < samples; k++) {
      net.trainSample(
        data.train.images.subarray(784 * k, 784 * (k + 1)),
        data.train.labels[k],
        0,
        k,
      );
    }
  }
  const weights = data ? [net.weights(1), net.weights(2)] : kaimingMaster(SMALL_CONFIG.sizes, 0);
  const bytes = encodeModel(
    { config: SMALL_CONFIG, seed: 0, epoch: data ? 1 : 0, dataset: "mnist", hyper: {} },
    weights,
  );
  return { bytes, data };
}
