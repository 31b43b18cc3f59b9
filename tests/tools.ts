/**
 * External tools for the tests and the benchmark: finding programs on PATH, and a real Node.js.
 *
 * @module
 */

/** Every `cmd` on PATH, as absolute paths, in PATH order. */
export function onPath(cmd: string): string[] {
  const found: string[] = [];
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (dir && Deno.statSync(`${dir}/${cmd}`).isFile) found.push(`${dir}/${cmd}`);
    } catch {
      // not in this directory
    }
  }
  return found;
}

/**
 * The first real Node.js on PATH. Deno puts a `node` shim on the PATH of its subprocesses (it
 * runs Deno in Node.js mode), so every candidate must prove that it is not Deno.
 */
export async function findNode(): Promise<string | undefined> {
  for (const path of onPath("node")) {
    const args = ["-p", "typeof Deno + ' ' + process.release.name"];
    try {
      const r = await new Deno.Command(path, { args, stdout: "piped", stderr: "null" }).output();
      if (new TextDecoder().decode(r.stdout).trim() === "undefined node") return path;
    } catch {
      // not runnable
    }
  }
  return undefined;
}
