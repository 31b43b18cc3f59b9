// The command line end to end: every bad input gets a clear message naming the flag or file,
// a non-zero exit code, and nothing overwritten; a short run writes what the README promises.
import assert from "node:assert/strict";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli train rejects bad flags with the flag, the value and the allowed range", async (t) => {
  const cases: [string[], string][] = [
    [["--epochs", "-1"], "Invalid --epochs: -1 (must be an integer ≥ 1)"],
    [["--epochs=-1"], "Invalid --epochs: -1 (must be an integer ≥ 1)"],
    [["--epochs", "1.5"], "Invalid --epochs: 1.5 (must be an integer ≥ 1)"],
    [["--lr", "nan", "1e-5"], "Invalid --lr: nan"],
    [
      ["--tsteps", "0"],
      "Invalid --tsteps: 0 (must be an integer in 1..32: a spike word holds 32 steps)",
    ],
    [
      ["--tsteps", "33"],
      "Invalid --tsteps: 33 (must be an integer in 1..32: a spike word holds 32 steps)",
    ],
    [["--tsteps", "4"], "Invalid --error-margin: 4"],
    [["--tsteps", "10", "--error-margin", "12"], "Invalid --error-margin: 12"],
    [["--mempot-decay", "31"], "Invalid --mempot-decay: 31 (must be an integer in 0..30)"],
    [["--dropout", "0", "1"], "Invalid --dropout: 1 (each probability must be in [0, 1))"],
    [["--dropout", "1"], "Invalid --dropout: 1 (expected 2 values, got 1"],
    [["--hidden", "100000,100000"], "Invalid --hidden: 100000,100000 needs about"],
    [["--frobnicate"], "Unknown flag --frobnicate (see --help)"],
  ];
  for (const [args, msg] of cases) {
    await t.step(args.join(" "), async () => {
      const r = await cli("train", ...args);
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.includes(msg), `stderr was: ${r.stderr}`);
      assert.ok(r.stderr.startsWith("error: "), `no clean error line: ${r.stderr}`);
      assert.ok(!r.stderr.includes("    at "), `stack trace printed: ${r.stderr}`);
    });
  }
});

Deno.test("cli train refuses an --out directory that holds a run and changes nothing in it", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/log.jsonl`, '{"epoch":1}\n');
  await Deno.writeTextFile(`${dir}/model-best.safetensors`, "precious");
  const r = await cli("train", "--hidden", "20", "--epochs", "1", "--limit", "10", "--out", dir);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(`Refusing to use --out ${dir}: it already holds a run`), r.stderr);
  assert.equal(await Deno.readTextFile(`${dir}/log.jsonl`), '{"epoch":1}\n');
  assert.equal(await Deno.readTextFile(`${dir}/model-best.safetensors`), "precious");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli names every place it looked for a missing dataset", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/run`;
  const r = await cli("train", "--hidden", "20", "--epochs", "1", "--data-dir", dir, "--out", out);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes("Cannot find dataset mnist"), r.stderr);
  assert.ok(r.stderr.includes(dir), r.stderr);
  assert.ok(r.stderr.includes("--data-dir"), r.stderr);
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli rejects a corrupt dataset file by name", async () => {
  const dir = await Deno.makeTempDir();
  const src = new URL("../../shared/datasets/mnist/", import.meta.url).pathname;
  for (
    const f of [
      "train-images-idx3-ubyte.gz",
      "t10k-images-idx3-ubyte.gz",
      "t10k-labels-idx1-ubyte.gz",
    ]
  ) {
    await Deno.copyFile(src + f, `${dir}/${f}`);
  }
  await Deno.writeFile(
    `${dir}/train-labels-idx1-ubyte.gz`,
    new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]),
  );
  const r = await cli(
    "train",
    "--hidden",
    "20",
    "--epochs",
    "1",
    "--data-dir",
    dir,
    "--out",
    `${dir}/run`,
  );
  assert.notEqual(r.code, 0);
  assert.ok(
    r.stderr.includes(`${dir}/train-labels-idx1-ubyte.gz is not a valid gzip stream`),
    r.stderr,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli eval rejects a missing or corrupt model by name", async () => {
  const dir = await Deno.makeTempDir();
  let r = await cli("eval", "--model-path", `${dir}/none.safetensors`);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(`Cannot load model ${dir}/none.safetensors: no such file`), r.stderr);
  await Deno.writeFile(`${dir}/bad.safetensors`, new Uint8Array([255, 255, 255, 0, 0, 0, 0, 0, 1]));
  r = await cli("eval", "--model-path", `${dir}/bad.safetensors`);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(`Cannot load ${dir}/bad.safetensors: header length`), r.stderr);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli --help works for every command", async (t) => {
  for (const args of [["--help"], ["train", "--help"], ["eval", "--help"]]) {
    await t.step(args.join(" "), async () => {
      const r = await cli(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes("Usage") || r.stdout.includes("usage"), r.stdout);
    });
  }
});

Deno.test("cli train writes the log, run.json and models; eval --json reads the model", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/run`;
  const r = await cli("train", "--hidden", "100", "--epochs", "2", "--limit", "2000", "--out", out);
  assert.equal(r.code, 0, r.stderr);
  const lines = (await Deno.readTextFile(`${out}/log.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(lines.length, 2);
  for (const [k, rec] of lines.entries()) {
    assert.equal(rec.epoch, k + 1);
    assert.equal(rec.train_samples, 2000);
    assert.equal(rec.test_samples, 10000);
    for (const key of ["lr", "train_accuracy", "test_accuracy", "samples_per_second", "seconds"]) {
      assert.equal(typeof rec[key], "number", key);
    }
    assert.ok(
      rec.test_accuracy > 0 && rec.test_accuracy <= 1,
      `epoch ${k + 1}: ${rec.test_accuracy}`,
    );
    assert.equal(rec.saturations, 0);
    if (Deno.build.os === "linux") {
      // The training process's peak RSS: more than its wasm memory and data, far below a GiB.
      assert.ok(
        rec.peak_rss_bytes > 32 * 2 ** 20 && rec.peak_rss_bytes < 2 ** 30,
        `peak_rss_bytes ${rec.peak_rss_bytes}`,
      );
    }
  }
  // 2 × 2000 samples of MNIST: a network that learns is far above chance (10 %).
  assert.ok(
    lines[1].test_accuracy > 0.5,
    `test accuracy after 2 epochs: ${lines[1].test_accuracy}`,
  );
  assert.ok(Math.abs(lines[1].lr - 1e-5 * Math.exp(-0.04)) < 1e-18);
  const ev = await cli("eval", "--model-path", `${out}/model-last.safetensors`, "--json");
  assert.equal(ev.code, 0, ev.stderr);
  const res = JSON.parse(ev.stdout);
  assert.equal(res.samples, 10000);
  assert.equal(res.accuracy, lines[1].test_accuracy);
  assert.ok(res.samples_per_second > 0);
  await Deno.remove(dir, { recursive: true });
});
