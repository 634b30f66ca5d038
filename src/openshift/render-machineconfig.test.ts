import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CONTENT_HASH_ANNOTATION,
  DEFAULT_CRIO_DROPIN_PATH,
  RenderError,
  contentHash,
  decodeDataUrl,
  renderMachineConfig,
  renderMachineConfigPool,
} from "./render-machineconfig.js";

const dropIn = '[crio.runtime.runtimes.sandboxed]\nruntime_path = "/usr/bin/containerd-shim-kata-v2"\nruntime_type = "vm"\n';
const content = () => ({
  crioDropIn: dropIn,
  kataFiles: [
    { path: "/etc/kata-containers/sandboxed/configuration.toml", content: '[hypervisor.qemu]\nkernel_params = "a=b"\n' },
    { path: "/etc/kata-containers/kata/configuration.toml", content: "# kata\n" },
  ],
});

describe("renderMachineConfigPool", () => {
  it("selects worker and its own MachineConfigs and nodes by the role label", () => {
    const pool = renderMachineConfigPool("sandboxed", { maxUnavailable: 2 });
    assert.equal(pool.metadata.name, "sandboxed");
    assert.deepEqual(pool.spec.machineConfigSelector, { matchExpressions: [{ key: "machineconfiguration.openshift.io/role", operator: "In", values: ["worker", "sandboxed"] }] });
    assert.deepEqual(pool.spec.nodeSelector, { matchLabels: { "node-role.kubernetes.io/sandboxed": "" } });
    assert.equal(pool.spec.maxUnavailable, 2);
    assert.equal("paused" in pool.spec, false, "pausing stays the admin's choice");
  });
  it("refuses to replace the worker pool or an invalid role", () => {
    assert.throws(() => renderMachineConfigPool("worker"), /pool role: the worker pool already exists/);
    assert.throws(() => renderMachineConfigPool("Bad_Role"), /pool role: "Bad_Role" must be a DNS label/);
  });
});

describe("renderMachineConfig", () => {
  it("enables the RHCOS extension and writes each input file verbatim as a 0644 data: URL", () => {
    const mc = renderMachineConfig("sandboxed", content());
    assert.equal(mc.metadata.name, "50-sandbox-operator-sandboxed");
    assert.equal(mc.metadata.labels["machineconfiguration.openshift.io/role"], "sandboxed");
    assert.deepEqual(mc.spec.extensions, ["sandboxed-containers"]);
    assert.match(mc.spec.config.ignition.version, /^3\./);
    const files = mc.spec.config.storage.files;
    assert.deepEqual(files.map((f) => f.path), [DEFAULT_CRIO_DROPIN_PATH, "/etc/kata-containers/kata/configuration.toml", "/etc/kata-containers/sandboxed/configuration.toml"]);
    for (const f of files) {
      assert.equal(f.mode, 0o644);
      assert.equal(f.overwrite, true);
      assert.match(f.contents.source, /^data:/);
    }
    assert.equal(decodeDataUrl(files[0]!.contents.source), dropIn);
    assert.equal(decodeDataUrl(files[2]!.contents.source), content().kataFiles[0]!.content);
  });
  it("targets the master pool by role for compact clusters", () => {
    const mc = renderMachineConfig("master", content());
    assert.equal(mc.metadata.name, "50-sandbox-operator-master");
    assert.equal(mc.metadata.labels["machineconfiguration.openshift.io/role"], "master");
  });
  it("is deterministic and its content hash follows the bytes", () => {
    assert.deepEqual(renderMachineConfig("sandboxed", content()), renderMachineConfig("sandboxed", content()));
    const changed = { ...content(), crioDropIn: dropIn + "# changed\n" };
    assert.notEqual(contentHash(content()), contentHash(changed));
    assert.equal(renderMachineConfig("sandboxed", changed).metadata.annotations[CONTENT_HASH_ANNOTATION], contentHash(changed));
  });
  const bad: Array<[string, object, RegExp]> = [
    ["a file under /usr (read-only on RHCOS)", { kataFiles: [{ path: "/usr/share/kata/x.toml", content: "x" }] }, /kataFiles\[0\]\.path: "\/usr\/share\/kata\/x.toml" is outside \/etc and \/var/],
    ["a relative path", { kataFiles: [{ path: "etc/kata.toml", content: "x" }] }, /kataFiles\[0\]\.path: .*absolute/],
    ["a drop-in outside crio.conf.d", { crioDropInPath: "/etc/crio/crio.conf" }, /crioDropInPath: .*must be under \/etc\/crio\/crio.conf.d\//],
    ["an empty drop-in", { crioDropIn: " \n" }, /crioDropIn: is empty/],
    ["the same path twice", { kataFiles: [{ path: "/etc/a", content: "1" }, { path: "/etc/a", content: "2" }] }, /two files target \/etc\/a/],
    ["a runsc.toml under /opt (not writable by the MCO)", { runscConfig: { path: "/opt/sandbox-operator/etc/runsc.toml", content: "x" } }, /runscConfig\.path: .* is outside \/etc and \/var/],
    ["a runsc.toml on a Kata file's path", { runscConfig: { path: "/etc/kata-containers/kata/configuration.toml", content: "x" } }, /two files target \/etc\/kata-containers\/kata\/configuration.toml/],
  ];
  for (const [title, patch, re] of bad) {
    it(`refuses ${title}, naming the field`, () => {
      assert.throws(() => renderMachineConfig("sandboxed", { ...content(), ...patch }), (e: unknown) => e instanceof RenderError && re.test(e.message));
    });
  }
  it("writes the gVisor shim's runsc.toml when the content has one, sorted with the rest", () => {
    const runscConfig = { path: "/etc/sandbox-operator/etc/runsc.toml", content: 'binary_name = "/etc/sandbox-operator/bin/runsc"\n' };
    const files = renderMachineConfig("sandboxed", { ...content(), runscConfig }).spec.config.storage.files;
    assert.deepEqual(files.map((f) => f.path), [DEFAULT_CRIO_DROPIN_PATH, "/etc/kata-containers/kata/configuration.toml", "/etc/kata-containers/sandboxed/configuration.toml", runscConfig.path]);
    assert.equal(decodeDataUrl(files[3]!.contents.source), runscConfig.content);
    assert.notEqual(contentHash({ ...content(), runscConfig }), contentHash(content()));
  });
  it("decodes percent-encoded data URLs too", () => {
    assert.equal(decodeDataUrl("data:,a%20b%0A"), "a b\n");
  });
});
