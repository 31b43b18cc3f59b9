// The bound micro-kernels of bench/bounds.ts compute what they claim (each against a plain loop
// written here), and runBounds returns the documented shape. Small sizes, no timing assertions.
import assert from "node:assert/strict";
import { laneStart as moduleLaneStart } from "../src/wasm.ts";
import {
  type BoundsKernels,
  boundsLayout,
  boundsMemory,
  type BoundsResult,
  compileBoundsKernels,
  formatBounds,
  instantiateBoundsKernels,
  runBounds,
  verifyPanels,
} from "../bench/bounds.ts";
import {
  itemStart,
  laneStart,
  panelImage,
  panelLanes,
  panelPhaseRunner,
} from "../bench/bounds_kernels.ts";

const WMAX = 1 << 28;

async function kernels(bytes: number): Promise<{ k: BoundsKernels; mem: Int32Array }> {
  const { module } = await compileBoundsKernels();
  const memory = boundsMemory(bytes);
  const k = await instantiateBoundsKernels(module, memory);
  return { k, mem: new Int32Array(memory.buffer) };
}

/** A deterministic pseudo-random i32 in [lo, hi). */
function lcg(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo));
  };
}

Deno.test("listSum adds the 128-byte chunks of the listed rows, 8 accumulators", async () => {
  const { k, mem } = await kernels(1 << 20);
  const rnd = lcg(7);
  // 5 rows of 96 lanes (3 chunks) at 64 KiB; T = 6; lists with repeats and an empty step.
  const base = 65536, lanes = 96, rowBytes = 4 * lanes, T = 6, chunks = 3;
  for (let i = 0; i < 5 * lanes; i++) mem[(base >> 2) + i] = rnd(-(1 << 30), 1 << 30);
  const steps = [[0, 3], [1, 1, 4], [], [2], [0, 1, 2, 3, 4], [4]];
  const beg = [0], ent: number[] = [];
  for (const s of steps) {
    ent.push(...s.map((r) => r * rowBytes));
    beg.push(ent.length);
  }
  const pb = 200000, pe = 201000, out = 202048, res = 204096;
  new Uint32Array(mem.buffer).set(beg, pb >> 2);
  new Uint32Array(mem.buffer).set(ent, pe >> 2);
  k.listSum(base, pb, pe, T, chunks, out, res, 2);
  for (let c = 0; c < chunks; c++) {
    const acc = new Array(32).fill(0);
    steps.forEach((rows, t) => {
      for (const r of rows) {
        for (let j = 0; j < 32; j++) {
          acc[j] = (acc[j] + mem[(base >> 2) + r * lanes + 32 * c + j]) | 0;
        }
      }
      if (c === chunks - 1) {
        assert.deepEqual([...mem.subarray((out >> 2) + 32 * t, (out >> 2) + 32 * t + 32)], acc);
      }
    });
    assert.deepEqual([...mem.subarray((res >> 2) + 32 * c, (res >> 2) + 32 * c + 32)], acc);
  }
});

