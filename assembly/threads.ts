// One training or inference step, split across threads that share the module's memory.
//
// Thread tid of nt works on its own share of every kernel's outer loop (lanes of a layer for
// forward and update, inputs for backward) and on its own scratch area; a barrier separates
// the phases that read what another thread wrote. Every number is computed by the same code
// whatever the split (and the randomness is counter-based), so the weights are bit-identical
// for any thread count. In the portable build (no threads feature) nt is 1 and the barrier is
// compiled out.

import {
  CFG_ARG_EPOCH, CFG_ARG_INDEX, CFG_ARG_LABEL, CFG_ARG_MODE, CFG_BAR_COUNT, CFG_BAR_GEN, CFG_GO,
  CFG_L, CFG_READY, CFG_RESULT, CFG_SEED, CFG_SLEEPERS, CFG_SPINS, CFG_STOP, LAY_OFF_GROUPS, LAY_OFF_KVEC, LAY_OFF_LIST, LAY_OFF_MISC,
  MISC_BWD_NG, MISC_BWD_READY, MISC_UPD_READY, cfg, cfgBase, claimWord, laneStart, lay, panelRowBytes, scratch, setCfg,
  size, stride, threads, inferOnly,
} from "./layout";
import { dropoutLayers, dropoutMasks, encodeInput } from "./encode";
import {
  forwardLayerSimd, inputLists, outputCounts, unlistInputs, outputFinish, outputAccumulates, outputPart, takeUnit,
} from "./forward";
import {
  backwardFactors, backwardFinish, backwardInputs, backwardLayerSimd, backwardPartial, outputDesire,
} from "./desire";
import { preparedInputs, updateApply, updateLayerSimd, updatePrepare } from "./stdp";
import { currentKey, sampleKey, setSampleKey } from "./rng";

// @ts-ignore: decorator
@inline function word(k: i32): usize {
  return cfgBase() + (<usize>k << 2);
}

/**
 * Polls before a thread sleeps in atomic.wait, unless the host sets CFG_SPINS (under 2 µs here:
 * a poll is an atomic load and a compare: measured on 2026-11-29, 10000 polls did not last the
 * 8–10 µs a worker then waited while thread 0 encoded a sample).
 * Waking a sleeping thread costs tens of microseconds, so a waiting thread polls for a while
 * first; but on a loaded machine the thread it waits for may have lost its core, and a long
 * poll then burns the time that thread needs. Measured on 2 cores, MNIST training with 2
 * threads (bench/RESULTS.md, 2026-11-29): 10000 and 50000 polls train 1.05× and 1.08× as fast
 * as 2000 on an idle machine, 0.93× and 0.77× as fast with one other busy process. So the
 * default is the safe one, and the Deno host (src/spin_tuner.ts) measures which is faster where
 * it runs and sets CFG_SPINS.
 */
const SPINS: i32 = 2000;

// @ts-ignore: decorator
@inline function spinLimit(): i32 {
  const s = atomic.load<i32>(word(CFG_SPINS));
  return s > 0 ? s : SPINS;
}

/**
 * Waits while the i32 at `at` holds `value`: polls (spinLimit), then sleeps until notified,
 * counted in CFG_SLEEPERS while it sleeps.
 */
function waitWhile(at: usize, value: i32): void {
  let spins = 0;
  const limit = spinLimit();
  while (atomic.load<i32>(at) == value) {
    if (++spins > limit) {
      atomic.add<i32>(word(CFG_SLEEPERS), 1);
      atomic.wait<i32>(at, value, -1);
      atomic.sub<i32>(word(CFG_SLEEPERS), 1);
    }
  }
}

/**
 * Wakes up to `count` threads asleep on the i32 at `at`, after a change to it; skipped while no
 * thread sleeps (a notify costs a call into the host even then). Safe, as every access here is
 * sequentially consistent: a thread about to sleep counts itself before atomic.wait checks the
 * value, so either this sees the count, or that check sees the change and does not sleep.
 */
