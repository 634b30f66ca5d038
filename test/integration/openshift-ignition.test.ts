// The Ignition config inside our MachineConfig passes Ignition's own validator (built from
// github.com/coreos/ignition/v2), and the validator really rejects a broken one.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary } from "../harness/binaries.js";
import { renderMachineConfig } from "../../src/openshift/render-machineconfig.js";
import { machineConfigContent } from "../../src/controller/desired-machineconfig.js";

const content = {
  crioDropIn: '[crio.runtime.runtimes.sandboxed]\nruntime_path = "/usr/bin/containerd-shim-kata-v2"\nruntime_type = "vm"\nruntime_root = "/run/vc"\nprivileged_without_host_devices = true\n',
  kataFiles: [{ path: "/etc/kata-containers/sandboxed/configuration.toml", content: '[hypervisor.qemu]\npath = "/usr/libexec/qemu-kiwi"\nkernel_params = "quiet"\n[runtime]\ninternetworking_model = "tcfilter"\n' }],
};

describe("Ignition validator (coreos/ignition v2.24.0) on our MachineConfig", () => {
  let validator: string;
  let dir: string;
  before(async () => {
    validator = await ensureBinary("ignition-validate");
    dir = mkdtempSync(join(tmpdir(), "sandbox-ign-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const validate = (name: string, config: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(config));
    const r = spawnSync(validator, [file], { encoding: "utf8" });
    if (r.error) throw r.error;
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };

  for (const role of ["sandboxed", "master"]) {
    it(`accepts spec.config of the ${role} MachineConfig without a warning`, () => {
      const r = validate(`${role}.json`, renderMachineConfig(role, content).spec.config);
      assert.equal(r.code, 0, r.out);
      assert.equal(r.out.trim(), "", `validator printed: ${r.out}`);
    });
  }

  it("accepts the MachineConfig the controller renders (the agent's CRI-O and Kata renderers, variants, annotations)", () => {
    const real = machineConfigContent({ nodeSelector: {}, runtimes: { allowed: ["kata-qemu", "gvisor"] }, variants: [{ name: "kata-big", backend: "kata-qemu", vcpus: 4, memory: "4Gi" }], allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor.default_vcpus"] });
    assert.ok(real.kataFiles.length >= 3, "a Kata file per kata handler (sandboxed, kata, kata-big)");
    const r = validate("controller.json", renderMachineConfig("sandboxed", real).spec.config);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), "", `validator printed: ${r.out}`);
  });

  it("accepts the MachineConfig for a pool that has gVisor too (gVisor handlers, runsc.toml)", () => {
    const real = machineConfigContent({ nodeSelector: {}, runtimes: { allowed: ["kata-qemu", "gvisor"], preferred: ["gvisor"] } }, { backends: ["kata-qemu", "gvisor"] });
    assert.ok(real.runscConfig, "runsc.toml is in the content");
    const config = renderMachineConfig("sandboxed", real).spec.config;
    assert.ok(config.storage.files.some((f) => f.path === real.runscConfig!.path));
    const r = validate("gvisor.json", config);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), "", `validator printed: ${r.out}`);
  });

  it("rejects a broken config (relative path, data URL without media type)", () => {
    const config = structuredClone(renderMachineConfig("sandboxed", content).spec.config) as { storage: { files: Array<{ path: string; contents: { source: string } }> } };
    config.storage.files[0]!.path = "etc/crio/crio.conf.d/50-sandbox-operator.conf";
    config.storage.files[1]!.contents.source = "data:abc";
    const r = validate("broken.json", config);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /storage\.files\.0\.path.*path not absolute/);
    assert.match(r.out, /storage\.files\.1\.contents\.source/);
  });

  it("rejects an Ignition spec version it does not know", () => {
    const config = { ...renderMachineConfig("sandboxed", content).spec.config, ignition: { version: "9.9.9" } };
    const r = validate("version.json", config);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /version/i);
  });
});
