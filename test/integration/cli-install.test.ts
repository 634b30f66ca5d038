// sandboxctl install / uninstall against a real kube-apiserver: the dry-run output is accepted by
// server-side apply, install waits for the controller, RBAC is least privilege per component,
// the agent may write only its own SandboxNode, and uninstall says what blocks it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { KubeConfig as KubeConfigClass, type KubeConfig } from "@kubernetes/client-node";
import { ApiError, KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import { resourceFor } from "../../src/kube/resources.js";
import { AGENT, AGENT_NODE_POLICY, CONTROLLER, LEADER_LEASE, NAMESPACE, WEBHOOK, WEBHOOK_CA_SECRET, WEBHOOK_CERT_SECRET, WEBHOOK_CONFIGURATION } from "../../src/manifests/names.js";
import { serviceAccountUser } from "../../src/manifests/render-deploy.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { verifyClassName } from "../../src/render/desired-runtimeclasses.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually, node } from "../harness/cluster.js";
import { sandboxctl, startSandboxctl } from "../harness/sandboxctl.js";

type Obj = AnyObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };
const NODE_CLAIM = "authentication.kubernetes.io/node-name";

/** A client that impersonates a user (with groups and extra fields) through the admin's credentials. */
async function impersonating(kc: KubeConfig, user: string, groups: string[], extra: Record<string, string> = {}): Promise<KubeClient> {
  const wrapped = Object.create(kc) as KubeConfig;
  wrapped.applyToHTTPSOptions = async (opts) => {
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string | string[]> = { ...(opts.headers as Record<string, string>), "Impersonate-User": user, "Impersonate-Group": groups };
    // Header names cannot carry "/", so the extra key is percent-encoded as the apiserver expects.
    for (const [k, v] of Object.entries(extra)) headers[`Impersonate-Extra-${encodeURIComponent(k)}`] = v;
    opts.headers = headers as never;
  };
  return KubeClient.fromKubeConfig(wrapped, { fieldManager: "impersonated" });
}

const saGroups = ["system:serviceaccounts", `system:serviceaccounts:${NAMESPACE}`, "system:authenticated"];

function sandboxNode(name: string): AnyObject {
  return { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name }, spec: { action: "Apply", proceed: false } } as AnyObject;
}

const heartbeat = (phase: string) => ({ status: { phase, heartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, "Z") } });

