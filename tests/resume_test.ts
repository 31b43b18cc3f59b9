// Resumable training end to end: a run killed with SIGKILL at random points in the middle of
// its epochs and resumed from its checkpoint ends with the same weights, bit for bit, and the
// same log as a run that was never interrupted; a finished run, a corrupt checkpoint, a model
// file that is not a checkpoint and a conflicting flag are handled with clear messages.
import assert from "node:assert/strict";
import { decodeSafetensors, tensorToI32 } from "../src/safetensors.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const N_TRAIN = 4000;
const EVERY = 250;
const EPOCHS = 2;
const FLAGS = [
  "--dataset",
  "mnist",
  "--hidden",
  "128",
  "--limit",
  String(N_TRAIN),
  "--epochs",
  String(EPOCHS),
  "--checkpoint-every",
  String(EVERY),
  "--random-seed",
  "11",
  // Both epochs at the full rate: a resumed run must keep the decay's start from its checkpoint.
  "--lr-decay-start",
  "1",
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const dec = new TextDecoder();

async function cli(...args: string[]): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The checkpoint's metadata, read from its header only; undefined while it does not exist. */
async function checkpointMeta(path: string): Promise<Record<string, string> | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const head = new Uint8Array(8);
    if ((await file.read(head)) !== 8) return undefined;
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    const json = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = await file.read(json.subarray(got));
      if (r === null) return undefined;
      got += r;
    }
    return JSON.parse(dec.decode(json)).__metadata__;
  } finally {
    file.close();
  }
}

/**
 * Starts `cli.ts train ARGS`, waits until the checkpoint in `out` shows epoch `epoch` at
 * position ≥ `position`, sleeps `delayMs` more and kills the process with SIGKILL. Fails if the
 * process ends by itself first.
 */
async function killMidRun(
  args: string[],
  ckPath: string,
  epoch: number,
  position: number,
  delayMs: number,
): Promise<Result> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "train", ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let exited = false;
  output.finally(() => exited = true);
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.ok(!exited, `the run ended before it reached epoch ${epoch + 1}, sample ${position}`);
    assert.ok(Date.now() < deadline, "the run made no progress in 30 s");
    const meta = await checkpointMeta(ckPath).catch(() => undefined);
    if (
      meta &&
      (Number(meta.epoch) > epoch ||
        (Number(meta.epoch) === epoch && Number(meta.position) >= position))
    ) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, delayMs));
  assert.ok(!exited, "the run ended before the kill");
  child.kill("SIGKILL");
  const out = await output;
  assert.equal(out.signal, "SIGKILL");
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Every I32 tensor of a safetensors file, by name. */
async function tensors(path: string): Promise<Map<string, Int32Array>> {
  const st = decodeSafetensors(await Deno.readFile(path), path);
  return new Map([...st.tensors].map(([name, t]) => [name, tensorToI32(t)]));
}

async function assertSameWeights(a: string, b: string): Promise<void> {
  const ta = await tensors(a), tb = await tensors(b);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  for (const [name, wa] of ta) {
    const wb = tb.get(name)!;
    assert.equal(wa.length, wb.length, name);
    let diff = 0;
    for (let q = 0; q < wa.length; q++) if (wa[q] !== wb[q]) diff++;
    assert.equal(diff, 0, `${b}: ${diff} of ${wa.length} weights of ${name} differ from ${a}`);
  }
}

