// Proves the worked examples of docs/pod-policy.md: every manifest under examples/pod-policy, as the
// real kubectl reads it (YAML 1.1), is applied to the real apiserver with the webhook running, and
// the outcome the docs promise is checked.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { KubeClient, type AnyObject } from "../../src/kube/client.js";
import { publishedClasses, type Pod } from "../../src/admission/policy.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { testControlPlane } from "../harness/controlplane.js";
import { installCrds } from "../harness/cluster.js";
import { kubectlRead } from "../harness/kubectl.js";
import { OPERATOR_NS, createPod, namespace, runtimeClass, startTestWebhook, waitWebhookServing, type CreateResult, stopWebhookEnv } from "./admission-fixture.js";

const DIR = "examples/pod-policy";
const ANN = "sandboxing.dev/admission";

describe("docs/pod-policy.md examples on a real apiserver + webhook", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook;
  const load = (file: string) => kubectlRead(cp.kubeconfigPath, join(DIR, file));

  /** Applies a file: Namespaces with SSA, Pods with POST; returns the pods' results by name. */
  async function applyFile(file: string): Promise<Map<string, CreateResult>> {
    const out = new Map<string, CreateResult>();
    for (const doc of await load(file)) {
      if (doc.kind === "Pod") out.set(doc.metadata.name, await createPod(client, doc as Pod & AnyObject));
      else await client.apply(doc);
    }
    return out;
  }
  const created = (r: CreateResult | undefined) => {
    assert.equal(r?.status, 201, r?.message);
    return r!.obj!;
  };

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    await installCrds(client);
    await client.apply(namespace(OPERATOR_NS));
    const [config] = await load("sandboxconfig.yaml");
    // What the controller publishes for this config, plus a host-runtime class some clusters have.
    for (const name of publishedClasses((config as unknown as { spec: SandboxConfigSpec }).spec).keys()) await client.apply(runtimeClass(name));
    await client.apply(runtimeClass("runc", false));
    webhook = await startTestWebhook(webhookClient);
    await client.apply(namespace("probe", "enforce"));
    await waitWebhookServing(client, "probe");
  });
  after(() => stopWebhookEnv({ webhook, webhookClient, client, cp }));

  it("covers every file in examples/pod-policy", () => {
    const tested = ["sandboxconfig.yaml", "multi-tenant-cnf.yaml", "multi-tenant-cnf.refused.yaml", "faas.yaml", "privileged-workload.yaml", "debug-bpf.yaml", "legacy-image.yaml", "sandbox-annotation.refused.yaml", "host-access.refused.yaml", "host-access-granted.yaml", "exempt-namespace.yaml"];
    assert.deepEqual(readdirSync(DIR).sort(), [...tested].sort());
  });

  it("sandboxconfig.yaml is accepted by the CRD and the webhook", async () => {
    await applyFile("sandboxconfig.yaml");
    await client.get("SandboxConfig", "cluster");
  });

  it("multi-tenant CNFs: the vendor pod is sandboxed with its capabilities", async () => {
    const pod = created((await applyFile("multi-tenant-cnf.yaml")).get("cnf-router"));
    assert.equal(pod.spec.runtimeClassName, "sandboxed");
    assert.equal(pod.metadata.annotations?.[ANN], "enforce: runtimeClassName sandboxed injected; host privileges stay inside the sandbox (container router adds capabilities NET_ADMIN,NET_RAW)");
  });

  it("multi-tenant CNFs: naming runc is refused with the allowed classes", async () => {
    const r = (await applyFile("multi-tenant-cnf.refused.yaml")).get("cnf-firewall")!;
    assert.equal(r.status, 403);
    assert.match(r.message!, /spec\.runtimeClassName runc is not a sandbox RuntimeClass; it also asks for host privileges \(container firewall adds capabilities NET_ADMIN\).*one of sandboxed, kata, gvisor, kata-legacy/);
  });

  it("FaaS: the function keeps gVisor, no warning", async () => {
    const r = (await applyFile("faas.yaml")).get("fn-thumbnail-7f3c")!;
    assert.equal(created(r).spec.runtimeClassName, "gvisor");
    assert.deepEqual(r.warnings, []);
  });

  it("privileged workload: admitted under Kata, with the reason recorded", async () => {
    const pod = created((await applyFile("privileged-workload.yaml")).get("tuned-db"));
    assert.equal(pod.spec.runtimeClassName, "kata");
    assert.equal(pod.metadata.annotations?.[ANN], "enforce: runtimeClassName kata is a sandbox; host privileges stay inside the sandbox (container db is privileged)");
  });

  it("debug tool with CAP_BPF: sandboxed", async () => {
    const pod = created((await applyFile("debug-bpf.yaml")).get("bpftrace"));
    assert.equal(pod.spec.runtimeClassName, "sandboxed");
    assert.match(pod.metadata.annotations?.[ANN] ?? "", /container bpftrace adds capabilities BPF,PERFMON/);
  });

  it("legacy image: audit warns first; after the switch to enforce it runs in the kata-legacy variant", async () => {
    const r = (await applyFile("legacy-image.yaml")).get("billing-php56")!;
    assert.equal(created(r).spec.runtimeClassName ?? undefined, undefined, "audit changes nothing");
    assert.deepEqual(r.warnings, ["namespace legacy-billing audits sandboxing: this pod runs without a sandbox; enforce mode would set runtimeClassName sandboxed"]);
    // Step 2 of the docs: kubectl label namespace legacy-billing sandboxing.dev/policy=enforce --overwrite
    await client.apply(namespace("legacy-billing", "enforce"));
    const [, podDoc] = await load("legacy-image.yaml");
    const next = structuredClone(podDoc) as Pod & AnyObject;
    next.metadata.name = "billing-php56-v2";
    next.spec.runtimeClassName = "kata-legacy";
    let again: CreateResult | undefined;
    for (let i = 0; i < 50 && again?.obj?.metadata.annotations?.[ANN]?.startsWith("enforce") !== true; i++) {
      if (again?.obj) await client.delete("Pod", next.metadata.name, "legacy-billing");
      again = await createPod(client, next);
      if (again.obj?.metadata.annotations?.[ANN]?.startsWith("enforce") !== true) await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(created(again).spec.runtimeClassName, "kata-legacy");
    assert.equal(again!.obj!.metadata.annotations?.[ANN], "enforce: runtimeClassName kata-legacy is a sandbox");
  });

  it("host access: a hostPath volume is refused in an enforce namespace, naming the field path and the grant", async () => {
    const r = (await applyFile("host-access.refused.yaml")).get("log-shipper")!;
    assert.equal(r.status, 403);
    assert.equal(
      r.message,
      'admission webhook "enforce.pods.sandboxing.dev" denied the request: pod log-shipper in namespace log-tenant: spec.volumes[1].hostPath (volume node-logs, path /var/log) reaches the host even from a sandbox (the node\'s files: a VM or gVisor does not contain that), and namespace log-tenant enforces sandboxing: remove it, or have a cluster admin grant hostPath to namespace log-tenant in SandboxConfig cluster spec.podPolicy.allowedHostAccess',
    );
  });

  it("host access: what SandboxConfig grants node-monitoring is admitted, sandboxed, with the grant recorded", async () => {
    const pod = created((await applyFile("host-access-granted.yaml")).get("node-exporter"));
    assert.equal(pod.spec.runtimeClassName, "sandboxed");
    assert.match(pod.metadata.annotations?.[ANN] ?? "", /^enforce: runtimeClassName sandboxed (injected|is a sandbox); host access granted by SandboxConfig spec\.podPolicy\.allowedHostAccess \(spec\.hostNetwork, spec\.volumes\[0\]\.hostPath\)$/);
  });

  it("exempt namespace: the CSI plugin runs unchanged on the host runtime", async () => {
    const r = (await applyFile("exempt-namespace.yaml")).get("csi-node-plugin")!;
    const pod = created(r);
    assert.equal(pod.spec.runtimeClassName ?? undefined, undefined, "not sandboxed");
    assert.equal(pod.metadata.annotations?.[ANN], undefined, "not annotated");
    assert.deepEqual(r.warnings, []);
  });

  it("a sandbox-reconfiguring annotation is refused", async () => {
    const r = (await applyFile("sandbox-annotation.refused.yaml")).get("sneaky")!;
    assert.equal(r.status, 403);
    assert.match(r.message!, /metadata\.annotations io\.katacontainers\.config\.hypervisor\.path reconfigure the sandbox and are not allowed/);
  });
});