Deno.test("updateRows: master += update, clamped, forward copy rounded; only listed groups", async () => {
  const { k, mem } = await kernels(1 << 20);
  const rnd = lcg(11);
  const P = 64, rowBytes = 4 * P, nIn = 6, fsh = 12;
  const master = 65536, fwd = master + nIn * rowBytes, upd = 131072;
  const rowsAt = 140000, groupsAt = 141000;
  for (let i = 0; i < nIn * P; i++) {
    mem[(master >> 2) + i] = rnd(-(1 << 24), 1 << 24);
    mem[(fwd >> 2) + i] = rnd(-1000, 1000);
  }
  for (let j = 0; j < P; j++) mem[(upd >> 2) + j] = rnd(-(1 << 20), 1 << 20);
  // Lanes that must clamp: row 1, group 2 near +WMAX and −WMAX.
  mem[(master >> 2) + P + 8] = WMAX - 5;
  mem[(upd >> 2) + 8] = 100;
  mem[(master >> 2) + P + 9] = -WMAX + 5;
  mem[(upd >> 2) + 9] = -100;
  const rows = [1, 4, 5], groups = [0, 2, 3, 9, 15];
  new Uint32Array(mem.buffer).set(rows.map((r) => r * rowBytes), rowsAt >> 2);
  new Uint32Array(mem.buffer).set(groups.map((g) => 16 * g), groupsAt >> 2);
  const before = mem.slice(master >> 2, (fwd >> 2) + nIn * P);
  const expectM = before.slice(0, nIn * P), expectF = before.slice(nIn * P);
  let clamps = 0;
  for (const r of rows) {
    for (const g of groups) {
      for (let j = 4 * g; j < 4 * g + 4; j++) {
        const w = (expectM[r * P + j] + mem[(upd >> 2) + j]) | 0;
        const c = Math.min(WMAX, Math.max(-WMAX, w));
        if (c !== w) clamps++;
        expectM[r * P + j] = c;
        expectF[r * P + j] = (c + (1 << (fsh - 1))) >> fsh;
      }
    }
  }
  assert.equal(clamps, 2);
  const sat = k.updateRowsNoFwd(
    master,
    fwd,
    rowsAt,
    rows.length,
    groupsAt,
    groups.length,
    upd,
    fsh,
  );
  assert.equal(sat, 2);
  assert.deepEqual([...mem.subarray(master >> 2, (master >> 2) + nIn * P)], [...expectM]);
  assert.deepEqual([...mem.subarray(fwd >> 2, (fwd >> 2) + nIn * P)], [...before.slice(nIn * P)]);
  // Again from the same start, with the forward copy.
  mem.set(before, master >> 2);
  assert.equal(
    k.updateRows(master, fwd, rowsAt, rows.length, groupsAt, groups.length, upd, fsh),
    2,
  );
  assert.deepEqual([...mem.subarray(master >> 2, (master >> 2) + nIn * P)], [...expectM]);
  assert.deepEqual([...mem.subarray(fwd >> 2, (fwd >> 2) + nIn * P)], [...expectF]);
});

Deno.test("gatherRows sums row · factors over the listed groups, one sum per row", async () => {
  const { k, mem } = await kernels(1 << 20);
  const rnd = lcg(3);
  const P = 48, rowBytes = 4 * P, mat = 65536, kvec = 100000, rowsAt = 101000, groupsAt = 102000;
  const out = 103000;
  for (let i = 0; i < 7 * P; i++) mem[(mat >> 2) + i] = rnd(-(1 << 16), 1 << 16);
  for (let j = 0; j < P; j++) mem[(kvec >> 2) + j] = rnd(-20, 21);
  const rows = [0, 2, 6], groups = [1, 4, 5, 11];
  new Uint32Array(mem.buffer).set(rows.map((r) => r * rowBytes), rowsAt >> 2);
  new Uint32Array(mem.buffer).set(groups.map((g) => 16 * g), groupsAt >> 2);
  k.gatherRows(mat, rowsAt, rows.length, groupsAt, groups.length, kvec, out);
  rows.forEach((r, a) => {
    let want = 0;
    for (const g of groups) {
      for (let j = 4 * g; j < 4 * g + 4; j++) {
        want = (want + mem[(mat >> 2) + r * P + j] * mem[(kvec >> 2) + j]) | 0;
      }
    }
    assert.equal(mem[(out >> 2) + a], want, `row ${r}`);
  });
});

Deno.test("stream adds k to every lane of the range, alu is xorshift32 on 16 lanes", async () => {
  const { k, mem } = await kernels(1 << 20);
  const p = 65536;
  for (let i = 0; i < 64; i++) mem[(p >> 2) + i] = i * 1000 - 7;
  mem[(p >> 2) + 64] = 42; // past the range
  k.stream(p, 256, -3);
  for (let i = 0; i < 64; i++) assert.equal(mem[(p >> 2) + i], i * 1000 - 10);
  assert.equal(mem[(p >> 2) + 64], 42);
  for (const [n, seed] of [[0, 5], [1, 5], [77, -123456], [1000, 2 ** 31 - 10]]) {
    let want = 0;
    for (let lane = 0; lane < 16; lane++) {
      let x = (seed + lane) | 0;
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
      }
      want ^= x;
    }
    assert.equal(k.alu(n, seed), want | 0, `alu(${n}, ${seed})`);
  }
});

