// Every Kata file we render, on both install paths, loaded by Kata 4.1.0's own loader (kata-check):
// assertions on what Kata resolved (paths under our layout, kernel params, memory, vCPUs, shared fs).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { kataCheck, kataRefusal, kataStandIns, kernelCmdline, type KataCheckResult } from "../harness/kata-check.js";
import { daemonSetKataFiles, handlerOf, machineConfigKataFiles } from "./fixtures.js";

interface Want {
  type: string;
  bin: string;
  vcpus: number;
  memory: number;
  params: string;
  /** Kata's cold_plug_vfio / hot_plug_vfio / pcie_root_port as resolved; "no-port" twice when absent. */
  vfio?: { cold: string; hot: string; rootPorts: number; podResources: string };
}
const qemu = { type: "qemu", bin: "qemu-system-x86_64" };
const clh = { type: "clh", bin: "cloud-hypervisor" };
const fc = { type: "firecracker", bin: "firecracker" };
const plain = { vcpus: 1, memory: 2048, params: "" };
/** The backend's own class: what Kata puts on the command line before ours (systemd.unit=..., scsi_mod.scan=none). */
const PLAIN: Record<string, string> = { qemu: "kata", clh: "kata-clh", firecracker: "kata-fc" };
/** What each handler of fixtures.ts SPEC should resolve to (Kata's defaults where the variant says nothing). */
const WANT: Record<string, Want> = {
  sandboxed: { ...qemu, ...plain },
  kata: { ...qemu, ...plain },
  "kata-clh": { ...clh, ...plain },
  "kata-fc": { ...fc, ...plain },
  "big-vm": { ...qemu, vcpus: 64, memory: 8192, params: "hugepages=16 quiet" },
  "clh-tuned": { ...clh, vcpus: 1, memory: 3072, params: "mitigations=auto,nosmt systemd.unified_cgroup_hierarchy=1" },
  "fc-small": { ...fc, vcpus: 1, memory: 1024, params: "console=ttyS0" },
  gpu: { ...qemu, ...plain, memory: 4096, vfio: { cold: "root-port", hot: "no-port", rootPorts: 0, podResources: "/var/lib/kubelet/pod-resources/kubelet.sock" } },
  "nic-hotplug": { ...clh, ...plain, vfio: { cold: "no-port", hot: "root-port", rootPorts: 2, podResources: "" } },
};

