/**
 * The tables of RESULTS.md from the runs' JSON-lines logs: per run the epochs run, the best
 * (test-chosen) epoch, the final epoch, the validation-chosen epoch's test accuracy and the wall
 * time, as a Markdown table.
 *
 * ```sh
 * deno run -A scripts/results_tables.ts \
 *   "paper configuration, seed 0=results/mnist-paper-s0.log.jsonl:150" \
 *   "paper (Gerlinghoff et al.)=-:150:98.41"
 * ```
 *
 * Each argument is `LABEL=LOG:PLANNED` (a log and its planned epochs), or `LABEL=-:EPOCHS:ACC` for
 * a reference row with a given best accuracy. Prints the table on stdout; a missing or malformed
 * log is an error naming the file.
 *
 * @module
 */

import { type EpochPoint, parseLog } from "../src/plot.ts";

/** The epoch records of a log, read as `cli.ts plot` reads them (errors name the file). */
export function readLog(path: string): EpochPoint[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new TypeError(`Cannot read log ${path}: ${e instanceof Error ? e.message : e}`);
  }
  return parseLog(text, path);
}

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
const hm = (s: number) => {
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${m % 60} min`;
};

/** One table row of a run. */
export function runRow(label: string, rows: EpochPoint[], planned: number): string[] {
  const last = rows[rows.length - 1];
  // The best epoch; the earliest on ties, as the trainer reports it.
  const best = rows.reduce((b, r) => (r.test > b.test ? r : b));
  const chosen = last.validationChosen
    ? `${pct(last.validationChosen.test)} (epoch ${last.validationChosen.epoch})`
    : "(no validation split)";
  return [
    label,
    `${last.epoch} / ${planned}`,
    `${pct(best.test)} (epoch ${best.epoch})`,
    pct(last.test),
    chosen,
    last.elapsedSeconds === undefined ? "—" : hm(last.elapsedSeconds),
  ];
}

if (import.meta.main) {
  if (Deno.args.length === 0) {
    console.error('usage: deno run -A scripts/results_tables.ts "LABEL=LOG:PLANNED" ...');
    Deno.exit(2);
  }
  const table: string[][] = [[
    "run",
    "epochs run / planned",
    "best epoch (test-chosen)",
    "final (last epoch run)",
    "validation-chosen",
    "wall time",
  ]];
  try {
    for (const arg of Deno.args) {
      const eq = arg.lastIndexOf("=");
      const [log, planned, acc] = arg.slice(eq + 1).split(":");
      if (eq < 1 || !log || !planned || !/^\d+$/.test(planned)) {
        throw new TypeError(`Invalid argument ${JSON.stringify(arg)} (expected LABEL=LOG:PLANNED)`);
      }
      const label = arg.slice(0, eq);
      if (log === "-") {
        table.push([label, planned, `**${acc ?? "?"} %**`, "—", "—", "—"]);
      } else table.push(runRow(label, readLog(log), Number(planned)));
    }
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
  const width = table[0].map((_, k) => Math.max(...table.map((r) => r[k].length)));
  const line = (r: string[]) => `| ${r.map((c, k) => c.padEnd(width[k])).join(" | ")} |`;
  console.log(line(table[0]));
  console.log(`| ${width.map((w) => "-".repeat(w)).join(" | ")} |`);
  for (const r of table.slice(1)) console.log(line(r));
}