Deno.test("itemStart and laneStart split as assembly/layout.ts (halves of 4-lane groups)", () => {
  assert.deepEqual([0, 1, 2].map((t) => laneStart(1600, t, 2)), [0, 800, 1600]);
  assert.deepEqual([0, 1, 2].map((t) => laneStart(36, t, 2)), [0, 16, 36]);
  assert.deepEqual([0, 1, 2].map((t) => itemStart(25, t, 2)), [0, 12, 25]);
  assert.deepEqual([0, 1, 2].map((t) => itemStart(1, t, 2)), [0, 0, 1]);
  assert.deepEqual([0, 1].map((t) => laneStart(800, t, 1)), [0, 800]);
  // The workers' copy of laneStart is the module's (src/wasm.ts, which reads the panels).
  for (let P = 4; P <= 1604; P += 4) {
    for (let parts = 1; parts <= 4; parts++) {
      for (let part = 0; part <= parts; part++) {
        assert.equal(
          laneStart(P, part, parts),
          moduleLaneStart(P, part, parts),
          `${P} ${part}/${parts}`,
        );
      }
    }
  }
});

Deno.test("panelLanes splits a layer at the forward's 32-lane chunks", () => {
  assert.deepEqual([0, 1, 2].map((t) => panelLanes(1600, t, 2)), [0, 800, 1600]);
  assert.deepEqual([0, 1, 2].map((t) => panelLanes(800, t, 2)), [0, 384, 800]); // 25 chunks
  assert.deepEqual([0, 1, 2].map((t) => panelLanes(96, t, 2)), [0, 32, 96]);
  assert.deepEqual([0, 1, 2].map((t) => panelLanes(32, t, 2)), [0, 0, 32]);
  assert.deepEqual([0, 1].map((t) => panelLanes(64, t, 1)), [0, 64]);
});

Deno.test("the panels hold slot 0's lanes and their parts compute the whole phases", async () => {
  const options = {
    T: 6,
    layers: [
      {
        nIn: 24,
        P: 64,
        fwdRows: 9,
        fwdEntries: 20,
        updRows: 7,
        updGroupFraction: 0.5,
        rowPool: 16,
      },
      {
        nIn: 64,
        P: 96,
        fwdRows: 14,
        fwdEntries: 30,
        updRows: 10,
        updGroupFraction: 0.4,
        rowPool: 40,
      },
    ] as const,
    pool: 3,
    backward: { rows: 11, groupFraction: 0.6 },
  };
  assert.deepEqual(boundsLayout(options, 1).plan.panels, []);
  const { plan, fill } = boundsLayout(options, 2);
  const { k, mem } = await kernels(plan.bytes);
  fill(mem.buffer);
  const u = new Uint32Array(mem.buffer);
  const sp = plan.slots[0];
  assert.equal(plan.panels.length, 2);
  // Layer 2 has 3 chunks: panels of 32 and 64 lanes; rows and groups rewritten for each panel.
  assert.deepEqual(plan.panels.map((p) => [p.layers[1].lane0, p.layers[1].lanes]), [[0, 32], [
    32,
    64,
  ]]);
  for (const [p, pp] of plan.panels.entries()) {
    for (const l of [0, 1] as const) {
      const L = plan.layers[l], Q = pp.layers[l];
      assert.equal(Q.rowBytes, 4 * Q.lanes);
      assert.equal(Q.lane0, panelLanes(L.P, p, 2));
      const at = (a: number) => u[a >> 2];
      const s = L.upd[1], q = Q.upd[1];
      assert.equal(q.nRows, s.nRows);
      for (let a = 0; a < s.nRows; a++) {
        assert.equal(at(q.rows + 4 * a), (at(s.rows + 4 * a) / L.rowBytes) * Q.rowBytes);
      }
      const full = [...u.subarray(s.groups >> 2, (s.groups >> 2) + s.nGroups)];
      const own = full.filter((g) => g >= 4 * Q.lane0 && g < 4 * (Q.lane0 + Q.lanes));
      assert.deepEqual(
        [...u.subarray(q.groups >> 2, (q.groups >> 2) + q.nGroups)],
        own.map((g) => g - 4 * Q.lane0),
      );
      assert.equal(Q.lists[0].entries, L.lists[0].entries);
      assert.equal(at(Q.lists[0].ent), (at(L.lists[0].ent) / L.rowBytes) * Q.rowBytes);
      // Panel row r holds lanes [lane0, lane0 + lanes) of slot 0's row r.
      const r = L.nIn - 1, from = (sp.fwd[l] + r * L.rowBytes + 4 * Q.lane0) >> 2;
      assert.deepEqual(
        mem.slice((Q.fwd + r * Q.rowBytes) >> 2, (Q.fwd + (r + 1) * Q.rowBytes) >> 2),
        mem.slice(from, from + Q.lanes),
      );
    }
  }
  for (const l of [0, 1] as const) {
    assert.deepEqual(
      panelImage(mem.buffer, plan, l),
      mem.slice(sp.master[l] >> 2, (sp.master[l] + sp.pairBytes[l]) >> 2),
    );
  }
  verifyPanels(k, mem.buffer, plan); // throws on any difference
  assert.throws(() => panelPhaseRunner(k, plan, mem.buffer, 0, 3, 0), RangeError);
  assert.throws(() => panelPhaseRunner(k, plan, mem.buffer, 2, 2, 0), RangeError);
  // A panel that drops a group of its update no longer matches the whole phase.
  const bad = structuredClone(plan);
  bad.panels[1].layers[0].upd[0].nGroups--;
  assert.throws(() => verifyPanels(k, mem.buffer, bad), /u1 in 2 panels \(set 0\), matrices/);
});