// deno-lint-ignore no-explicit-any
async function logOf(dir: string): Promise<any[]> {
  const text = await Deno.readTextFile(`${dir}/log.jsonl`);
  assert.ok(text.endsWith("\n"), "the log ends with a complete line");
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

/** The deterministic fields of a log line (the times differ between runs). */
// deno-lint-ignore no-explicit-any
function outcome(rec: any) {
  const {
    epoch,
    lr,
    train_accuracy,
    test_accuracy,
    train_samples,
    test_samples,
    best_test_accuracy,
    saturations,
  } = rec;
  return {
    epoch,
    lr,
    train_accuracy,
    test_accuracy,
    train_samples,
    test_samples,
    best_test_accuracy,
    saturations,
  };
}

const randomInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

Deno.test("train --resume after SIGKILL mid-epoch continues bit for bit", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "desire-resume-" });
  const ref = `${dir}/ref`, run = `${dir}/run`;
  const ck = `${run}/checkpoint.safetensors`;
  try {
    await t.step("an uninterrupted reference run", async () => {
      const t0 = performance.now();
      const r = await cli("train", ...FLAGS, "--out", ref);
      assert.equal(r.code, 0, r.stderr);
      console.log(`reference run: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const meta = await checkpointMeta(`${ref}/checkpoint.safetensors`);
      assert.equal(meta?.kind, "checkpoint");
      assert.equal(meta?.epoch, String(EPOCHS));
      assert.equal(meta?.position, "0");
    });

    await t.step("killed twice at random points, resumed, it matches the reference", async () => {
      // Kill 1 in epoch 1, kill 2 (of the resumed run) in epoch 2: each at a random checkpoint
      // position plus a random delay, so the kill lands at a random sample (or in a save).
      const kills = [0, 1].map((epoch) => ({
        epoch,
        position: EVERY * randomInt(1, N_TRAIN / EVERY - 2),
        delayMs: randomInt(0, 40),
      }));
      for (const [i, k] of kills.entries()) {
        const args = i === 0 ? [...FLAGS, "--out", run] : ["--resume", ck];
        const t0 = performance.now();
        await killMidRun(args, ck, k.epoch, k.position, k.delayMs);
        const meta = await checkpointMeta(ck);
        console.log(
          `kill ${i + 1}: waited for epoch ${k.epoch + 1} sample ${k.position}, then ` +
            `${k.delayMs} ms; killed after ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
            `checkpoint at epoch ${Number(meta!.epoch) + 1} sample ${meta!.position}`,
        );
      }
      const t0 = performance.now();
      const r = await cli("train", "--resume", ck);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /desire: resuming 784-128-10 on mnist .* at epoch 2, sample \d+\//);
      console.log(`final resume: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

      await assertSameWeights(`${ref}/model-last.safetensors`, `${run}/model-last.safetensors`);
      await assertSameWeights(`${ref}/model-best.safetensors`, `${run}/model-best.safetensors`);
      await assertSameWeights(`${ref}/checkpoint.safetensors`, ck);
      const [a, b] = [await logOf(ref), await logOf(run)];
      assert.deepEqual(b.map(outcome), a.map(outcome));
      assert.deepEqual(b.map((rec) => rec.epoch), [1, 2]);
      assert.deepEqual(b.map((rec) => rec.lr), [1e-5, 1e-5]);
      const files = (d: string) => [...Deno.readDirSync(d)].map((e) => e.name).sort();
      assert.deepEqual(files(run), files(ref)); // no temporary file left behind
      const runJson = JSON.parse(await Deno.readTextFile(`${run}/run.json`));
      assert.equal(runJson.resumed.length, 2);
    });

    await t.step("a checkpoint is a model file: eval --model-path reads it", async () => {
      const r = await cli("eval", "--model-path", ck, "--json", "--limit", "500");
      assert.equal(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout);
      assert.equal(res.samples, 500);
      assert.equal(res.epoch, EPOCHS);
      assert.equal(res.network, "784-128-10");
    });

    await t.step("resuming a finished run says so and exits 0, changing nothing", async () => {
      const before = await Deno.readTextFile(`${run}/log.jsonl`);
      const r = await cli("train", "--resume", ck);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /is already finished \(2\/2 epochs, .*nothing to do/);
      assert.equal(await Deno.readTextFile(`${run}/log.jsonl`), before);
    });

    await t.step("a log line lost (or torn) after the last checkpoint is restored", async () => {
      const full = await Deno.readTextFile(`${run}/log.jsonl`);
      const lines = full.trim().split("\n");
      // A kill between the end-of-epoch checkpoint and the log line, in the middle of writing it.
      await Deno.writeTextFile(`${run}/log.jsonl`, lines[0] + "\n" + lines[1].slice(0, 30));
      const r = await cli("train", "--resume", ck);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.readTextFile(`${run}/log.jsonl`), full);
      // A duplicated line (a checkpoint older than the log) is dropped.
      await Deno.writeTextFile(`${run}/log.jsonl`, lines[0] + "\n" + lines[0] + "\n" + full);
      assert.equal((await cli("train", "--resume", ck)).code, 0);
      assert.equal(await Deno.readTextFile(`${run}/log.jsonl`), full);
    });

    await t.step("--epochs raises the total and continues the run", async () => {
      const r = await cli("train", "--resume", `${ref}/checkpoint.safetensors`, "--epochs", "3");
      assert.equal(r.code, 0, r.stderr);
      const log = await logOf(ref);
      assert.deepEqual(log.map((rec) => rec.epoch), [1, 2, 3]);
      // Epoch 3 (e = 2) is the first decayed one: --lr-decay-start 1.
      assert.ok(Math.abs(log[2].lr - 1e-5 * Math.exp(-0.04)) < 1e-18, `lr ${log[2].lr}`);
      const meta = await checkpointMeta(`${ref}/checkpoint.safetensors`);
      assert.equal(meta?.epoch, "3");
      assert.equal(JSON.parse(meta!.hyper).epochs, 3);
      const low = await cli("train", "--resume", `${ref}/checkpoint.safetensors`, "--epochs", "2");
      assert.equal(low.code, 1);
      assert.ok(
        low.stderr.includes(
          "Invalid --epochs: 2 (with --resume it can only raise the run's total of 3 epochs)",
        ),
        low.stderr,
      );
    });

    await t.step("a corrupt checkpoint is refused by name", async () => {
      const bytes = await Deno.readFile(ck);
      const bad = `${dir}/bad.safetensors`;
      await Deno.writeFile(bad, bytes.subarray(0, bytes.length - 100));
      let r = await cli("train", "--resume", bad);
      assert.equal(r.code, 1);
      assert.ok(r.stderr.startsWith(`error: Cannot load ${bad}: `), r.stderr);
      r = await cli("train", "--resume", `${dir}/none.safetensors`);
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(`Cannot resume from ${dir}/none.safetensors: no such file`));
      r = await cli("train", "--resume", `${run}/model-last.safetensors`);
      assert.equal(r.code, 1);
      assert.ok(
        r.stderr.includes(
          `Cannot resume from ${run}/model-last.safetensors: it is not a checkpoint`,
        ),
        r.stderr,
      );
    });

    await t.step("--resume with a flag that would change the run is refused by name", async () => {
      for (const extra of [["--hidden", "64"], ["--lr", "1e-6", "1e-5"], ["--out", dir]]) {
        const r = await cli("train", "--resume", ck, ...extra);
        assert.equal(r.code, 2);
        assert.ok(r.stderr.startsWith(`error: Cannot use ${extra[0]} with --resume`), r.stderr);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A run with --validation: the held-out samples' best epoch, kept over later epochs whose
// validation accuracy is lower (checked below), must survive kills in those epochs.
const VALIDATION_FLAGS = [
  "--dataset",
  "mnist",
  "--hidden",
  "32",
  "--limit",
  "2000",
  "--validation",
  "100",
  "--lr",
  "0",
  "3e-4",
  "--epochs",
  "4",
  "--checkpoint-every",
  "100",
  "--random-seed",
  "3",
];

Deno.test("train --validation --resume after SIGKILL keeps the validation choice, bit for bit", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "desire-resume-validation-" });
  const ref = `${dir}/ref`, run = `${dir}/run`;
  const ck = `${run}/checkpoint.safetensors`;
  // deno-lint-ignore no-explicit-any
  const deterministic = (rec: any) => ({
    ...outcome(rec),
    validation_accuracy: rec.validation_accuracy,
    validation_samples: rec.validation_samples,
    best_validation_accuracy: rec.best_validation_accuracy,
    validation_chosen_epoch: rec.validation_chosen_epoch,
    validation_chosen_test_accuracy: rec.validation_chosen_test_accuracy,
  });
  try {
    await t.step("an uninterrupted reference run", async () => {
      const r = await cli("train", ...VALIDATION_FLAGS, "--out", ref);
      assert.equal(r.code, 0, r.stderr);
      const log = await logOf(ref);
      // Epochs 3 and 4 (where the kills land) must not be chosen themselves, or a choice lost
      // to the kill would go unnoticed.
      assert.ok(
        log[2].validation_chosen_epoch < 3 && log[3].validation_chosen_epoch < 3,
        `epochs 3 and 4 do not keep an earlier choice; change VALIDATION_FLAGS: ${
          JSON.stringify(log.map(deterministic))
        }`,
      );
    });

    await t.step("killed in epochs 3 and 4, resumed, it matches the reference", async () => {
      const kills = [2, 3].map((epoch) => ({
        epoch,
        position: 100 * randomInt(1, 1900 / 100 - 2),
        delayMs: randomInt(0, 20),
      }));
      for (const [i, k] of kills.entries()) {
        const args = i === 0 ? [...VALIDATION_FLAGS, "--out", run] : ["--resume", ck];
        await killMidRun(args, ck, k.epoch, k.position, k.delayMs);
        const meta = await checkpointMeta(ck);
        console.log(
          `kill ${i + 1}: waited for epoch ${k.epoch + 1} sample ${k.position}, then ` +
            `${k.delayMs} ms; checkpoint at epoch ${Number(meta!.epoch) + 1} sample ` +
            `${meta!.position}, chosen epoch ${meta!.validation_chosen_epoch}`,
        );
      }
      const r = await cli("train", "--resume", ck);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\(1900 training, 100 validation, 10000 test samples\)/);
      for (const name of ["model-last", "model-best", "model-validation-best", "checkpoint"]) {
        await assertSameWeights(`${ref}/${name}.safetensors`, `${run}/${name}.safetensors`);
      }
      const [a, b] = [await logOf(ref), await logOf(run)];
      assert.deepEqual(b.map(deterministic), a.map(deterministic));
      const [ma, mb] = [
        await checkpointMeta(`${ref}/checkpoint.safetensors`),
        await checkpointMeta(ck),
      ];
      for (
        const key of [
          "validation_chosen_epoch",
          "best_validation_accuracy",
          "validation_chosen_test_accuracy",
        ]
      ) {
        assert.equal(mb![key], ma![key], key);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
