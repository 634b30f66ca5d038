// Table tests of the pure pod policy, SandboxConfig checks and webhook configuration builders.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { SandboxConfigSpec } from "../api/index.js";
import { admitPod, forbiddenAnnotations, hostPrivileges, modeFor, mutatePod, podMode, quantityBytes, sandboxClasses, validatePod, validatePodUpdate, type Pod, type PolicyContext, type RuntimeClassInfo } from "./policy.js";
import { hostAccess } from "./policy-host-access.js";
import { reviewSandboxConfig } from "./policyConfig.js";
import { enforceSafetyNet, namespaceSelectors, webhookConfigurations } from "./desiredWebhooks.js";

const spec = (over: Partial<SandboxConfigSpec> = {}): SandboxConfigSpec => ({ nodeSelector: {}, runtimes: { allowed: ["gvisor", "kata-fc"] }, ...over }) as SandboxConfigSpec;
const rc = (name: string, managed = true): [string, RuntimeClassInfo] => [name, { name, managed }];
const ctx = (over: Partial<PolicyContext> = {}): PolicyContext => ({ config: spec(), runtimeClasses: new Map([rc("sandboxed")]), namespace: "t", namespaceLabels: { "sandboxing.dev/policy": "enforce" }, operatorNamespace: "op", ...over });
const pod = (s: Partial<Pod["spec"]> = {}, annotations?: Record<string, string>): Pod => ({ metadata: { name: "p", annotations }, spec: { containers: [{ name: "c" }], ...s } });

describe("modeFor", () => {
  const cases: Array<[string, Partial<PolicyContext>, string]> = [
    ["label enforce", {}, "enforce"],
    ["label audit", { namespaceLabels: { "sandboxing.dev/policy": "audit" } }, "audit"],
    ["no label, no config", { namespaceLabels: {}, config: null }, "off"],
    ["no config (uninstalled): even an enforce label or webhook path is off", { config: null, mode: "enforce" }, "off"],
    ["a configured exempt namespace", { namespace: "csi", config: spec({ podPolicy: { exemptions: { namespaces: ["csi"] } } }) }, "exempt"],
    ["no label, default enforce", { namespaceLabels: {}, config: spec({ podPolicy: { defaultMode: "enforce" } }) }, "enforce"],
    ["unknown label value follows the default", { namespaceLabels: { "sandboxing.dev/policy": "strict" }, config: spec({ podPolicy: { defaultMode: "audit" } }) }, "audit"],
    ["label off beats default enforce", { namespaceLabels: { "sandboxing.dev/policy": "off" }, config: spec({ podPolicy: { defaultMode: "enforce" } }) }, "off"],
    ["kube-system is exempt", { namespace: "kube-system" }, "exempt"],
    ["operator namespace is exempt", { namespace: "op" }, "exempt"],
  ];
  for (const [title, over, want] of cases) it(title, () => assert.equal(modeFor(ctx(over)), want));
});