const SMALL_LAYERS = [
  { nIn: 40, P: 64, fwdRows: 12, fwdEntries: 30, updRows: 10, updGroupFraction: 0.4, rowPool: 20 },
  { nIn: 64, P: 32, fwdRows: 20, fwdEntries: 50, updRows: 15, updGroupFraction: 0.25, rowPool: 64 },
] as const;

Deno.test("runBounds (small sizes, 2 workers) returns the documented result", async () => {
  const result: BoundsResult = await runBounds({
    T: 8,
    layers: SMALL_LAYERS,
    hotRows: 3,
    hotLanes: 64,
    repeats: 2,
    ms: 5,
    calls: 2,
    scaleMs: 10,
    pool: 3,
    columnSum: false,
    backward: { rows: 12, groupFraction: 0.5 },
  });
  const json = JSON.parse(JSON.stringify(result)) as BoundsResult;
  assert.deepEqual(json, result, "plain data");
  assert.equal(result.settings.verified, true);
  assert.equal(result.settings.T, 8);
  assert.equal(result.settings.calls, 2);
  assert.deepEqual(result.settings.backward, { rows: 12, groupFraction: 0.5 });
  assert.ok(result.settings.memoryBytes > 0);
  const states = ["cold", "warm", "order", "inferOrder"];
  assert.deepEqual(result.forward.map((f) => f.id), [
    "l1",
    ...states.map((s) => `f1-${s}`),
    ...states.map((s) => `f2-${s}`),
  ]);
  assert.deepEqual(result.forward.map((f) => f.chunks), [2, 2, 2, 2, 2, 1, 1, 1, 1]);
  assert.deepEqual(result.forward.map((f) => f.entriesPerChunk), [
    30,
    30,
    30,
    30,
    30,
    50,
    50,
    50,
    50,
  ]);
  assert.equal(result.columnSum, null);
  assert.deepEqual(result.rows.map((u) => u.id), [
    "u1-cold",
    "u1n-cold",
    "u1-warm",
    "u1-order",
    "u2-cold",
    "u2n-cold",
    "u2-warm",
    "u2-order",
    "b2-cold",
    "b2-warm",
    "b2-order",
  ]);
  assert.deepEqual(result.rows.map((u) => u.groups), [6, 6, 6, 6, 2, 2, 2, 2, 4, 4, 4]);
  assert.deepEqual(result.rows.map((u) => u.rows), [10, 10, 10, 10, 15, 15, 15, 15, 12, 12, 12]);
  assert.deepEqual(result.rows.map((u) => u.matrices), [2, 1, 2, 2, 2, 1, 2, 2, 1, 1, 1]);
  assert.deepEqual(result.scaling.map((s) => s.id), [
    "alu",
    "listL1",
    "update",
    "inferSkeleton",
    "skeleton",
    "sharedSkeleton",
    "panelSkeleton",
    "stream",
  ]);
  assert.deepEqual(
    result.scaling.map((s) => s.network),
    ["copies", "copies", "copies", "copies", "copies", "shared", "panels", "copies"],
  );
  for (const f of result.forward) {
    assert.equal(f.runs.length, 2);
    assert.ok(f.microsPerCall > 0 && f.laneAddsPerSecond > 0 && f.nsPerChunkEntry > 0);
  }
  for (const u of result.rows) {
    assert.equal(u.runs.length, 2);
    assert.ok(u.microsPerCall > 0 && u.groupBytesPerSecond > 0 && u.lineBytesPerSecond > 0);
    assert.ok(u.lineFraction >= u.groupFraction && u.lineFraction <= 1);
  }
  for (const s of result.scaling) {
    assert.equal(s.runs1.length, 2);
    assert.equal(s.runs2.length, 2);
    assert.equal(s.pairedSpeedups.length, 2);
    assert.ok(s.perSecond1 > 0 && s.perSecond2 > 0 && s.speedup > 0);
  }
  const fl = result.floors;
  for (const x of [fl.warm, fl.order, fl.cold, fl.warmBest, fl.orderBest]) {
    const all = x.forward[0] + x.forward[1] + x.backward + x.update[0] + x.update[1];
    assert.ok(Math.abs(x.train - all) < 1e-9 * all);
    assert.ok(x.infer > 0);
  }
  assert.equal(fl.warm.infer, fl.warm.forward[0] + fl.warm.forward[1]);
  assert.ok(fl.l1Forward[0] > 0 && fl.l1Forward[1] > 0);
  assert.ok(fl.l1ForwardBest[0] <= fl.l1Forward[0] && fl.warmBest.train <= fl.warm.train);
  assert.ok(fl.skeletonMicros !== null && fl.skeletonSpeedup !== null);
  assert.ok(fl.inferSkeletonMicros !== null && fl.inferSkeletonSpeedup !== null);
  assert.ok(fl.sharedSkeletonMicros !== null && fl.sharedSkeletonSpeedup !== null);
  assert.ok(fl.panelSkeletonMicros !== null && fl.panelSkeletonSpeedup !== null);
  // The current layout (panels) is the bound; the former (full-width rows shared) its own field.
  assert.equal(fl.trainTwoThreadSpeedup, Math.min(fl.skeletonSpeedup, fl.panelSkeletonSpeedup));
  assert.equal(
    fl.trainTwoThreadFrom,
    fl.panelSkeletonSpeedup < fl.skeletonSpeedup ? "panels" : "copies",
  );
  assert.equal(fl.trainTwoThreadPanelSpeedup, fl.trainTwoThreadSpeedup);
  assert.equal(fl.trainTwoThreadPanelFrom, fl.trainTwoThreadFrom);
  assert.equal(
    fl.trainTwoThreadFormerSpeedup,
    Math.min(fl.skeletonSpeedup, fl.sharedSkeletonSpeedup),
  );
  assert.equal(
    fl.trainTwoThreadFormerFrom,
    fl.sharedSkeletonSpeedup < fl.skeletonSpeedup ? "shared" : "copies",
  );
  const text = formatBounds(result, {
    measured: { train1: 1000, train2: 1300, infer1: 2000 },
    kernelMicros: { f1: 200, u1: 250 },
  });
  assert.ok(text.some((l) => l.startsWith("the kernels of the bench")));
  assert.ok(text.some((l) => l.trimStart().startsWith("update, layer 1  ")));
  for (const start of ["forward bound", "update and backward bound", "two threads", "what the"]) {
    assert.ok(text.some((l) => l.startsWith(start)), start);
  }
  assert.ok(text.some((l) => l.includes("training, 2 threads ≥ 2,700/s")));
  const labelled = (start: string) => text.some((l) => l.trimStart().startsWith(start));
  assert.ok(labelled("the same on ONE shared network, rows shared (the former layout"));
  assert.ok(labelled("the same on ONE network in panels (the current layout"));
  const from = fl.trainTwoThreadFrom === "panels" ? "the panels'" : "the independent copies'";
  for (const start of ["training, 2 threads ≥", "training, 2 / 1 threads ≥"]) {
    const line = text.find((l) => l.trimStart().startsWith(start)) ?? "";
    assert.ok(line.includes("in panels") && line.includes("one shared network"), start);
    // The verdict is the current layout's; the former layout's figure only as context.
    assert.ok(
      /→ (allowed|RULED OUT in this order) for the panels model of the step/.test(line),
      start,
    );
    assert.ok(line.includes("(the former full-width layout: "), start);
    assert.ok(!/panel layout would|with panels too/.test(line), start);
    if (start.includes("/")) assert.ok(line.includes("the bound is the lower"), start);
    else assert.ok(line.includes(`in panels: ${from}`), start);
  }
  assert.ok(text.some((l) => l.includes("measured 1,000/s")));

  // Work thread 0 runs alone (the output layer) gains nothing from a second thread: with it, both
  // two-thread bounds are lower, and the ratio's cap is the Amdahl figure of the printed shares.
  const serialText = formatBounds(result, {
    measured: { train1: 1000, train2: 1300, infer1: 2000 },
    serialMicros: 100,
    trainSampleMicros: 1000,
  });
  const lineOf = (lines: string[], start: string) =>
    lines.find((l) => l.trimStart().startsWith(start)) ?? "";
  const figure = (line: string, re: RegExp) =>
    Number((re.exec(line)?.[1] ?? "NaN").replace(/,/g, ""));
  const abs = [text, serialText].map((t) => lineOf(t, "training, 2 threads ≥"));
  assert.ok(abs[1].includes(", plus 100 µs thread 0 runs alone → bound ≤ "), abs[1]);
  const absBound = abs.map((l) => figure(l, /bound ≤ ([\d,]+)\/s/));
  assert.ok(absBound[1] < absBound[0], `${absBound}`);
  const ratio = [text, serialText].map((t) => lineOf(t, "training, 2 / 1 threads ≥"));
  assert.ok(ratio[1].includes("thread 0 alone runs 10.0 % of trainSample()"), ratio[1]);
  const caps = ratio.map((l) => figure(l, /2 \/ 1 ≤ ([\d.]+) ×/));
  assert.ok(caps[1] < caps[0], `${caps}`);
  const x = figure(ratio[1], /the bound is the lower, [^,]*, ([\d.]+) ×/);
  const u = figure(ratio[1], /these phases are (\d+) %/) / 100;
  // The printed shares are rounded: the cap must lie within what their ranges allow.
  const capOf = (uu: number, xx: number) => 1 / (0.1 + (0.9 - uu) / 2 + uu / xx);
  const corners = [-1, 1].flatMap((du) =>
    [-1, 1].map((dx) => capOf(Math.max(0, u + du * 0.005), x + dx * 0.005))
  );
  assert.ok(
    caps[1] >= Math.min(...corners) - 0.01 && caps[1] <= Math.max(...corners) + 0.01,
    `cap ${caps[1]}, expected ${Math.min(...corners)}–${Math.max(...corners)}: ${ratio[1]}`,
  );
});

