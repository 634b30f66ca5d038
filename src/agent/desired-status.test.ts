// Status building: conditions per phase, lastTransitionTime kept unless the status flips.
import assert from "node:assert/strict";
import { it } from "node:test";
import { buildStatus, statusChanged } from "./desired-status.js";

const base = { agentVersion: "0.1.0", generation: 3 };

it("Applied: Ready=True Verified, not progressing, not degraded", () => {
  const s = buildStatus(undefined, { ...base, phase: "Applied", reason: "Verified", message: "2 handler(s) verified", appliedHash: "abc", now: "2026-01-01T00:00:00Z" });
  const c = Object.fromEntries(s.conditions!.map((x) => [x.type, [x.status, x.reason, x.observedGeneration]]));
  assert.deepEqual(c, { Ready: ["True", "Verified", 3], Progressing: ["False", "Idle", 3], Degraded: ["False", "AsExpected", 3] });
  assert.equal(s.appliedHash, "abc");
  assert.equal(s.observedGeneration, 3);
});

it("Failed: Degraded=True with the CRI error, failedHash set; transition time kept while the status holds", () => {
  const a = buildStatus(undefined, { ...base, phase: "Failed", reason: "VerificationFailed", message: "CRI RunPodSandbox: UNKNOWN: boom", failedHash: "h2", appliedHash: "", now: "2026-01-01T00:00:00Z" });
  const b = buildStatus(a, { ...base, phase: "Failed", reason: "VerificationFailed", message: "CRI RunPodSandbox: UNKNOWN: boom", failedHash: "h2", appliedHash: "", now: "2026-01-01T00:05:00Z" });
  const d = b.conditions!.find((x) => x.type === "Degraded")!;
  assert.equal(d.status, "True");
  assert.match(d.message, /UNKNOWN: boom/);
  assert.equal(d.lastTransitionTime, "2026-01-01T00:00:00Z");
  assert.equal(b.failedHash, "h2");
  assert.equal(statusChanged(a, b), false, "only the heartbeat moved");
  const c = buildStatus(b, { ...base, phase: "Applied", reason: "Verified", message: "ok", appliedHash: "h3", now: "2026-01-01T00:06:00Z" });
  assert.equal(c.conditions!.find((x) => x.type === "Degraded")!.lastTransitionTime, "2026-01-01T00:06:00Z");
  assert.equal(c.failedHash, undefined);
  assert.equal(statusChanged(b, c), true);
});

it("Applying: Progressing=True with the phase's reason", () => {
  const s = buildStatus(undefined, { ...base, phase: "Applying", reason: "Applying", message: "writing files", now: "2026-01-01T00:00:00Z" });
  assert.deepEqual(s.conditions!.find((x) => x.type === "Progressing")!.status, "True");
  assert.equal(s.conditions!.find((x) => x.type === "Ready")!.reason, "Applying");
});

it("RuntimeRestartFailed: Degraded=True with the restart error, not Ready, not Progressing", () => {
  const s = buildStatus(undefined, { ...base, phase: "Failed", reason: "RuntimeRestartFailed", message: "host PID 1 is not systemd (...)", failedHash: "h4", now: "2026-01-01T00:00:00Z" });
  const c = Object.fromEntries(s.conditions!.map((x) => [x.type, [x.status, x.reason]]));
  assert.deepEqual(c, { Ready: ["False", "RuntimeRestartFailed"], Progressing: ["False", "Idle"], Degraded: ["True", "RuntimeRestartFailed"] });
  assert.match(s.conditions!.find((x) => x.type === "Degraded")!.message, /not systemd/);
});
