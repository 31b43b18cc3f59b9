// train --validation N end to end: the last N samples (after --limit) are held out of training,
// every epoch is evaluated on them, the log names the epoch of the best validation accuracy (the
// earliest on ties) with its test accuracy, model-validation-best.safetensors holds its weights,
// a resumed run keeps the choice, and bad values are refused with exact messages.
import assert from "node:assert/strict";
import { decodeSafetensors, tensorToI32 } from "../src/safetensors.ts";
import {
  CHECKPOINT_VERSION,
  type CheckpointState,
  decodeCheckpoint,
  encodeCheckpoint,
  holdOut,
  VALIDATION_BEST_NAME,
} from "../src/train.ts";
import { loadDataset, type Split } from "../src/datasets.ts";
import { encodeModel, loadModel, type ModelInfo } from "../src/model_file.ts";
import { Network } from "../src/network.ts";
import { evaluate } from "../src/evaluate.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const dec = new TextDecoder();

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Every I32 tensor of a safetensors file, by name. */
async function tensors(path: string): Promise<Map<string, Int32Array>> {
  const st = decodeSafetensors(await Deno.readFile(path), path);
  return new Map([...st.tensors].map(([name, t]) => [name, tensorToI32(t)]));
}

async function sameWeights(a: string, b: string): Promise<boolean> {
  const ta = await tensors(a), tb = await tensors(b);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  return [...ta].every(([name, wa]) => {
    const wb = tb.get(name)!;
    return wa.length === wb.length && wa.every((x, q) => x === wb[q]);
  });
}

async function assertSameWeights(a: string, b: string): Promise<void> {
  assert.ok(await sameWeights(a, b), `the weights of ${b} differ from those of ${a}`);
}

async function metadata(path: string): Promise<Record<string, string>> {
  return decodeSafetensors(await Deno.readFile(path), path).metadata;
}

// deno-lint-ignore no-explicit-any
async function logOf(dir: string): Promise<any[]> {
  const text = await Deno.readTextFile(`${dir}/log.jsonl`);
  assert.ok(text.endsWith("\n"), "the log ends with a complete line");
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

const VALIDATION_FIELDS = [
  "validation_accuracy",
  "validation_samples",
  "best_validation_accuracy",
  "validation_chosen_epoch",
  "validation_chosen_test_accuracy",
];

/** The deterministic fields of a log line (the times differ between runs). */
// deno-lint-ignore no-explicit-any
function outcome(rec: any): Record<string, unknown> {
  const keep = [
    "epoch",
    "lr",
    "train_accuracy",
    "test_accuracy",
    "train_samples",
    "test_samples",
    "best_test_accuracy",
    "saturations",
    ...VALIDATION_FIELDS,
  ];
  return Object.fromEntries(keep.filter((k) => k in rec).map((k) => [k, rec[k]]));
}

// ------------------------------------------------------------------------------ holdOut()

/** A split whose sample i has every pixel and its label equal to i (mod 256). */
function numbered(count: number): Split {
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) images.fill(i & 255, i * 784, (i + 1) * 784);
  return {
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => i & 255),
    count,
    rows: 28,
    cols: 28,
  };
}

