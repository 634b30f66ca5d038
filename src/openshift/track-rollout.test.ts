import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { renderedHasContent, trackRollout, type NodeView, type PoolView } from "./track-rollout.js";

const OURS = "50-sandbox-operator-sandboxed";
const ref = (name: string, sources: string[]) => ({ name, source: sources.map((s) => ({ apiVersion: "machineconfiguration.openshift.io/v1", kind: "MachineConfig", name: s })) });
const BASE = ["00-worker", "01-worker-kubelet"];
const pool = (spec: ReturnType<typeof ref>, status: ReturnType<typeof ref>, counts: Partial<NonNullable<PoolView["status"]>> = {}): PoolView => ({
  metadata: { name: "sandboxed" },
  spec: { configuration: spec },
  status: { configuration: status, machineCount: 3, updatedMachineCount: 0, readyMachineCount: 0, degradedMachineCount: 0, ...counts },
});
const n = (name: string, current: string, desired: string, state: string, reason?: string): NodeView => ({
  metadata: {
    name,
    labels: { "node-role.kubernetes.io/sandboxed": "" },
    annotations: {
      "machineconfiguration.openshift.io/currentConfig": current,
      "machineconfiguration.openshift.io/desiredConfig": desired,
      "machineconfiguration.openshift.io/state": state,
      ...(reason ? { "machineconfiguration.openshift.io/reason": reason } : {}),
    },
  },
});
const inPool = (x: NodeView) => x.metadata.labels?.["node-role.kubernetes.io/sandboxed"] !== undefined;
const states = (r: ReturnType<typeof trackRollout>) => Object.fromEntries(r.nodes.map((x) => [x.name, `${x.state}/${x.reason}`]));

describe("trackRollout (install)", () => {
  const old = ref("rendered-sandboxed-aaa", BASE);
  const ours = ref("rendered-sandboxed-bbb", [...BASE, OURS]);
  it("classifies Pending, Progressing, Ready and Degraded with the MCO's reason", () => {
    const r = trackRollout({
      pool: pool(ours, old),
      machineConfig: OURS,
      inPool,
      mode: "install",
      nodes: [
        n("a", "rendered-sandboxed-bbb", "rendered-sandboxed-bbb", "Done"),
        n("b", "rendered-sandboxed-aaa", "rendered-sandboxed-bbb", "Working"),
        n("c", "rendered-sandboxed-aaa", "rendered-sandboxed-bbb", "Degraded", "failed to drain node: pod x/y blocked by PDB"),
        n("d", "rendered-sandboxed-aaa", "rendered-sandboxed-aaa", "Done"),
        { metadata: { name: "e", labels: {}, annotations: {} } },
      ],
    });
    assert.deepEqual(states(r), {
      a: "Ready/MachineConfigApplied",
      b: "Progressing/MachineConfigUpdating",
      c: "Degraded/MachineConfigDegraded",
      d: "Pending/WaitingForRender",
      e: "Pending/JoiningPool",
    });
    assert.match(r.nodes[2]!.message, /failed to drain node: pod x\/y blocked by PDB/);
    assert.equal(r.complete, false);
    assert.equal(r.pool?.renderedWithOurs, true);
  });
  it("OSC #596: an unrelated update of the pool is not our rollout", () => {
    // Nothing of ours rendered yet; the pool is busy with someone else's MachineConfig.
    const theirs = ref("rendered-sandboxed-ccc", [...BASE, "99-other-change"]);
    const busy = trackRollout({ pool: pool(theirs, old, { updatedMachineCount: 1 }), machineConfig: OURS, inPool, mode: "install", nodes: [n("a", "rendered-sandboxed-ccc", "rendered-sandboxed-ccc", "Done"), n("b", "rendered-sandboxed-aaa", "rendered-sandboxed-ccc", "Working")] });
    assert.deepEqual(states(busy), { a: "Pending/WaitingForRender", b: "Pending/WaitingForRender" });
    assert.equal(busy.complete, false);
  });
  it("OSC #596: a node moving on for someone else's change stays Ready when it already runs ours", () => {
    const theirsAndOurs = ref("rendered-sandboxed-ddd", [...BASE, OURS, "99-other-change"]);
    const r = trackRollout({ pool: pool(theirsAndOurs, ours), machineConfig: OURS, inPool, mode: "install", nodes: [n("a", "rendered-sandboxed-bbb", "rendered-sandboxed-ddd", "Working"), n("b", "rendered-sandboxed-ddd", "rendered-sandboxed-ddd", "Done")] });
    assert.deepEqual(states(r), { a: "Ready/MachineConfigApplied", b: "Ready/MachineConfigApplied" });
    assert.match(r.nodes[0]!.message, /for another change/);
    assert.equal(r.complete, true);
  });
  it("an older version of our MachineConfig does not count (content check)", () => {
    const r = trackRollout({ pool: pool(ours, ours), machineConfig: OURS, inPool, mode: "install", rendered: [{ name: "rendered-sandboxed-bbb", hasOurContent: false }], nodes: [n("a", "rendered-sandboxed-bbb", "rendered-sandboxed-bbb", "Done")] });
    assert.equal(r.nodes[0]!.state, "Pending");
  });
  it("an unknown rendered config is not taken as ours", () => {
    const r = trackRollout({ pool: pool(ours, ours), machineConfig: OURS, inPool, mode: "install", nodes: [n("a", "rendered-sandboxed-zzz", "rendered-sandboxed-zzz", "Done")] });
    assert.equal(r.nodes[0]!.state, "Pending");
    assert.equal(r.nodes[0]!.runsOurs, undefined);
  });
});

