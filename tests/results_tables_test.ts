import assert from "node:assert/strict";
import { readLog, runRow } from "../scripts/results_tables.ts";

Deno.test("results_tables: a run's row has best, final and validation-chosen epochs", () => {
  const rows = [
    { epoch: 1, test_accuracy: 0.9, elapsed_seconds: 60 },
    { epoch: 2, test_accuracy: 0.95, elapsed_seconds: 120 },
    { epoch: 3, test_accuracy: 0.95, elapsed_seconds: 180 },
    {
      epoch: 4,
      test_accuracy: 0.94,
      elapsed_seconds: 3720,
      validation_chosen_epoch: 3,
      validation_chosen_test_accuracy: 0.95,
    },
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
      '{"run":"header"}\n{"epoch":1,"test_accuracy":0.5,"elapsed_seconds":1}\n',
    );
    await Deno.writeTextFile(bad, "{not json\n");
    assert.equal(readLog(good).length, 1);
    assert.throws(() => readLog(bad), /bad\.jsonl: line 1 is not JSON/);
    assert.throws(() => readLog(`${dir}/missing.jsonl`), /Cannot read log .*missing\.jsonl/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
