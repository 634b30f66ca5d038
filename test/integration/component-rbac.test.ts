// Each component, with a real service-account token from the real apiserver, asks what it may do
// (SelfSubjectRulesReview) and tries the writes it must not make: RBAC and the policies refuse each.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { ApiError, KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import { crds } from "../../src/manifests/crds.js";
import { AGENT, CONTROLLER, LEADER_LEASE, NAMESPACE, WEBHOOK, WEBHOOK_CA_SECRET } from "../../src/manifests/names.js";
import { AGENT_NAMESPACE_RULES, AGENT_RULES, CONTROLLER_NAMESPACE_RULES, CONTROLLER_RULES, WEBHOOK_NAMESPACE_RULES, WEBHOOK_RULES, installManifests } from "../../src/manifests/render-deploy.js";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds, node } from "../harness/cluster.js";
import { openShiftCrds } from "../harness/mco-simulator.js";
import { requestToken } from "../harness/sa-tokens.js";

type Obj = AnyObject;
interface Rule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

const KINDS = new Set(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Secret"]);
const image = { repository: "localhost/sandbox-operator", tag: "test", digest: "sha256:" + "1".repeat(64) };

/** Every (verb, group, resource, name) a rule grants, as strings. */
const grants = (rules: Rule[]) => new Set(rules.flatMap((r) => r.verbs.flatMap((v) => (r.apiGroups ?? [""]).flatMap((g) => (r.resources ?? []).flatMap((res) => (r.resourceNames?.length ? r.resourceNames : ["*"]).map((n) => `${v} ${g}/${res} ${n}`))))));
/** What every authenticated user may do (the apiserver's own defaults), not ours to restrict. */
const builtin = (g: string) => /^(create|get|list|watch) (authorization\.k8s\.io|authentication\.k8s\.io)\/self/.test(g);

const denied = (re: RegExp) => (e: unknown) => e instanceof ApiError && e.status === 403 && re.test(e.message);

describe("component RBAC and policies, with each component's real service-account token", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  const clients: Record<string, KubeClient> = {};

  async function tokenClient(token: string, name: string): Promise<KubeClient> {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: cp.url, caData: Buffer.from(cp.ca.certPem).toString("base64"), skipTLSVerify: false }],
      users: [{ name, token }],
      contexts: [{ name: "c", cluster: "c", user: name }],
      currentContext: "c",
    });
    return KubeClient.fromKubeConfig(kc, { fieldManager: name });
  }

  async function rulesOf(c: KubeClient, namespace: string): Promise<Set<string>> {
    const r = await c.call<Obj>("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectRulesReview", spec: { namespace } });
    const status = r.status as { resourceRules: Rule[]; incomplete: boolean };
    assert.equal(status.incomplete, false);
    return grants(status.resourceRules);
  }

  /** In our namespace a component has exactly its ClusterRole plus its Role; elsewhere only the ClusterRole. */
  async function assertExactly(c: KubeClient, cluster: Rule[], namespaced: Rule[]) {
    for (const [ns, want] of [[NAMESPACE, grants([...cluster, ...namespaced])], ["default", grants(cluster)]] as const) {
      const got = [...(await rulesOf(c, ns))].filter((g) => !builtin(g));
      assert.deepEqual(got.sort(), [...want].sort(), `rules in namespace ${ns}`);
      assert.ok(!got.some((g) => g.startsWith("* ") || g.includes("/* ") || g.startsWith("deletecollection ")), `no wildcard and no deletecollection in ${ns}: ${got.join(", ")}`);
    }
  }

  before(async () => {
    cp = await startControlPlane();
    admin = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(admin, [...(crds() as unknown as KubeObject[]), ...openShiftCrds().filter((c) => /machineconfig/.test(c.metadata.name))]);
    for (const m of installManifests({ image, version: "0.0.0-test" }, [])) if (KINDS.has(m.kind)) await admin.apply(m as AnyObject);
    await admin.apply(node("node-a"));
    await admin.apply(node("node-b"));
    for (const n of ["node-a", "node-b"]) await admin.apply({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name: n }, spec: { action: "Apply", proceed: false } } as AnyObject);
    const pod = await admin.create<Obj>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "agent-on-node-a", namespace: NAMESPACE },
      spec: { nodeName: "node-a", serviceAccountName: AGENT, containers: [{ name: "agent", image: `${image.repository}@${image.digest}` }] },
    } as AnyObject);
    clients.controller = await tokenClient(await requestToken(admin, NAMESPACE, CONTROLLER), "controller");
    clients.webhook = await tokenClient(await requestToken(admin, NAMESPACE, WEBHOOK), "webhook");
    clients.agent = await tokenClient(await requestToken(admin, NAMESPACE, AGENT, { kind: "Pod", name: pod.metadata.name, uid: pod.metadata.uid! }), "agent");
    // Policies load asynchronously after they are created: wait until the controller's denies.
    await eventually("the controller-scope policy to refuse a Node spec change", async () => {
      try {
        await clients.controller!.mergePatch("Node", "node-a", { spec: { taints: [{ key: "x", effect: "NoSchedule" }] } });
        await admin.mergePatch("Node", "node-a", { spec: { taints: null } });
        return false;
      } catch (e) {
        if (denied(/may change only labels on Nodes/)(e)) return true;
        throw e;
      }
    }, 30_000, 250);
  });
  after(async () => {
    for (const c of Object.values(clients)) c.close();
    admin?.close();
    await cp?.stop();
  });

  it("webhook: may do exactly its rules; cannot create any Secret (no token for the controller), read others or change its CA Secret's type", async () => {
    const c = clients.webhook!;
    await assertExactly(c, WEBHOOK_RULES, WEBHOOK_NAMESPACE_RULES);
    const tokenSecret = { apiVersion: "v1", kind: "Secret", metadata: { name: "sandbox-operator-webhook-tls", namespace: NAMESPACE, annotations: { "kubernetes.io/service-account.name": CONTROLLER } }, type: "kubernetes.io/service-account-token" } as AnyObject;
    await assert.rejects(c.create(tokenSecret), denied(/cannot create resource "secrets"/), "the attack of issue 15: a token Secret for the controller");
    await assert.rejects(c.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "x", namespace: NAMESPACE }, type: "Opaque" } as AnyObject), denied(/cannot create resource "secrets"/));
    await assert.rejects(c.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "x", namespace: "default" }, type: "Opaque" } as AnyObject), denied(/cannot create resource "secrets"/));
    await assert.rejects(c.list("Secret", { namespace: NAMESPACE }), denied(/cannot list resource "secrets"/));
    await assert.rejects(c.delete("Secret", WEBHOOK_CA_SECRET, NAMESPACE), denied(/cannot delete resource "secrets"/));
    await assert.rejects(c.mergePatch("SandboxConfig", "cluster", { spec: {} }), denied(/cannot patch resource "sandboxconfigs"/));
    // What it needs: its pre-created CA Secret, read and written; its type stays Opaque.
    const ca = await c.get<Obj>("Secret", WEBHOOK_CA_SECRET, NAMESPACE);
    assert.equal(ca.type, "Opaque");
    await c.replace({ ...ca, data: { "ca.crt": Buffer.from("x").toString("base64") } });
    await assert.rejects(c.replace({ ...(await c.get<Obj>("Secret", WEBHOOK_CA_SECRET, NAMESPACE)), type: "kubernetes.io/service-account-token" }), (e: unknown) => e instanceof ApiError && e.status === 422 && /field is immutable/.test(e.message));
  });

  it("controller: may do exactly its rules; Nodes only our labels (and our own cordon), evictions, RuntimeClasses and MachineConfigs only ours, no Secrets, one Lease", async () => {
    const c = clients.controller!;
    await assertExactly(c, CONTROLLER_RULES, CONTROLLER_NAMESPACE_RULES);
    const scope = (re: RegExp) => denied(re);
    await assert.rejects(c.mergePatch("Node", "node-a", { spec: { taints: [{ key: "x", effect: "NoSchedule" }] } }), scope(/may change only labels on Nodes/));
    await assert.rejects(c.mergePatch("Node", "node-a", { metadata: { labels: { "kubernetes.io/hostname": "evil" } } }), scope(/only sandboxing.dev\/ labels .* not kubernetes.io\/hostname/));
    await assert.rejects(c.mergePatch("Node", "node-a", { metadata: { labels: { "node-role.kubernetes.io/master": "" } } }), scope(/not node-role.kubernetes.io\/master/));
    await assert.rejects(c.mergePatch("Node", "node-a", { metadata: { annotations: { a: "b" } } }), scope(/may change only labels on Nodes/));
    const labelled = await c.mergePatch<Obj>("Node", "node-a", { metadata: { labels: { "sandboxing.dev/runtime.sandboxed": "true", "node-role.kubernetes.io/sandboxed": "" } } });
    assert.equal(labelled.metadata.labels?.["sandboxing.dev/runtime.sandboxed"], "true", "our labels: allowed");
    await assert.rejects(c.mergePatch("Node", "node-a", { status: { capacity: { cpu: "1000" } } }, { subresource: "status" }), denied(/cannot patch resource "nodes\/status"/));

    // spec.rollout.drain: spec.unschedulable only together with our cordon label, set with it and cleared with it.
    const cordonLabel = "sandboxing.dev/cordoned";
    await assert.rejects(c.mergePatch("Node", "node-a", { spec: { unschedulable: true } }), scope(/except spec.unschedulable set together with its sandboxing.dev\/cordoned label/), "a cordon without our label");
    await assert.rejects(c.mergePatch("Node", "node-a", { metadata: { labels: { [cordonLabel]: "true" } }, spec: { unschedulable: true, taints: [{ key: "x", effect: "NoSchedule" }] } }), scope(/may change only labels on Nodes/), "a taint rides along with the cordon");
    await assert.rejects(c.mergePatch("Node", "node-a", { metadata: { labels: { [cordonLabel]: "true" } } }), scope(/may change only labels on Nodes/), "our cordon label on a schedulable node would later lift an admin's cordon");
    const cordoned = await c.mergePatch<Obj & { spec?: { unschedulable?: boolean } }>("Node", "node-a", { metadata: { labels: { [cordonLabel]: "true" } }, spec: { unschedulable: true } });
    assert.equal(cordoned.spec?.unschedulable, true, "our cordon: allowed");
    const uncordoned = await c.mergePatch<Obj & { spec?: { unschedulable?: boolean } }>("Node", "node-a", { metadata: { labels: { [cordonLabel]: null } }, spec: { unschedulable: null } });
    assert.equal(uncordoned.spec?.unschedulable, undefined, "lifting our own cordon: allowed");
    await admin.mergePatch("Node", "node-b", { spec: { unschedulable: true } });
    await assert.rejects(c.mergePatch("Node", "node-b", { spec: { unschedulable: null } }), scope(/may change only labels on Nodes/), "an admin's cordon is not ours to lift");
    await admin.mergePatch("Node", "node-b", { spec: { unschedulable: null } });
    // Evictions (PodDisruptionBudgets apply) but no pod delete.
    await admin.create({ apiVersion: "v1", kind: "Pod", metadata: { name: "evictee", namespace: "default" }, spec: { nodeName: "node-b", containers: [{ name: "c", image: "registry.invalid/x:1" }] } } as AnyObject);
    await assert.rejects(c.delete("Pod", "evictee", "default"), denied(/cannot delete resource "pods"/));
    await c.call("POST", c.path({ group: "", version: "v1", plural: "pods", namespaced: true }, "evictee", "default", "eviction"), { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "evictee", namespace: "default" } });

    const rc = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name, labels }, handler: name }) as AnyObject;
    const ours = { "app.kubernetes.io/managed-by": "sandbox-operator" };
    await admin.apply(rc("someone-elses"));
    await assert.rejects(c.create(rc("unlabelled")), scope(/only runtimeclasses labelled app.kubernetes.io\/managed-by=sandbox-operator/));
    await assert.rejects(c.apply(rc("someone-elses", ours)), scope(/someone-elses is not/), "taking over a RuntimeClass by labelling it");
    await assert.rejects(c.delete("RuntimeClass", "someone-elses"), scope(/someone-elses is not/));
    await c.create(rc("sandboxed", ours));
    await assert.rejects(c.mergePatch("RuntimeClass", "sandboxed", { metadata: { labels: { "app.kubernetes.io/managed-by": null } } }), scope(/would stop being/));
    assert.ok(await c.delete("RuntimeClass", "sandboxed"), "our own RuntimeClass: deleted");

    const mc = (name: string, role: string, config: object, extra: object = {}) =>
      ({ apiVersion: "machineconfiguration.openshift.io/v1", kind: "MachineConfig", metadata: { name, labels: { "machineconfiguration.openshift.io/role": role, ...ours } }, spec: { config: { ignition: { version: "3.4.0" }, ...config }, ...extra } }) as AnyObject;
    const file = (path: string) => ({ storage: { files: [{ path, mode: 420, contents: { source: "data:,x" } }] } });
    await assert.rejects(c.create(mc("99-evil", "worker", file("/etc/crio/crio.conf.d/50-x.conf"))), scope(/named 50-sandbox-operator-<role>/));
    await assert.rejects(c.create(mc("50-sandbox-operator-worker", "worker", file("/etc/ssh/sshd_config.d/x.conf"))), scope(/write files only under/));
    await assert.rejects(c.create(mc("50-sandbox-operator-worker", "worker", { systemd: { units: [{ name: "evil.service", enabled: true, contents: "[Service]\nExecStart=/bin/sh" }] } })), scope(/no systemd units/));
    await assert.rejects(c.create(mc("50-sandbox-operator-worker", "worker", file("/etc/crio/crio.conf.d/50-x.conf"), { kernelArguments: ["selinux=0"] })), scope(/no systemd units, users, kernel arguments/));
    await c.create(mc("50-sandbox-operator-sandboxed", "sandboxed", file("/etc/crio/crio.conf.d/50-sandbox-operator.conf"), { extensions: ["sandboxed-containers"] }));
    assert.equal((await c.raw("DELETE", "/apis/machineconfiguration.openshift.io/v1/machineconfigs")).status, 403, "no deletecollection on MachineConfigs");
    const pool = { apiVersion: "machineconfiguration.openshift.io/v1", kind: "MachineConfigPool", metadata: { name: "worker", labels: ours }, spec: {} } as AnyObject;
    await assert.rejects(c.create(pool), scope(/may not create or change the master and worker MachineConfigPools/));

    assert.equal((await c.raw("DELETE", "/apis/sandboxing.dev/v1alpha1/sandboxnodes")).status, 403, "no deletecollection on SandboxNodes");
    await assert.rejects(c.get("Secret", WEBHOOK_CA_SECRET, NAMESPACE), denied(/cannot get resource "secrets"/));
    await assert.rejects(c.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "x", namespace: NAMESPACE } } as AnyObject), denied(/cannot create resource "secrets"/));
    const lease = (name: string) => ({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace: NAMESPACE }, spec: { holderIdentity: "x" } }) as AnyObject;
    await c.create(lease(LEADER_LEASE));
    await c.replace({ ...(await c.get<Obj>("Lease", LEADER_LEASE, NAMESPACE)), spec: { holderIdentity: "y" } });
    await admin.create(lease("someone-elses"));
    await assert.rejects(c.get("Lease", "someone-elses", NAMESPACE), denied(/cannot get resource "leases"/));
    await assert.rejects(c.replace({ ...(await admin.get<Obj>("Lease", "someone-elses", NAMESPACE)), spec: { holderIdentity: "x" } }), denied(/cannot update resource "leases"/));
    await assert.rejects(c.delete("Lease", LEADER_LEASE, NAMESPACE), denied(/cannot delete resource "leases"/));
  });

  it("agent (token bound to its pod on node-a): may do exactly its rules; no Node, Secret or other SandboxNode write", async () => {
    const c = clients.agent!;
    await assertExactly(c, AGENT_RULES, AGENT_NAMESPACE_RULES);
    const heartbeat = { status: { phase: "Waiting" } };
    await c.mergePatch("SandboxNode", "node-a", heartbeat, { subresource: "status" });
    await assert.rejects(c.mergePatch("SandboxNode", "node-b", heartbeat, { subresource: "status" }), denied(/may write only SandboxNode node-a, not node-b/));
    await assert.rejects(c.mergePatch("SandboxNode", "node-a", { spec: { proceed: true } }), denied(/cannot patch resource "sandboxnodes"/));
    await assert.rejects(c.mergePatch("Node", "node-a", { metadata: { labels: { "sandboxing.dev/runtime.sandboxed": "true" } } }), denied(/cannot patch resource "nodes"/));
    await assert.rejects(c.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "x", namespace: NAMESPACE }, type: "kubernetes.io/service-account-token" } as AnyObject), denied(/cannot create resource "secrets"/));
    await assert.rejects(c.get("Secret", WEBHOOK_CA_SECRET, NAMESPACE), denied(/cannot get resource "secrets"/));
    await assert.rejects(c.create({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: "x" }, handler: "x" } as AnyObject), denied(/cannot create resource "runtimeclasses"/));
  });
});
