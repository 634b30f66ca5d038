// Host access, exemptions, pod updates and uninstall through the real apiserver and the TLS webhook:
// hostPath/host namespaces refused in enforce namespaces unless granted, DaemonSet pods and exempt
// namespaces left alone, updates and ephemeral containers closed, no injection of a class that is gone.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import type { Pod } from "../../src/admission/policy.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually } from "../harness/cluster.js";
import { NS, configSpec, createPod, namespace, pod, runtimeClass, setupCluster, startTestWebhook, waitWebhookActive, stopWebhookEnv } from "./admission-fixture.js";

const ANN = "sandboxing.dev/admission";
const E = NS.enforce;
const GRANTED = "node-tools";
const EXEMPT = "csi-drivers";
const DS_CONTROLLER = "system:serviceaccount:kube-system:daemon-set-controller";

const spec = (): SandboxConfigSpec => ({
  ...configSpec(),
  podPolicy: { defaultMode: "off", allowedHostAccess: [{ namespace: GRANTED, kinds: ["hostNetwork", "hostPath"] }], exemptions: { namespaces: [EXEMPT] } },
});

/** A client that impersonates a user through the admin's credentials (as the DaemonSet controller calls the apiserver). */
async function impersonating(kc: KubeConfig, user: string, groups: string[]): Promise<KubeClient> {
  const wrapped = Object.create(kc) as KubeConfig;
  wrapped.applyToHTTPSOptions = async (opts) => {
    await kc.applyToHTTPSOptions(opts);
    opts.headers = { ...(opts.headers as Record<string, string>), "Impersonate-User": user, "Impersonate-Group": groups } as never;
  };
  return KubeClient.fromKubeConfig(wrapped, { fieldManager: "impersonated" });
}

const logsVolume = [{ name: "scratch", emptyDir: {} }, { name: "logs", hostPath: { path: "/var/log" } }] as unknown as Pod["spec"]["volumes"];
const privileged = (name: string) => ({ name, image: "registry.example/debug:1", securityContext: { privileged: true } });