describe("sandboxctl install and uninstall on a real apiserver", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let env: NodeJS.ProcessEnv;
  let applied: Obj[] = [];

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "cli-install-test" });
    env = { KUBECONFIG: cp.kubeconfigPath };
  });
  after(async () => {
    client?.close();
    await cp?.stop();
  });

  it("install --dry-run prints every manifest, and the apiserver accepts each one by server-side apply", async () => {
    const r = await sandboxctl(["install", "--dry-run"], env);
    assert.equal(r.code, 0, r.stderr);
    applied = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    const committed = parseAllDocuments(readFileSync(join(repoRoot(), "deploy", "sandbox-operator.yaml"), "utf8")).map((d) => d.toJS());
    assert.deepEqual(applied, committed, "install --dry-run prints exactly deploy/sandbox-operator.yaml");
    const kinds = new Set(applied.map((o) => o.kind));
    for (const k of ["CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret", "Deployment", "Service", "DaemonSet", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      assert.ok(kinds.has(k), `the manifests include a ${k}`);
    }
    for (const obj of applied) {
      const got = await client.apply<Obj>(obj);
      assert.equal(got.metadata.name, obj.metadata.name);
    }
    for (const obj of applied) {
      assert.ok(await client.getOrNull(obj.kind!, obj.metadata.name, obj.metadata.namespace), `${obj.kind} ${obj.metadata.name} is stored`);
    }
    const ds = await client.get<Obj>("DaemonSet", AGENT, NAMESPACE);
    const podSpec = (ds.spec as { template: { spec: Record<string, unknown> } }).template.spec;
    assert.deepEqual(podSpec.nodeSelector, { "sandboxing.dev/agent": "true", "kubernetes.io/os": "linux" }, "only nodes the controller selected (DESIGN.md: DaemonSet on selected nodes)");
    assert.equal(podSpec.priorityClassName, "system-node-critical");
    assert.equal(podSpec.hostPID, true, "the agent needs the host's PID 1 (nsenter ... systemctl) and /proc (runtime discovery)");
    const dep = await client.get<Obj>("Deployment", CONTROLLER, NAMESPACE);
    assert.equal((dep.spec as { replicas: number }).replicas, 2);
    assert.match(JSON.stringify(dep.spec), /@sha256:[0-9a-f]{64}/, "the image is pinned by digest");
  });

  it("install --image replaces the operator image only; --gvisor-payload replaces the payload; each must be pinned by digest", async () => {
    const lock = JSON.parse(readFileSync(join(repoRoot(), "deploy", "image.json"), "utf8")) as { gvisorPayload: { repository: string; digest: string } };
    const mirror = "registry.internal:5000/mirror/sandbox-operator@sha256:" + "a".repeat(64);
    const payload = "registry.internal:5000/mirror/sandbox-operator-gvisor@sha256:" + "b".repeat(64);
    const agentArgs = async (args: string[]) => {
      const r = await sandboxctl(["install", "--dry-run", ...args], env);
      assert.equal(r.code, 0, r.stderr);
      const ds = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).find((o) => o.kind === "DaemonSet" && o.metadata.name === AGENT)!;
      const c = (ds.spec as { template: { spec: { containers: Array<{ image: string; args: string[] }> } } }).template.spec.containers[0]!;
      return { image: c.image, payload: c.args.find((a) => a.startsWith("--gvisor-payload="))?.slice("--gvisor-payload=".length), verify: c.args.find((a) => a.startsWith("--verify-image=")) };
    };
    const onlyImage = await agentArgs(["--image", mirror]);
    assert.equal(onlyImage.image, mirror);
    assert.equal(onlyImage.verify, `--verify-image=${mirror}`);
    assert.equal(onlyImage.payload, `${lock.gvisorPayload.repository}@${lock.gvisorPayload.digest}`, "the default payload stays when only the operator image is replaced");
    const both = await agentArgs(["--image", mirror, "--gvisor-payload", payload]);
    assert.deepEqual([both.image, both.payload], [mirror, payload]);
    const bad = await sandboxctl(["install", "--dry-run", "--gvisor-payload", "registry.internal:5000/mirror/sandbox-operator-gvisor:0.1.0"], env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--gvisor-payload "registry\.internal:5000\/mirror\/sandbox-operator-gvisor:0\.1\.0" must be pinned by digest: <repository>@sha256:<64 hex>/);
    assert.equal(bad.stdout, "", "nothing printed, nothing applied");
  });

  it("install applies, then waits until the controller Deployment is ready", async () => {
    const run = startSandboxctl(["install", "--timeout", "90s"], env);
    await eventually("install to start waiting", async () => /waiting up to 90s/.test(run.stderr()), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(run.child.exitCode, null, "install keeps waiting while the controller is not ready");
    // No kube-controller-manager or kubelet runs here: play them by writing the rollout status.
    const dep = await client.get<Obj>("Deployment", CONTROLLER, NAMESPACE);
    await client.mergePatch("Deployment", CONTROLLER, { status: { observedGeneration: dep.metadata.generation, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 } }, { namespace: NAMESPACE, subresource: "status" });
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`applied Deployment ${NAMESPACE}/${CONTROLLER}`));
    assert.match(r.stdout, /✓ controller: 2\/2 ready, 2\/2 up to date/);
    assert.match(r.stdout, /sandbox-operator is installed/);
  });

  it("install --timeout exits 4 and names the Deployment and why its pods are not ready", async () => {
    await client.mergePatch("Deployment", CONTROLLER, { status: { readyReplicas: 0, availableReplicas: 0 } }, { namespace: NAMESPACE, subresource: "status" });
    const pod = await client.create<Obj>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "controller-x", namespace: NAMESPACE, labels: { "app.kubernetes.io/name": "sandbox-operator", "app.kubernetes.io/component": "controller" } },
      spec: { containers: [{ name: "controller", image: "localhost/sandbox-operator@sha256:" + "1".repeat(64) }] },
    } as AnyObject);
    await client.mergePatch("Pod", pod.metadata.name, { status: { phase: "Pending", containerStatuses: [{ name: "controller", ready: false, restartCount: 0, image: "x", imageID: "", state: { waiting: { reason: "ErrImagePull", message: "not found" } } }] } }, { namespace: NAMESPACE, subresource: "status" });
    const r = await sandboxctl(["install", "--timeout", "2s"], env);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`${NAMESPACE}/${CONTROLLER} is not ready after 2s \\(0/2 ready\\)`));
    assert.match(r.stderr, /pod controller-x: controller ErrImagePull: not found/);
    await client.delete("Pod", pod.metadata.name, NAMESPACE);
  });

  it("controller and webhook pods pass Pod Security `restricted`; the agent needs the privileged namespace", async () => {
    const ns = `psa-restricted-${Date.now()}`;
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" } } } as AnyObject);
    const podFrom = (kind: string, name: string): AnyObject => {
      const w = applied.find((o) => o.kind === kind && o.metadata.name === name)!;
      const template = (w.spec as { template: { spec: Record<string, unknown> } }).template;
      return { apiVersion: "v1", kind: "Pod", metadata: { name: `${name}-psa`, namespace: ns }, spec: template.spec } as AnyObject;
    };
    try {
      for (const [kind, name] of [["Deployment", CONTROLLER], ["Deployment", WEBHOOK]] as const) {
        await client.create(podFrom(kind, name) as KubeObject, { dryRun: true });
      }
      await assert.rejects(client.create(podFrom("DaemonSet", AGENT) as KubeObject, { dryRun: true }), (e: unknown) => e instanceof ApiError && e.status === 403 && /violates PodSecurity "restricted:latest".*privileged/.test(e.message));
      const nsObj = await client.get<Obj>("Namespace", NAMESPACE);
      assert.equal(nsObj.metadata.labels?.["pod-security.kubernetes.io/enforce"], "privileged");
    } finally {
      await client.delete("Namespace", ns);
    }
  });

  it("install --service-monitor says so when prometheus-operator is not installed", async () => {
    const r = await sandboxctl(["install", "--service-monitor", "--no-wait"], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ServiceMonitor sandbox-operator-system\/sandbox-operator-controller: the ServiceMonitor kind is not served \(prometheus-operator is not installed\): install it or drop --service-monitor/);
  });

  it("gives each component only the permissions it needs (SubjectAccessReview)", async () => {
    const cases: Array<[string, { verb: string; group: string; resource: string; subresource?: string; namespace?: string; name?: string }, boolean]> = [
      [CONTROLLER, { verb: "patch", group: "", resource: "nodes" }, true],
      [CONTROLLER, { verb: "delete", group: "sandboxing.dev", resource: "sandboxnodes" }, true],
      [CONTROLLER, { verb: "update", group: "sandboxing.dev", resource: "sandboxconfigs", subresource: "finalizers" }, true],
      [CONTROLLER, { verb: "create", group: "node.k8s.io", resource: "runtimeclasses" }, true],
      [CONTROLLER, { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: NAMESPACE, name: LEADER_LEASE }, true],
      [CONTROLLER, { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: NAMESPACE, name: "another-lease" }, false],
      [CONTROLLER, { verb: "deletecollection", group: "sandboxing.dev", resource: "sandboxnodes" }, false],
      [CONTROLLER, { verb: "deletecollection", group: "machineconfiguration.openshift.io", resource: "machineconfigs" }, false],
      [WEBHOOK, { verb: "create", group: "", resource: "secrets", namespace: NAMESPACE }, false],
      [WEBHOOK, { verb: "update", group: "", resource: "secrets", namespace: NAMESPACE, name: WEBHOOK_CERT_SECRET }, false],
      [CONTROLLER, { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system" }, false],
      [CONTROLLER, { verb: "update", group: "sandboxing.dev", resource: "sandboxnodes", subresource: "status" }, false],
      [CONTROLLER, { verb: "get", group: "", resource: "secrets", namespace: NAMESPACE }, false],
      [CONTROLLER, { verb: "delete", group: "", resource: "pods", namespace: "default" }, false],
      [AGENT, { verb: "watch", group: "sandboxing.dev", resource: "sandboxnodes" }, true],
      [AGENT, { verb: "update", group: "sandboxing.dev", resource: "sandboxnodes", subresource: "status" }, false],
      [AGENT, { verb: "patch", group: "sandboxing.dev", resource: "sandboxnodes", subresource: "status" }, true],
      [AGENT, { verb: "patch", group: "sandboxing.dev", resource: "sandboxnodes" }, false],
      [AGENT, { verb: "create", group: "sandboxing.dev", resource: "sandboxnodes" }, false],
      [AGENT, { verb: "get", group: "sandboxing.dev", resource: "sandboxconfigs" }, false],
      [AGENT, { verb: "patch", group: "", resource: "nodes" }, false],
      [AGENT, { verb: "list", group: "", resource: "pods" }, false],
      // Verification Pods: only in its own namespace (the node is checked by a policy, see below).
      [AGENT, { verb: "create", group: "", resource: "pods", namespace: NAMESPACE }, true],
      [AGENT, { verb: "get", group: "", resource: "pods", subresource: "log", namespace: NAMESPACE }, true],
      [AGENT, { verb: "create", group: "", resource: "pods", namespace: "default" }, false],
      [AGENT, { verb: "update", group: "", resource: "pods", namespace: NAMESPACE }, false],
      [WEBHOOK, { verb: "get", group: "", resource: "secrets", namespace: NAMESPACE, name: WEBHOOK_CERT_SECRET }, true],
      [WEBHOOK, { verb: "update", group: "", resource: "secrets", namespace: NAMESPACE, name: WEBHOOK_CA_SECRET }, true],
      [WEBHOOK, { verb: "create", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations" }, false],
      [WEBHOOK, { verb: "get", group: "", resource: "secrets", namespace: NAMESPACE, name: "another-secret" }, false],
      [WEBHOOK, { verb: "create", group: "", resource: "secrets", namespace: "default" }, false],
      [WEBHOOK, { verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: WEBHOOK_CONFIGURATION }, true],
      [WEBHOOK, { verb: "patch", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: "someone-elses" }, false],
      [WEBHOOK, { verb: "list", group: "", resource: "namespaces" }, false],
      [WEBHOOK, { verb: "update", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: WEBHOOK_CONFIGURATION }, false],
      [CONTROLLER, { verb: "get", group: "", resource: "pods", namespace: "default" }, false],
      [CONTROLLER, { verb: "update", group: "node.k8s.io", resource: "runtimeclasses" }, false],
      [WEBHOOK, { verb: "update", group: "sandboxing.dev", resource: "sandboxconfigs" }, false],
    ];
    for (const [sa, attrs, expected] of cases) {
      const review = await client.create<Obj>({
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        metadata: { name: "" },
        spec: { user: serviceAccountUser(sa), groups: saGroups, resourceAttributes: attrs },
      } as AnyObject);
      const allowed = Boolean((review.status as { allowed?: boolean }).allowed);
      assert.equal(allowed, expected, `${sa} ${attrs.verb} ${attrs.resource}${attrs.subresource ? "/" + attrs.subresource : ""}${attrs.namespace ? " in " + attrs.namespace : ""}${attrs.name ? " " + attrs.name : ""}`);
    }
  });

  it("lets an agent write only its own SandboxNode's status (ValidatingAdmissionPolicy on the token's node claim)", async () => {
    for (const n of ["node-a", "node-b"]) await client.apply(sandboxNode(n));
    const kc = cp.kubeConfig();
    const agentA = await impersonating(kc, serviceAccountUser(AGENT), saGroups, { [NODE_CLAIM]: "node-a" });
    const unbound = await impersonating(kc, serviceAccountUser(AGENT), saGroups);
    const controller = await impersonating(kc, serviceAccountUser(CONTROLLER), saGroups);
    try {
      const denied = (re: RegExp) => (e: unknown) => e instanceof ApiError && e.status === 403 && re.test(e.message);
      // The policy is loaded asynchronously after it is created: wait until it denies.
      await eventually("the policy to deny node-a's agent writing node-b", async () => {
        try {
          await agentA.mergePatch("SandboxNode", "node-b", heartbeat("Waiting"), { subresource: "status" });
          return false;
        } catch (e) {
          if (denied(/may write only SandboxNode node-a, not node-b/)(e)) return true;
          throw e;
        }
      }, 30_000, 250);
      const own = await agentA.mergePatch<Obj>("SandboxNode", "node-a", heartbeat("Waiting"), { subresource: "status" });
      assert.equal((own.status as { phase: string }).phase, "Waiting", "the agent writes its own node's status");
      assert.equal((await client.get<Obj>("SandboxNode", "node-b")).status, undefined, "node-b's status was not touched");
      await assert.rejects(unbound.mergePatch("SandboxNode", "node-a", heartbeat("Waiting"), { subresource: "status" }), denied(new RegExp(`${NODE_CLAIM.replace(/\./g, "\\.")} is missing`)));
      await assert.rejects(agentA.mergePatch("SandboxNode", "node-a", { spec: { proceed: true } }), denied(/cannot patch resource "sandboxnodes"/), "RBAC: the agent never writes spec");
      await assert.rejects(agentA.create(sandboxNode("node-c") as KubeObject), denied(/cannot create resource "sandboxnodes"/));
      assert.deepEqual((await agentA.list<Obj>("SandboxNode", { fieldSelector: "metadata.name=node-b" })).items.map((o) => o.metadata.name), ["node-b"], "reads (list/watch) are cluster-wide (documented)");
      await assert.rejects(controller.mergePatch("SandboxNode", "node-a", heartbeat("Applied"), { subresource: "status" }), denied(/cannot patch resource "sandboxnodes\/status"/));
      await client.mergePatch("SandboxNode", "node-b", heartbeat("Probing"), { subresource: "status" });
      assert.ok(await client.getOrNull("ValidatingAdmissionPolicy", AGENT_NODE_POLICY));
    } finally {
      for (const c of [agentA, unbound, controller]) c.close();
    }
  });

  it("keeps verification RuntimeClasses to the agent's own Pods on its own node (ValidatingAdmissionPolicy)", async () => {
    const cls = verifyClassName("sandboxed");
    await client.apply({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: cls }, handler: "sandboxed" } as AnyObject);
    const kc = cp.kubeConfig();
    const agentA = await impersonating(kc, serviceAccountUser(AGENT), saGroups, { [NODE_CLAIM]: "node-a" });
    const pod = (namespace: string, nodeName: string) =>
      ({ apiVersion: "v1", kind: "Pod", metadata: { name: "verify-x", namespace }, spec: { nodeName, runtimeClassName: cls, containers: [{ name: "v", image: "busybox" }] } }) as KubeObject;
    const denied = (re: RegExp) => (e: unknown) => e instanceof ApiError && e.status === 403 && re.test(e.message);
    try {
      await eventually("the policy to refuse a user's Pod on a verification class", async () => {
        try {
          await client.create(pod("default", "node-a"), { dryRun: true });
          return false;
        } catch (e) {
          if (denied(new RegExp(`RuntimeClass ${cls} is only for verification Pods of the sandbox-operator agent`))(e)) return true;
          throw e;
        }
      }, 30_000, 250);
      const ok = (await agentA.create(pod(NAMESPACE, "node-a"), { dryRun: true })) as Obj;
      assert.equal((ok.spec as { runtimeClassName: string }).runtimeClassName, cls, "the agent runs its verification Pod on its own node");
      await assert.rejects(agentA.create(pod(NAMESPACE, "node-b"), { dryRun: true }), denied(/only on the node its token is bound to \(node-a\)/));
      await assert.rejects(agentA.create(pod("default", "node-a"), { dryRun: true }), denied(/cannot create resource "pods" in API group "" in the namespace "default"/), "RBAC: only in its own namespace");
    } finally {
      agentA.close();
      await client.delete("RuntimeClass", cls);
    }
  });

  it("holds with a real pod-bound service account token: its node claim picks the one SandboxNode it may write", async () => {
    // What the kubelet does for the agent pod: a token bound to the pod, which is bound to node-a.
    await client.apply(node("node-a"));
    const pod = await client.create<Obj>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "agent-on-node-a", namespace: NAMESPACE },
      spec: { nodeName: "node-a", serviceAccountName: AGENT, containers: [{ name: "agent", image: "localhost/sandbox-operator@sha256:" + "1".repeat(64) }] },
    } as AnyObject);
    const tokenPath = client.path(resourceFor("ServiceAccount"), AGENT, NAMESPACE, "token");
    const review = await client.call<{ status: { token: string } }>("POST", tokenPath, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { audiences: [], expirationSeconds: 600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata.name, uid: pod.metadata.uid } },
    });
    const kc = cp.kubeConfig();
    const cluster = kc.getCurrentCluster()!;
    const tokenKc = new KubeConfigClass();
    tokenKc.loadFromOptions({
      clusters: [{ name: "c", server: cluster.server, caData: cluster.caData }],
      users: [{ name: "agent", token: review.status.token }],
      contexts: [{ name: "c", cluster: "c", user: "agent" }],
      currentContext: "c",
    });
    const agent = await KubeClient.fromKubeConfig(tokenKc, { fieldManager: "agent" });
    try {
      const own = await agent.mergePatch<Obj>("SandboxNode", "node-a", heartbeat("Applied"), { subresource: "status" });
      assert.equal((own.status as { phase: string }).phase, "Applied");
      await assert.rejects(agent.mergePatch("SandboxNode", "node-b", heartbeat("Applied"), { subresource: "status" }), (e: unknown) => e instanceof ApiError && e.status === 403 && /the agent on node node-a may write only SandboxNode node-a, not node-b/.test(e.message));
    } finally {
      agent.close();
      await client.delete("Pod", pod.metadata.name, NAMESPACE);
      await client.delete("Node", "node-a");
    }
  });

  it("uninstall exits 5 naming what blocks it, then removes everything once the finalizer goes", async () => {
    const sample = parseAllDocuments(readFileSync(join(repoRoot(), "examples", "sandboxconfig.yaml"), "utf8"))[0]!.toJS() as Obj;
    sample.metadata.finalizers = ["sandboxing.dev/test-held"];
    await client.create(sample);
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await client.mergePatch("SandboxConfig", "cluster", {
      status: {
        counts: { selected: 2, ready: 0, progressing: 0, degraded: 0, uninstalling: 2 },
        conditions: [
          // What the controller writes (src/controller/desired-status.ts) while pods hold the uninstall.
          { type: "Ready", status: "False", reason: "Uninstalling", message: "removing sandbox runtimes from 2 node(s)", lastTransitionTime: now, observedGeneration: 1 },
          { type: "Progressing", status: "True", reason: "UninstallBlockedByPods", message: "uninstall waits for 1 pod(s) using sandbox RuntimeClasses: default/web-1; delete them or set spec.uninstall.whenPodsRun: Proceed", lastTransitionTime: now, observedGeneration: 1 },
        ],
      },
    }, { subresource: "status" });
    const blocked = await sandboxctl(["uninstall", "--timeout", "3s"], env);
    assert.equal(blocked.code, 5, blocked.stderr);
    assert.match(blocked.stderr, /uninstall is blocked: SandboxConfig cluster still exists after 3s/);
    assert.match(blocked.stderr, /Progressing=True UninstallBlockedByPods: uninstall waits for 1 pod\(s\) using sandbox RuntimeClasses: default\/web-1/);
    assert.ok(await client.getOrNull("Deployment", CONTROLLER, NAMESPACE), "nothing was removed while blocked");

    const run = startSandboxctl(["uninstall", "--timeout", "60s"], env);
    await eventually("uninstall to show the blocking condition", async () => /UninstallBlockedByPods/.test(run.stdout()), 30_000);
    // Play a controller that lost track of node-a: node-b reverted, the finalizer removed anyway.
    await client.delete("SandboxNode", "node-b");
    await client.mergePatch("SandboxConfig", "cluster", { metadata: { finalizers: null } });
    const leftover = await run.done;
    assert.equal(leftover.code, 5, leftover.stderr);
    assert.match(leftover.stderr, /1 SandboxNode\(s\) remain although no SandboxConfig does: node-a/);
    assert.ok(await client.getOrNull("CustomResourceDefinition", "sandboxnodes.sandboxing.dev"), "the CRDs stay while a node may be unreverted");
    await client.delete("SandboxNode", "node-a");
    const r = await sandboxctl(["uninstall", "--timeout", "30s"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sandbox-operator is uninstalled/);
    for (const obj of applied.filter((o) => o.kind !== "Namespace")) {
      await eventually(`${obj.kind} ${obj.metadata.name} to be gone`, async () => (await client.getOrNull(obj.kind!, obj.metadata.name, obj.metadata.namespace)) === null, 30_000);
    }
    const ns = await client.getOrNull<Obj>("Namespace", NAMESPACE);
    assert.ok(ns === null || ns.metadata.deletionTimestamp, "the namespace is deleted or terminating");
    assert.ok(!applied.some((o) => o.kind === "ServiceMonitor"), "no ServiceMonitor unless asked for");
    assert.ok(WEBHOOK);
  });
});
