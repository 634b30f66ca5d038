// The pod annotation allowlist, proven on one table through Kata's own OCI code (oci.SandboxConfig,
// in kata-check) for every rendered Kata file, and through the admission webhook's policy: both agree.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "smol-toml";
import { forbiddenAnnotations } from "../../src/admission/policy.js";
import { reviewSandboxConfig } from "../../src/admission/policyConfig.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import { kataCheck, kataStandIns } from "../harness/kata-check.js";
import { CASES, OTHER_KATA_KEYS } from "./annotation-cases.js";
import { daemonSetKataFiles, handlerOf, machineConfigKataFiles, SPEC } from "./fixtures.js";

const NOT_ENABLED = /^annotation io\.katacontainers\.config\.hypervisor\.\S+ is not enabled$/;
const hvSection = (content: string) => Object.values((parse(content) as { hypervisor: Record<string, { enable_annotations: string[] }> }).hypervisor)[0]!;
const podWith = (key: string, value: string) => ({ metadata: { name: "p", annotations: { [key]: value } }, spec: { containers: [{ name: "c" }] } });

describe("annotation allowlist: the webhook", () => {
  it("takes the table's allowed list as a valid SandboxConfig", () => {
    assert.deepEqual(reviewSandboxConfig(SPEC, new Map()).errors, []);
  });
  for (const c of [...CASES, ...OTHER_KATA_KEYS]) {
    it(`${c.allowed ? "admits" : "refuses"} ${c.key} (${c.why})`, () => {
      assert.deepEqual(forbiddenAnnotations(podWith(c.key, c.value), SPEC), c.allowed ? [] : [c.key]);
    });
  }
});

for (const [path, render] of [["DaemonSet", daemonSetKataFiles], ["MachineConfig", machineConfigKataFiles]] as const) {
  describe(`annotation allowlist: Kata's OCI code on every ${path} Kata file`, () => {
    const { layout, files } = render();
    it("renders a Kata file per Kata handler", () => assert.ok(files.length >= (path === "DaemonSet" ? 7 : 2), files.map((f) => f.path).join(", ")));
    for (const f of files) {
      it(`${handlerOf(f)}: every entry is an anchored exact match`, () => {
        const entries = hvSection(f.content).enable_annotations;
        assert.deepEqual(entries, ["^default_memory$", "^default_vcpus$", "^kernel_params$"]);
        for (const e of entries) assert.match(e, /^\^[a-z0-9_]+\$$/, `${f.path}: entry ${e} is not anchored`);
      });
      it(`${handlerOf(f)}: Kata takes every allowed key and refuses every other hypervisor key, as the webhook does`, async () => {
        const r = await kataCheck(f, { standIns: kataStandIns(layout), annotations: [...CASES, ...OTHER_KATA_KEYS] });
        assert.deepEqual(r.unknownKeys, []);
        CASES.forEach((c, i) => {
          const v = r.annotations![i]!;
          assert.equal(v.key, c.key);
          const webhook = forbiddenAnnotations(podWith(c.key, c.value), SPEC).length === 0;
          assert.equal(v.accepted, c.allowed, `${f.path}: Kata ${v.accepted ? "accepted" : "refused"} ${c.key} (${c.why}): ${v.error ?? ""}`);
          assert.equal(webhook, v.accepted, `webhook and Kata disagree on ${c.key}`);
          if (!c.allowed) assert.match(v.error!, NOT_ENABLED);
        });
        const kp = r.annotations![CASES.findIndex((c) => c.key.endsWith(".kernel_params"))]!;
        assert.match(kp.kernelParams!, /(^| )quiet( |$)/, "the allowed kernel_params annotation reaches the guest command line");
        // Kata leaves other io.katacontainers.* prefixes to the CRI runtime's pass-list and the webhook.
        OTHER_KATA_KEYS.forEach((c, j) => assert.equal(r.annotations![CASES.length + j]!.accepted, true, `${c.key}: Kata does not gate it, so the webhook must`));
      });
    }
  });
}

describe("annotation allowlist: what the anchors prevent, shown on Kata's own code", () => {
  const { layout, files } = daemonSetKataFiles();
  const kata = files.find((f) => handlerOf(f) === "kata")!;
  it("an unanchored entry (the defect) lets suffixes and prefixes through", async () => {
    const bare = { ...kata, content: kata.content.replace(/"\^([a-z_]+)\$"/g, '"$1"') };
    assert.notEqual(bare.content, kata.content);
    const leaks = CASES.filter((c) => ["kernel_params_x", "xkernel_params", "default_memory_slots"].some((n) => c.key.endsWith(`.${n}`)));
    const r = await kataCheck(bare, { standIns: kataStandIns(layout), annotations: leaks });
    for (const v of r.annotations!) assert.equal(v.accepted, true, `${v.key} should leak through a bare entry: ${v.error ?? ""}`);
  });
  it("a path entry (which the webhook refuses to allow) still matches only `path` on the node", async () => {
    const spec = { ...SPEC, allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor.path"] } as SandboxConfigSpec;
    assert.match(reviewSandboxConfig(spec, new Map()).errors[0]!.message, /names a host file or program/);
    const f = daemonSetKataFiles(spec).files.find((x) => handlerOf(x) === "kata-fc")!;
    assert.deepEqual(hvSection(f.content).enable_annotations, ["^path$"]);
    const r = await kataCheck(f, { standIns: kataStandIns(layout), annotations: [{ key: "io.katacontainers.config.hypervisor.jailer_path", value: "/opt/kata/bin/jailer" }, { key: "io.katacontainers.config.hypervisor.ctlpath", value: "/opt/kata/bin/jailer" }] });
    for (const v of r.annotations!) {
      assert.equal(v.accepted, false, `${v.key} must not pass a ^path$ entry`);
      assert.match(v.error!, NOT_ENABLED);
    }
  });
});