describe("pod policy: host access, exemptions, updates and uninstall on a real apiserver", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let dsController: KubeClient;
  let webhook: RunningWebhook;

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    dsController = await impersonating(cp.kubeConfig(), DS_CONTROLLER, ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]);
    await setupCluster(client, spec());
    for (const ns of [GRANTED, EXEMPT]) await client.apply(namespace(ns, "enforce"));
    webhook = await startTestWebhook(webhookClient);
    await waitWebhookActive(client);
  });
  after(async () => {
    dsController?.close();
    await stopWebhookEnv({ webhook, webhookClient, client, cp });
  });

  it("refuses a hostPath volume in an enforce namespace, naming the field path and the fix; nothing is stored", async () => {
    const r = await createPod(client, pod("logs-reader", E, { volumes: logsVolume }));
    assert.equal(r.status, 403, r.message);
    assert.match(
      r.message ?? "",
      /admission webhook "enforce\.pods\.sandboxing\.dev" denied the request: pod logs-reader in namespace team-enforce: spec\.volumes\[1\]\.hostPath \(volume logs, path \/var\/log\) reaches the host even from a sandbox \(the node's files: a VM or gVisor does not contain that\), and namespace team-enforce enforces sandboxing: remove it, or have a cluster admin grant hostPath to namespace team-enforce in SandboxConfig cluster spec\.podPolicy\.allowedHostAccess$/,
    );
    assert.equal(await client.getOrNull("Pod", "logs-reader", E), null);
    for (const [field, s] of [["spec.hostNetwork", { hostNetwork: true }], ["spec.hostPID", { hostPID: true }], ["spec.hostIPC", { hostIPC: true }]] as const) {
      const x = await createPod(client, pod(`host-${field.slice(9).toLowerCase()}`, E, { runtimeClassName: "kata", ...s }), true);
      assert.equal(x.status, 403, x.message);
      assert.match(x.message ?? "", new RegExp(`: ${field.replace(".", "\\.")} reaches the host even from a sandbox`));
    }
  });

  it("admits what SandboxConfig grants the namespace, sandboxed, and records the grant; refuses what it does not", async () => {
    const r = await createPod(client, pod("node-exporter", GRANTED, { hostNetwork: true, volumes: logsVolume }));
    assert.equal(r.status, 201, r.message);
    assert.equal(r.obj?.spec.runtimeClassName, "sandboxed");
    assert.match(r.obj?.metadata.annotations?.[ANN] ?? "", /^enforce: runtimeClassName sandboxed (injected|is a sandbox); host access granted by SandboxConfig spec\.podPolicy\.allowedHostAccess \(spec\.hostNetwork, spec\.volumes\[1\]\.hostPath\)$/);
    const pid = await createPod(client, pod("node-ps", GRANTED, { hostNetwork: true, hostPID: true }), true);
    assert.equal(pid.status, 403);
    assert.match(pid.message ?? "", /pod node-ps in namespace node-tools: spec\.hostPID reaches the host .*grant hostPID to namespace node-tools/);
  });

  it("leaves a DaemonSet's pod alone when the DaemonSet controller creates it; the same pod from a user is judged", async () => {
    const ds = await client.apply<KubeObject>({
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "cni", namespace: E },
      spec: { selector: { matchLabels: { app: "cni" } }, template: { metadata: { labels: { app: "cni" } }, spec: { containers: [{ name: "c", image: "registry.example/cni:1" }] } } },
    } as AnyObject);
    const dsPod = (name: string) => {
      const p = pod(name, E, { hostNetwork: true, volumes: [{ name: "bin", hostPath: { path: "/opt/cni/bin" } }], containers: [privileged("install-cni")] });
      (p.metadata as Record<string, unknown>).ownerReferences = [{ apiVersion: "apps/v1", kind: "DaemonSet", name: "cni", uid: ds.metadata.uid, controller: true, blockOwnerDeletion: true }];
      return p;
    };
    const r = await createPod(dsController, dsPod("cni-x7k2p"));
    assert.equal(r.status, 201, r.message);
    assert.equal(r.obj?.spec.runtimeClassName ?? undefined, undefined, "not mutated into a sandbox");
    assert.equal(r.obj?.metadata.annotations?.[ANN], undefined, "not annotated either");
    const forged = await createPod(client, dsPod("cni-forged"));
    assert.equal(forged.status, 403, "an ownerReference anybody can write does not exempt");
    assert.match(forged.message ?? "", /spec\.hostNetwork, spec\.volumes\[0\]\.hostPath \(volume bin, path \/opt\/cni\/bin\) reach the host/);
  });

  it("exempt namespaces from SandboxConfig are left out of the webhooks and follow the config when it changes", async () => {
    const selectorValues = async () => {
      const m = await client.get<KubeObject & { webhooks: Array<{ namespaceSelector: { matchExpressions: Array<{ key: string; values: string[] }> } }> }>("MutatingWebhookConfiguration", "sandbox-operator");
      return m.webhooks[0]!.namespaceSelector.matchExpressions.find((e) => e.key === "kubernetes.io/metadata.name")!.values;
    };
    // The webhook applies its configurations within a second of its SandboxConfig cache syncing;
    // waitWebhookActive only proves the enforce webhook is called, not that this apply has happened.
    await eventually("exempt namespace in the selectors", async () => (await selectorValues()).includes(EXEMPT), 30_000, 200);
    const r = await createPod(client, pod("csi-node", EXEMPT, { runtimeClassName: "runc", hostPID: true, volumes: [{ name: "dev", hostPath: { path: "/dev" } }] }));
    assert.equal(r.status, 201, r.message);
    assert.equal(r.obj?.spec.runtimeClassName, "runc");
    assert.equal(r.obj?.metadata.annotations?.[ANN], undefined);

    await client.apply(namespace("storage-late", "enforce"));
    assert.equal((await createPod(client, pod("late-1", "storage-late", { hostPID: true }), true)).status, 403);
    await client.mergePatch("SandboxConfig", "cluster", { spec: { podPolicy: { exemptions: { namespaces: [EXEMPT, "storage-late"] } } } });
    await eventually("storage-late exempt", async () => (await createPod(client, pod(`late-${Date.now()}`, "storage-late", { hostPID: true }), true)).status === 201, 30_000, 200);
    await eventually("storage-late in the selectors", async () => (await selectorValues()).includes("storage-late"), 30_000, 200);
  });

  it("pod updates cannot add host access (immutable) nor a forbidden sandbox annotation", async () => {
    const r = await createPod(client, pod("app-1", E));
    assert.equal(r.status, 201, r.message);
    const hostNet = await client.raw("PATCH", `/api/v1/namespaces/${E}/pods/app-1`, { spec: { hostNetwork: true } }, "application/merge-patch+json");
    assert.equal(hostNet.status, 422, "the apiserver keeps host namespaces immutable");
    const ann = await client.raw("PATCH", `/api/v1/namespaces/${E}/pods/app-1`, { metadata: { annotations: { "io.katacontainers.config.hypervisor.kernel_params": "init=/bin/sh" } } }, "application/merge-patch+json");
    assert.equal(ann.status, 403, ann.body);
    assert.match(JSON.parse(ann.body).message, /admission webhook "enforce\.pods\.validate\.sandboxing\.dev" denied the request: pod app-1 in namespace team-enforce: this update sets metadata\.annotations io\.katacontainers\.config\.hypervisor\.kernel_params, which reconfigure the sandbox and are not allowed/);
    const label = await client.raw("PATCH", `/api/v1/namespaces/${E}/pods/app-1`, { metadata: { labels: { tier: "web" } } }, "application/merge-patch+json");
    assert.equal(label.status, 200, `ordinary updates pass: ${label.body}`);
    // Same in an off namespace: its webhook fails open, but answers.
    assert.equal((await createPod(client, pod("off-1", NS.off))).status, 201);
    const offAnn = await client.raw("PATCH", `/api/v1/namespaces/${NS.off}/pods/off-1`, { metadata: { annotations: { "dev.gvisor.spec.mount.x": "1" } } }, "application/merge-patch+json");
    assert.equal(offAnn.status, 403, offAnn.body);
  });

  it("kubectl debug: a privileged ephemeral container is refused in an unsandboxed pod of an enforce namespace, admitted in a sandboxed one", async () => {
    await client.apply(namespace("was-off"));
    assert.equal((await createPod(client, pod("legacy", "was-off"))).status, 201);
    await client.apply(namespace("was-off", "enforce"));
    await eventually("was-off enforced", async () => (await createPod(client, pod(`p-${Date.now()}`, "was-off"), true)).obj?.spec.runtimeClassName === "sandboxed", 30_000, 200);
    const debug = (ns: string, name: string, c: Record<string, unknown>) => client.raw("PATCH", `/api/v1/namespaces/${ns}/pods/${name}/ephemeralcontainers`, { spec: { ephemeralContainers: [c] } }, "application/strategic-merge-patch+json");
    const refused = await debug("was-off", "legacy", privileged("debugger"));
    assert.equal(refused.status, 403, refused.body);
    assert.match(JSON.parse(refused.body).message, /pod legacy in namespace was-off: spec\.ephemeralContainers\[0\] \(ephemeral container debugger is privileged\) asks for host privileges, but the pod runs outside a sandbox \(runtimeClassName empty;/);
    const plain = await debug("was-off", "legacy", { name: "plain", image: "registry.example/debug:1" });
    assert.equal(plain.status, 200, plain.body);
    assert.equal((await createPod(client, pod("sbx", E, { runtimeClassName: "gvisor" }))).status, 201);
    const inSandbox = await debug(E, "sbx", privileged("debugger"));
    assert.equal(inSandbox.status, 200, inSandbox.body);
  });

  it("uninstall: with the general RuntimeClass gone nothing is injected (refused, saying why); with the SandboxConfig being deleted or gone pods are admitted unchanged", async () => {
    await client.delete("RuntimeClass", "sandboxed");
    const gone = await eventually("general class gone from the cache", async () => {
      const x = await createPod(client, pod(`u-${Date.now()}`, E), true);
      return x.status === 403 && x;
    }, 30_000, 200);
    assert.match(gone.message ?? "", /spec\.runtimeClassName is empty and RuntimeClass sandboxed does not exist \(the controller publishes it once a node is verified: kubectl get sandboxconfig cluster\), so there is no sandbox to inject\. .*wait until RuntimeClass sandboxed exists, or set runtimeClassName to one of/);
    assert.equal((await createPod(client, pod("named-gvisor", E, { runtimeClassName: "gvisor" }), true)).status, 201, "a class that exists still works");

    // The controller's finalizer holds the SandboxConfig while it reverts the nodes; a test finalizer does the same here.
    await client.mergePatch("SandboxConfig", "cluster", { metadata: { finalizers: ["test.sandboxing.dev/hold"] } });
    await client.delete("SandboxConfig", "cluster");
    const admitted = await eventually("policy stands down while uninstalling", async () => {
      const x = await createPod(client, pod(`d-${Date.now()}`, E), true);
      return x.status === 201 && x;
    }, 30_000, 200);
    assert.equal(admitted.obj?.spec.runtimeClassName ?? undefined, undefined, "no class injected");
    assert.equal(admitted.obj?.metadata.annotations?.[ANN], undefined);
    await client.apply(runtimeClass("sandboxed"));
    await eventually("the webhook sees the class again", async () => webhook.admission.classes().has("sandboxed"), 30_000, 100);
    const still = await createPod(client, pod("during-uninstall", E));
    assert.equal(still.status, 201, still.message);
    assert.equal(still.obj?.spec.runtimeClassName ?? undefined, undefined, "a SandboxConfig being deleted injects nothing, even with the class present");

    await client.mergePatch("SandboxConfig", "cluster", { metadata: { finalizers: null } });
    await eventually("SandboxConfig gone", async () => (await client.getOrNull("SandboxConfig", "cluster")) === null, 30_000, 200);
    await client.delete("RuntimeClass", "sandboxed");
    const after = await createPod(client, pod("after-uninstall", E));
    assert.equal(after.status, 201, after.message);
    assert.equal(after.obj?.spec.runtimeClassName ?? undefined, undefined);
  });
});
