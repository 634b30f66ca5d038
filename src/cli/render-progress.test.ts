// Table tests for install/uninstall progress: rollout readiness, pod problems, blocking conditions.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { daemonSetProgress, deploymentProgress, podProblems, progressLine, uninstallState } from "./render-progress.js";

describe("deploymentProgress", () => {
  const d = (generation: number, replicas: number, status: Record<string, number>) => ({ metadata: { name: "c", generation }, spec: { replicas }, status });
  const cases: Array<[string, ReturnType<typeof d> | null, boolean]> = [
    ["missing", null, false],
    ["no status yet", d(1, 2, {}), false],
    ["all ready", d(1, 2, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 }), true],
    ["new template not observed", d(2, 2, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 }), false],
    ["one ready", d(1, 2, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1 }), false],
    ["old replica still around", d(1, 2, { observedGeneration: 1, replicas: 3, updatedReplicas: 2, readyReplicas: 3, availableReplicas: 3 }), false],
    ["ready but not available yet", d(1, 2, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 1 }), false],
  ];
  for (const [title, dep, done] of cases) it(title, () => assert.equal(deploymentProgress(dep, "c").done, done));

  it("prints one line", () => {
    assert.equal(progressLine(deploymentProgress(d(1, 2, { observedGeneration: 1, updatedReplicas: 2, readyReplicas: 1 }), "controller")), "… controller: 1/2 ready, 2/2 up to date");
    assert.equal(progressLine(daemonSetProgress({ metadata: { name: "a" }, status: { desiredNumberScheduled: 0 } }, "agent")), "✓ agent: 0/0 ready, 0/0 up to date");
  });
});

describe("podProblems", () => {
  it("names each pod that is not ready and why", () => {
    assert.deepEqual(
      podProblems([
        { metadata: { name: "b" }, status: { phase: "Running", containerStatuses: [{ name: "c", ready: false, state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 10s" } } }] } },
        { metadata: { name: "a" }, status: { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available" }] } },
        { metadata: { name: "c" }, status: { phase: "Running", containerStatuses: [{ name: "c", ready: true }] } },
        { metadata: { name: "d" }, status: { phase: "Running", containerStatuses: [{ name: "c", ready: false, state: { terminated: { reason: "Error", exitCode: 2 } } }] } },
      ]),
      ["pod a: not scheduled (Unschedulable: 0/3 nodes are available)", "pod b: c CrashLoopBackOff: back-off 10s", "pod d: c exited 2 (Error)"],
    );
  });
});

describe("uninstallState", () => {
  const c = (type: string, status: string, reason: string, message = "") => ({ type, status: status as "True", reason, message, lastTransitionTime: "2026-01-01T00:00:00Z" });
  const cases: Array<[string, ReturnType<typeof c>[], boolean, string[]]> = [
    ["no conditions", [], false, []],
    ["blocked by pods (the controller's reason)", [c("Ready", "False", "Uninstalling", "2 nodes"), c("Progressing", "True", "UninstallBlockedByPods", "default/web-1")], true, ["Ready=False Uninstalling: 2 nodes", "Progressing=True UninstallBlockedByPods: default/web-1"]],
    ["blocked, another wording", [c("Ready", "False", "UninstallBlocked", "default/web-1 runs sandboxed")], true, ["Ready=False UninstallBlocked: default/web-1 runs sandboxed"]],
    ["pods still running reason", [c("Progressing", "True", "SandboxedPodsRunning", "3 pods")], true, ["Progressing=True SandboxedPodsRunning: 3 pods"]],
    ["reverting, not blocked", [c("Ready", "False", "Uninstalling"), c("Degraded", "False", "AsExpected")], false, ["Ready=False Uninstalling"]],
  ];
  for (const [title, conditions, blocked, lines] of cases) it(title, () => assert.deepEqual(uninstallState(conditions), { blocked, lines }));
});
