// Golden and parse tests for every renderer the agent and the OpenShift path share: CRI-O
// drop-in, containerd runtime tables (v1/v2/v3), Kata configurations, runsc.toml.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "smol-toml";
import type { DesiredHandler } from "../../api/sandboxnode.js";
import { addImport, renderContainerdDropIn, renderContainerdRuntimes, runtimesKeyPath, spliceManagedBlock, stripManagedBlock } from "./containerd-runtimes.js";
import { renderCrioDropIn } from "./crio-dropin.js";
import { renderRunscConfig } from "./runsc-config.js";
import { kataEnabledAnnotations, renderKataConfigs } from "./kata-config.js";
import { defaultLayout } from "./layout.js";
import { golden } from "./golden.test-util.js";

const layout = defaultLayout();
const handlers: DesiredHandler[] = [
  { name: "sandboxed", backend: "kata-qemu", general: true },
  { name: "kata", backend: "kata-qemu" },
  { name: "kata-clh", backend: "kata-clh" },
  { name: "kata-fc", backend: "kata-fc" },
  { name: "gvisor", backend: "gvisor" },
  { name: "big-vm", backend: "kata-qemu", kata: { vcpus: 4, memoryMiB: 8192, kernelParams: ["hugepages=16", "quiet"] } },
];
const allowed = ["io.katacontainers.config.hypervisor.kernel_params", "dev.gvisor.spec.mount.foo.share"];

type Tree = Record<string, unknown>;
const at = (t: Tree, path: string[]): Tree => path.reduce<Tree>((o, k) => (o?.[k] ?? undefined) as Tree, t);

describe("CRI-O drop-in", () => {
  it("renders Kata and gVisor as vm runtimes through their shims, no annotations by default (golden)", () => {
    const out = renderCrioDropIn(handlers, { layout });
    golden("crio-default.conf", out);
    const rt = at(parse(out) as Tree, ["crio", "runtime", "runtimes"]);
    assert.deepEqual(Object.keys(rt).sort(), ["big-vm", "gvisor", "kata", "kata-clh", "kata-fc", "sandboxed"]);
    assert.equal(at(rt, ["sandboxed"]).runtime_type, "vm");
    assert.equal(at(rt, ["sandboxed"]).runtime_config_path, "/opt/sandbox-operator/etc/kata/configuration-sandboxed.toml");
    // runsc as an "oci" runtime under conmon cannot report a gVisor container's exit (gvisor#10313).
    assert.equal(at(rt, ["gvisor"]).runtime_type, "vm");
    assert.equal(at(rt, ["gvisor"]).runtime_path, "/opt/sandbox-operator/bin/containerd-shim-runsc-v1");
    assert.equal(at(rt, ["gvisor"]).runtime_config_path, "/opt/sandbox-operator/etc/runsc.toml");
    for (const h of Object.values(rt) as Tree[]) {
      assert.equal(h.privileged_without_host_devices, true);
      assert.deepEqual(h.allowed_annotations, []);
    }
  });
  it("passes only the allowed keys of each backend's own prefix (golden)", () => {
    const out = renderCrioDropIn(handlers, { layout, allowedAnnotations: allowed });
    golden("crio-annotations.conf", out);
    const rt = at(parse(out) as Tree, ["crio", "runtime", "runtimes"]);
    assert.deepEqual(at(rt, ["kata"]).allowed_annotations, ["io.katacontainers.config.hypervisor.kernel_params"]);
    assert.deepEqual(at(rt, ["gvisor"]).allowed_annotations, ["dev.gvisor.spec.mount.foo.share"]);
  });
  it("is deterministic whatever the handler order", () => {
    assert.equal(renderCrioDropIn([...handlers].reverse(), { layout }), renderCrioDropIn(handlers, { layout }));
  });
});

