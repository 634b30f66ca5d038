// probeHost against real hosts: an empty host root (nothing installed), one with gVisor binaries
// (installed by the host or shipped by the agent), and this machine's own /dev/kvm.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { probeHost, probeHostDetailed } from "../../src/agent/probe/probe.js";
import { explainProbe } from "../../src/agent/probe/render.js";

const roots: string[] = [];
const tempRoot = () => {
  const r = mkdtempSync(join(tmpdir(), "sandbox-operator-probe-"));
  roots.push(r);
  return r;
};
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function fakeBinary(root: string, path: string) {
  mkdirSync(join(root, path, ".."), { recursive: true });
  copyFileSync("/bin/true", join(root, path));
  chmodSync(join(root, path), 0o755);
}

describe("probeHost", () => {
  it("an empty host: no CRI runtime, no KVM device, nothing usable, and advice says so", async () => {
    const p = await probeHost({ hostRoot: tempRoot() });
    assert.equal(p.cri.kind, "unknown");
    assert.equal(p.kvm.device, false);
    assert.equal(p.kvm.guestsRun, false);
    assert.deepEqual(p.backends.map((b) => [b.backend, b.installed, b.usable]), [
      ["kata-qemu", false, false],
      ["kata-clh", false, false],
      ["kata-fc", false, false],
      ["gvisor", false, false],
    ]);
    const advice = explainProbe(p);
    assert.ok(advice.filter((a) => !a.ok).every((a) => a.fix), "every failure carries a fix");
    assert.match(advice.find((a) => a.subject === "gvisor")!.detail, /runsc and containerd-shim-runsc-v1 not found/);
  });

  it("finds host-installed gVisor and containerd, and configures their real paths", async () => {
    const root = tempRoot();
    fakeBinary(root, "/usr/local/bin/runsc");
    fakeBinary(root, "/usr/local/bin/containerd-shim-runsc-v1");
    fakeBinary(root, "/usr/bin/containerd");
    const inv = await probeHostDetailed({ hostRoot: root });
    assert.equal(inv.probe.cri.kind, "containerd");
    assert.equal(inv.probe.cri.configPath, "/etc/containerd/config.toml");
    const g = inv.probe.backends.find((b) => b.backend === "gvisor")!;
    assert.deepEqual([g.installed, g.usable], [true, true]);
    assert.equal(inv.layout.runsc, "/usr/local/bin/runsc");
    assert.equal(inv.layout.gvisorShim, "/usr/local/bin/containerd-shim-runsc-v1");
    assert.equal(inv.shipsGvisor, false);
  });

  it("counts gVisor binaries the agent ships as usable and installs them under /opt/sandbox-operator", async () => {
    const payload = tempRoot();
    fakeBinary(payload, "/runsc");
    fakeBinary(payload, "/containerd-shim-runsc-v1");
    const inv = await probeHostDetailed({ hostRoot: tempRoot(), payloadDir: payload });
    const g = inv.probe.backends.find((b) => b.backend === "gvisor")!;
    assert.deepEqual([g.installed, g.usable], [false, true]);
    assert.equal(inv.layout.runsc, "/opt/sandbox-operator/bin/runsc");
    assert.equal(inv.shipsGvisor, true);
  });

  it("Kata installed but KVM guests cannot run: installed, not usable, reason given", async () => {
    const root = tempRoot();
    fakeBinary(root, "/opt/kata/bin/containerd-shim-kata-v2");
    fakeBinary(root, "/opt/kata/bin/qemu-system-x86_64");
    mkdirSync(join(root, "opt/kata/share/kata-containers"), { recursive: true });
    copyFileSync("/bin/true", join(root, "opt/kata/share/kata-containers/vmlinux.container"));
    copyFileSync("/bin/true", join(root, "opt/kata/share/kata-containers/kata-containers.img"));
    const p = await probeHost({ hostRoot: root });
    const q = p.backends.find((b) => b.backend === "kata-qemu")!;
    assert.deepEqual([q.installed, q.usable], [true, false]);
    // That host root has no /dev/vhost-vsock: Kata's QEMU needs it, so the probe says so first.
    assert.match(q.message!, /^installed, but Kata cannot run here: no \/dev\/vhost-vsock/);
    assert.equal(p.backends.find((b) => b.backend === "kata-clh")!.installed, false);
  });

  it("Kata installed on a PVM-backed /dev/kvm: no guest is tried, kvm_pvm is named", async () => {
    const root = tempRoot();
    for (const bin of ["containerd-shim-kata-v2", "qemu-system-x86_64", "cloud-hypervisor"]) fakeBinary(root, `/opt/kata/bin/${bin}`);
    mkdirSync(join(root, "opt/kata/share/kata-containers"), { recursive: true });
    for (const f of ["vmlinux.container", "kata-containers.img"]) copyFileSync("/bin/true", join(root, "opt/kata/share/kata-containers", f));
    mkdirSync(join(root, "dev"));
    writeFileSync(join(root, "dev/kvm"), "");
    writeFileSync(join(root, "dev/vhost-vsock"), "");
    mkdirSync(join(root, "sys/module/kvm_pvm"), { recursive: true });
    const p = await probeHost({ hostRoot: root });
    assert.deepEqual([p.kvm.device, p.kvm.guestsRun, p.kvm.module], [true, false, "kvm_pvm"]);
    assert.match(p.kvm.message!, /backed by kvm_pvm/);
    for (const b of ["kata-qemu", "kata-clh"]) {
      const k = p.backends.find((x) => x.backend === b)!;
      assert.deepEqual([k.installed, k.usable], [true, false]);
      assert.match(k.message!, /^installed, but Kata cannot run here: \/dev\/kvm is backed by kvm_pvm/);
      assert.doesNotMatch(k.message!, /vhost-vsock/, "vhost-vsock is there");
    }
  });

  it("this machine: the probe says why Kata cannot run, from its real kvm module and vhost-vsock", async () => {
    // Read independently of the probe: /sys/module/kvm_pvm and /dev/vhost-vsock (MACHINE-FACTS: PVM, no vhost-vsock).
    const pvm = existsSync("/sys/module/kvm_pvm");
    const vsock = existsSync("/dev/vhost-vsock");
    const p = await probeHost({ hostRoot: "/" });
    assert.ok(["amd64", "arm64"].includes(p.arch));
    assert.ok(p.kernel && p.kernel.length > 0);
    assert.equal(p.kvm.device, true, "this machine has /dev/kvm (see the issue's facts)");
    assert.equal(p.kvm.guestsRun, false);
    assert.equal(p.vhostVsock, vsock);
    const kata = (b: string) => p.backends.find((x) => x.backend === b)!.message!;
    if (pvm) {
      assert.equal(p.kvm.module, "kvm_pvm");
      assert.match(p.kvm.message!, /backed by kvm_pvm .* runs only PVM-enabled guest kernels/);
      for (const b of ["kata-qemu", "kata-clh", "kata-fc"]) assert.match(kata(b), /Kata cannot run here: \/dev\/kvm is backed by kvm_pvm/);
    } else {
      assert.notEqual(p.kvm.module, "kvm_pvm");
      assert.match(p.kvm.message!, /no Kata QEMU/);
    }
    if (!vsock) assert.match(kata("kata-qemu"), /no \/dev\/vhost-vsock/);
    assert.doesNotMatch(kata("kata-clh"), /vhost-vsock/, "Cloud Hypervisor uses hybrid vsock");
  });
});
