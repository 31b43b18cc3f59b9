// The online choice of the barrier poll count (src/spin_tuner.ts), on a simulated clock.
import assert from "node:assert/strict";
import { SPIN_CANDIDATES, SpinTuner } from "../src/spin_tuner.ts";

/**
 * Runs `steps` steps: each takes `cost(spins, k)` ms of the simulated clock, with the poll count
 * the tuner returned for it. Returns the poll count of every step.
 */
function simulate(
  tuner: SpinTuner,
  clock: { t: number },
  steps: number,
  cost: (spins: number, k: number) => number,
): number[] {
  const used: number[] = [];
  for (let k = 0; k < steps; k++) {
    const s = tuner.next();
    used.push(s);
    clock.t += cost(s, k);
  }
  return used;
}

// The mechanism's steps below run three candidates (their block counts assume three).
const THREE = [2000, 10000, 50000];

Deno.test("SpinTuner", async (t) => {
  await t.step("explores every candidate in rotating rounds, then keeps the fastest", () => {
    for (const fastest of SPIN_CANDIDATES) {
      const clock = { t: 0 };
      const tuner = new SpinTuner({ block: 8, rounds: 3, exploit: 4, now: () => clock.t });
      const cost = (s: number) => (s === fastest ? 0.3 : 0.4);
      const c = SPIN_CANDIDATES, n = c.length;
      const used = simulate(tuner, clock, 8 * 3 * n, cost);
      // Each candidate ran 3 blocks of 8 steps, in rotating rounds: 0 1 2 … | 1 2 … 0 | 2 … 0 1.
      const order = Array.from({ length: 3 * n }, (_, b) => used[8 * b]);
      const rotated = Array.from({ length: 3 * n }, (_, b) => c[(Math.floor(b / n) + b) % n]);
      assert.deepEqual(order, rotated);
      for (let b = 0; b < 3 * n; b++) {
        assert.ok(used.slice(8 * b, 8 * b + 8).every((s) => s === order[b]));
      }
      // The exploration ends with the next step, which runs the fastest, as do the 4 blocks after.
      const after = simulate(tuner, clock, 8 * 4, cost);
      assert.equal(tuner.explorations, 1);
      assert.equal(tuner.chosen, fastest);
      assert.ok(after.every((s) => s === fastest), `chose ${after[0]}, fastest ${fastest}`);
      // Then it explores again.
      const again = simulate(tuner, clock, 8 * n, cost);
      assert.deepEqual(Array.from({ length: n }, (_, b) => again[8 * b]), [...c]);
    }
  });

  await t.step("uses the median: one slow block (the machine's hiccup) does not decide", () => {
    const clock = { t: 0 };
    const tuner = new SpinTuner({
      candidates: THREE,
      block: 4,
      rounds: 3,
      exploit: 10,
      now: () => clock.t,
    });
    // Candidate 10000 is fastest, except in its first block (block 1), which is 10× slower.
    simulate(tuner, clock, 4 * 9 + 1, (s, k) => (s === 10000 ? (k >> 2 === 1 ? 3 : 0.3) : 0.4));
    assert.equal(tuner.chosen, 10000);
  });

  await t.step("leaves pauses and interrupted intervals out of the timing", () => {
    const clock = { t: 0 };
    const tuner = new SpinTuner({
      candidates: THREE,
      block: 8,
      rounds: 1,
      exploit: 5,
      now: () => clock.t,
    });
    // 2000 is the fastest per step, but the host pauses for a second after every 4th of its steps:
    // untimed, since a gap over 50 ms is not the candidate's.
    simulate(tuner, clock, 8 * 3 + 1, (s, k) => (s === 2000 ? (k % 4 === 3 ? 1000 : 0.2) : 0.4));
    assert.equal(tuner.chosen, 2000);
    // An interrupt (the other kind of step ran for 40 ms) leaves that interval out as well.
    const clock2 = { t: 0 };
    const tuner2 = new SpinTuner({
      candidates: THREE,
      block: 8,
      rounds: 1,
      exploit: 5,
      now: () => clock2.t,
    });
    for (let k = 0; k < 8 * 3 + 1; k++) {
      const s = tuner2.next();
      clock2.t += s === 2000 ? 0.2 : 0.4;
      if (s === 2000 && k % 2 === 1) {
        clock2.t += 40;
        tuner2.interrupt();
      }
    }
    assert.equal(tuner2.chosen, 2000);
    // Without the interrupt, those 40 ms would count against 2000.
    const clock3 = { t: 0 };
    const tuner3 = new SpinTuner({
      candidates: THREE,
      block: 8,
      rounds: 1,
      exploit: 5,
      now: () => clock3.t,
    });
    simulate(tuner3, clock3, 8 * 3 + 1, (s, k) => (s === 2000 ? (k % 2 === 1 ? 40.2 : 0.2) : 0.4));
    assert.notEqual(tuner3.chosen, 2000);
  });

  await t.step("runs a block again when most of it was paused", () => {
    const clock = { t: 0 };
    const tuner = new SpinTuner({
      candidates: THREE,
      block: 4,
      rounds: 1,
      exploit: 5,
      now: () => clock.t,
    });
    // Every step of 2000's first block is followed by a pause: that block is run again.
    let first = true;
    const used = simulate(tuner, clock, 4 * 4 + 1, (s, k) => {
      if (s === 2000 && first && k < 4) {
        if (k === 3) first = false;
        return 100;
      }
      return 0.3;
    });
    assert.deepEqual([used[0], used[4], used[8], used[12]], [2000, 2000, 10000, 50000]);
    assert.equal(tuner.explorations, 1);
  });

  await t.step("refuses bad settings", () => {
    assert.throws(() => new SpinTuner({ candidates: [] }), RangeError);
    assert.throws(() => new SpinTuner({ candidates: [0] }), /candidates must be integers ≥ 1/);
    assert.throws(() => new SpinTuner({ block: 0 }), /block must be ≥ 1/);
    assert.throws(() => new SpinTuner({ rounds: 1.5 }), /rounds must be ≥ 1/);
    assert.throws(() => new SpinTuner({ exploit: -1 }), /exploit must be ≥ 0/);
  });
});