// @ts-ignore: decorator
@inline function wake(at: usize, count: i32): void {
  if (atomic.load<i32>(word(CFG_SLEEPERS)) != 0) atomic.notify(at, count);
}

/** Waits until all nt threads have arrived (spins briefly, then sleeps on the generation word). */
export function barrier(nt: i32): void {
  if (!ASC_FEATURE_THREADS || nt <= 1) return;
  const gen = atomic.load<i32>(word(CFG_BAR_GEN));
  if (atomic.add<i32>(word(CFG_BAR_COUNT), 1) == nt - 1) {
    atomic.store<i32>(word(CFG_BAR_COUNT), 0);
    atomic.add<i32>(word(CFG_BAR_GEN), 1);
    wake(word(CFG_BAR_GEN), nt);
  } else {
    waitWhile(word(CFG_BAR_GEN), gen);
  }
}

/**
 * First (i0) or end (i1, with part + 1) of thread `part`'s own lanes of a layer of n neurons and
 * stride P, clipped to the real neurons: the neurons whose desires that thread computes.
 */
// @ts-ignore: decorator
@inline function ownLane(P: i32, n: i32, part: i32, nt: i32): i32 {
  return min(laneStart(P, part, nt), n);
}

/**
 * Thread tid's part of one step (train: dropout, forward, desire, backward, update; otherwise
 * the evaluation forward pass). Returns the prediction (class or −1 on a tie) on thread 0.
 */