Deno.test("holdOut() trains on the first count − n samples and holds out the next n in file order", async (t) => {
  const split = numbered(12);
  for (const [count, n] of [[12, 0], [12, 1], [12, 5], [10, 3], [10, 9], [1, 0]]) {
    await t.step(`count ${count}, n ${n}`, () => {
      const { train, validation } = holdOut(split, count, n);
      assert.equal(train.count, count - n);
      assert.equal(validation.count, n);
      assert.deepEqual([...train.labels], Array.from({ length: count - n }, (_, i) => i));
      assert.deepEqual([...validation.labels], Array.from({ length: n }, (_, i) => count - n + i));
      assert.equal(train.images.length, (count - n) * 784);
      assert.equal(validation.images.length, n * 784);
      for (let i = 0; i < n; i++) {
        const image = validation.images.subarray(i * 784, (i + 1) * 784);
        assert.ok(image.every((p) => p === count - n + i), `validation image ${i}`);
      }
      for (let i = 0; i < count - n; i++) assert.equal(train.images[i * 784 + 783], i);
      // Views, not copies: they share the split's memory.
      assert.equal(train.images.buffer, split.images.buffer);
      assert.equal(validation.images.byteOffset, split.images.byteOffset + (count - n) * 784);
    });
  }
  await t.step("n ≥ count, a negative n or a count beyond the split is refused", () => {
    assert.throws(() => holdOut(split, 10, 10), {
      name: "RangeError",
      message: "Cannot hold out 10 of 10 samples (expected 0..9)",
    });
    assert.throws(() => holdOut(split, 10, -1), {
      name: "RangeError",
      message: "Cannot hold out -1 of 10 samples (expected 0..9)",
    });
    assert.throws(() => holdOut(split, 13, 1), {
      name: "RangeError",
      message: "Cannot hold out samples: count 13 is not in 1..12",
    });
  });
});

// ----------------------------------------------------------------------- bad values

