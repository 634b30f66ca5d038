// SandboxConfig checks the CRD cannot make, refused by the real apiserver through the webhook with a
// message naming the field; the stored object is unchanged and warnings reach the client.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient, warningsOf } from "../../src/kube/client.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { testControlPlane } from "../harness/controlplane.js";
import { configSpec, runtimeClass, setupCluster, startTestWebhook, waitWebhookServing, stopWebhookEnv } from "./admission-fixture.js";

type Spec = Record<string, unknown>;
const config = (spec: Spec) => ({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec });
const base = () => configSpec() as unknown as Spec;
const PREFIX = 'admission webhook "sandboxconfigs.validate.sandboxing.dev" denied the request: SandboxConfig cluster is invalid: ';

const refused: Array<[string, Spec, RegExp]> = [
  ["a general class name held by a foreign RuntimeClass", { ...base(), runtimeClassName: "legacy" }, /spec\.runtimeClassName: RuntimeClass legacy already exists and is not managed by sandbox-operator \(label app\.kubernetes\.io\/managed-by=sandbox-operator\); choose another name/],
  ["a general class named like a backend class", { ...base(), runtimeClassName: "gvisor" }, /spec\.runtimeClassName: gvisor is the name of a backend RuntimeClass \(kata, kata-clh, kata-fc, gvisor\)/],
  ["an enabled backend whose class name is held by someone else", { ...base(), runtimes: { allowed: ["gvisor", "kata-qemu", "kata-clh"] } }, /spec\.runtimes\.allowed\[2\]: backend kata-clh publishes RuntimeClass kata-clh, but RuntimeClass kata-clh already exists/],
  ["a variant named like a foreign RuntimeClass", { ...base(), variants: [{ name: "runc", backend: "gvisor" }] }, /spec\.variants\[0\]\.name: RuntimeClass runc already exists and is not managed by sandbox-operator/],
  ["allowing the Kata hypervisor path annotation", { ...base(), allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor.path"] }, /spec\.allowedSandboxAnnotations\[0\]: io\.katacontainers\.config\.hypervisor\.path cannot be allowed: its value names a host file or program/],
  ["allowing the virtiofsd annotation among others", { ...base(), allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor.default_vcpus", "io.katacontainers.config.hypervisor.virtio_fs_daemon"] }, /spec\.allowedSandboxAnnotations\[1\]: io\.katacontainers\.config\.hypervisor\.virtio_fs_daemon cannot be allowed/],
  ["an annotation key no pod could carry", { ...base(), allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor." + "x".repeat(40)] }, /spec\.allowedSandboxAnnotations\[0\]: .* cannot be allowed: its name part .* must be 1-63 characters/],
];

describe("SandboxConfig validation by the webhook on a real apiserver", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook;

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    await setupCluster(client);
    await client.apply(runtimeClass("legacy", false));
    await client.delete("SandboxConfig", "cluster");
    webhook = await startTestWebhook(webhookClient);
    await waitWebhookServing(client);
  });
  after(() => stopWebhookEnv({ webhook, webhookClient, client, cp }));

  for (const [title, spec, expected] of refused) {
    it(`refuses ${title}`, async () => {
      const r = await client.raw("POST", "/apis/sandboxing.dev/v1alpha1/sandboxconfigs", config(spec));
      const body = JSON.parse(r.body) as { message?: string };
      assert.equal(r.status, 422, r.body);
      assert.ok(body.message?.startsWith(PREFIX), body.message);
      assert.match(body.message!, expected);
      assert.equal(await client.getOrNull("SandboxConfig", "cluster"), null, "nothing stored");
    });
  }

  it("accepts a valid config whose classes are ours, and warns about a runsc flag override", async () => {
    const r = await client.raw("POST", "/apis/sandboxing.dev/v1alpha1/sandboxconfigs", config({ ...base(), allowedSandboxAnnotations: ["dev.gvisor.flag.debug"] }));
    assert.equal(r.status, 201, r.body);
    assert.deepEqual(warningsOf(r.headers), ["spec.allowedSandboxAnnotations[0]: dev.gvisor.flag.debug overrides a runsc flag; runsc honours it only when started with --allow-flag-override, and it can weaken the sandbox"]);
  });

  it("refuses an update that takes a foreign class name and keeps the stored object", async () => {
    const before = await client.get("SandboxConfig", "cluster");
    await assert.rejects(client.mergePatch("SandboxConfig", "cluster", { spec: { runtimeClassName: "legacy" } }), /spec\.runtimeClassName: RuntimeClass legacy already exists/);
    assert.equal((await client.get("SandboxConfig", "cluster")).metadata.resourceVersion, before.metadata.resourceVersion);
  });

  it("accepts taking over a class once it carries our managed-by label", async () => {
    await client.apply(runtimeClass("legacy", true));
    await client.mergePatch("SandboxConfig", "cluster", { spec: { runtimeClassName: "legacy" } });
    await client.apply(runtimeClass("legacy", false));
  });
});
