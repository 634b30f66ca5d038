// The generated CRDs on a real kube-apiserver: a valid SandboxConfig round-trips with its
// defaults, and the apiserver itself refuses invalid ones with a message naming the field.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient, ApiError } from "../../src/kube/client.js";
import { testControlPlane } from "../harness/controlplane.js";
import { installCrds } from "../harness/cluster.js";
import type { SandboxConfig } from "../../src/api/index.js";

type Spec = Record<string, unknown>;
const valid = (): Spec => ({
  nodeSelector: { matchLabels: { "node-role.kubernetes.io/worker": "" } },
  runtimes: { allowed: ["gvisor", "kata-qemu"], preferred: ["kata-qemu", "gvisor"] },
  variants: [
    { name: "kata-big", backend: "kata-qemu", vcpus: 4, memory: "4Gi", kernelParams: ["hugepages=16"] },
    { name: "kata-gpu", backend: "kata-qemu", vfio: { plug: "hot-plug", rootPorts: 1, nodeSelector: { "feature.node.kubernetes.io/pci-10de.present": "true" } } },
  ],
});
const config = (spec: Spec, name = "cluster") => ({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name }, spec });

describe("SandboxConfig CRD on a real apiserver", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(client);
  });
  after(async () => {
    client?.close();
    await cp?.stop();
  });

  it("stores a valid SandboxConfig and applies the schema defaults", async () => {
    await client.delete("SandboxConfig", "cluster");
    const created = await client.create(config(valid()) as never);
    const got = await client.get<SandboxConfig>("SandboxConfig", "cluster");
    assert.equal(got.metadata.uid, (created as SandboxConfig).metadata.uid);
    assert.equal(got.spec.runtimeClassName, "sandboxed");
    assert.equal(got.spec.rollout?.maxUnavailable, 1);
    assert.equal(got.spec.rollout?.drain, false);
    assert.equal(got.spec.uninstall?.whenPodsRun, "Wait");
    assert.equal(got.spec.podPolicy?.defaultMode, "off");
    assert.deepEqual(got.spec.variants?.[0]?.kernelParams, ["hugepages=16"]);
    await client.delete("SandboxConfig", "cluster");
  });

  it("a server-side apply of nodeSelector {} over matchLabels means every node again", async () => {
    await client.delete("SandboxConfig", "cluster");
    await client.apply(config(valid()) as never);
    const reapplied = await client.apply<SandboxConfig>(config({ ...valid(), nodeSelector: {} }) as never);
    assert.deepEqual(reapplied.spec.nodeSelector, {});
    await client.delete("SandboxConfig", "cluster");
  });

  it("accepts a percentage for maxUnavailable", async () => {
    await client.create({ ...config({ ...valid(), rollout: { maxUnavailable: "25%" } }) } as never, { dryRun: true });
  });

  const invalid: Array<[string, Spec | (() => ReturnType<typeof config>), RegExp]> = [
    ["selector operator that does not exist", { ...valid(), nodeSelector: { matchExpressions: [{ key: "zone", operator: "Like", values: ["a"] }] } }, /spec\.nodeSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Like"/],
    ["selector In without values", { ...valid(), nodeSelector: { matchExpressions: [{ key: "zone", operator: "In" }] } }, /spec\.nodeSelector\.matchExpressions\[0\].*values must be non-empty/],
    ["selector label key with spaces", { ...valid(), nodeSelector: { matchLabels: { "bad key": "x" } } }, /spec\.nodeSelector\.matchLabels.*valid label key/],
    ["unknown runtime", { ...valid(), runtimes: { allowed: ["firecracker"] } }, /spec\.runtimes\.allowed\[0\]: Unsupported value: "firecracker"/],
    ["no runtime allowed", { ...valid(), runtimes: { allowed: [] }, variants: [] }, /spec\.runtimes\.allowed: Invalid value: .*should have at least 1 items/],
    ["preferred runtime not allowed", { ...valid(), runtimes: { allowed: ["gvisor"], preferred: ["kata-qemu"] }, variants: [] }, /spec\.runtimes\.preferred: Invalid value.*must also be listed in runtimes\.allowed/],
    ["negative maxUnavailable", { ...valid(), rollout: { maxUnavailable: -1 } }, /spec\.rollout\.maxUnavailable: Invalid value.*integer >= 1 or a percentage/],
    ["maxUnavailable 0%", { ...valid(), rollout: { maxUnavailable: "0%" } }, /spec\.rollout\.maxUnavailable: Invalid value.*integer >= 1 or a percentage/],
    ["duplicate variant names", { ...valid(), variants: [{ name: "v1", backend: "gvisor" }, { name: "v1", backend: "kata-qemu" }] }, /spec\.variants\[1\]: Duplicate value/],
    ["bad memory quantity", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", memory: "2 GB" }] }, /spec\.variants\[0\]\.memory: Invalid value.*Kubernetes quantity/],
    ["guest sizing on gvisor", { ...valid(), variants: [{ name: "v1", backend: "gvisor", vcpus: 2 }] }, /spec\.variants\[0\]: Invalid value.*configure a Kata guest VM/],
    ["variant backend not allowed", { ...valid(), runtimes: { allowed: ["gvisor"] }, variants: [{ name: "v1", backend: "kata-fc" }] }, /spec\.variants: Invalid value.*must be listed in runtimes\.allowed/],
    ["variant named like the general class", { ...valid(), variants: [{ name: "sandboxed", backend: "gvisor" }] }, /spec\.variants: Invalid value.*must differ from the general RuntimeClass name/],
    ["runtimeClassName not a DNS label", { ...valid(), runtimeClassName: "Sandboxed_1" }, /spec\.runtimeClassName: Invalid value: "Sandboxed_1"/],
    ["annotation outside the sandbox namespaces", { ...valid(), allowedSandboxAnnotations: ["example.com/x"] }, /spec\.allowedSandboxAnnotations\[0\]: Invalid value: "example.com\/x"/],
    ["negative vcpus", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", vcpus: -2 }] }, /spec\.variants\[0\]\.vcpus: Invalid value: -2/],
    ["vfio on Firecracker", { ...valid(), runtimes: { allowed: ["kata-fc"] }, variants: [{ name: "v1", backend: "kata-fc", vfio: { plug: "cold-plug", nodeSelector: { d: "1" } } }] }, /spec\.variants\[0\]\.vfio: Invalid value.*only kata-qemu and kata-clh have/],
    ["vfio on a Cloud Hypervisor switch-port", { ...valid(), runtimes: { allowed: ["kata-clh"] }, variants: [{ name: "v1", backend: "kata-clh", vfio: { plug: "hot-plug", port: "switch-port", nodeSelector: { d: "1" } } }] }, /spec\.variants\[0\]\.vfio\.port: Invalid value.*root-port only/],
    ["vfio rootPorts with cold-plug", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", vfio: { plug: "cold-plug", rootPorts: 2, nodeSelector: { d: "1" } } }] }, /spec\.variants\[0\]\.vfio\.rootPorts: Invalid value.*is for hot-plug/],
    ["vfio without the nodes that have the device", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", vfio: { plug: "cold-plug", nodeSelector: {} } }] }, /spec\.variants\[0\]\.vfio\.nodeSelector: Invalid value.*should have at least 1 properties/],
    ["vfio plug mode unknown", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", vfio: { plug: "warm-plug", nodeSelector: { d: "1" } } }] }, /spec\.variants\[0\]\.vfio\.plug: Unsupported value: "warm-plug"/],
    ["unknown pod policy mode", { ...valid(), podPolicy: { defaultMode: "strict" } }, /spec\.podPolicy\.defaultMode: Unsupported value: "strict"/],
    ["missing runtimes", { nodeSelector: {} }, /spec\.runtimes: Required value/],
    ["a second SandboxConfig name", () => config(valid(), "other"), /there is one SandboxConfig per cluster and it must be named 'cluster'/],
  ];

  for (const [title, specOrObj, expected] of invalid) {
    it(`refuses ${title}`, async () => {
      const obj = typeof specOrObj === "function" ? specOrObj() : config(specOrObj);
      await assert.rejects(client.create(obj as never), (err: unknown) => {
        assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
        assert.equal(err.status, 422, err.message);
        assert.match(err.message, expected);
        return true;
      });
      assert.equal(await client.getOrNull("SandboxConfig", obj.metadata.name), null, "nothing was stored");
    });
  }

  it("refuses an invalid update and keeps the stored object", async () => {
    await client.create(config(valid()) as never);
    const before = await client.get<SandboxConfig>("SandboxConfig", "cluster");
    await assert.rejects(client.mergePatch("SandboxConfig", "cluster", { spec: { rollout: { maxUnavailable: -3 } } }), /spec\.rollout\.maxUnavailable/);
    const afterPatch = await client.get<SandboxConfig>("SandboxConfig", "cluster");
    assert.equal(afterPatch.metadata.resourceVersion, before.metadata.resourceVersion);
    await client.delete("SandboxConfig", "cluster");
  });
});
