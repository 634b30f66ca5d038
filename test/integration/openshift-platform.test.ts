// Platform detection against a real apiserver: plain Kubernetes (no OpenShift APIs), then the
// OpenShift CRDs from the shared fixtures plus an Infrastructure object for a bare-metal cluster.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { openShiftCrds } from "../harness/mco-simulator.js";
import { detectPlatform, servesApi } from "../../src/openshift/platform.js";

describe("OpenShift platform detection on a real apiserver", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  // Only a shared control plane (SANDBOX_TEST_KUBECONFIG) can hold the CRDs from another file, and
  // only it outlives this file; a private one starts empty and is stopped after, so nothing waits
  // there on the apiserver's CRD finalizer and discovery (which once took over 60 s on a loaded CI run).
  const removeOpenShiftCrds = async () => {
    for (const crd of openShiftCrds()) await client.delete("CustomResourceDefinition", crd.metadata.name);
    if (!cp.shared) return;
    await eventually("OpenShift APIs gone from discovery", async () => !(await servesApi(client, "machineconfiguration.openshift.io/v1", [])) && !(await servesApi(client, "config.openshift.io/v1", [])), 180_000, 250);
  };

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await removeOpenShiftCrds(); // a shared control plane may hold them from another file
  });
  after(async () => {
    // Stop the control plane even when clean-up fails, or the file hangs until the test timeout.
    try {
      if (client) await removeOpenShiftCrds();
    } finally {
      client?.close();
      await cp?.stop();
    }
  });

  it("plain Kubernetes: Auto means DaemonSet", async () => {
    const d = await detectPlatform(client, "Auto");
    assert.deepEqual(d.facts, { machineConfigApi: false, configApi: false });
    assert.deepEqual(d.status, { kind: "Kubernetes", installMethod: "DaemonSet" });
    assert.equal(d.error, undefined);
  });

  it("plain Kubernetes: MachineConfig requested is an error naming the field", async () => {
    const d = await detectPlatform(client, "MachineConfig");
    assert.equal(d.error?.reason, "MachineConfigUnavailable");
    assert.match(d.error!.message, /spec\.installMethod is MachineConfig, but this cluster is not OpenShift/);
  });

  it("OpenShift APIs without Infrastructure/cluster: detected, platform type unknown and said so", async () => {
    await installCrds(client, openShiftCrds());
    await eventually("discovery serves the OpenShift groups", async () => (await servesApi(client, "machineconfiguration.openshift.io/v1", ["machineconfigs", "machineconfigpools"])) && (await servesApi(client, "config.openshift.io/v1", ["infrastructures"])), 30_000, 250);
    const d = await detectPlatform(client);
    assert.equal(d.status.kind, "OpenShift");
    assert.equal(d.status.installMethod, "MachineConfig");
    assert.equal(d.status.infrastructure, undefined);
    assert.match(d.status.message!, /Infrastructure\/cluster does not exist/);
  });

  it("bare-metal OpenShift: reads Infrastructure status and picks MachineConfig; DaemonSet when asked", async () => {
    await client.create({ apiVersion: "config.openshift.io/v1", kind: "Infrastructure", metadata: { name: "cluster" }, spec: { platformSpec: { type: "BareMetal" } } } as never);
    await client.mergePatch("Infrastructure", "cluster", { status: { platform: "BareMetal", platformStatus: { type: "BareMetal" }, controlPlaneTopology: "HighlyAvailable", infrastructureTopology: "HighlyAvailable", infrastructureName: "lab-x7k2p" } }, { subresource: "status" });
    const d = await detectPlatform(client, "Auto");
    assert.deepEqual(d.facts.infrastructure, { platformType: "BareMetal", controlPlaneTopology: "HighlyAvailable", infrastructureTopology: "HighlyAvailable" });
    assert.equal(d.status.kind, "OpenShift");
    assert.equal(d.status.infrastructure, "BareMetal");
    assert.equal(d.status.installMethod, "MachineConfig");
    assert.equal(d.singleReplica, false);
    const ds = await detectPlatform(client, "DaemonSet");
    assert.equal(ds.status.installMethod, "DaemonSet");
    assert.equal(ds.status.infrastructure, "BareMetal");
  });

  it("single-node OpenShift is recognised from its topology", async () => {
    await client.mergePatch("Infrastructure", "cluster", { status: { controlPlaneTopology: "SingleReplica", infrastructureTopology: "SingleReplica" } }, { subresource: "status" });
    const d = await detectPlatform(client);
    assert.equal(d.singleReplica, true);
    assert.match(d.status.message!, /SingleReplica/);
    await client.delete("Infrastructure", "cluster");
  });
});