describe("trackRollout (uninstall)", () => {
  const ours = ref("rendered-sandboxed-bbb", [...BASE, OURS]);
  const back = ref("rendered-sandboxed-eee", BASE);
  it("waits until every node runs a config without ours and the pool has settled", () => {
    const mid = trackRollout({ pool: pool(back, ours, { updatedMachineCount: 1, machineCount: 2 }), machineConfig: OURS, inPool, mode: "uninstall", nodes: [n("a", "rendered-sandboxed-eee", "rendered-sandboxed-eee", "Done"), n("b", "rendered-sandboxed-bbb", "rendered-sandboxed-eee", "Working")] });
    assert.deepEqual(states(mid), { a: "Uninstalling/MachineConfigRemoved", b: "Uninstalling/RollingBack" });
    assert.equal(mid.complete, false);
    const done = trackRollout({ pool: pool(back, back, { updatedMachineCount: 2, machineCount: 2 }), machineConfig: OURS, inPool, mode: "uninstall", nodes: [n("a", "rendered-sandboxed-eee", "rendered-sandboxed-eee", "Done"), n("b", "rendered-sandboxed-eee", "rendered-sandboxed-eee", "Done")] });
    assert.equal(done.complete, true);
  });
});

describe("renderedHasContent", () => {
  const files = [{ path: "/etc/crio/crio.conf.d/50-sandbox-operator.conf", content: "[crio]\n" }];
  const rendered = (source: string, extensions = ["sandboxed-containers"]) => ({ metadata: { name: "r" }, spec: { extensions, config: { storage: { files: [{ path: files[0]!.path, contents: { source } }] } } } });
  it("matches our exact bytes, in either data: URL encoding, and the extension", () => {
    assert.equal(renderedHasContent(rendered(`data:text/plain;charset=utf-8;base64,${Buffer.from("[crio]\n").toString("base64")}`), files, "sandboxed-containers"), true);
    assert.equal(renderedHasContent(rendered("data:,%5Bcrio%5D%0A"), files, "sandboxed-containers"), true);
    assert.equal(renderedHasContent(rendered("data:,old"), files, "sandboxed-containers"), false);
    assert.equal(renderedHasContent(rendered("data:,%5Bcrio%5D%0A", []), files, "sandboxed-containers"), false);
  });
});
