// A worker thread of ThreadPool (src/threads.ts): instantiates the threaded build over the
// shared memory and runs workerLoop(tid) until the pool stops it.
/// <reference lib="deno.worker" />

self.onmessage = async (e: MessageEvent) => {
  const { module, memory, tid } = e.data as {
    module: WebAssembly.Module;
    memory: WebAssembly.Memory;
    tid: number;
  };
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort(_m: number, _f: number, line: number, col: number): never {
        throw new Error(`desire-mt.wasm aborted at ${line}:${col} (worker ${tid})`);
      },
    },
  });
  const ex = instance.exports as { workerLoop(tid: number): number };
  self.postMessage({ started: true, tid });
  const rc = ex.workerLoop(tid);
  self.postMessage({ done: true, tid, rc });
};
