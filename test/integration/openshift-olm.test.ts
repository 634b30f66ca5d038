// The committed OLM bundle installed the way OLM installs it (test/harness/mini-olm.ts) onto a real
// apiserver with OLM's CSV CRD and OpenShift's CRDs: every object is accepted, each service
// account's RBAC covers what its component does (SubjectAccessReview), and the webhook and the
// controller, run as processes with their service accounts' tokens, come up and do their work.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import { resourceFor } from "../../src/kube/resources.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { AGENT, AGENT_SCC, CONTROLLER, LEADER_LEASE, NAMESPACE, WEBHOOK, WEBHOOK_CONFIGURATION } from "../../src/manifests/names.js";
import { serviceAccountUser } from "../../src/manifests/render-deploy.js";
import { testControlPlane, freePort } from "../harness/controlplane.js";
import { eventually, installCrds, node } from "../harness/cluster.js";
import { olmCrd, installBundle, type InstalledBundle } from "../harness/mini-olm.js";
import { openShiftCrds } from "../harness/mco-simulator.js";
import { killHard, logOf } from "./controller-helpers.js";

const root = repoRoot();
const SA_GROUPS = ["system:serviceaccounts", `system:serviceaccounts:${NAMESPACE}`, "system:authenticated"];

interface Access {
  verb: string;
  group?: string;
  resource: string;
  subresource?: string;
  name?: string;
  namespace?: string;
}

/** What each component does against the API (src/controller, src/admission, src/agent), as SubjectAccessReview attributes. */
const NEEDS: Record<string, Access[]> = {
  [CONTROLLER]: [
    { verb: "watch", group: "sandboxing.dev", resource: "sandboxconfigs" },
    { verb: "patch", group: "sandboxing.dev", resource: "sandboxconfigs", subresource: "status" },
    { verb: "update", group: "sandboxing.dev", resource: "sandboxconfigs", subresource: "finalizers" },
    { verb: "create", group: "sandboxing.dev", resource: "sandboxnodes" },
    { verb: "patch", resource: "nodes" },
    { verb: "list", resource: "pods" },
    { verb: "delete", group: "node.k8s.io", resource: "runtimeclasses" },
    { verb: "create", group: "machineconfiguration.openshift.io", resource: "machineconfigs" },
    { verb: "patch", group: "machineconfiguration.openshift.io", resource: "machineconfigpools" },
    { verb: "get", group: "config.openshift.io", resource: "infrastructures", name: "cluster" },
    { verb: "update", group: "coordination.k8s.io", resource: "leases", name: LEADER_LEASE, namespace: NAMESPACE },
    { verb: "create", resource: "events", namespace: "default" },
  ],
  [WEBHOOK]: [
    { verb: "create", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations" },
    { verb: "create", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations" },
    { verb: "patch", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: WEBHOOK_CONFIGURATION },
    { verb: "watch", group: "sandboxing.dev", resource: "sandboxconfigs" },
    { verb: "get", group: "node.k8s.io", resource: "runtimeclasses" },
    { verb: "update", resource: "secrets", name: `${WEBHOOK}-ca`, namespace: NAMESPACE },
  ],
  [AGENT]: [
    { verb: "use", group: "security.openshift.io", resource: "securitycontextconstraints", name: AGENT_SCC, namespace: NAMESPACE },
    { verb: "watch", group: "sandboxing.dev", resource: "sandboxnodes" },
    { verb: "patch", group: "sandboxing.dev", resource: "sandboxnodes", subresource: "status", name: "worker-0" },
    { verb: "create", resource: "pods", namespace: NAMESPACE },
    { verb: "get", resource: "pods", subresource: "log", namespace: NAMESPACE },
  ],
};

/** Least privilege: what each must not be able to do. */
const REFUSED: Record<string, Access[]> = {
  [CONTROLLER]: [
    { verb: "create", group: "security.openshift.io", resource: "securitycontextconstraints" },
    { verb: "update", group: "coordination.k8s.io", resource: "leases", name: LEADER_LEASE, namespace: "kube-system" },
    { verb: "get", resource: "secrets", namespace: NAMESPACE },
  ],
  [WEBHOOK]: [
    { verb: "delete", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: "someone-else" },
    { verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "someone-else" },
    { verb: "get", resource: "secrets", name: "other", namespace: NAMESPACE },
    // Its CA Secret ships (empty) in the bundle: it may mint no Secret, a token Secret least of all (docs/security.md).
    { verb: "create", resource: "secrets", namespace: NAMESPACE },
    { verb: "list", resource: "namespaces" },
  ],
  [AGENT]: [
    { verb: "use", group: "security.openshift.io", resource: "securitycontextconstraints", name: "anyuid", namespace: NAMESPACE },
    { verb: "update", group: "sandboxing.dev", resource: "sandboxnodes", name: "worker-0" },
    { verb: "create", resource: "pods", namespace: "default" },
  ],
};

async function allowed(client: KubeClient, sa: string, a: Access): Promise<boolean> {
  const review = await client.create<KubeObject & { status: { allowed: boolean } }>({
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    metadata: { name: "" },
    spec: { user: serviceAccountUser(sa), groups: SA_GROUPS, resourceAttributes: { verb: a.verb, group: a.group ?? "", resource: a.resource, subresource: a.subresource, name: a.name, namespace: a.namespace } },
  } as unknown as KubeObject & { status: { allowed: boolean } });
  return review.status.allowed;
}

/** A kubeconfig file with a fresh token of the service account (what the pod's projected token is). */
async function tokenKubeconfig(client: KubeClient, admin: KubeConfig, sa: string, file: string): Promise<string> {
  const review = await client.call<{ status: { token: string } }>("POST", client.path(resourceFor("ServiceAccount"), sa, NAMESPACE, "token"), {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { audiences: [], expirationSeconds: 3600 },
  });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: "c", server: cluster.server, caData: cluster.caData }], users: [{ name: sa, token: review.status.token }], contexts: [{ name: "c", cluster: "c", user: sa }], currentContext: "c" });
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