Deno.test("train --validation refuses bad values with exact messages and writes nothing", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "desire-validation-args-" });
  const out = `${dir}/run`;
  const cases: [string[], number, string][] = [
    [
      ["--validation", "-1"],
      1,
      "Invalid --validation: -1 (must be an integer ≥ 0 and less than the number of training " +
      "samples)",
    ],
    [
      ["--validation", "2.5"],
      1,
      "Invalid --validation: 2.5 (must be an integer ≥ 0 and less than the number of training " +
      "samples)",
    ],
    [
      ["--validation", "many"],
      1,
      "Invalid --validation: many (must be an integer ≥ 0 and less than the number of training " +
      "samples)",
    ],
    [["--validation"], 2, "Missing value for --validation (usage: --validation N)"],
    [
      ["--limit", "100", "--validation", "100"],
      1,
      "Invalid --validation: 100 (must be less than --limit 100, so that at least one sample " +
      "is left to train on)",
    ],
    // Without --limit the bound is the data set's size, known once it is loaded.
    [
      ["--validation", "60000"],
      1,
      "Invalid --validation: 60000 (must be less than the 60000 training samples of mnist, so " +
      "that at least one sample is left to train on)",
    ],
    [
      ["--limit", "70000", "--validation", "60000"],
      1,
      "Invalid --validation: 60000 (must be less than the 60000 training samples of mnist, so " +
      "that at least one sample is left to train on)",
    ],
    [
      ["--resume", `${dir}/checkpoint.safetensors`, "--validation", "10"],
      2,
      "Cannot use --validation with --resume: a resumed run keeps the configuration and flags " +
      "of its checkpoint (allowed with --resume: --epochs, --checkpoint-every, --data-dir, " +
      "--threads)",
    ],
  ];
  try {
    for (const [args, code, message] of cases) {
      await t.step(args.join(" "), async () => {
        const r = args[0] === "--resume"
          ? await cli("train", ...args)
          : await cli("train", "--hidden", "8", "--epochs", "1", ...args, "--out", out);
        assert.equal(r.stderr, `error: ${message}\n`);
        assert.equal(r.code, code);
        await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------- a validation run

// 1000 samples, the last 50 held out; a learning rate high enough that the validation accuracy
// moves up and down, so that (checked below) the choice is kept over later epochs, a later epoch
// ties it, and the test accuracy peaks elsewhere.
const N_SAMPLES = 1000;
const N_VALIDATION = 50;
const N_TRAIN = N_SAMPLES - N_VALIDATION;
const EPOCHS = 5;
const RUN = [
  "--hidden",
  "32",
  "--lr",
  "0",
  "3e-4",
  "--random-seed",
  "2",
  "--checkpoint-every",
  "0",
];

Deno.test("train --validation logs the chosen epoch, saves its model and resumes it", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "desire-validation-" });
  const ref = `${dir}/ref`, steps = `${dir}/steps`, plain = `${dir}/plain`;
  const held = ["--limit", String(N_SAMPLES), "--validation", String(N_VALIDATION)];
  // deno-lint-ignore no-explicit-any
  let log: any[] = [];
  try {
    await t.step(
      "an uninterrupted run writes the validation fields to every log line",
      async () => {
        const r = await cli("train", ...RUN, ...held, "--epochs", String(EPOCHS), "--out", ref);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /^desire: training 784-32-10 on mnist \(950 training, 50 validation, 10000 test samples\)/,
        );
        log = await logOf(ref);
        assert.deepEqual(log.map((rec) => rec.epoch), [1, 2, 3, 4, 5]);
        for (const rec of log) {
          for (const key of VALIDATION_FIELDS) assert.equal(typeof rec[key], "number", key);
          assert.equal(rec.train_samples, N_TRAIN);
          assert.equal(rec.validation_samples, N_VALIDATION);
          assert.equal(rec.test_samples, 10000);
          // An accuracy on 50 samples is a multiple of 1/50.
          const correct = rec.validation_accuracy * N_VALIDATION;
          assert.ok(Math.abs(correct - Math.round(correct)) < 1e-9, `${rec.validation_accuracy}`);
        }
        const run = JSON.parse(await Deno.readTextFile(`${ref}/run.json`));
        assert.equal(run.hyper.validation, N_VALIDATION);
        assert.equal(run.train_samples, N_TRAIN);
        const ck = await metadata(`${ref}/checkpoint.safetensors`);
        assert.equal(JSON.parse(ck.hyper).validation, N_VALIDATION);
        assert.equal(ck.checkpoint_version, String(CHECKPOINT_VERSION));
        assert.equal(ck.validation_chosen_epoch, String(log[4].validation_chosen_epoch));
        const last = log[EPOCHS - 1];
        const lastLine = r.stdout.trim().split("\n").at(-1)!;
        const pct = (x: number) => (100 * x).toFixed(2) + " %";
        assert.ok(
          lastLine.includes(
            `chosen on validation: epoch ${last.validation_chosen_epoch} (validation ` +
              `${pct(last.best_validation_accuracy)}), test accuracy ` +
              `${pct(last.validation_chosen_test_accuracy)}`,
          ),
          lastLine,
        );
        assert.ok(lastLine.includes(VALIDATION_BEST_NAME), lastLine);
        const epochLines = r.stdout.split("\n").filter((l) => l.startsWith("epoch "));
        for (const [k, line] of epochLines.entries()) {
          const rec = log[k];
          assert.ok(line.includes(`validation ${pct(rec.validation_accuracy)}`), line);
          assert.ok(
            line.includes(
              `chosen epoch ${rec.validation_chosen_epoch} (test ` +
                `${pct(rec.validation_chosen_test_accuracy)})`,
            ),
            line,
          );
        }
      },
    );

    await t.step("the chosen epoch is the earliest of the best validation accuracy so far", () => {
      for (let k = 0; k < log.length; k++) {
        const seen = log.slice(0, k + 1).map((rec) => rec.validation_accuracy);
        const bestSoFar = Math.max(...seen);
        const chosen = seen.indexOf(bestSoFar) + 1;
        assert.equal(log[k].best_validation_accuracy, bestSoFar, `epoch ${k + 1}`);
        assert.equal(log[k].validation_chosen_epoch, chosen, `epoch ${k + 1}`);
        assert.equal(
          log[k].validation_chosen_test_accuracy,
          log[chosen - 1].test_accuracy,
          `epoch ${k + 1}: the test accuracy of epoch ${chosen}`,
        );
      }
      // The run must exercise the rule, or this test would prove little: a later epoch ties
      // the best validation accuracy and the earlier one stays chosen, and the test accuracy
      // peaks in another epoch than the chosen one.
      const tie = log.find((rec) =>
        rec.epoch > rec.validation_chosen_epoch &&
        rec.validation_accuracy === rec.best_validation_accuracy
      );
      assert.ok(tie, `no later epoch ties the chosen one; change RUN: ${JSON.stringify(log)}`);
      const final = log[EPOCHS - 1];
      assert.notEqual(
        final.validation_chosen_test_accuracy,
        final.best_test_accuracy,
        "the chosen epoch is also the best test epoch; change RUN",
      );
    });

    const snapshots: string[] = [];
    await t.step("resumed at every epoch boundary, the run ends bit-identical", async () => {
      for (let e = 1; e <= EPOCHS; e++) {
        const r = e === 1
          ? await cli("train", ...RUN, ...held, "--epochs", "1", "--out", steps)
          : await cli("train", "--resume", `${steps}/checkpoint.safetensors`, "--epochs", `${e}`);
        assert.equal(r.code, 0, r.stderr);
        const snapshot = `${dir}/epoch-${e}.safetensors`;
        await Deno.copyFile(`${steps}/model-last.safetensors`, snapshot);
        snapshots.push(snapshot);
      }
      for (const name of ["model-last", "model-best", "model-validation-best", "checkpoint"]) {
        await assertSameWeights(`${ref}/${name}.safetensors`, `${steps}/${name}.safetensors`);
      }
      assert.deepEqual((await logOf(steps)).map(outcome), log.map(outcome));
      const [a, b] = [
        await metadata(`${ref}/checkpoint.safetensors`),
        await metadata(
          `${steps}/checkpoint.safetensors`,
        ),
      ];
      for (
        const key of [
          "validation_chosen_epoch",
          "best_validation_accuracy",
          "validation_chosen_test_accuracy",
        ]
      ) {
        assert.equal(b[key], a[key], key);
      }
    });

    await t.step("model-validation-best holds the weights of the chosen epoch", async () => {
      const chosen = log[EPOCHS - 1].validation_chosen_epoch;
      const path = `${ref}/${VALIDATION_BEST_NAME}`;
      await assertSameWeights(snapshots[chosen - 1], path);
      for (const [k, snapshot] of snapshots.entries()) {
        if (k + 1 !== chosen) {
          assert.ok(!(await sameWeights(snapshot, path)), `epoch ${k + 1} is not the chosen one`);
        }
      }
      assert.ok(!(await sameWeights(`${ref}/model-best.safetensors`, path)));
      const meta = await metadata(path);
      assert.equal(meta.chosen_by, "validation");
      assert.equal(meta.epoch, String(chosen));
      assert.equal(Number(meta.validation_accuracy), log[chosen - 1].validation_accuracy);
      assert.equal(meta.validation_samples, String(N_VALIDATION));
      assert.equal(Number(meta.test_accuracy), log[chosen - 1].test_accuracy);
      // model-best stays the epoch of the best test accuracy.
      const bestEpoch = log.findIndex((rec) =>
        rec.test_accuracy === log[EPOCHS - 1].best_test_accuracy
      ) + 1;
      await assertSameWeights(snapshots[bestEpoch - 1], `${ref}/model-best.safetensors`);
    });

    await t.step("its accuracies, measured independently, are the logged ones", async () => {
      const chosen = log[EPOCHS - 1];
      const path = `${ref}/${VALIDATION_BEST_NAME}`;
      const ev = await cli("eval", "--model-path", path, "--json");
      assert.equal(ev.code, 0, ev.stderr);
      assert.equal(JSON.parse(ev.stdout).accuracy, chosen.validation_chosen_test_accuracy);
      // The held-out samples, cut from the data set here: samples 950..999 in file order.
      const data = await loadDataset("mnist");
      const images = data.train.images.subarray(N_TRAIN * 784, N_SAMPLES * 784);
      const labels = data.train.labels.subarray(N_TRAIN, N_SAMPLES);
      const model = await loadModel(path);
      const net = await Network.create(model.config, model.seed, model.weights, {
        threads: 1,
        inferenceOnly: true,
      });
      try {
        const split: Split = { images, labels, count: N_VALIDATION, rows: 28, cols: 28 };
        assert.equal(evaluate(net, split).accuracy, chosen.best_validation_accuracy);
      } finally {
        await net.close();
      }
    });

    await t.step(
      "it trains exactly as --limit 950: the held-out samples are never trained",
      async () => {
        const r = await cli(
          "train",
          ...RUN,
          "--limit",
          String(N_TRAIN),
          "--epochs",
          "2",
          "--out",
          plain,
        );
        assert.equal(r.code, 0, r.stderr);
        await assertSameWeights(snapshots[1], `${plain}/model-last.safetensors`);
        const plainLog = await logOf(plain);
        assert.deepEqual(
          plainLog.map((rec) => [rec.train_accuracy, rec.test_accuracy, rec.train_samples]),
          log.slice(0, 2).map((rec) => [rec.train_accuracy, rec.test_accuracy, rec.train_samples]),
        );
        // Without --validation: no validation field in the log and no validation model.
        for (const rec of plainLog) {
          for (const key of VALIDATION_FIELDS) assert.ok(!(key in rec), key);
        }
        await assert.rejects(Deno.stat(`${plain}/${VALIDATION_BEST_NAME}`), Deno.errors.NotFound);
        assert.ok(!/validation|chosen/.test(r.stdout.replaceAll(dir, "DIR")), r.stdout);
        const ck = await metadata(`${plain}/checkpoint.safetensors`);
        assert.equal(ck.validation_chosen_epoch, undefined);
        assert.equal(JSON.parse(ck.hyper).validation, 0);
      },
    );

    await t.step("a finished validation run resumed says which epoch was chosen", async () => {
      const r = await cli("train", "--resume", `${ref}/checkpoint.safetensors`);
      assert.equal(r.code, 0, r.stderr);
      const last = log[EPOCHS - 1];
      assert.ok(
        r.stdout.includes(
          `; chosen on validation: epoch ${last.validation_chosen_epoch}, test accuracy ` +
            `${(100 * last.validation_chosen_test_accuracy).toFixed(2)} %); nothing to do`,
        ),
        r.stdout,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------- checkpoints

const CONFIG = {
  sizes: [784, 4, 10],
  tsteps: 20,
  threshold: 1,
  decay: 2,
  margin: 4,
  desireHid: 0.05,
  desireOut: 0.3,
  dropIn: 0,
  dropHid: 0.3,
};
const WEIGHTS = [new Int32Array(784 * 4).fill(3), new Int32Array(40).fill(-5)];

function info(validation: number | undefined, epoch: number): ModelInfo {
  const hyper: Record<string, unknown> = {
    dataset: "mnist",
    epochs: 4,
    lr: [1e-6, 1e-5],
    lr_decay: 0.04,
    desire_thres: [0.2, 0.05, 0.3],
    shuffle: true,
    limit: 1000,
  };
  if (validation !== undefined) hyper.validation = validation;
  return { config: CONFIG, seed: 1, epoch, dataset: "mnist", hyper };
}

const STATE: CheckpointState = {
  epoch: 3,
  position: 120,
  trainCorrect: 40,
  trainSamples: 900,
  best: 0.5,
  checkpointEvery: 40,
  out: "/runs/x",
  log: "/runs/x/log.jsonl",
  elapsedSeconds: 12.5,
  epochSeconds: 0.25,
  saturations: 0,
};

Deno.test("encodeCheckpoint() and decodeCheckpoint() keep the validation-chosen epoch", async (t) => {
  await t.step("the choice round-trips exactly", () => {
    const validation = { epoch: 2, validationAccuracy: 0.37, testAccuracy: 0.4397 };
    const bytes = encodeCheckpoint(info(100, 3), WEIGHTS, { ...STATE, validation });
    const meta = decodeSafetensors(bytes, "c").metadata;
    assert.equal(meta.checkpoint_version, "3");
    assert.equal(meta.validation_chosen_epoch, "2");
    assert.equal(meta.best_validation_accuracy, "0.37");
    assert.equal(meta.validation_chosen_test_accuracy, "0.4397");
    const ck = decodeCheckpoint(bytes, "c");
    assert.deepEqual(ck.state, { ...STATE, validation, lastRecord: undefined });
    assert.equal(ck.hyper.validation, 100);
  });

  await t.step("a run without --validation writes no choice and reads none", () => {
    const bytes = encodeCheckpoint(info(0, 3), WEIGHTS, STATE);
    assert.equal(decodeSafetensors(bytes, "c").metadata.validation_chosen_epoch, undefined);
    assert.equal(decodeCheckpoint(bytes, "c").state.validation, undefined);
  });

  await t.step("a version 1 checkpoint (no hyper.validation, no choice) is still read", () => {
    const v2 = decodeSafetensors(encodeCheckpoint(info(undefined, 3), WEIGHTS, STATE), "c");
    const bytes = encodeModel(info(undefined, 3), WEIGHTS, {
      ...v2.metadata,
      checkpoint_version: "1",
    });
    const ck = decodeCheckpoint(bytes, "old.safetensors");
    assert.deepEqual(ck.state, { ...STATE, lastRecord: undefined, validation: undefined });
    assert.equal(ck.hyper.validation, undefined);
  });

  await t.step("a validation run past its first epoch without a choice is refused", () => {
    const bytes = encodeCheckpoint(info(100, 3), WEIGHTS, STATE);
    assert.throws(() => decodeCheckpoint(bytes, "c.safetensors"), {
      name: "TypeError",
      message: "Cannot resume from c.safetensors: metadata 'validation_chosen_epoch' is missing " +
        "(the run holds out 100 validation samples and completed 3 epochs)",
    });
    // Before the first epoch ends there is no choice yet.
    const fresh = encodeCheckpoint(info(100, 0), WEIGHTS, { ...STATE, epoch: 0 });
    assert.equal(decodeCheckpoint(fresh, "c").state.validation, undefined);
  });

  await t.step(
    "a chosen epoch after the checkpoint's epoch, or a bad hyper.validation, is refused",
    () => {
      const late = { epoch: 4, validationAccuracy: 0.5, testAccuracy: 0.5 };
      assert.throws(
        () =>
          decodeCheckpoint(
            encodeCheckpoint(info(100, 3), WEIGHTS, { ...STATE, validation: late }),
            "c",
          ),
        {
          name: "TypeError",
          message: `Cannot resume from c: metadata 'validation_chosen_epoch' is "4" (expected an ` +
            `integer in 1..3)`,
        },
      );
      assert.throws(
        () => decodeCheckpoint(encodeCheckpoint(info(-1, 3), WEIGHTS, STATE), "c"),
        /^TypeError: Cannot resume from c: metadata 'hyper' does not hold the run's training flags/,
      );
    },
  );

  await t.step("hyper.lr_decay_start round-trips; a bad one is refused", () => {
    const withStart = (start: unknown): ModelInfo => {
      const i = info(0, 3);
      return { ...i, hyper: { ...i.hyper, lr_decay_start: start } };
    };
    const ck = decodeCheckpoint(encodeCheckpoint(withStart(60), WEIGHTS, STATE), "c");
    assert.equal(ck.hyper.lr_decay_start, 60);
    for (const bad of [-1, 1.5, "60"]) {
      assert.throws(
        () => decodeCheckpoint(encodeCheckpoint(withStart(bad), WEIGHTS, STATE), "c"),
        /^TypeError: Cannot resume from c: metadata 'hyper' does not hold the run's training flags/,
        `lr_decay_start ${JSON.stringify(bad)}`,
      );
    }
  });

  await t.step("an unknown checkpoint version is refused", () => {
    const bytes = encodeCheckpoint(info(0, 3), WEIGHTS, STATE);
    const meta = decodeSafetensors(bytes, "c").metadata;
    const v4 = encodeModel(info(0, 3), WEIGHTS, { ...meta, checkpoint_version: "4" });
    assert.throws(() => decodeCheckpoint(v4, "c"), {
      name: "TypeError",
      message: "Cannot resume from c: checkpoint version 4 is not supported (this version reads " +
        "1, 2 and 3)",
    });
  });
});
