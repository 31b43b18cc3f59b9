import assert from "node:assert/strict";
import { kaimingMaster } from "../mod.ts";
import { layerStats } from "../scripts/weight_stats.ts";

Deno.test("weight_stats: exact figures of a small layer, in threshold units", () => {
  const q = 2 ** 20;
  const s = layerStats(Int32Array.from([-2 * q, 0, q / 2, 3 * q / 2]));
  assert.equal(s.count, 4);
  assert.equal(s.mean, 0);
  assert.equal(s.std, Math.sqrt((4 + 0 + 0.25 + 2.25) / 4));
  assert.equal(s.maxAbs, 2);
  assert.equal(s.overThreshold, 0.5);
  assert.throws(() => layerStats(new Int32Array(0)), RangeError);
});

Deno.test("weight_stats: Kaiming initial weights have std √(2/fan-in)", () => {
  const [w1, w2] = kaimingMaster([784, 200, 10], 3);
  for (const [w, fanIn] of [[w1, 784], [w2, 200]] as const) {
    const s = layerStats(w);
    const want = Math.sqrt(2 / fanIn);
    assert.ok(Math.abs(s.std - want) < 0.05 * want, `std ${s.std}, want ${want} (fan-in ${fanIn})`);
    assert.ok(Math.abs(s.mean) < 0.05 * want, `mean ${s.mean} (fan-in ${fanIn})`);
  }
});
