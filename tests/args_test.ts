import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { join } from "node:path";
import {
  checkOutDir,
  estimateWasmBytes,
  EVAL_HELP,
  MAIN_HELP,
  parseEvalArgs,
  parseTrainArgs,
  PRESETS,
  TRAIN_HELP,
  type TrainOptions,
  UsageError,
} from "../src/args.ts";

type ErrorClass = typeof UsageError | typeof TypeError | typeof RangeError;

/** Asserts that `fn` throws exactly `cls` (not a subclass) with exactly `message`. */
function throwsExactly(fn: () => unknown, cls: ErrorClass, message: string): void {
  throws(fn, (e: unknown) => {
    ok(e instanceof Error, `not an Error: ${e}`);
    equal(e.constructor, cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    equal(e.message, message);
    return true;
  });
}

const MNIST_DEFAULTS: Omit<TrainOptions, "explicit"> = {
  dataset: "mnist",
  hidden: [1600, 800],
  tsteps: 20,
  epochs: 150,
  lrConv: 1e-6,
  lrLin: 1e-5,
  lrDecay: 0.04,
  lrDecayStart: 0,
  dropIn: 0,
  dropHid: 0.3,
  mempotThres: 1,
  mempotDecay: 2,
  desireConv: 0.2,
  desireLin: 0.05,
  desireOut: 0.3,
  errorMargin: 4,
  randomSeed: 0,
  modelPath: undefined,
  evalOnly: false,
  shuffle: true,
  out: undefined,
  log: undefined,
  limit: undefined,
  validation: 0,
  dataDir: undefined,
  threads: undefined,
  checkpointEvery: 10000,
  resume: undefined,
  help: false,
};

function withoutExplicit(opts: TrainOptions): Omit<TrainOptions, "explicit"> {
  const { explicit: _, ...rest } = opts;
  return rest;
}

Deno.test("parseTrainArgs() defaults", async (t) => {
  await t.step("parseTrainArgs() with no flags returns the mnist preset and defaults", () => {
    const opts = parseTrainArgs([]);
    deepEqual(withoutExplicit(opts), MNIST_DEFAULTS);
    deepEqual([...opts.explicit], []);
  });

  await t.step("parseTrainArgs() --dataset fashion-mnist selects its preset", () => {
    const opts = parseTrainArgs(["--dataset", "fashion-mnist"]);
    deepEqual(withoutExplicit(opts), {
      ...MNIST_DEFAULTS,
      dataset: "fashion-mnist",
      hidden: [1000, 100],
      epochs: 600,
      dropIn: 0.05,
      dropHid: 0.4,
    });
    deepEqual([...opts.explicit], ["dataset"]);
  });

  await t.step("parseTrainArgs() returns a copy of the preset's hidden sizes", () => {
    const opts = parseTrainArgs([]);
    opts.hidden.push(1);
    deepEqual(PRESETS.mnist.hidden, [1600, 800]);
    ok(Object.isFrozen(PRESETS.mnist) && Object.isFrozen(PRESETS.mnist.hidden));
  });
});

Deno.test("parseTrainArgs() explicit flags override the preset", async (t) => {
  const cases: { argv: string[]; expect: Partial<TrainOptions>; explicit: string[] }[] = [
    {
      argv: [
        "--dataset",
        "fashion-mnist",
        "--hidden",
        "300",
        "--epochs",
        "7",
        "--dropout",
        "0.1",
        "0.2",
      ],
      expect: { dataset: "fashion-mnist", hidden: [300], epochs: 7, dropIn: 0.1, dropHid: 0.2 },
      explicit: ["dataset", "hidden", "epochs", "dropout"],
    },
    {
      argv: ["--epochs", "3", "--dataset", "fashion-mnist"],
      expect: { dataset: "fashion-mnist", hidden: [1000, 100], epochs: 3, dropHid: 0.4 },
      explicit: ["dataset", "epochs"],
    },
    {
      argv: [
        "--tsteps=32",
        "--lr-decay",
        "0",
        "--lr-decay-start",
        "60",
        "--mempot-thres",
        "64",
        "--mempot-decay",
        "0",
        "--error-margin",
        "31",
        "--random-seed",
        "4294967295",
      ],
      expect: {
        tsteps: 32,
        lrDecay: 0,
        lrDecayStart: 60,
        mempotThres: 64,
        mempotDecay: 0,
        errorMargin: 31,
        randomSeed: 4294967295,
      },
      explicit: [
        "tsteps",
        "lr-decay",
        "lr-decay-start",
        "mempot-thres",
        "mempot-decay",
        "error-margin",
        "random-seed",
      ],
    },
    {
      argv: [
        "--model-path",
        "m.safetensors",
        "--eval",
        "--no-shuffle-data",
        "--out",
        "runs/x",
        "--log",
        "x.jsonl",
        "--limit",
        "100",
        "--data-dir",
        "data",
        "--threads",
        "4",
      ],
      expect: {
        modelPath: "m.safetensors",
        evalOnly: true,
        shuffle: false,
        out: "runs/x",
        log: "x.jsonl",
        limit: 100,
        dataDir: "data",
        threads: 4,
      },
      explicit: [
        "model-path",
        "eval",
        "no-shuffle-data",
        "out",
        "log",
        "limit",
        "data-dir",
        "threads",
      ],
    },
    {
      argv: ["--checkpoint-every", "0"],
      expect: { checkpointEvery: 0 },
      explicit: ["checkpoint-every"],
    },
    {
      argv: ["--checkpoint-every=250", "--limit", "3000"],
      expect: { checkpointEvery: 250, limit: 3000 },
      explicit: ["checkpoint-every", "limit"],
    },
    {
      argv: ["--validation", "5000"],
      expect: { validation: 5000 },
      explicit: ["validation"],
    },
    {
      argv: ["--validation=0"],
      expect: { validation: 0 },
      explicit: ["validation"],
    },
    {
      argv: ["--validation", "999", "--limit", "1000"],
      expect: { validation: 999, limit: 1000 },
      explicit: ["validation", "limit"],
    },
    {
      argv: ["--resume", "runs/x/checkpoint.safetensors"],
      expect: { resume: "runs/x/checkpoint.safetensors" },
      explicit: ["resume"],
    },
    {
      argv: [
        "--resume=runs/x/checkpoint.safetensors",
        "--epochs",
        "20",
        "--checkpoint-every",
        "100",
        "--data-dir",
        "data",
        "--threads",
        "2",
      ],
      expect: {
        resume: "runs/x/checkpoint.safetensors",
        epochs: 20,
        checkpointEvery: 100,
        dataDir: "data",
        threads: 2,
      },
      explicit: ["resume", "epochs", "checkpoint-every", "data-dir", "threads"],
    },
    {
      argv: ["--epochs", "5", "--epochs", "6"],
      expect: { epochs: 6 },
      explicit: ["epochs"],
    },
    {
      argv: ["--tsteps", "4", "--error-margin", "3", "--hidden", "1"],
      expect: { tsteps: 4, errorMargin: 3, hidden: [1] },
      explicit: ["hidden", "tsteps", "error-margin"],
    },
    {
      argv: ["--epochs", "1e3", "--lr", "-0", "1", "--dropout", ".5", "0.99"],
      expect: { epochs: 1000, lrConv: 0, lrLin: 1, dropIn: 0.5, dropHid: 0.99 },
      explicit: ["epochs", "lr", "dropout"],
    },
  ];
  for (const { argv, expect, explicit } of cases) {
    await t.step(`parseTrainArgs() accepts ${argv.join(" ")}`, () => {
      const opts = parseTrainArgs(argv);
      deepEqual(withoutExplicit(opts), {
        ...withoutExplicit(parseTrainArgs(
          expect.dataset ? ["--dataset", expect.dataset] : [],
        )),
        ...expect,
      });
      deepEqual([...opts.explicit].sort(), [...explicit].sort());
    });
  }
});

Deno.test("parseTrainArgs() multi-value syntaxes", async (t) => {
  const syntaxes: { flag: string; forms: string[][]; expect: Partial<TrainOptions> }[] = [
    {
      flag: "--lr",
      forms: [
        ["--lr", "2e-6", "3e-5"],
        ["--lr", "2e-6,3e-5"],
        ["--lr=2e-6,3e-5"],
        ["--lr=2e-6", "3e-5"],
      ],
      expect: { lrConv: 2e-6, lrLin: 3e-5 },
    },
    {
      flag: "--dropout",
      forms: [["--dropout", "0.1", "0.2"], ["--dropout", "0.1,0.2"], ["--dropout=0.1,0.2"]],
      expect: { dropIn: 0.1, dropHid: 0.2 },
    },
    {
      flag: "--desire-thres",
      forms: [
        ["--desire-thres", "0.1", "0.2", "0.3"],
        ["--desire-thres", "0.1,0.2,0.3"],
        ["--desire-thres=0.1,0.2,0.3"],
        ["--desire-thres", "0.1,0.2", "0.3"],
      ],
      expect: { desireConv: 0.1, desireLin: 0.2, desireOut: 0.3 },
    },
    {
      flag: "--hidden",
      forms: [["--hidden", "500,200,100"], ["--hidden=500,200,100"], [
        "--hidden",
        "500",
        "200",
        "100",
      ]],
      expect: { hidden: [500, 200, 100] },
    },
  ];
  for (const { flag, forms, expect } of syntaxes) {
    for (const form of forms) {
      await t.step(`parseTrainArgs() reads ${flag} from ${JSON.stringify(form)}`, () => {
        const opts = parseTrainArgs([...form, "--epochs", "2"]);
        deepEqual(withoutExplicit(opts), { ...MNIST_DEFAULTS, ...expect, epochs: 2 });
      });
    }
  }
});

Deno.test("parseTrainArgs() rejects bad input with the flag, the value and the allowed range", async (t) => {
  const cases: { argv: string[]; cls: ErrorClass; message: string }[] = [
    // integers
    {
      argv: ["--epochs", "-1"],
      cls: RangeError,
      message: "Invalid --epochs: -1 (must be an integer ≥ 1)",
    },
    {
      argv: ["--epochs=-1"],
      cls: RangeError,
      message: "Invalid --epochs: -1 (must be an integer ≥ 1)",
    },
    {
      argv: ["--epochs", "0"],
      cls: RangeError,
      message: "Invalid --epochs: 0 (must be an integer ≥ 1)",
    },
    {
      argv: ["--epochs", "1.5"],
      cls: TypeError,
      message: "Invalid --epochs: 1.5 (must be an integer ≥ 1)",
    },
    {
      argv: ["--epochs", "ten"],
      cls: TypeError,
      message: "Invalid --epochs: ten (must be an integer ≥ 1)",
    },
    {
      argv: ["--epochs", "0x10"],
      cls: TypeError,
      message: "Invalid --epochs: 0x10 (must be an integer ≥ 1)",
    },
    {
      argv: ["--tsteps", "0"],
      cls: RangeError,
      message: "Invalid --tsteps: 0 (must be an integer in 1..32: a spike word holds 32 steps)",
    },
    {
      argv: ["--tsteps", "33"],
      cls: RangeError,
      message: "Invalid --tsteps: 33 (must be an integer in 1..32: a spike word holds 32 steps)",
    },
    {
      argv: ["--tsteps", "2.5"],
      cls: TypeError,
      message: "Invalid --tsteps: 2.5 (must be an integer in 1..32: a spike word holds 32 steps)",
    },
    {
      argv: ["--mempot-decay", "31"],
      cls: RangeError,
      message: "Invalid --mempot-decay: 31 (must be an integer in 0..30)",
    },
    {
      argv: ["--mempot-decay", "-1"],
      cls: RangeError,
      message: "Invalid --mempot-decay: -1 (must be an integer in 0..30)",
    },
    {
      argv: ["--random-seed", "4294967296"],
      cls: RangeError,
      message: "Invalid --random-seed: 4294967296 (must be an integer in 0..4294967295)",
    },
    {
      argv: ["--random-seed", "-1"],
      cls: RangeError,
      message: "Invalid --random-seed: -1 (must be an integer in 0..4294967295)",
    },
    {
      argv: ["--limit", "0"],
      cls: RangeError,
      message: "Invalid --limit: 0 (must be an integer ≥ 1)",
    },
    {
      argv: ["--validation", "-1"],
      cls: RangeError,
      message:
        "Invalid --validation: -1 (must be an integer ≥ 0 and less than the number of training samples)",
    },
    {
      argv: ["--validation", "0.5"],
      cls: TypeError,
      message:
        "Invalid --validation: 0.5 (must be an integer ≥ 0 and less than the number of training samples)",
    },
    {
      argv: ["--validation", "all"],
      cls: TypeError,
      message:
        "Invalid --validation: all (must be an integer ≥ 0 and less than the number of training samples)",
    },
    {
      argv: ["--limit", "1000", "--validation", "1000"],
      cls: RangeError,
      message:
        "Invalid --validation: 1000 (must be less than --limit 1000, so that at least one sample is left to train on)",
    },
    {
      argv: ["--validation", "1e4", "--limit", "500"],
      cls: RangeError,
      message:
        "Invalid --validation: 1e4 (must be less than --limit 500, so that at least one sample is left to train on)",
    },
    {
      argv: ["--validation"],
      cls: UsageError,
      message: "Missing value for --validation (usage: --validation N)",
    },
    {
      argv: ["--threads", "-2"],
      cls: RangeError,
      message: "Invalid --threads: -2 (must be an integer ≥ 1)",
    },
    {
      argv: ["--threads", "x"],
      cls: TypeError,
      message: "Invalid --threads: x (must be an integer ≥ 1)",
    },
    // error margin against T
    {
      argv: ["--tsteps", "4", "--error-margin", "4"],
      cls: RangeError,
      message:
        "Invalid --error-margin: 4 (must be less than --tsteps 4, so that the target count T − m is at least 1)",
    },
    {
      argv: ["--error-margin", "4", "--tsteps", "3"],
      cls: RangeError,
      message:
        "Invalid --error-margin: 4 (must be less than --tsteps 3, so that the target count T − m is at least 1)",
    },
    {
      argv: ["--tsteps", "4"],
      cls: RangeError,
      message:
        "Invalid --error-margin: 4 (the default; must be less than --tsteps 4, so that the target count T − m is at least 1)",
    },
    {
      argv: ["--error-margin", "-1"],
      cls: RangeError,
      message: "Invalid --error-margin: -1 (must be an integer ≥ 0 and less than --tsteps 20)",
    },
    // reals
    {
      argv: ["--lr", "nan"],
      cls: TypeError,
      message: "Invalid --lr: nan (must be a finite number in [0, 1])",
    },
    {
      argv: ["--lr", "1e-6", "Infinity"],
      cls: TypeError,
      message: "Invalid --lr: Infinity (must be a finite number in [0, 1])",
    },
    {
      argv: ["--lr", "1e999", "0"],
      cls: RangeError,
      message: "Invalid --lr: 1e999 (must be a finite number in [0, 1])",
    },
    {
      argv: ["--lr", "-1e-3", "0"],
      cls: RangeError,
      message: "Invalid --lr: -1e-3 (must be a finite number in [0, 1])",
    },
    {
      argv: ["--lr", "0", "1.5"],
      cls: RangeError,
      message: "Invalid --lr: 1.5 (must be a finite number in [0, 1])",
    },
    {
      argv: ["--lr", "1e-6,"],
      cls: TypeError,
      message: 'Invalid --lr: "" (must be a finite number in [0, 1])',
    },
    {
      argv: ["--lr-decay-start", "-1"],
      cls: RangeError,
      message: "Invalid --lr-decay-start: -1 (must be a whole number of epochs in 0..1000000)",
    },
    {
      argv: ["--lr-decay-start", "2.5"],
      cls: TypeError,
      message: "Invalid --lr-decay-start: 2.5 (must be a whole number of epochs in 0..1000000)",
    },
    {
      argv: ["--lr-decay", "10.5"],
      cls: RangeError,
      message: "Invalid --lr-decay: 10.5 (must be a finite number in [0, 10])",
    },
    {
      argv: ["--mempot-thres", "0"],
      cls: RangeError,
      message: "Invalid --mempot-thres: 0 (must be a finite number in (0, 64])",
    },
    {
      argv: ["--mempot-thres", "65"],
      cls: RangeError,
      message: "Invalid --mempot-thres: 65 (must be a finite number in (0, 64])",
    },
    {
      argv: ["--dropout", "0", "1"],
      cls: RangeError,
      message: "Invalid --dropout: 1 (each probability must be in [0, 1))",
    },
    {
      argv: ["--dropout", "-0.5", "0"],
      cls: RangeError,
      message: "Invalid --dropout: -0.5 (each probability must be in [0, 1))",
    },
    {
      argv: ["--desire-thres", "0.2", "0.05", "1.1"],
      cls: RangeError,
      message: "Invalid --desire-thres: 1.1 (must be a finite number in [0, 1])",
    },
    {
      argv: ["--dataset", "cifar"],
      cls: RangeError,
      message: "Invalid --dataset: cifar (must be one of: mnist, fashion-mnist)",
    },
    // wrong counts
    {
      argv: ["--dropout", "1"],
      cls: UsageError,
      message: "Invalid --dropout: 1 (expected 2 values, got 1; usage: --dropout IN HID)",
    },
    {
      argv: ["--lr", "1e-6,1e-5,1e-4"],
      cls: UsageError,
      message: "Invalid --lr: 1e-6 1e-5 1e-4 (expected 2 values, got 3; usage: --lr CONV LIN)",
    },
    {
      argv: ["--desire-thres=0.1,0.2", "--epochs", "3"],
      cls: UsageError,
      message:
        "Invalid --desire-thres: 0.1 0.2 (expected 3 values, got 2; usage: --desire-thres CONV LIN OUT)",
    },
    // hidden
    {
      argv: ["--hidden", "0"],
      cls: RangeError,
      message: "Invalid --hidden: 0 (each layer size must be an integer ≥ 1)",
    },
    {
      argv: ["--hidden", "abc"],
      cls: TypeError,
      message: "Invalid --hidden: abc (each layer size must be an integer ≥ 1)",
    },
    {
      argv: ["--hidden", "100,-5"],
      cls: RangeError,
      message: "Invalid --hidden: -5 (each layer size must be an integer ≥ 1)",
    },
    {
      argv: ["--hidden", "100,,5"],
      cls: TypeError,
      message: 'Invalid --hidden: "" (each layer size must be an integer ≥ 1)',
    },
    {
      argv: ["--hidden", Array(15).fill("10").join(",")],
      cls: RangeError,
      message: `Invalid --hidden: ${Array(15).fill("10").join(",")} (at most 14 hidden layers)`,
    },
    {
      argv: ["--hidden", "100000,100000"],
      cls: RangeError,
      message:
        "Invalid --hidden: 100000,100000 needs about 80.7 GB of WebAssembly memory (at most 4 GiB: 32-bit memory)",
    },
    // usage
    { argv: ["--foo"], cls: UsageError, message: "Unknown flag --foo (see --help)" },
    { argv: ["--foo=1"], cls: UsageError, message: "Unknown flag --foo (see --help)" },
    { argv: ["-x"], cls: UsageError, message: "Unknown flag -x (see --help)" },
    { argv: ["--json"], cls: UsageError, message: "Unknown flag --json (see --help)" },
    {
      argv: ["data.idx"],
      cls: UsageError,
      message: "Unexpected argument data.idx (positional arguments are not accepted; see --help)",
    },
    {
      argv: ["--epochs", "3", "4"],
      cls: UsageError,
      message: "Unexpected argument 4 (positional arguments are not accepted; see --help)",
    },
    {
      argv: ["--", "--epochs"],
      cls: UsageError,
      message: "Unexpected argument --epochs (positional arguments are not accepted; see --help)",
    },
    {
      argv: ["--epochs"],
      cls: UsageError,
      message: "Missing value for --epochs (usage: --epochs N)",
    },
    {
      argv: ["--epochs", "--tsteps", "4"],
      cls: UsageError,
      message: "Missing value for --epochs (usage: --epochs N)",
    },
    { argv: ["--out="], cls: UsageError, message: "Missing value for --out (usage: --out DIR)" },
    {
      argv: ["--lr", "--eval"],
      cls: UsageError,
      message: "Missing value for --lr (usage: --lr CONV LIN)",
    },
    {
      argv: ["--eval=yes"],
      cls: UsageError,
      message: "Invalid --eval: --eval=yes (the flag takes no value; usage: --eval)",
    },
    {
      argv: ["--eval"],
      cls: UsageError,
      message: "Missing --model-path: --eval evaluates a loaded model (see --help)",
    },
    // checkpoints and resuming
    {
      argv: ["--checkpoint-every", "-1"],
      cls: RangeError,
      message:
        "Invalid --checkpoint-every: -1 (must be an integer ≥ 0; 0 checkpoints only at the end of every epoch)",
    },
    {
      argv: ["--checkpoint-every", "2.5"],
      cls: TypeError,
      message:
        "Invalid --checkpoint-every: 2.5 (must be an integer ≥ 0; 0 checkpoints only at the end of every epoch)",
    },
    {
      argv: ["--resume"],
      cls: UsageError,
      message: "Missing value for --resume (usage: --resume FILE)",
    },
    {
      argv: ["--resume", "c.safetensors", "--hidden", "64"],
      cls: UsageError,
      message: "Cannot use --hidden with --resume: a resumed run keeps the configuration and " +
        "flags of its checkpoint (allowed with --resume: --epochs, --checkpoint-every, " +
        "--data-dir, --threads)",
    },
    {
      argv: [
        "--lr",
        "1e-6",
        "1e-5",
        "--resume",
        "c.safetensors",
        "--no-shuffle-data",
        "--out",
        "x",
      ],
      cls: UsageError,
      message: "Cannot use --lr, --no-shuffle-data, --out with --resume: a resumed run keeps " +
        "the configuration and flags of its checkpoint (allowed with --resume: --epochs, " +
        "--checkpoint-every, --data-dir, --threads)",
    },
    {
      argv: ["--resume", "c.safetensors", "--validation", "5000"],
      cls: UsageError,
      message: "Cannot use --validation with --resume: a resumed run keeps the configuration " +
        "and flags of its checkpoint (allowed with --resume: --epochs, --checkpoint-every, " +
        "--data-dir, --threads)",
    },
    {
      argv: ["--resume", "c.safetensors", "--dataset", "mnist"],
      cls: UsageError,
      message: "Cannot use --dataset with --resume: a resumed run keeps the configuration and " +
        "flags of its checkpoint (allowed with --resume: --epochs, --checkpoint-every, " +
        "--data-dir, --threads)",
    },
    {
      argv: ["--resume", "c.safetensors", "--epochs", "0"],
      cls: RangeError,
      message: "Invalid --epochs: 0 (must be an integer ≥ 1)",
    },
  ];
  for (const { argv, cls, message } of cases) {
    await t.step(`parseTrainArgs() rejects ${argv.join(" ")} with ${cls.name}`, () => {
      throwsExactly(() => parseTrainArgs(argv), cls, message);
    });
  }
});

Deno.test("parseTrainArgs() --help", async (t) => {
  for (const argv of [["--help"], ["-h"], ["--epochs", "-1", "--foo", "-h"], ["x", "--help"]]) {
    await t.step(
      `parseTrainArgs() returns help: true for ${argv.join(" ")} without validating`,
      () => {
        const opts = parseTrainArgs(argv);
        equal(opts.help, true);
        deepEqual(withoutExplicit(opts), { ...MNIST_DEFAULTS, help: true });
      },
    );
  }
});

Deno.test("parseEvalArgs()", async (t) => {
  const base = {
    dataset: undefined,
    dataDir: undefined,
    json: false,
    limit: undefined,
    threads: undefined,
    help: false,
  };
  await t.step("parseEvalArgs() reads every flag", () => {
    deepEqual(
      parseEvalArgs([
        "--model-path",
        "m.safetensors",
        "--dataset=fashion-mnist",
        "--data-dir",
        "d",
        "--json",
        "--limit",
        "10",
        "--threads",
        "2",
      ]),
      {
        modelPath: "m.safetensors",
        dataset: "fashion-mnist",
        dataDir: "d",
        json: true,
        limit: 10,
        threads: 2,
        help: false,
      },
    );
  });
  await t.step("parseEvalArgs() leaves --dataset undefined by default (the model's own)", () => {
    deepEqual(parseEvalArgs(["--model-path=m"]), { ...base, modelPath: "m" });
  });
  await t.step("parseEvalArgs() returns help: true without --model-path", () => {
    deepEqual(parseEvalArgs(["--limit", "-3", "-h"]), { modelPath: "", json: false, help: true });
  });
  const bad: { argv: string[]; cls: ErrorClass; message: string }[] = [
    {
      argv: [],
      cls: UsageError,
      message: "Missing --model-path: eval needs a model file to evaluate (see --help)",
    },
    {
      argv: ["--model-path", "m", "--epochs", "3"],
      cls: UsageError,
      message: "Unknown flag --epochs (see --help)",
    },
    {
      argv: ["m.safetensors"],
      cls: UsageError,
      message:
        "Unexpected argument m.safetensors (positional arguments are not accepted; see --help)",
    },
    {
      argv: ["--model-path", "m", "--limit", "-1"],
      cls: RangeError,
      message: "Invalid --limit: -1 (must be an integer ≥ 1)",
    },
    {
      argv: ["--model-path", "m", "--limit=2.5"],
      cls: TypeError,
      message: "Invalid --limit: 2.5 (must be an integer ≥ 1)",
    },
    {
      argv: ["--model-path", "m", "--dataset", "svhn"],
      cls: RangeError,
      message: "Invalid --dataset: svhn (must be one of: mnist, fashion-mnist)",
    },
    {
      argv: ["--model-path"],
      cls: UsageError,
      message: "Missing value for --model-path (usage: --model-path FILE)",
    },
  ];
  for (const { argv, cls, message } of bad) {
    await t.step(`parseEvalArgs() rejects ${JSON.stringify(argv)} with ${cls.name}`, () => {
      throwsExactly(() => parseEvalArgs(argv), cls, message);
    });
  }
});

Deno.test("estimateWasmBytes()", async (t) => {
  await t.step(
    "estimateWasmBytes() of 784-1600-800-10 at T = 20 follows the formula (about 22 MB)",
    () => {
      const weights = 784 * 1600 * 8 + 1600 * 800 * 8 + 800 * 12 * 8;
      const perLayer = (784 + 1600 + 800 + 12) * (20 * 4 * 3 + 64);
      equal(estimateWasmBytes([784, 1600, 800, 10], 20), weights + perLayer + 1024 * 1024);
      equal(estimateWasmBytes([784, 1600, 800, 10], 20), 22_372_160);
    },
  );
  await t.step("estimateWasmBytes() rounds layer sizes up to multiples of 4", () => {
    equal(estimateWasmBytes([1, 1], 1), 1024 * 1024 + 1 * 4 * 8 + 2 * (4 * 12 + 4 * 64));
  });
  await t.step("estimateWasmBytes() of 784-100000-100000-10 exceeds 4 GiB", () => {
    ok(estimateWasmBytes([784, 100000, 100000, 10], 20) > 4 * 1024 ** 3);
  });
  await t.step("parseTrainArgs() refuses an absurd --hidden 1e300 by its memory need", () => {
    throws(() => parseTrainArgs(["--hidden", "1e300"]), {
      name: "RangeError",
      message:
        "Invalid --hidden: 1e+300 needs about 6.7e+294 GB of WebAssembly memory (at most 4 GiB: 32-bit memory)",
    });
  });
  await t.step("parseTrainArgs() accepts the largest hidden layers that fit in 4 GiB", () => {
    deepEqual(parseTrainArgs(["--hidden", "20000,20000"]).hidden, [20000, 20000]);
  });
});

Deno.test("checkOutDir()", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("checkOutDir() accepts an empty directory", () => {
      checkOutDir(dir);
    });
    await t.step("checkOutDir() accepts a missing directory", () => {
      checkOutDir(join(dir, "missing"));
    });
    await t.step("checkOutDir() accepts a directory holding only other files", async () => {
      const other = join(dir, "other");
      await Deno.mkdir(join(other, "sub.safetensors"), { recursive: true });
      await Deno.writeTextFile(join(other, "notes.txt"), "hi");
      checkOutDir(other);
    });
    const runs: { files: string[]; shown: string }[] = [
      { files: ["log.jsonl"], shown: "log.jsonl" },
      { files: ["run.json"], shown: "run.json" },
      { files: ["epoch-3.safetensors"], shown: "epoch-3.safetensors" },
      { files: ["run.json", "log.jsonl", "a.txt"], shown: "log.jsonl, run.json" },
    ];
    for (const [i, { files, shown }] of runs.entries()) {
      await t.step(`checkOutDir() refuses a directory holding ${files.join(", ")}`, async () => {
        const run = join(dir, `run${i}`);
        await Deno.mkdir(run);
        for (const f of files) await Deno.writeTextFile(join(run, f), "{}\n");
        throws(() => checkOutDir(run), {
          name: "Error",
          message: `Refusing to use --out ${run}: it already holds a run (${shown}); ` +
            "choose another directory or remove it",
        });
      });
    }
    await t.step("checkOutDir() refuses a file", async () => {
      const file = join(dir, "file");
      await Deno.writeTextFile(file, "");
      throws(() => checkOutDir(file), {
        message: `Refusing to use --out ${file}: it is not a directory`,
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("help texts", async (t) => {
  const trainFlags = [
    "--dataset",
    "--hidden",
    "--tsteps",
    "--epochs",
    "--lr",
    "--lr-decay",
    "--lr-decay-start",
    "--dropout",
    "--mempot-thres",
    "--mempot-decay",
    "--desire-thres",
    "--error-margin",
    "--random-seed",
    "--model-path",
    "--eval",
    "--no-shuffle-data",
    "--out",
    "--log",
    "--limit",
    "--validation",
    "--data-dir",
    "--threads",
    "--checkpoint-every",
    "--resume",
  ];
  await t.step("TRAIN_HELP lists every train flag and the preset defaults", () => {
    for (const flag of trainFlags) ok(TRAIN_HELP.includes(`  ${flag} `), flag);
    ok(TRAIN_HELP.includes("  -h, --help "));
    for (
      const text of [
        "1600,800",
        "1000,100",
        "[150 for mnist, 600 for fashion-mnist]",
        "[1e-6 1e-5]",
        "[10000]",
      ]
    ) {
      ok(TRAIN_HELP.includes(text), text);
    }
  });
  await t.step("EVAL_HELP lists every eval flag", () => {
    const evalFlags = ["--model-path", "--dataset", "--data-dir", "--json", "--limit", "--threads"];
    for (const flag of evalFlags) ok(EVAL_HELP.includes(`  ${flag} `), flag);
    ok(EVAL_HELP.includes("  -h, --help "));
  });
  await t.step("MAIN_HELP names both commands and both ways to run them", () => {
    for (
      const text of ["deno task train", "deno task eval", "deno run -A cli.ts train", "eval  "]
    ) {
      ok(MAIN_HELP.includes(text), text);
    }
  });
  await t.step("help texts fit in 100 columns", () => {
    for (const help of [MAIN_HELP, TRAIN_HELP, EVAL_HELP]) {
      for (const line of help.split("\n")) ok(line.length <= 100, line);
    }
  });
});