describe("OLM bundle installed as OLM does it, on a real apiserver with OpenShift's CRDs", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let installed: InstalledBundle;
  const children: Array<ChildProcess & { logPath: string }> = [];
  const dir = () => cp.cp?.dir ?? "/tmp";
  const spawnAs = (name: string, args: string[]) => {
    const logPath = join(dir(), `${name}.log`);
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const sink = (d: Buffer) => {
      log += d.toString();
      writeFileSync(logPath, log);
    };
    child.stdout!.on("data", sink);
    child.stderr!.on("data", sink);
    const c = Object.assign(child, { logPath });
    children.push(c);
    return c;
  };

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "mini-olm" });
    const olm = ["clusterserviceversions", "operatorgroups", "subscriptions"].map((p) => olmCrd(p) as unknown as KubeObject);
    await installCrds(client, [...olm, ...openShiftCrds()]);
    if (!(await client.getOrNull("Namespace", NAMESPACE))) await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } } as AnyObject);
    installed = await installBundle(client, join(root, "bundle"), NAMESPACE);
  });
  after(async () => {
    try {
      for (const c of children) await killHard(c);
      client?.close();
    } finally {
      await cp?.stop();
    }
  });

  it("every bundle object is accepted: the CSV by OLM's own CRD schema (strict fields), the Deployments, Services, PDBs and RBAC", () => {
    const kinds = installed.created.map((o) => `${o.kind}/${o.metadata.name}`);
    for (const want of [`ClusterServiceVersion/${installed.csv.metadata.name}`, `Deployment/${CONTROLLER}`, `Deployment/${WEBHOOK}`, `Service/${WEBHOOK}`, `PodDisruptionBudget/${WEBHOOK}`, `ServiceAccount/${AGENT}`]) {
      assert.ok(kinds.includes(want), `${want} created; created: ${kinds.join(", ")}`);
    }
    assert.equal(kinds.filter((k) => k.startsWith("ServiceAccount/")).length, 3, "one service account per component, the agent's too");
  });

  it("deploy/openshift/agent.yaml (DaemonSet, the agent's and the controller's admission policies) is accepted beside it", async () => {
    const objs = parseAllDocuments(readFileSync(join(root, "deploy", "openshift", "agent.yaml"), "utf8")).map((d) => d.toJS() as AnyObject);
    assert.deepEqual(objs.map((o) => o.kind).sort(), ["DaemonSet", ...Array(3).fill("ValidatingAdmissionPolicy"), ...Array(3).fill("ValidatingAdmissionPolicyBinding")]);
    assert.ok(objs.some((o) => o.metadata.name === "sandbox-operator-controller-scope"), "the controller's policy, which OLM cannot ship");
    for (const o of objs) await client.apply(o, { force: true });
    const ds = await client.get<KubeObject & { spec: { template: { spec: { serviceAccountName: string } } } }>("DaemonSet", AGENT, NAMESPACE);
    assert.equal(ds.spec.template.spec.serviceAccountName, AGENT, "runs as the service account the CSV created and granted");
  });

  it("docs/install-openshift.md's OperatorGroup and Subscription pass OLM's CRD schemas and name the bundle's package, channel and namespace", async () => {
    const md = readFileSync(join(root, "docs", "install-openshift.md"), "utf8");
    const block = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => /kind: Subscription/.test(b));
    assert.ok(block, "a yaml block with the Subscription");
    const objs = parseAllDocuments(block).map((d) => d.toJS() as AnyObject & { metadata: { namespace: string }; spec: Record<string, unknown> });
    assert.deepEqual(objs.map((o) => o.kind), ["OperatorGroup", "Subscription"]);
    const ann = (parseAllDocuments(readFileSync(join(root, "bundle", "metadata", "annotations.yaml"), "utf8"))[0]!.toJS() as { annotations: Record<string, string> }).annotations;
    const sub = objs[1]!;
    assert.deepEqual([sub.spec.name, sub.spec.channel], [ann["operators.operatorframework.io.bundle.package.v1"], ann["operators.operatorframework.io.bundle.channel.default.v1"]]);
    for (const o of objs) {
      assert.equal(o.metadata.namespace, NAMESPACE);
      const [group, version] = String(o.apiVersion).split("/");
      const ref = { group: group!, version: version!, plural: `${String(o.kind).toLowerCase()}s`, namespaced: true };
      await client.call("POST", client.path(ref, undefined, NAMESPACE, undefined, { fieldValidation: "Strict", dryRun: "All" }), o);
    }
  });

  it("the CSV's pod templates pass the apiserver's PodSecurity admission at restricted (what restricted-v2 also demands); the agent's only at privileged", async () => {
    const ns = "pss-restricted-check";
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" } } });
    type Template = { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: Record<string, unknown> };
    const asPod = (name: string, t: Template) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: ns, annotations: t.metadata.annotations }, spec: t.spec }) as unknown as KubeObject;
    for (const d of installed.csv.spec.install.spec.deployments) await client.create(asPod(d.name, (d.spec as unknown as { template: Template }).template), { dryRun: true });
    const ds = parseAllDocuments(readFileSync(join(root, "deploy", "openshift", "agent.yaml"), "utf8")).map((d) => d.toJS() as AnyObject & { spec: { template: Template } }).find((o) => o.kind === "DaemonSet")!;
    await assert.rejects(client.create(asPod("agent", ds.spec.template), { dryRun: true }), /violates PodSecurity "restricted:latest": .*privileged/);
  });

  for (const [sa, needs] of Object.entries(NEEDS)) {
    it(`${sa}: the CSV's RBAC allows what it does and refuses what it must not (SubjectAccessReview)`, async () => {
      for (const a of needs) assert.equal(await allowed(client, sa, a), true, `${sa} may ${JSON.stringify(a)}`);
      for (const a of REFUSED[sa]!) assert.equal(await allowed(client, sa, a), false, `${sa} may not ${JSON.stringify(a)}`);
    });
  }

  it("the webhook, as its service account, creates its own configurations (no install-time shells under OLM) and becomes ready", async () => {
    const kc = await tokenKubeconfig(client, cp.kubeConfig(), WEBHOOK, join(dir(), "webhook.kubeconfig"));
    const [port, health] = [await freePort(), await freePort()];
    const w = spawnAs("webhook", ["src/admission/main.ts", "--kubeconfig", kc, "--namespace", NAMESPACE, "--port", String(port), "--health-port", String(health), "--url", `https://127.0.0.1:${port}`, "--bind-address", "127.0.0.1"]);
    try {
      for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
        const cfg = await eventually(`${kind} created by the webhook (log: ${logOf(w).slice(-400)})`, async () => {
          const c = await client.getOrNull<KubeObject & { webhooks?: Array<{ clientConfig: { caBundle?: string } }> }>(kind, WEBHOOK_CONFIGURATION);
          return c?.webhooks?.length && c.webhooks.every((h) => h.clientConfig.caBundle) ? c : undefined;
        }, 60_000, 200);
        assert.ok(cfg.webhooks!.length > 0);
      }
      assert.ok(await client.getOrNull("Secret", `${WEBHOOK}-ca`, NAMESPACE), "its CA Secret (shipped empty in the bundle, filled by the webhook)");
      await eventually("webhook /readyz 200", async () => (await fetch(`http://127.0.0.1:${health}/readyz`).catch(() => undefined))?.status === 200, 30_000, 200);
    } finally {
      await killHard(w);
    }
  });

  it("the controller, as its service account, takes its Lease and drives the MachineConfig path on OpenShift", async () => {
    await client.create({ apiVersion: "config.openshift.io/v1", kind: "Infrastructure", metadata: { name: "cluster" }, spec: { platformSpec: { type: "BareMetal" } } } as AnyObject);
    await client.create(node("w1", { "node-role.kubernetes.io/worker": "", sandbox: "yes" }));
    const kc = await tokenKubeconfig(client, cp.kubeConfig(), CONTROLLER, join(dir(), "controller.kubeconfig"));
    const c = spawnAs("controller", ["src/controller/main.ts", "--kubeconfig", kc, "--namespace", NAMESPACE, "--metrics-port", "0", "--health-port", "0", "--identity", "olm-test", "--leader-elect", "true", "--lease-duration-seconds", "3"]);
    try {
      await eventually(`Lease held (log: ${logOf(c).slice(-400)})`, async () => (await client.getOrNull<KubeObject & { spec?: { holderIdentity?: string } }>("Lease", LEADER_LEASE, NAMESPACE))?.spec?.holderIdentity === "olm-test", 60_000, 200);
      await client.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { nodeSelector: { matchLabels: { sandbox: "yes" } }, runtimes: { allowed: ["kata-qemu"] } } } as AnyObject);
      await eventually(`MachineConfig written by the controller's service account (log: ${logOf(c).slice(-400)})`, () => client.getOrNull("MachineConfig", "50-sandbox-operator-sandboxed"), 60_000, 200);
      assert.ok(await client.getOrNull("MachineConfigPool", "sandboxed"));
      const status = await eventually("status.platform", async () => (await client.get<KubeObject & { status?: { platform?: { kind: string; installMethod: string } } }>("SandboxConfig", "cluster")).status?.platform, 30_000, 200);
      assert.deepEqual([status.kind, status.installMethod], ["OpenShift", "MachineConfig"]);
      assert.doesNotMatch(logOf(c), /forbidden/i, "no request of the controller was refused");
    } finally {
      await killHard(c);
    }
  });
});
