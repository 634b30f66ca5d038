// Table tests of the pure pod policy, SandboxConfig checks and webhook configuration builders.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { SandboxConfigSpec } from "../api/index.js";
import { admitPod, forbiddenAnnotations, hostPrivileges, modeFor, mutatePod, quantityBytes, sandboxClasses, validatePod, type Pod, type PolicyContext, type RuntimeClassInfo } from "./policy.js";
import { reviewSandboxConfig } from "./policyConfig.js";
import { enforceSafetyNet, namespaceSelectors, webhookConfigurations } from "./desiredWebhooks.js";

const spec = (over: Partial<SandboxConfigSpec> = {}): SandboxConfigSpec => ({ nodeSelector: {}, runtimes: { allowed: ["gvisor", "kata-fc"] }, ...over }) as SandboxConfigSpec;
const rc = (name: string, managed = true): [string, RuntimeClassInfo] => [name, { name, managed }];
const ctx = (over: Partial<PolicyContext> = {}): PolicyContext => ({ config: spec(), runtimeClasses: new Map(), namespace: "t", namespaceLabels: { "sandboxing.dev/policy": "enforce" }, operatorNamespace: "op", ...over });
const pod = (s: Partial<Pod["spec"]> = {}, annotations?: Record<string, string>): Pod => ({ metadata: { name: "p", annotations }, spec: { containers: [{ name: "c" }], ...s } });

describe("modeFor", () => {
  const cases: Array<[string, Partial<PolicyContext>, string]> = [
    ["label enforce", {}, "enforce"],
    ["label audit", { namespaceLabels: { "sandboxing.dev/policy": "audit" } }, "audit"],
    ["no label, no config", { namespaceLabels: {}, config: null }, "off"],
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
    assert.deepEqual(mutatePod(pod(), ctx({ config: spec({ runtimeClassName: "isolated" }) })).patch[0], { op: "add", path: "/spec/runtimeClassName", value: "isolated" });
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
    assert.equal(
      enforceSafetyNet(["sandboxed", "gvisor"])[0]!.expression,
      "!has(object.spec.runtimeClassName) || !(object.spec.runtimeClassName in ['sandboxed', 'gvisor']) || (has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('io.katacontainers.') || k.startsWith('dev.gvisor.')))",
    );
    const [, v] = webhookConfigurations({ namespace: "op" }) as unknown as Array<{ webhooks: Array<{ matchConditions?: unknown }> }>;
    assert.equal(v!.webhooks[0]!.matchConditions, undefined, "without the class list, every enforce pod is validated");
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
