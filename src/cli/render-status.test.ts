// Table tests for the status printer: rows from the controller's summary and from the agents'
// SandboxNode status, the header lines, ages, and the JSON/YAML documents.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parse } from "yaml";
import type { SandboxConfig, SandboxNode } from "../api/index.js";
import { age, nodeState, renderStatus, renderStatusTable, statusView, table } from "./render-status.js";

const T = "2026-01-01T00:00:00Z";
const now = new Date("2026-01-01T00:05:00Z");
const c = (type: string, status: string, reason: string, message = "") => ({ type, status: status as "True", reason, message, lastTransitionTime: T });

function sn(name: string, extra: Partial<SandboxNode> = {}, created = T): SandboxNode {
  return { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name, creationTimestamp: created }, spec: { action: "Apply", proceed: false }, ...extra };
}

describe("nodeState", () => {
  const cases: Array<[string, SandboxNode, string, string]> = [
    ["no status yet", sn("a"), "Pending", "WaitingForAgent"],
    ["probed, waiting", sn("a", { status: { phase: "Waiting", conditions: [c("Ready", "False", "WaitingForRollout")] } }), "Pending", "WaitingForRollout"],
    ["applying", sn("a", { status: { phase: "Applying" } }), "Progressing", "Applying"],
    ["progressing condition", sn("a", { status: { conditions: [c("Progressing", "True", "Verifying")] } }), "Progressing", "Verifying"],
    ["verified at the desired hash", sn("a", { spec: { action: "Apply", proceed: true, desired: { hash: "h1", handlers: [] } }, status: { appliedHash: "h1", conditions: [c("Ready", "True", "Verified")] } }), "Ready", "Verified"],
    ["verified but at an old hash", sn("a", { spec: { action: "Apply", proceed: true, desired: { hash: "h2", handlers: [] } }, status: { appliedHash: "h1", phase: "Waiting", conditions: [c("Ready", "True", "Verified")] } }), "Pending", "Verified"],
    ["degraded wins over ready", sn("a", { status: { conditions: [c("Ready", "True", "Verified"), c("Degraded", "True", "VerificationFailed", "no runtime")] } }), "Degraded", "VerificationFailed"],
    ["revert requested", sn("a", { spec: { action: "Revert", proceed: true } }), "Uninstalling", "RevertRequested"],
    ["reverting", sn("a", { spec: { action: "Revert", proceed: true }, status: { conditions: [c("Progressing", "True", "Reverting")] } }), "Uninstalling", "Reverting"],
  ];
  for (const [title, node, state, reason] of cases) {
    it(title, () => assert.deepEqual([nodeState(node).state, nodeState(node).reason], [state, reason]));
  }
});

describe("statusView and the table", () => {
  const config: SandboxConfig = {
    apiVersion: "sandboxing.dev/v1alpha1",
    kind: "SandboxConfig",
    metadata: { name: "cluster" },
    spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor", "kata-qemu"] } },
    status: {
      counts: { selected: 3, ready: 1, progressing: 1, degraded: 1, uninstalling: 0 },
      nodes: [
        { name: "worker-1", state: "Ready", backend: "gvisor", reason: "Verified" },
        { name: "worker-2", state: "Degraded", backend: "kata-qemu", reason: "VerificationFailed", message: "kvm" },
        { name: "worker-3", state: "Progressing", reason: "Applying" },
      ],
      runtimeClasses: ["sandboxed", "gvisor"],
      conditions: [c("Ready", "False", "NodesDegraded", "1 of 3 nodes degraded"), c("Degraded", "True", "NodesDegraded", "worker-2: VerificationFailed")],
    },
  };
  const nodes = [
    sn("worker-1", {}, "2026-01-01T00:04:30Z"),
    sn("worker-2", {}, "2026-01-01T00:02:00Z"),
    sn("worker-3", { spec: { action: "Apply", proceed: true, desired: { hash: "h", handlers: [{ name: "sandboxed", backend: "gvisor", general: true }] } } }, "2025-12-30T00:00:00Z"),
    sn("worker-4", { status: { phase: "Waiting", conditions: [c("Ready", "False", "WaitingForRollout")] } }, "2026-01-01T00:00:00Z"),
  ];

  it("merges the controller's summary with the SandboxNodes, sorted by node", () => {
    const view = statusView(config, nodes);
    assert.deepEqual(
      view.nodes.map((r) => [r.node, r.backend, r.state, r.reason]),
      [
        ["worker-1", "gvisor", "Ready", "Verified"],
        ["worker-2", "kata-qemu", "Degraded", "VerificationFailed"],
        ["worker-3", "gvisor", "Progressing", "Applying"],
        ["worker-4", "-", "Pending", "WaitingForRollout"],
      ],
    );
  });

  it("prints the header and a kubectl-style table", () => {
    assert.equal(
      renderStatusTable(statusView(config, nodes), now),
      [
        "SandboxConfig cluster: Ready=False (NodesDegraded) 1/3 nodes ready 1 degraded 1 progressing",
        "RuntimeClasses: sandboxed, gvisor",
        "Degraded: NodesDegraded: worker-2: VerificationFailed",
        "",
        "NODE       BACKEND     STATE         REASON               AGE",
        "worker-1   gvisor      Ready         Verified             30s",
        "worker-2   kata-qemu   Degraded      VerificationFailed   3m",
        "worker-3   gvisor      Progressing   Applying             2d",
        "worker-4   -           Pending       WaitingForRollout    5m",
        "",
      ].join("\n"),
    );
  });

  it("says when there is no SandboxConfig or no node yet", () => {
    assert.equal(renderStatusTable(statusView(null, []), now), "SandboxConfig cluster: not found (create one: kubectl apply -f examples/sandboxconfig.yaml)\nNo nodes selected yet.\n");
    const fresh = { ...config, status: undefined };
    assert.match(renderStatusTable(statusView(fresh, []), now), /Ready=Unknown \(no status yet: is the controller running\?\)/);
    assert.match(renderStatusTable(statusView({ ...config, metadata: { name: "cluster", deletionTimestamp: T } }, []), now), /^SandboxConfig cluster \(uninstalling\):/);
  });

  it("renders JSON and YAML with the same content", () => {
    const view = statusView(config, nodes);
    assert.deepEqual(JSON.parse(renderStatus(view, "json", now)), view);
    assert.deepEqual(parse(renderStatus(view, "yaml", now)), view);
  });
});

describe("age and table", () => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, "-"],
    ["2026-01-01T00:05:00Z", "0s"],
    ["2026-01-01T00:03:01Z", "119s"],
    ["2026-01-01T00:03:00Z", "2m"],
    ["2026-01-01T00:00:00Z", "5m"],
    ["2025-12-31T22:00:00Z", "2h"],
    ["2025-12-29T00:00:00Z", "3d"],
    ["2026-01-01T00:06:00Z", "0s"],
  ];
  for (const [since, want] of cases) it(`age(${since}) = ${want}`, () => assert.equal(age(since, now), want));

  it("pads every column but the last", () => {
    assert.equal(table(["A", "BB"], [["xyz", "1"], ["", "22"]]), "A     BB\nxyz   1\n      22\n");
  });
});
