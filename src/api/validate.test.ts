// The controller's own validation uses the CRD schema: defaults and field-named errors.
import { it } from "node:test";
import assert from "node:assert/strict";
import { validateSandboxConfig, ValidationError } from "./validate.js";

const base = () => ({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor"] } } as Record<string, unknown> });

it("applies schema defaults", () => {
  const cfg = validateSandboxConfig(base());
  assert.equal(cfg.spec.runtimeClassName, "sandboxed");
  assert.equal(cfg.spec.rollout?.maxUnavailable, 1);
  assert.equal(cfg.spec.uninstall?.whenPodsRun, "Wait");
});

it("names the field of every error", () => {
  const bad = base();
  bad.spec.runtimes = { allowed: ["nope"] };
  bad.spec.logLevel = "loud";
  assert.throws(() => validateSandboxConfig(bad), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    const fields = e.errors.map((x) => x.field);
    assert.ok(fields.includes("spec.runtimes.allowed[0]"), fields.join());
    assert.ok(fields.includes("spec.logLevel"), fields.join());
    assert.match(e.message, /spec\.runtimes\.allowed\[0\]: must be one of kata-qemu, kata-clh, kata-fc, gvisor/);
    return true;
  });
});

it("reports a missing required field by its full path", () => {
  const bad = base();
  delete bad.spec.runtimes;
  assert.throws(() => validateSandboxConfig(bad), /spec\.runtimes: is required/);
});

it("verification: an image reference, a pull policy and Secret names, each refused by its field", () => {
  const ok = base();
  ok.spec.verification = { image: "registry.local:5000/tools/busybox@sha256:" + "c".repeat(64), imagePullPolicy: "IfNotPresent", imagePullSecrets: ["pull-creds"] };
  assert.equal(validateSandboxConfig(ok).spec.verification?.imagePullSecrets?.[0], "pull-creds");
  const bad = base();
  bad.spec.verification = { image: "Not An Image", imagePullPolicy: "Sometimes", imagePullSecrets: ["Bad_Name"] };
  assert.throws(() => validateSandboxConfig(bad), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    const fields = e.errors.map((x) => x.field);
    for (const f of ["spec.verification.image", "spec.verification.imagePullPolicy", "spec.verification.imagePullSecrets[0]"]) assert.ok(fields.includes(f), `${f} in ${fields.join()}`);
    return true;
  });
});
