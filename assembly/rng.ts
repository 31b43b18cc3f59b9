// Counter-based randomness: every draw is a hash of (seed, epoch, sample, stream,
// index), so scalar, SIMD, threaded and resumed runs draw the same numbers.
//
//   mix64(z)         = the splitmix64 finaliser
//   sampleKey        = mix64(mix64(seed << 32 | epoch) + index)
//   draw(key, s, i)  = mix64(key ^ (s << 48) ^ i)
// Streams: 0..L−1 dropout of layer l's neurons; 64 + l rounding of layer l's updates.

import { CFG_KEY_LO, CFG_SEED, cfg, cfgBase } from "./layout";

export const STREAM_ROUND: u64 = 64;

// @ts-ignore: decorator
@inline export function mix64(z: u64): u64 {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

/** Key of one training sample: position `index` in epoch `epoch` of the run seeded `seed`. */
export function sampleKey(seed: u32, epoch: u32, index: u32): u64 {
  return mix64(mix64((<u64>seed << 32) | <u64>epoch) + <u64>index);
}

/** Stores the key of the current sample in the configuration block. */
// The key is stored and loaded as one u64: assembling it from two i32 loads was
// miscompiled by the optimiser of binaryen 131 (the low word's load became sign-extending).
export function setSampleKey(epoch: u32, index: u32): void {
  store<u64>(cfgBase() + (<usize>CFG_KEY_LO << 2), sampleKey(<u32>cfg(CFG_SEED), epoch, index));
}

// @ts-ignore: decorator
@inline export function currentKey(): u64 {
  return load<u64>(cfgBase() + (<usize>CFG_KEY_LO << 2));
}

// @ts-ignore: decorator
@inline export function draw(key: u64, stream: u64, index: u64): u64 {
  return mix64(key ^ (stream << 48) ^ index);
}
