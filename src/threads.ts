/**
 * Multi-threaded steps: Web Workers running the threaded build `desire-mt.wasm` over one shared
 * WebAssembly memory (internal).
 *
 * The host's thread is thread 0; workers 1..n−1 wait inside the module (`workerLoop`) for the
 * generation word CFG_GO to change, then run their share of the step; barriers inside the module
 * separate the phases. Every thread count computes the same integers, so weights are
 * bit-identical to one thread (tests/threads_test.ts).
 *
 * @module
 */
import { CFG, configure, type DesireExports } from "./wasm.ts";
import type { IntParams } from "./params.ts";
import { SpinTuner } from "./spin_tuner.ts";
import { withMemoryLimits } from "./wasm_limits.ts";

/** URL of the threaded build (shared, imported memory). */
export const WASM_MT_URL: URL = new URL("../desire-mt.wasm", import.meta.url);

let mtBytes: Promise<Uint8Array<ArrayBuffer>> | undefined;
let mtModule: Promise<WebAssembly.Module> | undefined;
/** The threaded build compiled for a memory of exactly so many pages, by page count. */
const fixedModules = new Map<number, Promise<WebAssembly.Module>>();
/** Compilations fixedModules keeps (the oldest goes first). */
const FIXED_MODULES_KEPT = 8;

function threadedBytes(): Promise<Uint8Array<ArrayBuffer>> {
  mtBytes ??= Deno.readFile(WASM_MT_URL);
  return mtBytes;
}

/** The threaded build as it is (a growable memory of 1 to 65536 pages). */
function threadedModule(): Promise<WebAssembly.Module> {
  mtModule ??= threadedBytes().then((b) => WebAssembly.compile(b));
  return mtModule;
}

/**
 * The threaded build with its memory's limits set to `pages`..`pages` (src/wasm_limits.ts: V8
 * checks the accesses to a memory of fixed size at less cost: 5–9 % on one thread here).
 */
function fixedModule(pages: number): Promise<WebAssembly.Module> {
  let m = fixedModules.get(pages);
  if (!m) {
    m = threadedBytes().then((b) => WebAssembly.compile(withMemoryLimits(b, pages, pages)));
    // A process that builds networks of many sizes keeps only the last few compilations.
    if (fixedModules.size >= FIXED_MODULES_KEPT) {
      fixedModules.delete(fixedModules.keys().next().value!);
    }
    fixedModules.set(pages, m);
  }
  return m;
}

function abort(_m: number, _f: number, line: number, col: number): never {
  throw new Error(`desire-mt.wasm aborted at ${line}:${col}`);
}

/** An instance of the threaded build over `memory`, exposed as its `memory` export. */
async function threadedInstance(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): Promise<DesireExports> {
  const instance = await WebAssembly.instantiate(module, { env: { memory, abort } });
  const ex = instance.exports as unknown as DesireExports;
  // The imported memory is not among the exports: expose it like the portable build does.
  Object.defineProperty(ex, "memory", { value: memory });
  return ex;
}

/** A configured threaded instance and its workers. */
export class ThreadPool {
  /** Exports of thread 0's instance. */
  readonly exports: DesireExports;
  /** Threads, the host's included. */
  readonly threads: number;
  #workers: Worker[];
  #done: Promise<unknown>[];
  #words: Int32Array;
  #closed = false;
  /** Poll counts before sleeping, chosen online: evaluation steps [0], training steps [1]. */
  #tuners: [SpinTuner, SpinTuner] | undefined;
  #lastMode = -1;
  /** What the tuners last wrote to the SPINS word (another value there: someone else set it). */
  #spins = 0;

