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

  it("accepts the edges of the new rules: 55-character names, core-valid tolerations, zero overhead, Kata's 256Mi minimum, empty label values", async () => {
    const edge = {
      ...valid(),
      runtimeClassName: "r".repeat(55),
      nodeSelector: { matchLabels: { [`${"p".repeat(253)}/${"n".repeat(63)}`]: "" }, matchExpressions: [{ key: "n".repeat(63), operator: "Exists" }] },
      tolerations: [{ operator: "Exists" }, { key: "dedicated", operator: "Equal", value: "sandbox", effect: "NoExecute", tolerationSeconds: 60 }, { key: "gpu", effect: "NoSchedule" }],
      overhead: { gvisor: { cpu: "0", memory: "64Gi" } },
      variants: [{ name: "v".repeat(55), backend: "kata-qemu", memory: "256Mi", kernelParams: ["console=ttyS0", "init=/sbin/init"] }],
    };
    const r = await client.raw("POST", "/apis/sandboxing.dev/v1alpha1/sandboxconfigs?dryRun=All", config(edge));
    assert.equal(r.status, 201, r.body);
  });

  const invalid: Array<[string, Spec | (() => ReturnType<typeof config>), RegExp]> = [
    ["selector operator that does not exist", { ...valid(), nodeSelector: { matchExpressions: [{ key: "zone", operator: "Like", values: ["a"] }] } }, /spec\.nodeSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Like"/],
    ["selector In without values", { ...valid(), nodeSelector: { matchExpressions: [{ key: "zone", operator: "In" }] } }, /spec\.nodeSelector\.matchExpressions\[0\].*values must be non-empty/],
    ["selector label key with spaces", { ...valid(), nodeSelector: { matchLabels: { "bad key": "x" } } }, /spec\.nodeSelector\.matchLabels.*valid label key/],
    ["unknown runtime", { ...valid(), runtimes: { allowed: ["firecracker"] } }, /spec\.runtimes\.allowed\[0\]: Unsupported value: "firecracker"/],
    ["no runtime allowed", { ...valid(), runtimes: { allowed: [] }, variants: [] }, /spec\.runtimes\.allowed: Invalid value: .*should have at least 1 items/],
    ["preferred runtime not allowed", { ...valid(), runtimes: { allowed: ["gvisor"], preferred: ["kata-qemu"] }, variants: [] }, /spec\.runtimes\.preferred: Invalid value.*must also be listed in runtimes\.allowed/],
    ["negative maxUnavailable", { ...valid(), rollout: { maxUnavailable: -1 } }, /spec\.rollout\.maxUnavailable: Invalid value.*-1 is not an integer >= 1 or a percentage/],
    ["maxUnavailable 0%", { ...valid(), rollout: { maxUnavailable: "0%" } }, /spec\.rollout\.maxUnavailable: Invalid value.*"0%" is not an integer >= 1 or a percentage/],
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
    // Issue 15 item 10: input the schema once passed but the cluster then refused (each message names the field and shows the value).
    ["a toleration with operator Exists and a value", { ...valid(), tolerations: [{ key: "gpu", operator: "Exists", value: "x" }] }, /spec\.tolerations\[0\]\.value: .*value "x" must be empty with operator: Exists/],
    ["tolerationSeconds without NoExecute", { ...valid(), tolerations: [{ key: "gpu", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 30 }] }, /spec\.tolerations\[0\]\.tolerationSeconds: .*applies only to effect NoExecute, not "NoSchedule"/],
    ["a toleration key with spaces", { ...valid(), tolerations: [{ key: "dedicated to", operator: "Exists" }] }, /spec\.tolerations\[0\]\.key: .*key "dedicated to" is not a valid label key/],
    ["a toleration with an empty key and operator Equal", { ...valid(), tolerations: [{ value: "x" }] }, /spec\.tolerations\[0\]\.operator: .*an empty key tolerates every taint only with operator: Exists/],
    ["a toleration value that is no label value", { ...valid(), tolerations: [{ key: "k", value: "a b" }] }, /spec\.tolerations\[0\]\.value: Invalid value: "a b"/],
    ["a runtimeClassName too long for its node label", { ...valid(), runtimeClassName: "r".repeat(56) }, new RegExp(`spec\\.runtimeClassName: .*"${"r".repeat(56)}" is longer than 55 characters, the most that fit in the node label sandboxing\\.dev/runtime\\.<name>`)],
    ["a variant name too long for its node label", { ...valid(), variants: [{ name: "v".repeat(60), backend: "gvisor" }] }, new RegExp(`spec\\.variants\\[0\\]\\.name: .*"${"v".repeat(60)}" is longer than 55 characters`)],
    ["a negative overhead", { ...valid(), overhead: { gvisor: { memory: "-64Mi" } } }, /spec\.overhead\.gvisor\.memory: .*"-64Mi" is out of range: use a quantity from 0 to 64Gi/],
    ["an absurd overhead (1e400)", { ...valid(), overhead: { "kata-qemu": { cpu: "1e400" } } }, /spec\.overhead\.kata-qemu\.cpu: .*"1e400" is out of range: use a quantity from 0 to 64/],
    ["a variant overhead that is no quantity", { ...valid(), variants: [{ name: "v1", backend: "gvisor", overhead: { memory: "lots" } }] }, /spec\.variants\[0\]\.overhead\.memory: .*"lots" is not a Kubernetes quantity/],
    ["variant memory 0", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", memory: "0" }] }, /spec\.variants\[0\]\.memory: .*"0" is out of range: use a quantity from 256Mi to 4Ti/],
    ["variant memory 100Ei", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", memory: "100Ei" }] }, /spec\.variants\[0\]\.memory: .*"100Ei" is out of range/],
    ["a selector key whose name part is longer than 63", { ...valid(), nodeSelector: { matchExpressions: [{ key: "x".repeat(64), operator: "Exists" }] } }, new RegExp(`spec\\.nodeSelector\\.matchExpressions\\[0\\]\\.key: .*"${"x".repeat(64)}" is not a valid label key`)],
    ["a matchLabels key whose prefix is longer than 253", { ...valid(), nodeSelector: { matchLabels: { [`${"p".repeat(254)}/x`]: "v" } } }, /spec\.nodeSelector\.matchLabels: .*key "p+\/x" is not a valid label key/],
    ["matchLabels key: null (would be stored as {} and select every node)", { ...valid(), nodeSelector: { matchLabels: { "node-role.kubernetes.io/worker": null } } }, /spec\.nodeSelector\.matchLabels: .*key "node-role\.kubernetes\.io\/worker" has value null/],
    ["a vfio nodeSelector key that is no label key", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", vfio: { plug: "cold-plug", nodeSelector: { "has gpu": "true" } } }] }, /spec\.variants\[0\]\.vfio\.nodeSelector: .*key "has gpu" is not a valid label key/],
    ["a vfio nodeSelector value that is no label value", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", vfio: { plug: "cold-plug", nodeSelector: { gpu: "yes please" } } }] }, /spec\.variants\[0\]\.vfio\.nodeSelector\.gpu: Invalid value: "yes please"/],
    ["a kernel parameter with a NUL byte", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", kernelParams: ["quiet\u0000init=/bin/sh"] }] }, /spec\.variants\[0\]\.kernelParams\[0\]: Invalid value: "quiet\\x00init=\/bin\/sh"/],
    ["a kernel parameter with a non-ASCII space", { ...valid(), variants: [{ name: "v1", backend: "kata-qemu", kernelParams: ["a\u00a0b"] }] }, /spec\.variants\[0\]\.kernelParams\[0\]: Invalid value: "a\\u00a0b"/],
    ["maxUnavailable 0, echoed", { ...valid(), rollout: { maxUnavailable: 0 } }, /spec\.rollout\.maxUnavailable: .*: 0 is not an integer >= 1 or a percentage from 1% to 100%/],
    ["a Kata payload by tag, not digest", { ...valid(), payloads: { kata: { image: "mirror.example:5000/sandbox-operator-kata:3.99.0" } } }, /spec\.payloads\.kata\.image: Invalid value: "mirror\.example:5000\/sandbox-operator-kata:3\.99\.0"/],
    ["a Kata payload without an image", { ...valid(), payloads: { kata: { imagePullPolicy: "Never" } } }, /spec\.payloads\.kata\.image: Required value/],
    ["maxUnavailable \"150%\", echoed", { ...valid(), rollout: { maxUnavailable: "150%" } }, /spec\.rollout\.maxUnavailable: .*: "150%" is not an integer >= 1 or a percentage/],
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