export function sampleStep(tid: i32, nt: i32, train: bool, label: i32, epoch: u32, index: u32): i32 {
  const L = cfg(CFG_L);
  const sc = scratch(tid);
  // No list of active inputs is left over from before this step (listedInputs).
  unlistInputs(sc);
  // Not ready: the other threads read this thread's ready words only after the barriers below.
  if (ASC_FEATURE_THREADS && nt >= 2) {
    atomic.store<i32>(readyWord(sc), 0);
    atomic.store<i32>(backwardReadyWord(sc), 0);
  }
  // With 2 threads and a first hidden layer in panels of equal width, thread 1 encodes the input
  // and builds the first layer's step lists (for both panels: their rows have the same width)
  // while thread 0 draws the hidden layers' dropout masks; otherwise thread 0 does all of it.
  const early = ASC_FEATURE_THREADS && nt == 2 && L >= 2 && equalPanels(1);
  const accumulate = outputAccumulates(nt);
  if (tid == 0) {
    if (train) setSampleKey(epoch, index);
    if (early) {
      dropoutLayers(train, currentKey(), 1, L);
    } else {
      dropoutMasks(train);
      encodeInput();
    }
    if (ASC_FEATURE_THREADS && nt == 2) {
      // The forward units' claims (claimWord(l, p)) and the update units' (claimWord(0, p)).
      clearClaims(0, L);
    }
  } else if (early) {
    // The key thread 0 stores, computed here (only the input layer's dropout draws from it).
    dropoutLayers(train, train ? sampleKey(<u32>cfg(CFG_SEED), epoch, index) : 0, 0, 0);
    encodeInput();
    inputLists(1, panelRowBytes(1, 1, 2), sc);
  }
  barrier(nt);
  for (let l = 1; l < L; l++) {
    // A hidden layer's weights are in one panel per thread (layout.ts): thread tid's lanes.
    // With 2 threads and panels of equal width, a thread that finishes its panel first takes
    // units of the other's (forward.ts).
    const steal = ASC_FEATURE_THREADS && nt == 2 && equalPanels(l);
    const lists = early && l == 1 ? scratch(1) + lay(LAY_OFF_LIST) : 0;
    // The output layer is small (10 neurons): each thread (also the only one) adds up its currents
    // from the units of the last hidden layer it computes, then thread 0 alone adds those parts up
    // and runs the membranes, the counts and the output desire; or, when it is too wide for that,
    // thread 0 runs all of it.
    const acc = l == L - 1 && accumulate ? outputPart(tid) : 0;
    forwardLayerSimd(l, train, tid, nt, sc, steal ? word(claimWord(l, 0)) : 0, lists, acc);
    barrier(nt);
  }
  if (accumulate) {
    if (tid == 0) outputFinish(train, nt, sc);
  } else if (tid == 0) {
    forwardLayerSimd(L, train, 0, 1, sc);
  }
  if (tid == 0) {
    setCfg(CFG_RESULT, outputCounts());
    if (train) outputDesire(label);
    // The hidden layers' forward units are all taken (barriers above): their claim words hand
    // out the backward pass's units next (backwardShared), after the barrier below.
    if (ASC_FEATURE_THREADS && nt == 2) {
      clearClaims(2, L);
    }
  }
  if (!train) return cfg(CFG_RESULT); // only thread 0's result counts; workers wait for GO
  barrier(nt);
  // The output layer's backward pass and its update (below) are split by its inputs: each thread
  // computes the desires of its own lanes of layer L − 1, the only ones its panel's backward
  // factors below read, so no barrier is needed between them.
  const i0 = L >= 2 ? ownLane(stride(L - 1), size(L - 1), tid, nt) : 0;
  const i1 = L >= 2 ? ownLane(stride(L - 1), size(L - 1), tid + 1, nt) : 0;
  if (L >= 2) backwardLayerSimd(L, i0, i1, sc, L == 2);
  for (let l = L - 1; l >= 2; l--) {
    // Hidden layers are in weight panels: each thread sums over its own panel for the inputs the
    // update needs (listed in its scratch area), then, after a barrier, adds up the partial sums
    // of those in its own lanes of layer l − 1.
    const n = size(l - 1), P = stride(l - 1);
    if (ASC_FEATURE_THREADS && nt > 1) {
      const listed = backwardShared(l, tid, nt, sc, l == 2);
      barrier(nt);
      backwardFinish(l, nt, ownLane(P, n, tid, nt), ownLane(P, n, tid + 1, nt), sc, listed);
      // The next layer's partial sums reuse the rows this one's sums are still read from.
      if (l > 2) barrier(nt);
    } else {
      backwardLayerSimd(l, 0, n, sc, l == 2);
    }
  }
  // Each thread updates its panel of every hidden layer, one layer after the other, in update rows
  // of its own (layout: net.ts), so the layers need no barrier between them; the one after the
  // last keeps the next step from changing what a thread still reads. With 2 threads, the inputs
  // of the largest hidden layer's update go in units that either thread may take (prepareShared,
  // applyShared): each thread prepares its panel of it first, so that the other may take its units
  // as soon as it is done with its own work, makes the other updates in its second scratch area
  // and region, and applies the shared one last. The output layer's update comes after the hidden backward
  // passes, which may take over the list of active inputs that the forward pass left in the
  // scratch area (backwardInputs), as the shared update may after them; no backward pass reads
  // the weights an update changes.
  const shared = ASC_FEATURE_THREADS && nt == 2 ? largestHidden(L) : 0;
  let na = 0;
  if (shared != 0) na = prepareShared(shared, tid, sc);
  const usc = shared != 0 ? scratch(nt + tid) : sc, region = shared != 0 ? nt + tid : tid;
  if (L >= 2) {
    updateLayerSimd(L, 0, 1, usc, region, i0, i1, sc);
  } else if (tid == 0) {
    updateLayerSimd(L, 0, 1, sc);
  }
  for (let l = 1; l < L; l++) {
    if (l != shared) updateLayerSimd(l, tid, nt, usc, region, 0, size(l - 1), sc);
  }
  if (shared != 0) applyShared(shared, tid, sc, na);
  barrier(nt);
  return cfg(CFG_RESULT);
}

/** Sets both panels' claim words of the layers l0 ≤ l < l1 to 0 (no unit taken). */
function clearClaims(l0: i32, l1: i32): void {
  for (let l = l0; l < l1; l++) {
    atomic.store<i32>(word(claimWord(l, 0)), 0);
    atomic.store<i32>(word(claimWord(l, 1)), 0);
  }
}

/** Whether hidden layer l's two weight panels (2 threads) have rows of the same width. */
// @ts-ignore: decorator
@inline function equalPanels(l: i32): bool {
  return panelRowBytes(l, 0, 2) == panelRowBytes(l, 1, 2);
}