describe("pod policy", () => {
  it("lists published classes that are not held by someone else", () => {
    const c = ctx({ config: spec({ runtimeClassName: "sbx", variants: [{ name: "fast", backend: "kata-fc" }] }), runtimeClasses: new Map([rc("gvisor", false), rc("sbx")]) });
    assert.deepEqual(sandboxClasses(c), ["sbx", "kata-fc", "fast"]);
  });
  it("collects host privileges from every container kind and the pod", () => {
    const p = pod({ hostPID: true, hostIPC: true, initContainers: [{ name: "i", securityContext: { privileged: true } }], ephemeralContainers: [{ name: "dbg", securityContext: { capabilities: { add: ["SYS_ADMIN"] } } }], volumes: [{ name: "v", hostPath: { path: "/var" } }, { name: "e" }] });
    assert.deepEqual(hostPrivileges(p), ["init container i is privileged", "ephemeral container dbg adds capabilities SYS_ADMIN", "hostPID is true", "hostIPC is true", "volume v mounts hostPath /var"]);
  });
  it("refuses sandbox annotations unless allowed, ignores others", () => {
    const p = pod({}, { "io.katacontainers.config.hypervisor.default_memory": "4096", "dev.gvisor.x": "1", "io.kubernetes.cri": "x", "iokatacontainers.x": "y" });
    assert.deepEqual(forbiddenAnnotations(p, spec({ allowedSandboxAnnotations: ["dev.gvisor.x"] })), ["io.katacontainers.config.hypervisor.default_memory"]);
  });
  it("does not patch in off mode or exempt namespaces", () => {
    assert.deepEqual(mutatePod(pod(), ctx({ namespaceLabels: {} })).patch, []);
    assert.deepEqual(mutatePod(pod(), ctx({ namespace: "kube-system" })).patch, []);
  });
  it("escapes the annotation key in the JSON pointer", () => {
    assert.deepEqual(mutatePod(pod({}, { a: "b" }), ctx()).patch[1]?.path, "/metadata/annotations/sandboxing.dev~1admission");
  });
  it("keeps the injection record when the apiserver re-invokes it after a later mutation", () => {
    const first = mutatePod(pod(), ctx());
    assert.equal(first.decision, "enforce: runtimeClassName sandboxed injected");
    const reinvoked = pod({ runtimeClassName: "sandboxed", overhead: { memory: "64Mi" } } as Partial<Pod["spec"]>, { "sandboxing.dev/admission": first.decision! });
    assert.deepEqual(mutatePod(reinvoked, ctx()), { mode: "enforce", patch: [], decision: first.decision });
    // a pod that named the class itself is recorded as such, whatever annotation it came with
    const named = pod({ runtimeClassName: "sandboxed" }, { "sandboxing.dev/admission": "enforce: runtimeClassName kata injected" });
    assert.equal(mutatePod(named, ctx()).decision, "enforce: runtimeClassName sandboxed is a sandbox");
  });
  it("uses the configured general class name", () => {
    assert.deepEqual(mutatePod(pod(), ctx({ config: spec({ runtimeClassName: "isolated" }), runtimeClasses: new Map([rc("isolated")]) })).patch[0], { op: "add", path: "/spec/runtimeClassName", value: "isolated" });
  });
  it("refuses a pod without class in enforce mode (mutation did not run)", () => {
    const v = validatePod(pod(), ctx());
    assert.equal(v.allowed, false);
    assert.match(v.message!, /spec\.runtimeClassName is empty \(the sandbox-operator mutating webhook did not run\)/);
  });
  it("warns about memory only for classes that may be Kata", () => {
    const limited = (cls: string, mem: string) => pod({ runtimeClassName: cls, containers: [{ name: "c", resources: { limits: { memory: mem } } }] });
    const c = ctx({ namespaceLabels: {} });
    assert.equal(validatePod(limited("kata-fc", "200Mi"), c).warnings.length, 1);
    assert.equal(validatePod(limited("kata-fc", "300Mi"), c).warnings.length, 0);
    assert.equal(validatePod(limited("gvisor", "20Mi"), c).warnings.length, 0);
    assert.equal(validatePod(limited("sandboxed", "20Mi"), c).warnings.length, 1, "general class may pick Kata");
    assert.equal(validatePod(limited("sandboxed", "20Mi"), ctx({ namespaceLabels: {}, config: spec({ runtimes: { allowed: ["gvisor"] } }) })).warnings.length, 0, "gVisor-only cluster");
    assert.equal(validatePod(pod({ runtimeClassName: "kata-fc", containers: [{ name: "a", resources: { limits: { memory: "100Mi" } } }, { name: "b" }] }), c).warnings.length, 0, "an unlimited container: no cap to warn about");
  });
  it("reads quantities", () => {
    assert.equal(quantityBytes("256Mi"), 268435456);
    assert.equal(quantityBytes("1G"), 1e9);
    assert.equal(quantityBytes("1e3"), 1000);
    assert.equal(quantityBytes("12 parsecs"), undefined);
  });
});

