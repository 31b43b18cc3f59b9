// Dropout masks and input encoding.
//
// keep[l]: i32[P_l], −1 = kept, 0 = dropped (and for padding lanes j ≥ N_l).
//   Training: neuron j of layer l < L is dropped iff (draw(key, l, j) >> 32) < drop[l].
//   Evaluation, and the output layer always: every real neuron kept.
// words[0]: u32[P_0], the input spike words: enc[pixel] if kept, else 0
//   (enc is the host's 256-entry table of the accumulate-and-fire input neuron).

import {
  CFG_DROP, CFG_ENC, CFG_L, LAY_IMAGE, LAY_KEEP, LAY_WORDS, cfg, cfgBase, lay, size, stride,
} from "./layout";
import { currentKey, draw } from "./rng";

/** Writes keep[l] for every layer: seeded dropout while training, all kept otherwise. */
export function dropoutMasks(train: bool): void {
  dropoutLayers(train, currentKey(), 0, cfg(CFG_L));
}

/** Writes keep[l] for the layers l0 ≤ l ≤ l1, with the sample's key `key` (see dropoutMasks). */
export function dropoutLayers(train: bool, key: u64, l0: i32, l1: i32): void {
  const L = cfg(CFG_L);
  for (let l = l0; l <= l1; l++) {
    const keep = lay(LAY_KEEP + l);
    const n = size(l), p = stride(l);
    const thr = <u32>cfg(CFG_DROP + l);
    if (!train || l == L || thr == 0) {
      memory.fill(keep, 0xff, <usize>n << 2);
    } else {
      for (let j = 0; j < n; j++) {
        const r = <u32>(draw(key, <u64>l, <u64>j) >> 32);
        store<i32>(keep + (<usize>j << 2), r < thr ? 0 : -1);
      }
    }
    for (let j = n; j < p; j++) store<i32>(keep + (<usize>j << 2), 0);
  }
}

/** Input layer: words[0][i] = keep[0][i] ? enc[image[i]] : 0. */
export function encodeInput(): void {
  const img = lay(LAY_IMAGE);
  const keep = lay(LAY_KEEP);
  const words = lay(LAY_WORDS);
  const enc = cfgBase() + <usize>CFG_ENC;
  const n = size(0), p = stride(0);
  for (let i = 0; i < n; i++) {
    const w = load<u32>(enc + (<usize>load<u8>(img + <usize>i) << 2));
    store<u32>(words + (<usize>i << 2), w & <u32>load<i32>(keep + (<usize>i << 2)));
  }
  for (let i = n; i < p; i++) store<u32>(words + (<usize>i << 2), 0);
}