/** The word in a thread's misc area (scratch `sc`) that says its shared update is prepared. */
// @ts-ignore: decorator
@inline function readyWord(sc: usize): usize {
  return sc + lay(LAY_OFF_MISC) + MISC_UPD_READY;
}

/** The hidden layer with the most weights (the last of equals), or 0 when there is none. */
function largestHidden(L: i32): i32 {
  let best = 0;
  let most: u64 = 0;
  for (let l = 1; l < L; l++) {
    const w = <u64>size(l - 1) * <u64>stride(l);
    if (w >= most) {
      most = w;
      best = l;
    }
  }
  return best;
}

/** Words in a thread's misc area: its backward factor groups, and the layer they are ready for. */
// @ts-ignore: decorator
@inline function backwardGroupsWord(sc: usize): usize {
  return sc + lay(LAY_OFF_MISC) + MISC_BWD_NG;
}
// @ts-ignore: decorator
@inline function backwardReadyWord(sc: usize): usize {
  return sc + lay(LAY_OFF_MISC) + MISC_BWD_READY;
}

/** Waits until the i32 at `at` holds `value`. */
function waitUntil(at: usize, value: i32): void {
  let v = atomic.load<i32>(at);
  while (v != value) {
    waitWhile(at, v);
    v = atomic.load<i32>(at);
  }
}

/** Listed inputs in a unit of backwardShared. */
const BACKWARD_UNIT: i32 = 32;

/**
 * Thread tid's part of the partial sums of layer l's backward pass (backwardPartial) with nt ≥ 2
 * threads: it computes its panel's factors and lists the inputs of layer l − 1 to sum (in its
 * scratch area: backwardInputs), then sums its own panel for all of them. With 2 threads, those go
 * in units of BACKWARD_UNIT listed inputs that it takes from the front of its panel's claim word
 * (claimWord(l, tid), free again after the forward pass); then, once the other thread's factors
 * are ready (its ready word), it takes that panel's units from the back, with those factors. The
 * sums are the same whoever computes them. Returns the number of inputs listed.
 */
function backwardShared(l: i32, tid: i32, nt: i32, sc: usize, needed: bool): i32 {
  const P = stride(l);
  const kvec = sc + lay(LAY_OFF_KVEC), groups = sc + lay(LAY_OFF_GROUPS);
  const g1 = backwardFactors(l, kvec, groups, laneStart(P, tid, nt), laneStart(P, tid + 1, nt));
  const list = sc; // the active inputs' list of the forward pass and the update: free here
  if (nt != 2) {
    const n = backwardInputs(l, sc, needed);
    backwardPartial(l, tid, nt, kvec, groups, g1, list, 0, n);
    return n;
  }
  store<i32>(backwardGroupsWord(sc), g1);
  atomic.store<i32>(backwardReadyWord(sc), l); // a release: the other thread may read the factors
  wake(backwardReadyWord(sc), 1);
  const n = backwardInputs(l, sc, needed);
  const units = (n + BACKWARD_UNIT - 1) / BACKWARD_UNIT;
  const own = word(claimWord(l, tid));
  for (let u = takeUnit(own, units, false); u >= 0; u = takeUnit(own, units, false)) {
    backwardPartial(l, tid, 2, kvec, groups, g1, list, u * BACKWARD_UNIT, min(n, (u + 1) * BACKWARD_UNIT));
  }
  const q = 1 - tid, oq = scratch(q);
  waitUntil(backwardReadyWord(oq), l);
  const gq = load<i32>(backwardGroupsWord(oq));
  const kq = oq + lay(LAY_OFF_KVEC), grq = oq + lay(LAY_OFF_GROUPS);
  const other = word(claimWord(l, q));
  for (let u = takeUnit(other, units, true); u >= 0; u = takeUnit(other, units, true)) {
    backwardPartial(l, q, 2, kq, grq, gq, list, u * BACKWARD_UNIT, min(n, (u + 1) * BACKWARD_UNIT));
  }
  return n;
}

