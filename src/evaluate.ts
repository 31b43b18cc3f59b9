/**
 * Evaluation of a network on a dataset split (a file of its own so that the public module does
 * not pull in the training schedule's dependencies).
 *
 * @module
 */
import type { Network } from "./network.ts";
import type { Split } from "./datasets.ts";

/** Result of evaluating a split. */
export interface EvalResult {
  /** Fraction correct (a tie for the top count is wrong). */
  accuracy: number;
  /** Samples correct. */
  correct: number;
  /** Samples evaluated. */
  samples: number;
  /** Wall time. */
  seconds: number;
  /** Samples per second. */
  samplesPerSecond: number;
}

/**
 * Evaluates `net` on the first `limit` samples of `split` (all by default), without dropout.
 *
 * @param net The network.
 * @param split Images and labels.
 * @param limit Evaluate only the first `limit` samples.
 * @returns Accuracy (a tie for the top count counts as wrong), counts and speed.
 *
 * @example Accuracy on a tiny synthetic split
 * ```ts
 * import assert from "node:assert/strict";
 * import { Network } from "./network.ts";
 * import { evaluate } from "./evaluate.ts";
 *
 * const net = await Network.create({
 *   sizes: [784, 32, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * }, 0);
 * const split = {
 *   images: new Uint8Array(2 * 784).fill(128), labels: new Uint8Array([1, 2]),
 *   count: 2, rows: 28 as const, cols: 28 as const,
 * };
 * const r = evaluate(net, split);
 * assert.equal(r.samples, 2);
 * assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
 * ```
 */
export function evaluate(net: Network, split: Split, limit?: number): EvalResult {
  const n = Math.min(split.count, limit ?? split.count);
  const px = split.rows * split.cols;
  const t0 = performance.now();
  let correct = 0;
  for (let s = 0; s < n; s++) {
    if (net.infer(split.images.subarray(s * px, s * px + px)) === split.labels[s]) correct++;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { accuracy: correct / n, correct, samples: n, seconds, samplesPerSecond: n / seconds };
}