describe("containerd runtimes", () => {
  for (const version of [1, 2, 3] as const) {
    it(`config version ${version}: tables parse where containerd reads them (golden)`, () => {
      const v1x = version < 3;
      const out = renderContainerdRuntimes(handlers, { layout, configVersion: version, allowedAnnotations: allowed, runtimeTypeAsPath: v1x, redeclareDefault: v1x ? "runc" : undefined });
      golden(`containerd-v${version}.toml`, out);
      const rt = at(parse(out) as Tree, runtimesKeyPath(version));
      assert.equal(at(rt, ["gvisor"]).runtime_type, v1x ? "/opt/sandbox-operator/bin/containerd-shim-runsc-v1" : "io.containerd.runsc.v1");
      assert.equal(at(rt, ["gvisor"]).runtime_path, "/opt/sandbox-operator/bin/containerd-shim-runsc-v1");
      if (v1x) assert.deepEqual({ ...at(rt, ["runc"]) }, { runtime_type: "io.containerd.runc.v2" }, "the default runtime is re-declared");
      assert.equal(at(rt, ["gvisor", "options"]).ConfigPath, "/opt/sandbox-operator/etc/runsc.toml");
      assert.equal(at(rt, ["sandboxed"]).runtime_type, v1x ? "/opt/kata/bin/containerd-shim-kata-v2" : "io.containerd.kata.v2");
      assert.equal(at(rt, ["sandboxed"]).runtime_path, "/opt/kata/bin/containerd-shim-kata-v2");
      assert.deepEqual(at(rt, ["kata"]).pod_annotations, ["io.katacontainers.config.hypervisor.kernel_params"]);
      assert.equal(at(rt, ["kata"]).privileged_without_host_devices, true);
    });
  }
  it("2.x drop-in is a whole version-3 file (golden)", () => {
    const out = renderContainerdDropIn([{ name: "sandboxed", backend: "gvisor", general: true }, { name: "gvisor", backend: "gvisor" }], { layout });
    golden("containerd-dropin.toml", out);
    assert.equal((parse(out) as Tree).version, 3);
  });
});

describe("managed block in a containerd 1.x config.toml", () => {
  const original = `# admin comment kept\nversion = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "x"\n`;
  const block = renderContainerdRuntimes([{ name: "gvisor", backend: "gvisor" }], { layout, configVersion: 2 });
  it("keeps every original byte and strips back to them", () => {
    const edited = spliceManagedBlock(original, block);
    assert.ok(edited.startsWith(original));
    assert.equal(stripManagedBlock(edited), original);
    const cfg = parse(edited) as Tree;
    assert.equal(at(cfg, ["plugins", "io.containerd.grpc.v1.cri"]).sandbox_image, "x");
    assert.equal(at(cfg, [...runtimesKeyPath(2), "gvisor"]).runtime_type, "io.containerd.runsc.v1");
  });
  it("replaces an earlier block instead of adding a second one", () => {
    const once = spliceManagedBlock(original, block);
    const twice = spliceManagedBlock(once, block);
    assert.equal(twice, once);
  });
  it("handles a file without a trailing newline (gains one; revert restores the backup byte-for-byte) and an empty file", () => {
    const noNl = "version = 2";
    assert.equal(stripManagedBlock(spliceManagedBlock(noNl, block)), `${noNl}\n`);
    assert.equal(stripManagedBlock(spliceManagedBlock("", block)), "");
  });
  it("refuses a half-removed block", () => {
    const edited = spliceManagedBlock(original, block);
    assert.throws(() => stripManagedBlock(edited.replace("# END sandbox-operator\n", "")), /without/);
  });
});