describe("host access in enforce namespaces", () => {
  const hostPod = () => pod({ hostNetwork: true, hostPID: true, volumes: [{ name: "cfg" }, { name: "logs", hostPath: { path: "/var/log" } }] });
  const granted = (kinds: Array<"hostPath" | "hostNetwork" | "hostPID" | "hostIPC">, namespace = "t") => spec({ podPolicy: { allowedHostAccess: [{ namespace, kinds }] } });
  it("names each field that reaches the host", () => {
    assert.deepEqual(hostAccess(hostPod()).map((h) => h.field), ["spec.hostNetwork", "spec.hostPID", "spec.volumes[1].hostPath"]);
  });
  it("refuses host access although the pod is sandboxed, naming the fields and the fix", () => {
    const r = admitPod(hostPod(), ctx());
    assert.equal(r.allowed, false);
    assert.deepEqual(r.patch, []);
    assert.equal(
      r.message,
      "pod p in namespace t: spec.hostNetwork, spec.hostPID, spec.volumes[1].hostPath (volume logs, path /var/log) reach the host even from a sandbox (the node's network, the node's processes, the node's files: a VM or gVisor does not contain that), and namespace t enforces sandboxing: remove them, or have a cluster admin grant hostNetwork, hostPID, hostPath to namespace t in SandboxConfig cluster spec.podPolicy.allowedHostAccess",
    );
  });
  it("refuses only what the namespace was not granted", () => {
    const r = admitPod(hostPod(), ctx({ config: granted(["hostNetwork", "hostPath"]) }));
    assert.equal(r.allowed, false);
    assert.match(r.message!, /: spec\.hostPID reaches the host .* grant hostPID to namespace t in/);
  });
  it("a grant for another namespace does not count", () => {
    assert.equal(admitPod(hostPod(), ctx({ config: granted(["hostNetwork", "hostPath", "hostPID"], "other") })).allowed, false);
  });
  it("admits granted host access sandboxed and records the grant", () => {
    const r = admitPod(hostPod(), ctx({ config: granted(["hostNetwork", "hostPath", "hostPID"]) }));
    assert.equal(r.allowed, true);
    assert.equal(r.patch[0]?.value, "sandboxed");
    assert.equal(r.decision, "enforce: runtimeClassName sandboxed injected; host access granted by SandboxConfig spec.podPolicy.allowedHostAccess (spec.hostNetwork, spec.hostPID, spec.volumes[1].hostPath)");
  });
  it("an unsandboxed pod with host access is told both problems", () => {
    const v = validatePod(pod({ runtimeClassName: "runc", hostIPC: true }), ctx());
    assert.match(v.message!, /runc is not a sandbox RuntimeClass; it also asks for host privileges \(hostIPC is true\).*Even sandboxed: spec\.hostIPC reaches the host/);
  });
  it("audit warns that enforce would refuse; off ignores host access", () => {
    const a = admitPod(pod({ runtimeClassName: "gvisor", hostNetwork: true }), ctx({ namespaceLabels: { "sandboxing.dev/policy": "audit" } }));
    assert.equal(a.allowed, true);
    assert.deepEqual(a.warnings, ["namespace t audits sandboxing: enforce mode would refuse this pod: spec.hostNetwork reaches the host even from a sandbox (the node's network: a VM or gVisor does not contain that), and namespace t enforces sandboxing: remove it, or have a cluster admin grant hostNetwork to namespace t in SandboxConfig cluster spec.podPolicy.allowedHostAccess"]);
    assert.equal(a.decision, "audit: runtimeClassName gvisor is a sandbox; enforce would refuse host access (spec.hostNetwork)");
    assert.deepEqual(admitPod(pod({ hostNetwork: true }), ctx({ namespaceLabels: { "sandboxing.dev/policy": "off" } })), { mode: "off", allowed: true, warnings: [], patch: [] });
  });
  it("privileged containers and capabilities still only need a sandbox", () => {
    assert.equal(admitPod(pod({ containers: [{ name: "c", securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN"] } } }] }), ctx()).allowed, true);
  });
});

describe("pods the policy leaves alone", () => {
  const dsPod = (s: Partial<Pod["spec"]> = {}): Pod => ({ metadata: { name: "cni-x7k2p", ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: "cni", uid: "u1", controller: true }] }, spec: { hostNetwork: true, volumes: [{ name: "opt", hostPath: { path: "/opt/cni/bin" } }], containers: [{ name: "c", securityContext: { privileged: true } }], ...s } });
  const DSC = "system:serviceaccount:kube-system:daemon-set-controller";
  it("a DaemonSet pod created by the DaemonSet controller is neither mutated nor refused", () => {
    for (const userName of [DSC, "system:kube-controller-manager"]) assert.deepEqual(admitPod(dsPod(), ctx({ userName })), { mode: "exempt", allowed: true, warnings: [], patch: [] });
  });
  it("an ownerReference alone does not exempt: anybody can write one", () => {
    assert.equal(podMode(dsPod(), ctx({ userName: "alice" })), "enforce");
    assert.equal(admitPod(dsPod(), ctx({ userName: "alice" })).allowed, false);
    const notController = dsPod();
    notController.metadata.ownerReferences![0]!.controller = false;
    assert.equal(podMode(notController, ctx({ userName: DSC })), "enforce");
  });
  it("exemptions.daemonSets: false judges DaemonSet pods like any other", () => {
    assert.equal(podMode(dsPod(), ctx({ userName: DSC, config: spec({ podPolicy: { exemptions: { daemonSets: false } } }) })), "enforce");
  });
  it("an exempt namespace is left alone whatever the pod asks", () => {
    const c = ctx({ namespace: "csi", config: spec({ podPolicy: { exemptions: { namespaces: ["csi"] } } }) });
    assert.deepEqual(admitPod(pod({ runtimeClassName: "runc", hostPID: true }, { "io.katacontainers.config.hypervisor.path": "/x" }), c), { mode: "exempt", allowed: true, warnings: [], patch: [] });
  });
});

describe("uninstall: never inject a class that is gone", () => {
  it("without a SandboxConfig an enforce pod is admitted unchanged", () => {
    assert.deepEqual(admitPod(pod(), ctx({ config: null, mode: "enforce" })), { mode: "off", allowed: true, warnings: [], patch: [] });
  });
  it("with the general RuntimeClass absent nothing is injected and the pod is refused, saying why", () => {
    for (const runtimeClasses of [new Map<string, RuntimeClassInfo>(), new Map([rc("sandboxed", false)])]) {
      const r = admitPod(pod(), ctx({ runtimeClasses }));
      assert.equal(r.allowed, false);
      assert.deepEqual(r.patch, []);
      assert.match(r.message!, /spec\.runtimeClassName is empty and RuntimeClass sandboxed does not exist .*: wait until RuntimeClass sandboxed exists, or set runtimeClassName to one of/);
    }
  });
});

describe("pod updates and ephemeral containers", () => {
  const dbg = (privileged: boolean) => ({ name: "debugger", securityContext: { privileged } });
  it("refuses an update that sets a forbidden sandbox annotation, in every mode", () => {
    for (const labels of [{ "sandboxing.dev/policy": "enforce" }, {}] as Array<Record<string, string>>) {
      const v = validatePodUpdate(pod({ runtimeClassName: "sandboxed" }), pod({ runtimeClassName: "sandboxed" }, { "io.katacontainers.config.hypervisor.kernel_params": "init=/bin/sh" }), ctx({ namespaceLabels: labels }));
      assert.equal(v.allowed, false);
      assert.match(v.message!, /this update sets metadata\.annotations io\.katacontainers\.config\.hypervisor\.kernel_params, which reconfigure the sandbox/);
    }
  });
  it("an annotation the pod already had (allowed back then) does not block other updates", () => {
    const a = { "io.katacontainers.config.hypervisor.default_vcpus": "2" };
    assert.equal(validatePodUpdate(pod({}, a), pod({}, { ...a, team: "b" }), ctx()).allowed, true);
  });
  it("refuses a privileged ephemeral container in an unsandboxed pod of an enforce namespace", () => {
    const old = pod({ runtimeClassName: "runc" });
    const v = validatePodUpdate(old, pod({ runtimeClassName: "runc", ephemeralContainers: [dbg(true)] }), ctx());
    assert.equal(v.allowed, false);
    assert.match(v.message!, /spec\.ephemeralContainers\[0\] \(ephemeral container debugger is privileged\) asks for host privileges, but the pod runs outside a sandbox \(runtimeClassName runc;/);
  });
  it("admits ephemeral containers in a sandboxed pod, unprivileged ones anywhere, and ones that were there before", () => {
    assert.equal(validatePodUpdate(pod({ runtimeClassName: "gvisor" }), pod({ runtimeClassName: "gvisor", ephemeralContainers: [dbg(true)] }), ctx()).allowed, true);
    assert.equal(validatePodUpdate(pod({}), pod({ ephemeralContainers: [dbg(false)] }), ctx()).allowed, true);
    assert.equal(validatePodUpdate(pod({ ephemeralContainers: [dbg(true)] }), pod({ ephemeralContainers: [dbg(true)] }), ctx()).allowed, true);
    assert.equal(validatePodUpdate(pod({}), pod({ ephemeralContainers: [dbg(true)] }), ctx({ namespaceLabels: { "sandboxing.dev/policy": "audit" } })).allowed, true);
  });
});

describe("admitPod (the mutating webhook's single call)", () => {
  it("judges the pod as its own patch leaves it", () => {
    const r = admitPod(pod(), ctx());
    assert.equal(r.allowed, true);
    assert.equal(r.patch[0]?.value, "sandboxed");
  });
  it("refuses without a patch", () => {
    const r = admitPod(pod({ runtimeClassName: "runc" }), ctx());
    assert.equal(r.allowed, false);
    assert.deepEqual(r.patch, []);
  });
  it("returns the warnings of the mutated pod", () => {
    const r = admitPod(pod({ containers: [{ name: "c", resources: { limits: { memory: "64Mi" } } }] }), ctx());
    assert.equal(r.warnings.length, 1);
  });
});

describe("SandboxConfig review", () => {
  it("passes a config with our own classes", () => {
    assert.deepEqual(reviewSandboxConfig(spec(), new Map([rc("sandboxed"), rc("gvisor")])), { errors: [], warnings: [] });
  });
  it("names each field that collides", () => {
    const r = reviewSandboxConfig(spec({ variants: [{ name: "v", backend: "gvisor" }] }), new Map([rc("sandboxed", false), rc("kata-fc", false), rc("v", false)]));
    assert.deepEqual(r.errors.map((e) => e.field), ["spec.runtimeClassName", "spec.runtimes.allowed[1]", "spec.variants[0].name"]);
  });
  it("refuses host-path Kata annotations and accepts harmless ones", () => {
    const keys = ["io.katacontainers.config.hypervisor.jailer_path", "io.katacontainers.config.hypervisor.kernel", "io.katacontainers.config.hypervisor.default_vcpus", "io.katacontainers.config.hypervisor.enable_iommu", "io.katacontainers.config.runtime.sandbox_bind_mounts"];
    const r = reviewSandboxConfig(spec({ allowedSandboxAnnotations: keys }), new Map());
    assert.deepEqual(r.errors.map((e) => e.field), ["spec.allowedSandboxAnnotations[0]", "spec.allowedSandboxAnnotations[1]", "spec.allowedSandboxAnnotations[4]"]);
  });
});

describe("webhook configurations", () => {
  it("fails closed only for enforce namespaces and never selects exempt ones", () => {
    const [m, v] = webhookConfigurations({ namespace: "op", caBundle: "PEM" }) as unknown as Array<{ webhooks: Array<{ name: string; failurePolicy: string; timeoutSeconds: number; namespaceSelector?: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> }; clientConfig: { service?: { name: string; namespace: string; path: string }; caBundle?: string } }> }>;
    const all = [...m!.webhooks, ...v!.webhooks];
    assert.deepEqual(all.map((w) => [w.name, w.failurePolicy]), [["enforce.pods.sandboxing.dev", "Fail"], ["audit.pods.sandboxing.dev", "Ignore"], ["enforce.pods.validate.sandboxing.dev", "Fail"], ["audit.pods.validate.sandboxing.dev", "Ignore"], ["off.pods.validate.sandboxing.dev", "Ignore"], ["sandboxconfigs.validate.sandboxing.dev", "Ignore"]]);
    for (const w of all.filter((x) => x.namespaceSelector)) assert.deepEqual(w.namespaceSelector!.matchExpressions[1], { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "op"] });
    assert.deepEqual(all[0]!.clientConfig, { service: { namespace: "op", name: "sandbox-operator-webhook", path: "/mutate-pods/enforce", port: 443 }, caBundle: Buffer.from("PEM").toString("base64") });
    assert.ok(all.every((w) => w.timeoutSeconds <= 5));
  });
  it("leaves configured exempt namespaces out of every selector", () => {
    const e = namespaceSelectors({ namespace: "op", exemptNamespaces: ["csi", "kube-system"] });
    for (const m of ["enforce", "audit", "off"] as const) assert.deepEqual(e[m][1], { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "op", "csi"] });
  });
  it("moves label-less namespaces to the side of the cluster default", () => {
    const e = namespaceSelectors({ namespace: "op", defaultMode: "enforce" });
    assert.deepEqual([e.enforce[0], e.audit[0], e.off[0]], [
      { key: "sandboxing.dev/policy", operator: "NotIn", values: ["audit", "off"] },
      { key: "sandboxing.dev/policy", operator: "In", values: ["audit"] },
      { key: "sandboxing.dev/policy", operator: "In", values: ["off"] },
    ]);
    assert.deepEqual(namespaceSelectors({ namespace: "op" }).off[0], { key: "sandboxing.dev/policy", operator: "NotIn", values: ["enforce", "audit"] });
  });
  it("the mode the apiserver matched wins over labels, but never over exemption", () => {
    assert.equal(modeFor(ctx({ mode: "audit" })), "audit");
    assert.equal(modeFor(ctx({ mode: "enforce", namespace: "kube-system" })), "exempt");
  });
  it("calls the enforce safety net only for pods outside the sandbox classes or with sandbox annotations", () => {
    const ann = "(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('io.katacontainers.') || k.startsWith('dev.gvisor.')))";
    const update = `(has(request.subResource) && request.subResource == 'ephemeralcontainers') || (${ann} && (!has(oldObject.metadata.annotations) || object.metadata.annotations != oldObject.metadata.annotations))`;
    assert.equal(
      enforceSafetyNet(["sandboxed", "gvisor"])[0]!.expression,
      `request.operation == 'CREATE' ? (!has(object.spec.runtimeClassName) || !(object.spec.runtimeClassName in ['sandboxed', 'gvisor']) || ${ann}) : (${update})`,
    );
    const [, v] = webhookConfigurations({ namespace: "op" }) as unknown as Array<{ webhooks: Array<{ matchConditions?: Array<{ expression: string }>; rules: Array<{ operations: string[]; resources: string[] }> }> }>;
    assert.equal(v!.webhooks[0]!.matchConditions![0]!.expression, `request.operation == 'CREATE' ? (true) : (${update})`, "without the class list, every enforce pod CREATE is validated");
    for (const w of v!.webhooks.slice(0, 3)) assert.deepEqual(w.rules.map((r) => [r.operations, r.resources]), [[["CREATE", "UPDATE"], ["pods"]], [["UPDATE"], ["pods/ephemeralcontainers"]]]);
  });
  it("leaves caBundle to cert-manager's injector in cert-manager mode", () => {
    const [m] = webhookConfigurations({ namespace: "op", caBundle: "PEM", certManagerCertificate: "op/svc" }) as unknown as Array<{ metadata: { annotations?: Record<string, string> }; webhooks: Array<{ clientConfig: Record<string, unknown> }> }>;
    assert.equal(m!.metadata.annotations?.["cert-manager.io/inject-ca-from"], "op/svc");
    assert.equal(m!.webhooks[0]!.clientConfig.caBundle, undefined);
  });
});

describe("warningsOf (KubeClient)", () => {
  it("splits joined Warning headers and unescapes quoted text", async () => {
    const { warningsOf } = await import("../kube/client.js");
    assert.deepEqual(warningsOf({ warning: '299 - "a, \\"quoted\\" b", 299 - "second"' }), ['a, "quoted" b', "second"]);
    assert.deepEqual(warningsOf({}), []);
  });
});