  private constructor(
    ex: DesireExports,
    threads: number,
    workers: Worker[],
    done: Promise<unknown>[],
  ) {
    this.exports = ex;
    this.threads = threads;
    this.#workers = workers;
    this.#done = done;
    this.#words = new Int32Array(ex.memory.buffer, ex.configPtr(), 128);
    this.#spins = this.#words[CFG.SPINS];
    // Evaluation runs are short (a test set is 10,000 steps): their tuner explores in 3 blocks of
    // each candidate, every 48 blocks; training's in 5 (a steadier choice), every 80.
    if (threads > 1) this.#tuners = [new SpinTuner({ rounds: 3, exploit: 48 }), new SpinTuner()];
  }

  /** Instantiates the threaded build, configures `p` for `threads` threads, starts the workers. */
  static async start(
    p: IntParams,
    seed: number,
    threads: number,
    inferenceOnly = false,
  ): Promise<ThreadPool> {
    // The pages this network needs: init() lays it out in a throwaway instance over a growable
    // memory (which only reserves the pages it grows by), and reports its errors. Then the same
    // module, compiled for a memory of exactly that size, runs the network over one.
    const probe = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
    configure(
      await threadedInstance(await threadedModule(), probe),
      p,
      seed,
      threads,
      inferenceOnly,
    );
    const pages = probe.buffer.byteLength / 65536;
    const module = await fixedModule(pages);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const ex = await threadedInstance(module, memory);
    configure(ex, p, seed, threads, inferenceOnly);
    const workers: Worker[] = [];
    const done: Promise<unknown>[] = [];
    const started: Promise<unknown>[] = [];
    for (let tid = 1; tid < threads; tid++) {
      const w = new Worker(new URL("./thread_worker.ts", import.meta.url), { type: "module" });
      let onStart!: (v: unknown) => void,
        onDone!: (v: unknown) => void,
        onError!: (e: unknown) => void;
      started.push(
        new Promise((res, rej) => {
          onStart = res;
          onError = rej;
        }),
      );
      done.push(new Promise((res) => (onDone = res)));
      w.onmessage = (e: MessageEvent) => (e.data.started ? onStart(e.data) : onDone(e.data));
      w.onerror = (e) => {
        e.preventDefault();
        onError(new Error(`desire worker ${tid} failed: ${e.message}`));
      };
      w.postMessage({ module, memory, tid });
      workers.push(w);
    }
    await Promise.all(started);
    const words = new Int32Array(memory.buffer, ex.configPtr(), 128);
    // Wait until every worker is inside workerLoop (it counts itself in CFG_READY).
    while (Atomics.load(words, CFG.READY) < threads - 1) Atomics.wait(words, CFG.READY, 0, 1);
    return new ThreadPool(ex, threads, workers, done);
  }

  /** Runs one step on all threads: mode 1 trains on `label`, mode 0 evaluates. */
  step(mode: 0 | 1, label: number, epoch: number, index: number): number {
    const w = this.#words;
    if (this.#tuners) {
      // The poll count of this step (spin_tuner.ts), unless something else wrote the word.
      if (w[CFG.SPINS] !== this.#spins) this.#tuners = undefined;
      else {
        const tuner = this.#tuners[mode];
        if (mode !== this.#lastMode) tuner.interrupt();
        this.#lastMode = mode;
        w[CFG.SPINS] = this.#spins = tuner.next();
      }
    }
    w[CFG.ARG_MODE] = mode;
    w[CFG.ARG_LABEL] = label;
    w[CFG.ARG_EPOCH] = epoch | 0;
    w[CFG.ARG_INDEX] = index | 0;
    Atomics.add(w, CFG.GO, 1); // a release: the workers see the arguments and the image
    // Only a sleeping worker needs the notify (it counts itself in SLEEPERS before it sleeps).
    if (Atomics.load(w, CFG.SLEEPERS) !== 0) Atomics.notify(w, CFG.GO);
    return this.exports.runSample();
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#words;
    Atomics.store(w, CFG.STOP, 1);
    Atomics.add(w, CFG.GO, 1);
    Atomics.notify(w, CFG.GO);
    await Promise.all(this.#done);
    for (const wk of this.#workers) wk.terminate();
  }
}
