/**
 * The desire command line: `train` and `eval`.
 *
 * ```sh
 * deno run -A cli.ts train --dataset mnist --epochs 3
 * deno run -A cli.ts eval --model-path runs/x/model-best.safetensors --json
 * ```
 *
 * @module
 */
import {
  EVAL_HELP,
  MAIN_HELP,
  parseEvalArgs,
  parseTrainArgs,
  TRAIN_HELP,
  UsageError,
} from "./src/args.ts";
import { evalOnly, evaluate, type Reporter, runTraining } from "./src/train.ts";
import { loadModel } from "./src/model_file.ts";
import { type DatasetName, loadDataset } from "./src/datasets.ts";
import { Network } from "./src/network.ts";

const encoder = new TextEncoder();

const reporter: Reporter = {
  progress(text: string) {
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}`));
  },
  line(text: string) {
    console.log(text);
  },
};

async function evalCommand(argv: string[]): Promise<void> {
  const o = parseEvalArgs(argv);
  if (o.help) {
    console.log(EVAL_HELP);
    return;
  }
  const model = await loadModel(o.modelPath);
  const dataset = (o.dataset ?? model.dataset) as DatasetName;
  const data = await loadDataset(dataset, { dataDir: o.dataDir });
  const net = await Network.create(model.config, model.seed, model.weights);
  const res = evaluate(net, data.test, o.limit);
  if (o.json) {
    console.log(JSON.stringify({
      accuracy: res.accuracy,
      correct: res.correct,
      samples: res.samples,
      samples_per_second: res.samplesPerSecond,
      seconds: res.seconds,
      dataset,
      model: o.modelPath,
      network: model.config.sizes.join("-"),
      epoch: model.epoch,
    }));
  } else {
    console.log(
      `${o.modelPath}: test accuracy ${
        (100 * res.accuracy).toFixed(2)
      } % (${res.correct}/${res.samples}) ` +
        `on ${dataset}, network ${model.config.sizes.join("-")}, epoch ${model.epoch}, ` +
        `${res.samplesPerSecond.toFixed(0)} samples/s`,
    );
  }
}

async function trainCommand(argv: string[]): Promise<void> {
  const o = parseTrainArgs(argv);
  if (o.help) {
    console.log(TRAIN_HELP);
    return;
  }
  if (o.evalOnly) {
    await evalOnly(o, reporter);
    return;
  }
  await runTraining(o, reporter);
}

/** Runs the CLI on `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "train":
        await trainCommand(rest);
        return 0;
      case "eval":
        await evalCommand(rest);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(MAIN_HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command ${command} (expected train or eval; see --help)`);
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`error: ${msg}`);
    if (Deno.env.get("DESIRE_DEBUG") && e instanceof Error) console.error(e.stack);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
