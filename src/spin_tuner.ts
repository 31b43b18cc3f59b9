/**
 * Online choice of how long a waiting thread polls before it sleeps (internal).
 *
 * In the threaded build a thread that reaches a barrier first polls the barrier word, then sleeps
 * in `atomic.wait` (config word SPINS: the number of polls, under a nanosecond each here; 0 means
 * the module's default of 2000). Waking a sleeping thread costs tens of microseconds, so on an
 * idle machine long polls are faster; on a loaded one the thread waited for may have lost its
 * core, and long polls burn the time it needs. Measured on 2 cores, MNIST, 2 threads
 * (bench/RESULTS.md, 2026-11-29): 10,000 and 50,000 polls train 1.05× and 1.08× as fast as 2,000
 * on an idle machine, 0.93× and 0.77× as fast with one other busy process. With this tuner: 1.03×
 * idle, 1.00× loaded (it pays for its explorations). Counted later the same day: with 10,000 polls
 * a waiting thread still slept 1.2–2.4 times a step (10,000 polls do not last the 8–10 µs a worker
 * waits while the host's thread encodes the sample), with 50,000 about once in 10–30 steps, with
 * 200,000 about once in 1,000. A fourth candidate of 200,000 gained 1.01× idle (MNIST; 1.006×
 * Fashion-MNIST) and lost 0.90× with one other busy process, so it is not among them. A wrong
 * choice costs: 10,000 polls trained 3–26 % slower than 50,000 on an idle machine, and with 3
 * blocks per candidate the tuner kept 10,000 for the first 15,000 steps of a run. With 5 blocks
 * per candidate (a steadier median) and 80 blocks between explorations (as large a share of the
 * steps exploring as before), MNIST training on 2 threads ran 1.03× as fast idle (1.049× with
 * 5 and 48) and 1.00× with one busy process; Fashion-MNIST 1.00× idle (in-process A/Bs).
 *
 * So the host measures: in an exploration, every candidate runs blocks of steps in turn (a
 * rotating order, several rounds, so the machine's drifting speed hits all alike), and the one
 * with the shortest median time per step runs until the next exploration. Training and evaluation
 * steps are timed apart (one tuner each); the host's pauses (a gap of over 50 ms) and the time
 * the other kind of step took are left out of the blocks. Only the speed depends on the choice:
 * every thread computes the same numbers whatever it polls.
 *
 * @module
 */
import { median } from "./stats.ts";

/** Polls before sleeping that the tuner tries: the module's default, and two longer. */
export const SPIN_CANDIDATES: readonly number[] = [2000, 10000, 50000];

/** Settings of a {@link SpinTuner}. */
export interface SpinTunerOptions {
  /** Polls before sleeping, the candidates (default {@link SPIN_CANDIDATES}). */
  candidates?: readonly number[];
  /** Steps per timed block (default 256). */
  block?: number;
  /** Blocks of each candidate per exploration (default 5). */
  rounds?: number;
  /** Blocks of the chosen candidate between explorations (default 80). */
  exploit?: number;
  /** A gap between two steps longer than this many ms is not timed (default 50). */
  maxGapMs?: number;
  /** The clock, in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * Chooses, block by block, the poll count of the steps: call {@link SpinTuner.next} before each
 * step and write what it returns to the SPINS word; {@link SpinTuner.interrupt} drops the block
 * under way (the other kind of step ran).
 */
export class SpinTuner {
  readonly #cands: readonly number[];
  readonly #block: number;
  readonly #rounds: number;
  readonly #exploit: number;
  readonly #maxGap: number;
  readonly #now: () => number;
  /** Candidate indices of the blocks still to run in this exploration. */
  #plan: number[] = [];
  /** Block times (ms) of each candidate in this exploration. */
  #times: number[][] = [];
  #current = 0;
  #chosen = 0;
  #exploitLeft = 0;
  /** Steps begun in the block under way, and how many of the intervals after them were timed. */
  #steps = 0;
  #timed = 0;
  #elapsed = 0;
  #last = 0;
  #timing = false;
  #explorations = 0;

  constructor(options: SpinTunerOptions = {}) {
    this.#cands = options.candidates ?? SPIN_CANDIDATES;
    this.#block = options.block ?? 256;
    this.#rounds = options.rounds ?? 5;
    this.#exploit = options.exploit ?? 80;
    this.#maxGap = options.maxGapMs ?? 50;
    this.#now = options.now ?? (() => performance.now());
    if (this.#cands.length === 0 || this.#cands.some((c) => !Number.isInteger(c) || c < 1)) {
      throw new RangeError(`SpinTuner: candidates must be integers ≥ 1, got ${this.#cands}`);
    }
    for (const [k, v] of [["block", this.#block], ["rounds", this.#rounds]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`SpinTuner: ${k} must be ≥ 1, got ${v}`);
      }
    }
    if (!Number.isInteger(this.#exploit) || this.#exploit < 0) {
      throw new RangeError(`SpinTuner: exploit must be ≥ 0, got ${this.#exploit}`);
    }
    this.#explore();
  }

  /** The poll count chosen by the last exploration (the first candidate before any). */
  get chosen(): number {
    return this.#cands[this.#chosen];
  }

  /** Explorations completed. */
  get explorations(): number {
    return this.#explorations;
  }

  /** Call before a step: returns the poll count to use for it. */
  next(): number {
    const t = this.#now();
    // The time since the last call is the last step's (and the host's work around it); a longer
    // gap is a pause of the host (saving, logging, other work), not the candidate's.
    if (this.#timing && t - this.#last <= this.#maxGap) {
      this.#elapsed += t - this.#last;
      this.#timed++;
    }
    this.#last = t;
    this.#timing = true;
    if (this.#steps === this.#block) {
      this.#finishBlock(this.#timed >= this.#block >> 1 ? this.#elapsed / this.#timed : NaN);
      this.#steps = this.#timed = this.#elapsed = 0;
    }
    this.#steps++;
    return this.#cands[this.#current];
  }

  /** Leaves the time until the next call untimed (the other kind of step ran in between). */
  interrupt(): void {
    this.#timing = false;
  }

  #explore(): void {
    const n = this.#cands.length;
    this.#times = Array.from({ length: n }, () => []);
    this.#plan = [];
    for (let r = 0; r < this.#rounds; r++) {
      for (let k = 0; k < n; k++) this.#plan.push((r + k) % n);
    }
    this.#current = this.#plan.shift()!;
  }

  /** Ends a block of the current candidate that took `ms` per step (NaN: too few timed). */
  #finishBlock(ms: number): void {
    if (this.#exploitLeft === 0) {
      if (Number.isNaN(ms)) this.#plan.unshift(this.#current); // mostly paused: run it again
      else this.#times[this.#current].push(ms);
    }
    if (this.#plan.length > 0) {
      this.#current = this.#plan.shift()!;
      return;
    }
    if (this.#exploitLeft > 0) {
      if (--this.#exploitLeft === 0) this.#explore();
      return;
    }
    // The exploration is complete: the lowest median block time wins.
    let best = 0, bestMs = Infinity;
    for (let k = 0; k < this.#cands.length; k++) {
      const m = this.#times[k].length > 0 ? median(this.#times[k]) : Infinity;
      if (m < bestMs) [best, bestMs] = [k, m];
    }
    this.#chosen = best;
    this.#current = best;
    this.#explorations++;
    this.#exploitLeft = this.#exploit;
    if (this.#exploit === 0) this.#explore();
  }
}