for (const [path, render] of [["DaemonSet", daemonSetKataFiles], ["MachineConfig", machineConfigKataFiles]] as const) {
  describe(`Kata's loader on every ${path} Kata file`, () => {
    const { layout, files, shims } = render();
    const expected = path === "DaemonSet" ? Object.keys(WANT) : ["sandboxed", "kata", "big-vm", "gpu"];
    const loaded = new Map<string, KataCheckResult>();
    before(async () => {
      for (const f of files) loaded.set(handlerOf(f), await kataCheck(f, { standIns: kataStandIns(layout) }));
    });
    it("renders one file per Kata handler", () => assert.deepEqual(files.map(handlerOf).sort(), [...expected].sort()));
    it("the CRI runtime's config runs the layout's Kata shim on exactly the file Kata loaded", () => {
      assert.ok(kataStandIns(layout).includes(layout.kataShim));
      for (const f of files) assert.deepEqual(shims[handlerOf(f)], { shim: layout.kataShim, config: f.path }, handlerOf(f));
    });
    for (const f of files) {
      const want = WANT[handlerOf(f)]!;
      it(`${handlerOf(f)} (${want.type}): loads, no unknown keys, resolves as rendered`, () => {
        const r = loaded.get(handlerOf(f))!;
        const h = r.config.HypervisorConfig;
        assert.deepEqual(r.unknownKeys, [], `${f.path}: keys Kata ignores`);
        assert.equal(r.resolvedPath, f.path);
        assert.equal(r.config.HypervisorType, want.type);
        assert.equal(h.HypervisorPath, `${layout.kataDir}/bin/${want.bin}`);
        assert.deepEqual(h.HypervisorPathList, [`${layout.kataDir}/bin/${want.bin}`]);
        assert.equal(h.KernelPath, `${layout.kataDir}/share/kata-containers/vmlinux.container`);
        assert.equal(h.ImagePath, `${layout.kataDir}/share/kata-containers/kata-containers.img`);
        // Kata's own parameters first, then the variant's, in order, nothing else.
        const own = kernelCmdline(loaded.get(PLAIN[want.type]!)!.config.HypervisorConfig);
        assert.match(own, /systemd\.unit=kata-containers\.target/);
        assert.equal(kernelCmdline(h), want.params ? `${own} ${want.params}` : own, "guest kernel parameters appended as the variant lists them");
        assert.equal(h.MemorySize, want.memory);
        // Kata clamps default_vcpus to the vCPUs this host can give (hostCPUs, computed by Kata itself).
        assert.ok(r.hostCPUs >= 1);
        assert.equal(h.NumVCPUsF, Math.min(want.vcpus, r.hostCPUs));
        assert.equal(h.DefaultMaxVCPUs, r.hostCPUs, "default_maxvcpus = 0: the VM may grow to the host's vCPUs");
        assert.deepEqual(h.EnableAnnotations, ["^default_memory$", "^default_vcpus$", "^kernel_params$"]);
        if (want.type === "firecracker") {
          assert.equal(h.JailerPath, `${layout.kataDir}/bin/jailer`);
          assert.equal(h.BlockDeviceDriver, "virtio-mmio");
          assert.notEqual(h.SharedFS, "virtio-fs", "Firecracker has no virtio-fs");
          assert.equal(r.config.StaticSandboxResourceMgmt, true, "Firecracker cannot hot-plug: sized up front");
        } else {
          assert.equal(h.SharedFS, "virtio-fs");
          assert.equal(h.VirtioFSDaemon, `${layout.kataDir}/libexec/virtiofsd`);
          assert.equal(r.config.StaticSandboxResourceMgmt, false);
        }
        assert.equal(r.config.DisableGuestSeccomp, true);
        // Kata's Firecracker loader has no PCIe options at all: they stay empty there.
        const none = want.type === "firecracker" ? "" : "no-port";
        const vfio = want.vfio ?? { cold: none, hot: none, rootPorts: 0, podResources: "" };
        assert.deepEqual(
          { cold: h.ColdPlugVFIO, hot: h.HotPlugVFIO, rootPorts: h.PCIeRootPort, podResources: r.config.PodResourceAPISock },
          vfio,
          "VFIO passthrough as Kata resolved it (no-port: none)",
        );
      });
    }
  });
}

describe("Kata's loader refuses what it should (the checker can fail)", () => {
  const { layout, files } = daemonSetKataFiles();
  const kata = files.find((f) => handlerOf(f) === "kata")!;
  it("a hypervisor outside our layout does not exist", async () => {
    const moved = { ...kata, content: kata.content.replace(/^path = .*$/m, 'path = "/opt/elsewhere/qemu-system-x86_64"') };
    assert.match(await kataRefusal(moved, { standIns: kataStandIns(layout) }), /\/opt\/elsewhere\/qemu-system-x86_64 does not exist/);
  });
  it("a layout without the guest kernel cannot load (Kata 4.1.0 checks virtiofsd only when it starts it)", async () => {
    assert.match(await kataRefusal(kata, { standIns: kataStandIns(layout).filter((p) => !p.endsWith("/vmlinux.container")) }), /vmlinux\.container does not exist/);
  });
  it("VFIO: Kata refuses cold- and hot-plug together, and Cloud Hypervisor on a switch-port (what the API's CEL rules refuse first)", async () => {
    const gpu = files.find((f) => handlerOf(f) === "gpu")!;
    const both = { ...gpu, content: gpu.content.replace('hot_plug_vfio = "no-port"', 'hot_plug_vfio = "root-port"') };
    assert.match(await kataRefusal(both, { standIns: kataStandIns(layout) }), /only one of them can be set/);
    const nic = files.find((f) => handlerOf(f) === "nic-hotplug")!;
    const sw = { ...nic, content: nic.content.replace('hot_plug_vfio = "root-port"', 'hot_plug_vfio = "switch-port"') };
    assert.match(await kataRefusal(sw, { standIns: kataStandIns(layout) }), /only hot-plug=no-port or root-port supported on CLH/);
  });
  it("an unknown key is reported (Kata itself ignores it)", async () => {
    const r = await kataCheck({ ...kata, content: kata.content.replace("[runtime]\n", "[runtime]\nno_such_key = true\n") }, { standIns: kataStandIns(layout) });
    assert.deepEqual(r.unknownKeys, ["runtime.no_such_key"]);
  });
});
