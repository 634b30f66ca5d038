import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CORDON_LABEL, DRAIN_LABEL, drainStep } from "./policy-drain.js";
import type { SandboxConfig } from "../api/index.js";

const config: SandboxConfig = { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { runtimes: { allowed: ["gvisor"] }, rollout: { drain: true, drainTimeoutSeconds: 60 } } };
const t0 = 1_767_225_600_000;

describe("drainStep", () => {
  it("starts with a cordon of ours, keeps an admin's cordon unlabelled, proceeds once empty, reports DrainBlocked past the timeout", () => {
    const fresh = drainStep({ config, node: { name: "n", labels: {} }, kind: "apply", now: t0 })!;
    assert.deepEqual(fresh.labels, { [DRAIN_LABEL]: String(t0 / 1000), [CORDON_LABEL]: "true" });
    assert.deepEqual([fresh.summary.state, fresh.summary.reason, fresh.deadline], ["Progressing", "Draining", t0 + 60_000]);
    const admins = drainStep({ config, node: { name: "n", labels: {}, unschedulable: true }, kind: "revert", now: t0 })!;
    assert.deepEqual(admins.labels, { [DRAIN_LABEL]: String(t0 / 1000) }, "an admin's cordon: not ours to lift later");
    assert.equal(admins.summary.state, "Uninstalling");
    const started = { name: "n", labels: { [DRAIN_LABEL]: String(t0 / 1000), [CORDON_LABEL]: "true" }, unschedulable: true };
    assert.equal(drainStep({ config, node: started, view: { pods: [] }, kind: "apply", now: t0 + 1000 }), undefined, "drained: proceed");
    const refused = "eviction of pod default/web-1 refused: Cannot evict pod (The disruption budget web-pdb needs 1 healthy pods)";
    const blocked = drainStep({ config, node: started, view: { pods: ["default/web-1"], refused }, kind: "apply", now: t0 + 60_000 })!;
    assert.deepEqual([blocked.summary.state, blocked.summary.reason, blocked.deadline, blocked.labels], ["Degraded", "DrainBlocked", undefined, started.labels]);
    assert.match(blocked.summary.message!, /web-1 refused: .*web-pdb.*the node stays cordoned/);
  });
});