describe("imports for a containerd 2.x drop-in", () => {
  const p = "/etc/containerd/conf.d/50-sandbox-operator.toml";
  it("adds a top-level imports before the first table", () => {
    const out = addImport(`version = 3\n\n[plugins.x]\n  a = 1\n`, p, [])!;
    assert.deepEqual((parse(out) as Tree).imports, [p]);
    assert.equal(at(parse(out) as Tree, ["plugins", "x"]).a, 1);
  });
  it("appends to an existing one-line imports", () => {
    const out = addImport(`version = 3\nimports = ["/a.toml"] # mine\n`, p, ["/a.toml"])!;
    assert.deepEqual((parse(out) as Tree).imports, ["/a.toml", p]);
    assert.match(out, /# mine/);
  });
  it("an imports key inside a table is not the top-level one: a top-level imports is added", () => {
    const out = addImport(`version = 3\n[plugins.x]\nimports = ["theirs"]\n`, p, [])!;
    assert.deepEqual((parse(out) as Tree).imports, [p]);
    assert.deepEqual(at(parse(out) as Tree, ["plugins", "x"]).imports, ["theirs"]);
  });
  it("changes nothing when a glob already covers the drop-in", () => {
    assert.equal(addImport(`version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n`, p, ["/etc/containerd/conf.d/*.toml"]), null);
  });
  it("refuses a multi-line imports it cannot edit safely", () => {
    assert.throws(() => addImport(`imports = [\n "/a.toml",\n]\n`, p, ["/a.toml"]), /spans several lines/);
  });
});

describe("Kata configuration", () => {
  it("one file per Kata handler with sizing, params and no annotations by default (golden)", () => {
    const files = renderKataConfigs(handlers, { layout, arch: "x64" });
    assert.deepEqual(files.map((f) => f.path), [
      "/opt/sandbox-operator/etc/kata/configuration-big-vm.toml",
      "/opt/sandbox-operator/etc/kata/configuration-kata-clh.toml",
      "/opt/sandbox-operator/etc/kata/configuration-kata-fc.toml",
      "/opt/sandbox-operator/etc/kata/configuration-kata.toml",
      "/opt/sandbox-operator/etc/kata/configuration-sandboxed.toml",
    ]);
    for (const f of files) golden(`kata-${f.path.split("configuration-")[1]}`, f.content);
    const big = parse(files[0]!.content) as Tree;
    assert.equal(at(big, ["hypervisor", "qemu"]).default_vcpus, 4);
    assert.equal(at(big, ["hypervisor", "qemu"]).default_memory, 8192);
    assert.equal(at(big, ["hypervisor", "qemu"]).kernel_params, "hugepages=16 quiet");
    assert.deepEqual(at(big, ["hypervisor", "qemu"]).enable_annotations, []);
    const fc = parse(files[2]!.content) as Tree;
    assert.equal(at(fc, ["hypervisor", "firecracker"]).jailer_path, "/opt/kata/bin/jailer");
    assert.equal(at(fc, ["runtime"]).static_sandbox_resource_mgmt, true);
    const clh = parse(files[1]!.content) as Tree;
    assert.equal(at(clh, ["hypervisor", "clh"]).path, "/opt/kata/bin/cloud-hypervisor");
  });
  it("arm64 QEMU uses the aarch64 binary and the virt machine", () => {
    const [f] = renderKataConfigs([{ name: "kata", backend: "kata-qemu" }], { layout, arch: "arm64" });
    const q = at(parse(f!.content) as Tree, ["hypervisor", "qemu"]);
    assert.equal(q.path, "/opt/kata/bin/qemu-system-aarch64");
    assert.equal(q.machine_type, "virt");
  });
  it("maps allowed hypervisor annotations to anchored enable_annotations expressions (Kata's loader proves them: test/kata/)", () => {
    assert.deepEqual(kataEnabledAnnotations(["io.katacontainers.config.hypervisor.kernel_params", "io.katacontainers.config.agent.x", "dev.gvisor.y"]), ["^kernel_params$"]);
    const [f] = renderKataConfigs([{ name: "kata", backend: "kata-qemu" }], { layout, allowedAnnotations: allowed });
    assert.deepEqual(at(parse(f!.content) as Tree, ["hypervisor", "qemu"]).enable_annotations, ["^kernel_params$"]);
  });
  it("ignores gVisor handlers and rejects a non-Kata backend by name", () => {
    assert.deepEqual(renderKataConfigs([{ name: "gvisor", backend: "gvisor" }], { layout }), []);
  });
});

describe("runsc.toml", () => {
  it("names the runsc binary and the flags (golden)", () => {
    const out = renderRunscConfig(defaultLayout({ runscFlags: { network: "none", platform: "systrap" } }));
    golden("runsc.toml", out);
    const t = parse(out) as Tree;
    assert.equal(t.binary_name, "/opt/sandbox-operator/bin/runsc");
    assert.deepEqual({ ...(t.runsc_config as object) }, { network: "none", platform: "systrap" });
  });
});
