// The pod policy end to end: the real kube-apiserver calls the webhook over TLS for a table of pods
// in enforce / audit / off / exempt namespaces; patches, stored pods, refusals and warnings are checked.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.js";
import { mutatePod, validatePod, type JsonPatchOp, type Pod, type PolicyContext, type RuntimeClassInfo } from "../../src/admission/policy.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually } from "../harness/cluster.js";
import { NS, OPERATOR_NS, configSpec, createPod, namespace, pod, setupCluster, startTestWebhook, waitWebhookActive, stopWebhookEnv } from "./admission-fixture.js";

const ANN = "sandboxing.dev/admission";
const ANN_PATH = "/metadata/annotations/sandboxing.dev~1admission";
const inject = (cls = "sandboxed"): JsonPatchOp => ({ op: "add", path: "/spec/runtimeClassName", value: cls });
const annotate = (decision: string): JsonPatchOp => ({ op: "add", path: "/metadata/annotations", value: { [ANN]: decision } });
const annotateExisting = (decision: string): JsonPatchOp => ({ op: "add", path: ANN_PATH, value: decision });
const ALLOWED = "sandboxed, gvisor, kata, kata-big";
const priv = { containers: [{ name: "app", image: "x", securityContext: { privileged: true } }] };
const mem = (limit: string) => [{ name: "app", image: "x", resources: { limits: { memory: limit } } }];

/** Applies our "add" operations (the only kind mutatePod emits) to a copy of the pod. */
function applyPatch<T extends object>(obj: T, patch: JsonPatchOp[]): T {
  const out = structuredClone(obj) as Record<string, unknown>;
  for (const op of patch) {
    assert.equal(op.op, "add");
    const keys = op.path.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
    let at = out;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = op.value;
  }
  return out as T;
}

interface Case {
  title: string;
  ns: string;
  spec?: Partial<Pod["spec"]>;
  annotations?: Record<string, string>;
  /** The exact JSON patch mutatePod returns. */
  patch: JsonPatchOp[];
  /** Refusal: the apiserver's message must match. */
  refused?: RegExp;
  /** Stored pod: its runtimeClassName and decision annotation. */
  storedClass?: string;
  storedDecision?: string;
  warnings?: RegExp[];
}

