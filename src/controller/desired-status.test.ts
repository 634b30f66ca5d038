import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { desiredStatus, mergeConditions, sameStatus, transitions } from "./desired-status.js";
import type { RolloutPlan, NodePlan } from "./policy-rollout.js";
import type { SandboxConfig } from "../api/index.js";

const config: SandboxConfig = { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster", generation: 3 }, spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor"] } } };
const nodePlan = (name: string, state: NodePlan["summary"]["state"], reason: string, blockedBy: string[] = []): NodePlan => ({ name, delete: false, summary: { name, state, reason }, blockedBy });
const plan = (nodes: NodePlan[], uninstalling = false): RolloutPlan => ({ nodes, budget: 1, inProgress: 0, needPods: false, selected: uninstalling ? 0 : nodes.length, uninstalling, release: [] });
const status = (p: RolloutPlan, conflicts: string[] = [], c = config, now = new Date("2026-01-01T00:00:00Z")) =>
  desiredStatus({ config: c, plan: p, runtimeClasses: ["sandboxed", "gvisor"], conflicts, platform: { kind: "Kubernetes", installMethod: "DaemonSet" }, now });
const reason = (s: ReturnType<typeof status>, type: string) => s.conditions?.find((c) => c.type === type)?.reason;

describe("desiredStatus", () => {
  it("counts nodes and stamps observedGeneration on status and every condition", () => {
    const s = status(plan([nodePlan("a", "Ready", "Verified"), nodePlan("b", "Degraded", "VerificationFailed")]));
    assert.deepEqual(s.counts, { selected: 2, ready: 1, progressing: 0, degraded: 1, uninstalling: 0 });
    assert.equal(s.observedGeneration, 3);
    assert.ok(s.conditions?.every((c) => c.observedGeneration === 3));
    assert.deepEqual([reason(s, "Ready"), reason(s, "Progressing"), reason(s, "Degraded")], ["PartiallyReady", "RolloutComplete", "NodesDegraded"]);
    assert.deepEqual(s.runtimeClasses, ["gvisor", "sandboxed"]);
  });

  const table: Array<[string, RolloutPlan, string[], [string, string, string]]> = [
    ["all ready", plan([nodePlan("a", "Ready", "Verified")]), [], ["AllNodesReady", "RolloutComplete", "AsExpected"]],
    ["nothing selected", plan([]), [], ["NoNodesSelected", "RolloutComplete", "AsExpected"]],
    ["impossible config", plan([nodePlan("a", "Degraded", "NoUsableBackend")]), [], ["NoUsableBackend", "RolloutComplete", "NoUsableBackend"]],
    ["foreign RuntimeClass", plan([nodePlan("a", "Ready", "Verified")]), ["gvisor"], ["RuntimeClassConflict", "RolloutComplete", "RuntimeClassConflict"]],
    ["rolling out", plan([nodePlan("a", "Progressing", "Applying"), nodePlan("b", "Pending", "WaitingForRollout")]), [], ["NoNodeReady", "RollingOut", "AsExpected"]],
    ["uninstall blocked", plan([nodePlan("a", "Uninstalling", "PodsRunning", ["ns/p1"])], true), [], ["Uninstalling", "UninstallBlockedByPods", "AsExpected"]],
  ];
  for (const [title, p, conflicts, want] of table) {
    it(title, () => {
      const s = status(p, conflicts);
      assert.deepEqual([reason(s, "Ready"), reason(s, "Progressing"), reason(s, "Degraded")], want);
    });
  }

  it("a refused RuntimeClass or Node label is never Ready: Degraded with the apiserver's message, even with every node verified", () => {
    const ready = plan([nodePlan("a", "Ready", "Verified")]);
    const refusedRc = { kind: "RuntimeClass" as const, name: "fast", message: 'RuntimeClass.node.k8s.io "fast" is invalid: scheduling.tolerations[0].key: Invalid value: "a b"' };
    const s = desiredStatus({ config, plan: ready, runtimeClasses: ["sandboxed"], conflicts: [], refused: [refusedRc], platform: { kind: "Kubernetes", installMethod: "DaemonSet" }, now: new Date() });
    assert.deepEqual([reason(s, "Ready"), reason(s, "Degraded")], ["RuntimeClassRefused", "RuntimeClassRefused"]);
    assert.equal(s.conditions?.find((c) => c.type === "Ready")?.status, "False");
    assert.match(s.conditions!.find((c) => c.type === "Degraded")!.message, /RuntimeClass fast: RuntimeClass\.node\.k8s\.io "fast" is invalid: scheduling\.tolerations\[0\]\.key: Invalid value: "a b"/);
    const nodeOnly = desiredStatus({ config, plan: ready, runtimeClasses: ["sandboxed"], conflicts: [], refused: [{ kind: "Node", name: "a", message: "denied by policy" }], platform: { kind: "Kubernetes", installMethod: "DaemonSet" }, now: new Date() });
    assert.deepEqual([reason(nodeOnly, "Ready"), reason(nodeOnly, "Degraded")], ["NodeLabelRefused", "NodeLabelRefused"]);
    assert.match(nodeOnly.conditions!.find((c) => c.type === "Ready")!.message, /labels of Node a: denied by policy/);
  });

  it("names blocking pods, first 10 and the count", () => {
    const pods = Array.from({ length: 12 }, (_, i) => `ns/p${i}`);
    const s = status(plan([nodePlan("a", "Uninstalling", "PodsRunning", pods)], true));
    const msg = s.conditions!.find((c) => c.type === "Progressing")!.message;
    assert.match(msg, /12 pod\(s\)/);
    assert.match(msg, /ns\/p9 and 2 more/);
    assert.doesNotMatch(msg, /ns\/p10/);
  });
});

describe("conditions", () => {
  it("keep lastTransitionTime unless the status flips", () => {
    const t0 = new Date("2026-01-01T00:00:00Z");
    const t1 = new Date("2026-01-01T00:05:00Z");
    const first = mergeConditions(undefined, [{ type: "Ready", status: "False", reason: "NoNodeReady", message: "0/1" }], 1, t0);
    const same = mergeConditions(first, [{ type: "Ready", status: "False", reason: "PartiallyReady", message: "1/2" }], 2, t1);
    const flipped = mergeConditions(same, [{ type: "Ready", status: "True", reason: "AllNodesReady", message: "2/2" }], 2, t1);
    assert.equal(same[0]!.lastTransitionTime, "2026-01-01T00:00:00Z");
    assert.equal(same[0]!.observedGeneration, 2);
    assert.equal(flipped[0]!.lastTransitionTime, "2026-01-01T00:05:00Z");
  });

  it("an unchanged world gives an equal status (no write) and no transition", () => {
    const p = plan([nodePlan("a", "Ready", "Verified")]);
    const s1 = status(p);
    const s2 = status(p, [], { ...config, status: s1 }, new Date("2026-02-01T00:00:00Z"));
    assert.ok(sameStatus(s1, s2));
    assert.deepEqual(transitions(s1, s2), []);
  });

  it("groups node transitions into one Event per state", () => {
    const before = status(plan([nodePlan("a", "Progressing", "Applying"), nodePlan("b", "Progressing", "Applying")]));
    const after = status(plan([nodePlan("a", "Ready", "Verified"), nodePlan("b", "Ready", "Verified")]), [], { ...config, status: before });
    const t = transitions(before, after);
    assert.equal(t.filter((x) => x.reason === "NodeReady").length, 1);
    assert.match(t.find((x) => x.reason === "NodeReady")!.message, /2 node\(s\) Ready \(Verified\): a, b/);
  });
});
