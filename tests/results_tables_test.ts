import assert from "node:assert/strict";
import { readLog, runRow } from "../scripts/results_tables.ts";
import type { EpochPoint } from "../src/plot.ts";

Deno.test("results_tables: a run's row has best, final and validation-chosen epochs", () => {
  const at = (epoch: number, test: number, elapsedSeconds: number) => ({
    epoch,
    lr: 1e-5,
    train: 0.9,
    test,
    elapsedSeconds,
  });
  const rows: EpochPoint[] = [
    at(1, 0.9, 60),
    at(2, 0.95, 120),
    at(3, 0.95, 180),
    { ...at(4, 0.94, 3720), validationChosen: { epoch: 3, test: 0.95 } },
  ];
  assert.deepEqual(runRow("x", rows, 10), [
    "x",
    "4 / 10",
    "95.00 % (epoch 2)", // the earliest of the tied best epochs
    "94.00 %",
    "95.00 % (epoch 3)",
    "1 h 2 min",
  ]);
  assert.equal(runRow("y", rows.slice(0, 2), 2)[4], "(no validation split)");
});

Deno.test("results_tables: logs are read, and bad ones are named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.jsonl`, bad = `${dir}/bad.jsonl`;
    await Deno.writeTextFile(
      good,
      '{"run":"header"}\n' +
        '{"epoch":1,"lr":1e-5,"train_accuracy":0.4,"test_accuracy":0.5,"elapsed_seconds":1,' +
        '"validation_chosen_epoch":1,"validation_chosen_test_accuracy":0.5}\n',
    );
    await Deno.writeTextFile(bad, "{not json\n");
    assert.deepEqual(readLog(good), [{
      epoch: 1,
      lr: 1e-5,
      train: 0.4,
      test: 0.5,
      elapsedSeconds: 1,
      validationChosen: { epoch: 1, test: 0.5 },
    }]);
    assert.throws(() => readLog(bad), /bad\.jsonl: line 1 is not JSON/);
    assert.throws(() => readLog(`${dir}/missing.jsonl`), /Cannot read log .*missing\.jsonl/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
