/**
 * How large a model's weights are, per linear layer: mean, standard deviation, largest |w| and the
 * share of weights with |w| ≥ θ (= 1: one input spike alone can fire the neuron), in threshold
 * units, as a Markdown table (or JSON lines with `--json`).
 *
 * ```sh
 * deno run -A scripts/weight_stats.ts ~/desire-runs/fashion-paper-s0/model-last.safetensors
 * ```
 *
 * Reads every kind of model file `loadModel` reads (our models, float models named as in the
 * authors' PyTorch code, compact models). RESULTS.md uses it to compare how far training moved the
 * weights under different schedules.
 *
 * @module
 */

import { loadModel } from "../mod.ts";

/** Statistics of one layer's weights, in threshold units (master weight / 2^20). */
export interface LayerStats {
  /** Number of weights. */
  count: number;
  /** Mean weight. */
  mean: number;
  /** Standard deviation (population). */
  std: number;
  /** Largest |w|. */
  maxAbs: number;
  /** Share of weights with |w| ≥ 1. */
  overThreshold: number;
}

/** Statistics of Q11.20 master weights. */
export function layerStats(w: Int32Array): LayerStats {
  if (w.length === 0) throw new RangeError("Cannot summarise weights: the layer has none");
  let sum = 0, sumSq = 0, maxAbs = 0, over = 0;
  for (let i = 0; i < w.length; i++) {
    const x = w[i] / 2 ** 20;
    sum += x;
    sumSq += x * x;
    const a = Math.abs(x);
    if (a > maxAbs) maxAbs = a;
    if (a >= 1) over++;
  }
  const mean = sum / w.length;
  return {
    count: w.length,
    mean,
    std: Math.sqrt(Math.max(0, sumSq / w.length - mean * mean)),
    maxAbs,
    overThreshold: over / w.length,
  };
}

async function main(args: string[]) {
  const json = args.includes("--json");
  const files = args.filter((a) => a !== "--json");
  if (files.length === 0 || files.some((f) => f.startsWith("-"))) {
    console.error("Usage: deno run -A scripts/weight_stats.ts [--json] MODEL...");
    Deno.exit(2);
  }
  if (!json) {
    console.log("| model | epoch | layer | weights | mean | std | max \\|w\\| | \\|w\\| ≥ 1 |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  }
  for (const file of files) {
    const model = await loadModel(file);
    const s = model.config.sizes;
    model.weights.forEach((w, k) => {
      const st = layerStats(w);
      const layer = `${s[k]}→${s[k + 1]}`;
      if (json) {
        console.log(JSON.stringify({ model: file, epoch: model.epoch, layer, ...st }));
      } else {
        console.log(
          `| ${file} | ${model.epoch} | ${layer} | ${st.count} | ${st.mean.toFixed(4)} | ` +
            `${st.std.toFixed(4)} | ${st.maxAbs.toFixed(3)} | ${
              (100 * st.overThreshold).toFixed(3)
            } % |`,
        );
      }
    });
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`weight_stats: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