/** Active inputs of a unit of the shared update (applyShared). */
const UPDATE_UNIT: i32 = 16;

/**
 * Layer l's update shared by 2 threads, first half: thread tid prepares its panel's update (stdp.ts:
 * the update rows in its region, the lists in its scratch area, taking over the forward pass's
 * list of active inputs when it is still there) and says so in its ready word. Returns the number
 * of active inputs, for applyShared.
 */
function prepareShared(l: i32, tid: i32, sc: usize): i32 {
  const na = updatePrepare(l, tid, 2, sc, tid, 0, size(l - 1), true);
  atomic.store<i32>(readyWord(sc), 1); // a release: the other thread may read the lists
  wake(readyWord(sc), 1);
  return na;
}

/**
 * Second half of the shared update (after prepareShared, and any other updates in the thread's
 * second scratch area and region): thread tid applies its update to units of UPDATE_UNIT active inputs
 * that it takes from the front of its panel's claim word (claimWord(0, tid)); then, once the other
 * thread's preparation is ready, takes that panel's units from the back. A thread that finished
 * first so does some of the other's work. Every input's change is computed the same way whoever
 * applies it, so the weights are the same.
 */
function applyShared(l: i32, tid: i32, sc: usize, na: i32): void {
  const own = word(claimWord(0, tid)), units = (na + UPDATE_UNIT - 1) / UPDATE_UNIT;
  for (let u = takeUnit(own, units, false); u >= 0; u = takeUnit(own, units, false)) {
    updateApply(l, tid, 2, sc, tid, u * UPDATE_UNIT, min(na, (u + 1) * UPDATE_UNIT), sc);
  }
  const q = 1 - tid;
  const oq = scratch(q);
  waitWhile(readyWord(oq), 0);
  const nq = preparedInputs(oq);
  const other = word(claimWord(0, q)), uq = (nq + UPDATE_UNIT - 1) / UPDATE_UNIT;
  for (let u = takeUnit(other, uq, true); u >= 0; u = takeUnit(other, uq, true)) {
    updateApply(l, q, 2, oq, q, u * UPDATE_UNIT, min(nq, (u + 1) * UPDATE_UNIT), sc);
  }
}

/** The step described by the argument words (CFG_ARG_*), as thread tid of threads(). */
export function runStep(tid: i32): i32 {
  // Every thread reads the same words, so all of them refuse a bad label (no one is left waiting).
  // They meet at a barrier before they return, as every step does: so thread 0 returns to the host
  // only after every worker has read these arguments. Without it, the host could write the next
  // step's arguments before a slow worker read these; that worker then ran the next step twice
  // and was left waiting at a barrier (tests/threads_test.ts hung in about half of its runs).
  const train = cfg(CFG_ARG_MODE) != 0, label = cfg(CFG_ARG_LABEL);
  const refused = train && (label < 0 || label >= size(cfg(CFG_L))) ? -3 : train && inferOnly() ? -4 : 0;
  if (refused != 0) {
    barrier(threads());
    return refused;
  }
  return sampleStep(
    tid, threads(), cfg(CFG_ARG_MODE) != 0, cfg(CFG_ARG_LABEL), <u32>cfg(CFG_ARG_EPOCH),
    <u32>cfg(CFG_ARG_INDEX),
  );
}

/**
 * A worker thread's loop: waits for the host to bump the generation word, runs its part of
 * the step, until the stop word is set. Returns 0, or −1 in the portable build.
 */
export function workerMain(tid: i32): i32 {
  if (!ASC_FEATURE_THREADS) return -1;
  let seen = atomic.load<i32>(word(CFG_GO));
  atomic.add<i32>(word(CFG_READY), 1);
  while (true) {
    waitWhile(word(CFG_GO), seen);
    seen = atomic.load<i32>(word(CFG_GO));
    if (atomic.load<i32>(word(CFG_STOP)) != 0) break;
    runStep(tid);
  }
  atomic.sub<i32>(word(CFG_READY), 1);
  return 0;
}
