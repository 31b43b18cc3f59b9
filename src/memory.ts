/**
 * The process's peak memory, for training logs and benchmarks.
 *
 * @module
 */

/**
 * The kernel's high-water mark of this process's resident set (Linux `VmHWM`), in bytes: the
 * peak over the process's life, worker threads included. Undefined where /proc is not there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { peakRssBytes } from "./memory.ts";
 *
 * const peak = peakRssBytes();
 * if (peak !== undefined) assert.ok(peak >= 1024 * 1024); // a Deno process has more than 1 MiB
 * ```
 */
export function peakRssBytes(): number | undefined {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+)\s+kB/);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
