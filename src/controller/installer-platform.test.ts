import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { SandboxConfig } from "../api/index.js";
import type { KubeClient } from "../kube/client.js";
import { decidePlatform, type InstallMethodSetting, type PlatformFacts } from "../openshift/index.js";
import type { MachineConfigInstaller } from "./installer-machineconfig.js";
import type { NodeInstaller } from "./installer.js";
import { PlatformInstaller } from "./installer-platform.js";

const config = (installMethod?: InstallMethodSetting): SandboxConfig => ({
  apiVersion: "sandboxing.dev/v1alpha1",
  kind: "SandboxConfig",
  metadata: { name: "cluster", generation: 3, uid: "u" },
  spec: { nodeSelector: {}, runtimes: { allowed: ["kata-qemu"] }, ...(installMethod ? { installMethod } : {}) },
});

function fake(name: string, fail = { on: false }) {
  const calls: string[] = [];
  const inst = {
    platform: { kind: "Kubernetes", installMethod: "DaemonSet" },
    last: undefined,
    calls,
    async reconcile() {
      calls.push(name);
      if (fail.on) throw new Error("boom");
      return { plan: { nodes: [], budget: 1, inProgress: 0, needPods: false, selected: 0, uninstalling: false, release: [] } };
    },
    async nodesClean() {
      return true;
    },
    runtimeClasses: () => [],
  };
  return inst as unknown as NodeInstaller & { calls: string[] };
}

function setup(facts: PlatformFacts) {
  let t = 0;
  const detections: InstallMethodSetting[] = [];
  const fail = { on: false };
  const ds = fake("ds");
  const mc = fake("mc", fail);
  const p = new PlatformInstaller({
    client: {} as KubeClient,
    daemonSet: ds,
    machineConfig: mc as unknown as MachineConfigInstaller,
    redetectMs: 1000,
    now: () => t,
    detect: async (_c, requested) => {
      detections.push(requested);
      return decidePlatform(facts, requested);
    },
  });
  return { p, ds, mc, detections, fail, tick: (ms: number) => (t += ms) };
}

describe("PlatformInstaller", () => {
  it("detects once, caches, re-detects after redetectMs, on a method change and after an error", async () => {
    const s = setup({ machineConfigApi: true, configApi: true, infrastructure: { platformType: "BareMetal" } });
    await s.p.reconcile(config());
    await s.p.reconcile(config());
    assert.deepEqual(s.detections, ["Auto"]);
    assert.deepEqual(s.mc.calls, ["mc", "mc"], "Auto on OpenShift with the MCO: the MachineConfig installer");
    s.tick(1001);
    await s.p.reconcile(config());
    assert.deepEqual(s.detections, ["Auto", "Auto"]);
    await s.p.reconcile(config("DaemonSet"));
    assert.deepEqual(s.detections, ["Auto", "Auto", "DaemonSet"]);
    assert.deepEqual(s.ds.calls, ["ds"]);
    assert.deepEqual([s.p.platform.kind, s.p.platform.installMethod, s.p.platform.infrastructure], ["OpenShift", "DaemonSet", "BareMetal"]);
    s.fail.on = true;
    await assert.rejects(s.p.reconcile(config()), /boom/);
    s.fail.on = false;
    await s.p.reconcile(config());
    assert.equal(s.detections.length, 5, "the failed pass marks the decision stale");
  });

  it("MachineConfig on plain Kubernetes: no installer runs, the plan holds and carries MachineConfigUnavailable", async () => {
    const s = setup({ machineConfigApi: false, configApi: false });
    const r = await s.p.reconcile(config("MachineConfig"));
    assert.deepEqual([s.ds.calls, s.mc.calls], [[], []]);
    assert.equal(r.plan.hold, true);
    assert.deepEqual(r.plan.conditions?.map((c) => [c.type, c.status, c.reason]), [["Ready", "False", "MachineConfigUnavailable"], ["Progressing", "False", "MachineConfigUnavailable"], ["Degraded", "True", "MachineConfigUnavailable"]]);
    assert.deepEqual(s.p.runtimeClasses(config("MachineConfig")), [], "no RuntimeClass published");
    assert.equal(s.p.platform.kind, "Kubernetes");
    const deleting = { ...config("MachineConfig"), metadata: { ...config().metadata, deletionTimestamp: "2026-01-01T00:00:00Z" } };
    await s.p.reconcile(deleting);
    assert.deepEqual(s.ds.calls, ["ds"], "an uninstall still lets the agent path clean up whatever it has");
  });
});
