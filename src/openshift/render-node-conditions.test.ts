import { it } from "node:test";
import assert from "node:assert/strict";
import { machineConfigNodeConditions } from "./render-node-conditions.js";

it("maps a Degraded node to Degraded=True with the MCO's reason, keeping unchanged transition times", () => {
  const t0 = "2026-01-01T00:00:00Z";
  const t1 = "2026-01-01T00:05:00Z";
  const first = machineConfigNodeConditions({ name: "w1", state: "Progressing", reason: "MachineConfigUpdating", message: "applying" }, 3, t0);
  assert.deepEqual(first.map((c) => `${c.type}=${c.status}`), ["Ready=False", "Progressing=True", "Degraded=False"]);
  const next = machineConfigNodeConditions({ name: "w1", state: "Degraded", reason: "MachineConfigDegraded", message: "drain blocked by PDB" }, 3, t1, first);
  const by = Object.fromEntries(next.map((c) => [c.type, c]));
  assert.deepEqual([by.Degraded!.status, by.Degraded!.reason, by.Degraded!.message, by.Degraded!.lastTransitionTime], ["True", "MachineConfigDegraded", "drain blocked by PDB", t1]);
  assert.equal(by.Ready!.lastTransitionTime, t0, "Ready stayed False: its transition time is kept");
  assert.equal(by.Progressing!.lastTransitionTime, t1, "Progressing flipped");
  assert.ok(next.every((c) => c.observedGeneration === 3));
});
