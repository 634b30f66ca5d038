import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { choosePool, decidePlatform, type PlatformFacts } from "./policy-platform.js";

const k8s: PlatformFacts = { machineConfigApi: false, configApi: false };
const ocp: PlatformFacts = { machineConfigApi: true, configApi: true, infrastructure: { platformType: "BareMetal", controlPlaneTopology: "HighlyAvailable", infrastructureTopology: "HighlyAvailable" } };

describe("decidePlatform", () => {
  const table: Array<[string, PlatformFacts, "Auto" | "DaemonSet" | "MachineConfig", { kind: string; installMethod: string; error?: string; infrastructure?: string }]> = [
    ["Auto on Kubernetes", k8s, "Auto", { kind: "Kubernetes", installMethod: "DaemonSet" }],
    ["DaemonSet on Kubernetes", k8s, "DaemonSet", { kind: "Kubernetes", installMethod: "DaemonSet" }],
    ["MachineConfig on Kubernetes", k8s, "MachineConfig", { kind: "Kubernetes", installMethod: "DaemonSet", error: "MachineConfigUnavailable" }],
    ["Auto on OpenShift", ocp, "Auto", { kind: "OpenShift", installMethod: "MachineConfig", infrastructure: "BareMetal" }],
    ["DaemonSet asked on OpenShift", ocp, "DaemonSet", { kind: "OpenShift", installMethod: "DaemonSet", infrastructure: "BareMetal" }],
    ["MachineConfig on OpenShift", ocp, "MachineConfig", { kind: "OpenShift", installMethod: "MachineConfig", infrastructure: "BareMetal" }],
    ["Auto on OpenShift without the MCO API", { ...ocp, machineConfigApi: false }, "Auto", { kind: "OpenShift", installMethod: "DaemonSet", infrastructure: "BareMetal" }],
    ["MachineConfig on OpenShift without the MCO API", { ...ocp, machineConfigApi: false }, "MachineConfig", { kind: "OpenShift", installMethod: "DaemonSet", error: "MachineConfigUnavailable", infrastructure: "BareMetal" }],
  ];
  for (const [title, facts, requested, want] of table) {
    it(title, () => {
      const d = decidePlatform(facts, requested);
      assert.equal(d.status.kind, want.kind);
      assert.equal(d.status.installMethod, want.installMethod);
      assert.equal(d.status.infrastructure, want.infrastructure);
      assert.equal(d.error?.reason, want.error);
      if (want.error) assert.match(d.error!.message, /spec\.installMethod is MachineConfig.*set spec\.installMethod to DaemonSet or Auto/);
    });
  }
  it("notes a single-node control plane", () => {
    const d = decidePlatform({ ...ocp, infrastructure: { platformType: "None", controlPlaneTopology: "SingleReplica", infrastructureTopology: "SingleReplica" } });
    assert.equal(d.singleReplica, true);
    assert.match(d.status.message!, /SingleReplica/);
  });
});

describe("choosePool", () => {
  const w = (name: string) => ({ name, labels: { "node-role.kubernetes.io/worker": "" } });
  const m = (name: string) => ({ name, labels: { "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/master": "" } });
  it("uses our own pool for worker-only nodes", () => {
    const c = choosePool([w("a"), w("b")]);
    assert.deepEqual([c.pool, c.custom, c.error], ["sandboxed", true, undefined]);
  });
  it("uses the master pool when the selected nodes are masters (compact / single node) and says so", () => {
    const c = choosePool([m("a"), m("b"), m("c")]);
    assert.deepEqual([c.pool, c.custom, c.error], ["master", false, undefined]);
    assert.match(c.message, /compact cluster.*master pool/);
  });
  it("refuses a selection that mixes masters and worker-only nodes, naming the masters", () => {
    const c = choosePool([m("m1"), w("w1")]);
    assert.equal(c.error?.reason, "MixedNodeRoles");
    assert.match(c.error!.message, /control-plane nodes \(m1\).*narrow spec\.nodeSelector/);
  });
});