Deno.test("runBounds without threads has no scaling rows and rejects bad shapes", async () => {
  const small = {
    T: 4,
    layers: [
      { nIn: 16, P: 32, fwdRows: 4, fwdEntries: 8, updRows: 3, updGroupFraction: 0.5, rowPool: 8 },
      { nIn: 32, P: 32, fwdRows: 5, fwdEntries: 9, updRows: 5, updGroupFraction: 1, rowPool: 5 },
    ] as const,
    hotRows: 2,
    hotLanes: 32,
    repeats: 1,
    ms: 2,
    calls: 1,
    pool: 2,
    columnSum: false,
    threads: false,
    backward: { rows: 5, groupFraction: 0.25 },
  };
  const r = await runBounds(small);
  assert.deepEqual(r.scaling, []);
  assert.equal(r.floors.skeletonMicros, null);
  assert.equal(r.floors.inferSkeletonMicros, null);
  assert.equal(r.floors.sharedSkeletonSpeedup, null);
  assert.equal(r.floors.trainTwoThreadSpeedup, null);
  assert.equal(r.floors.trainTwoThreadFrom, null);
  assert.equal(r.floors.trainTwoThreadFormerSpeedup, null);
  assert.equal(r.floors.trainTwoThreadFormerFrom, null);
  assert.equal(r.floors.panelSkeletonSpeedup, null);
  assert.equal(r.floors.trainTwoThreadPanelSpeedup, null);
  assert.equal(r.floors.trainTwoThreadPanelFrom, null);
  assert.ok(formatBounds(r).every((l) => !l.startsWith("two threads")));
  await assert.rejects(() => runBounds({ ...small, backward: { rows: 6, groupFraction: 1 } }));
  for (const bad of [{ P: 40 }, { updRows: 5 }, { rowPool: 3 }, { rowPool: 17 }]) {
    await assert.rejects(
      () => runBounds({ ...small, layers: [{ ...small.layers[0], ...bad }, small.layers[1]] }),
      RangeError,
      JSON.stringify(bad),
    );
  }
});