const E = NS.enforce;
const A = NS.audit;
const O = NS.off;
const cases: Case[] = [
  // enforce
  { title: "enforce: plain pod gets the general class", ns: E, patch: [inject(), annotate("enforce: runtimeClassName sandboxed injected")], storedClass: "sandboxed", storedDecision: "enforce: runtimeClassName sandboxed injected" },
  { title: "enforce: pod with other annotations keeps them", ns: E, annotations: { team: "a" }, patch: [inject(), annotateExisting("enforce: runtimeClassName sandboxed injected")], storedClass: "sandboxed", storedDecision: "enforce: runtimeClassName sandboxed injected" },
  { title: "enforce: backend class gvisor is kept", ns: E, spec: { runtimeClassName: "gvisor" }, patch: [annotate("enforce: runtimeClassName gvisor is a sandbox")], storedClass: "gvisor", storedDecision: "enforce: runtimeClassName gvisor is a sandbox" },
  { title: "enforce: variant class kata-big is kept", ns: E, spec: { runtimeClassName: "kata-big" }, patch: [annotate("enforce: runtimeClassName kata-big is a sandbox")], storedClass: "kata-big", storedDecision: "enforce: runtimeClassName kata-big is a sandbox" },
  { title: "enforce: foreign class runc is refused with the allowed list", ns: E, spec: { runtimeClassName: "runc" }, patch: [], refused: new RegExp(`denied the request: pod case-\\d+ in namespace ${E}: spec\\.runtimeClassName runc is not a sandbox RuntimeClass\\. .*set runtimeClassName to one of ${ALLOWED}, or leave it empty to get sandboxed`) },
  { title: "enforce: kata-clh (backend not enabled, RuntimeClass not ours) is refused", ns: E, spec: { runtimeClassName: "kata-clh" }, patch: [], refused: /spec\.runtimeClassName kata-clh is not a sandbox RuntimeClass/ },
  { title: "enforce: privileged pod is admitted sandboxed, with the reason", ns: E, spec: priv, patch: [inject(), annotate("enforce: runtimeClassName sandboxed injected; host privileges stay inside the sandbox (container app is privileged)")], storedClass: "sandboxed", storedDecision: "enforce: runtimeClassName sandboxed injected; host privileges stay inside the sandbox (container app is privileged)" },
  { title: "enforce: CAP_BPF debug tool is admitted sandboxed", ns: E, spec: { containers: [{ name: "bpftrace", image: "x", securityContext: { capabilities: { add: ["BPF", "PERFMON"] } } }] }, patch: [inject(), annotate("enforce: runtimeClassName sandboxed injected; host privileges stay inside the sandbox (container bpftrace adds capabilities BPF,PERFMON)")], storedClass: "sandboxed", storedDecision: "enforce: runtimeClassName sandboxed injected; host privileges stay inside the sandbox (container bpftrace adds capabilities BPF,PERFMON)" },
  { title: "enforce: host network + hostPath are refused although sandboxed, naming the fields", ns: E, spec: { hostNetwork: true, volumes: [{ name: "root", hostPath: { path: "/" } }] }, patch: [inject(), annotate("enforce: runtimeClassName sandboxed injected")], refused: new RegExp(`denied the request: pod case-\\d+ in namespace ${E}: spec\\.hostNetwork, spec\\.volumes\\[0\\]\\.hostPath \\(volume root, path /\\) reach the host even from a sandbox .*grant hostNetwork, hostPath to namespace ${E} in SandboxConfig cluster spec\\.podPolicy\\.allowedHostAccess`) },
  { title: "enforce: hostPID is refused in a gVisor pod", ns: E, spec: { runtimeClassName: "gvisor", hostPID: true }, patch: [annotate("enforce: runtimeClassName gvisor is a sandbox")], refused: /: spec\.hostPID reaches the host even from a sandbox \(the node's processes/ },
  { title: "audit: host access is warned about, not refused", ns: A, spec: { runtimeClassName: "kata", hostIPC: true }, patch: [annotate("audit: runtimeClassName kata is a sandbox; enforce would refuse host access (spec.hostIPC)")], storedClass: "kata", storedDecision: "audit: runtimeClassName kata is a sandbox; enforce would refuse host access (spec.hostIPC)", warnings: [/namespace team-audit audits sandboxing: enforce mode would refuse this pod: spec\.hostIPC reaches the host/] },
  { title: "enforce: privileged pod naming runc is refused and told why", ns: E, spec: { ...priv, runtimeClassName: "runc" }, patch: [], refused: /runc is not a sandbox RuntimeClass; it also asks for host privileges \(container app is privileged\), which are allowed only in a sandbox/ },
  { title: "enforce: allowed Kata annotation passes", ns: E, spec: { runtimeClassName: "kata" }, annotations: { "io.katacontainers.config.hypervisor.default_vcpus": "2" }, patch: [annotateExisting("enforce: runtimeClassName kata is a sandbox")], storedClass: "kata", storedDecision: "enforce: runtimeClassName kata is a sandbox" },
  { title: "enforce: Kata hypervisor path annotation is refused", ns: E, annotations: { "io.katacontainers.config.hypervisor.path": "/tmp/evil" }, patch: [inject(), annotateExisting("enforce: runtimeClassName sandboxed injected")], refused: /metadata\.annotations io\.katacontainers\.config\.hypervisor\.path reconfigure the sandbox and are not allowed: .*spec\.allowedSandboxAnnotations/ },
  { title: "enforce: gVisor annotation is refused", ns: E, annotations: { "dev.gvisor.spec.mount.data.share": "pod" }, patch: [inject(), annotateExisting("enforce: runtimeClassName sandboxed injected")], refused: /metadata\.annotations dev\.gvisor\.spec\.mount\.data\.share reconfigure the sandbox/ },
  { title: "enforce: Kata pod with a 128Mi limit gets the memory warning", ns: E, spec: { runtimeClassName: "kata", containers: mem("128Mi") }, patch: [annotate("enforce: runtimeClassName kata is a sandbox")], storedClass: "kata", storedDecision: "enforce: runtimeClassName kata is a sandbox", warnings: [/pod memory limits add up to 128Mi, below the 256Mi a Kata guest needs besides RuntimeClass kata's overhead/] },
  { title: "enforce: gVisor pod with a 64Mi limit gets no warning", ns: E, spec: { runtimeClassName: "gvisor", containers: mem("64Mi") }, patch: [annotate("enforce: runtimeClassName gvisor is a sandbox")], storedClass: "gvisor", storedDecision: "enforce: runtimeClassName gvisor is a sandbox", warnings: [] },
  // audit
  { title: "audit: plain pod is only annotated and warned", ns: A, patch: [annotate("audit: enforce would inject runtimeClassName sandboxed")], storedDecision: "audit: enforce would inject runtimeClassName sandboxed", warnings: [/namespace team-audit audits sandboxing: this pod runs without a sandbox; enforce mode would set runtimeClassName sandboxed/] },
  { title: "audit: privileged pod gets two warnings", ns: A, spec: priv, patch: [annotate("audit: enforce would inject runtimeClassName sandboxed; host privileges outside a sandbox (container app is privileged)")], storedDecision: "audit: enforce would inject runtimeClassName sandboxed; host privileges outside a sandbox (container app is privileged)", warnings: [/runs without a sandbox/, /host privileges outside a sandbox: container app is privileged/] },
  { title: "audit: sandboxed pod passes quietly", ns: A, spec: { runtimeClassName: "gvisor" }, patch: [annotate("audit: runtimeClassName gvisor is a sandbox")], storedClass: "gvisor", storedDecision: "audit: runtimeClassName gvisor is a sandbox", warnings: [] },
  { title: "audit: foreign class is warned, not refused", ns: A, spec: { runtimeClassName: "runc" }, patch: [annotate(`audit: enforce would refuse runtimeClassName runc (allowed: ${ALLOWED})`)], storedClass: "runc", storedDecision: `audit: enforce would refuse runtimeClassName runc (allowed: ${ALLOWED})`, warnings: [/runtimeClassName runc is not a sandbox RuntimeClass \(allowed: sandboxed, gvisor, kata, kata-big\); enforce mode would refuse this pod/] },
  { title: "audit: forbidden Kata annotation is refused", ns: A, annotations: { "io.katacontainers.config.hypervisor.kernel_params": "init=/bin/sh" }, patch: [annotateExisting("audit: enforce would inject runtimeClassName sandboxed")], refused: /io\.katacontainers\.config\.hypervisor\.kernel_params reconfigure the sandbox and are not allowed/ },
  // off
  { title: "off: plain pod is untouched", ns: O, patch: [], storedDecision: undefined, warnings: [] },
  { title: "off: privileged pod is untouched", ns: O, spec: priv, patch: [], warnings: [] },
  { title: "off: gVisor annotation is still refused", ns: O, annotations: { "dev.gvisor.internal.x": "1" }, patch: [], refused: /pod case-\d+ in namespace team-off: metadata\.annotations dev\.gvisor\.internal\.x reconfigure the sandbox/ },
  { title: "off: a pod choosing the general class gets the memory warning", ns: O, spec: { runtimeClassName: "sandboxed", containers: mem("100Mi") }, patch: [], storedClass: "sandboxed", warnings: [/pod memory limits add up to 100Mi/] },
  // exempt
  { title: "kube-system is never touched, even a forbidden annotation", ns: "kube-system", spec: priv, annotations: { "io.katacontainers.config.hypervisor.path": "/x" }, patch: [], warnings: [] },
  { title: "the operator namespace is never touched", ns: OPERATOR_NS, spec: { runtimeClassName: "runc" }, patch: [], storedClass: "runc", warnings: [] },
];

describe("pod policy through the real apiserver and the TLS webhook", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook;
  const classes = new Map<string, RuntimeClassInfo>([
    ...["sandboxed", "gvisor", "kata", "kata-big"].map((n) => [n, { name: n, handler: n, managed: true }] as const),
    ["runc", { name: "runc", handler: "runc", managed: false }],
    ["kata-clh", { name: "kata-clh", handler: "kata-clh", managed: false }],
  ]);
  const labelsOf: Record<string, Record<string, string>> = { [E]: { "sandboxing.dev/policy": "enforce" }, [A]: { "sandboxing.dev/policy": "audit" }, [O]: {} };

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    await setupCluster(client);
    webhook = await startTestWebhook(webhookClient);
    await waitWebhookActive(client);
  });
  after(() => stopWebhookEnv({ webhook, webhookClient, client, cp }));

  it("has at least 20 cases across enforce, audit and off", () => {
    assert.ok(cases.length >= 20);
    for (const ns of [E, A, O]) assert.ok(cases.filter((c) => c.ns === ns).length >= 4, ns);
  });

  cases.forEach((c, i) => {
    it(c.title, async () => {
      const p = pod(`case-${i}`, c.ns, c.spec, c.annotations);
      const ctx: PolicyContext = { config: configSpec(), runtimeClasses: classes, namespace: c.ns, namespaceLabels: labelsOf[c.ns] ?? {}, operatorNamespace: OPERATOR_NS };
      assert.deepEqual(mutatePod(structuredClone(p), ctx).patch, c.patch, "patch from the pure function");
      assert.equal(validatePod(applyPatch(p, c.patch), ctx).allowed, !c.refused, "pure validation of the mutated pod");

      const r = await createPod(client, p);
      if (c.refused) {
        assert.equal(r.status, 403, `expected a refusal, got ${r.status}: ${r.message}`);
        assert.match(r.message ?? "", c.refused);
        assert.equal(await client.getOrNull("Pod", p.metadata.name, c.ns), null, "nothing stored");
        return;
      }
      assert.equal(r.status, 201, `expected 201, got ${r.status}: ${r.message}`);
      const stored = await client.get<Pod & { metadata: { name: string } }>("Pod", p.metadata.name, c.ns);
      assert.equal(stored.spec.runtimeClassName ?? undefined, c.storedClass ?? c.spec?.runtimeClassName ?? undefined, "stored runtimeClassName");
      assert.equal(stored.metadata.annotations?.[ANN], c.storedDecision, "stored decision annotation");
      for (const [k, v] of Object.entries(c.annotations ?? {})) assert.equal(stored.metadata.annotations?.[k], v, `annotation ${k} kept`);
      if (c.warnings) {
        assert.equal(r.warnings.length, c.warnings.length, `warnings: ${JSON.stringify(r.warnings)}`);
        c.warnings.forEach((w, j) => assert.match(r.warnings[j]!, w));
      }
    });
  });

  it("one webhook call per ordinary enforce pod: the apiserver skips the validating safety net", async () => {
    const calls = async (name: string) => {
      const text = (await client.raw("GET", "/metrics")).body;
      let n = 0;
      for (const line of text.split("\n")) if (line.startsWith("apiserver_admission_webhook_request_total{") && line.includes(`name="${name}"`)) n += Number(line.split(" ").at(-1));
      return n;
    };
    const [m0, v0] = [await calls("enforce.pods.sandboxing.dev"), await calls("enforce.pods.validate.sandboxing.dev")];
    for (let i = 0; i < 5; i++) assert.equal((await createPod(client, pod(`one-call-${i}`, E), true)).status, 201);
    assert.equal(await calls("enforce.pods.sandboxing.dev"), m0 + 5);
    assert.equal(await calls("enforce.pods.validate.sandboxing.dev"), v0, "safety net not called");
    assert.equal((await createPod(client, pod("one-call-runc", E, { runtimeClassName: "runc" }), true)).status, 403);
  });

  it("validating safety net: with the mutating webhook gone, an enforce pod without a class is refused", async () => {
    await client.delete("MutatingWebhookConfiguration", "sandbox-operator");
    try {
      const r = await eventually("mutation gone", async () => {
        const res = await createPod(client, pod(`net-${Date.now()}`, E), true);
        return res.status === 403 && res;
      });
      assert.match(r.message ?? "", /admission webhook "enforce\.pods\.validate\.sandboxing\.dev" denied the request: .*spec\.runtimeClassName is empty \(the sandbox-operator mutating webhook did not run\)/);
      const named = await createPod(client, pod("net-named", E, { runtimeClassName: "gvisor" }), true);
      assert.equal(named.status, 201, "a pod already in a sandbox class is not sent to the safety net");
    } finally {
      await webhook.reconcileConfigurations(true);
      await waitWebhookActive(client);
    }
  });

  it("follows SandboxConfig podPolicy.defaultMode=enforce for unlabelled namespaces; label off opts out", async () => {
    await client.apply(namespace("team-default"));
    await client.apply(namespace("team-optout", "off"));
    await client.mergePatch("SandboxConfig", "cluster", { spec: { podPolicy: { defaultMode: "enforce" } } });
    try {
      await eventually("unlabelled namespace enforced", async () => (await createPod(client, pod(`d-${Date.now()}`, "team-default"), true)).obj?.spec.runtimeClassName === "sandboxed", 30_000, 200);
      const refused = await createPod(client, pod("d-runc", "team-default", { runtimeClassName: "runc" }));
      assert.equal(refused.status, 403);
      assert.match(refused.message ?? "", /admission webhook "enforce\.pods\.sandboxing\.dev" denied the request: .*Namespace team-default enforces sandboxing/);
      const optOut = await createPod(client, pod("o-1", "team-optout"));
      assert.equal(optOut.status, 201);
      assert.equal(optOut.obj?.spec.runtimeClassName ?? undefined, undefined);
    } finally {
      await client.mergePatch("SandboxConfig", "cluster", { spec: { podPolicy: { defaultMode: "off" } } });
    }
  });
});
