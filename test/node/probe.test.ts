// probeHost against real hosts: an empty host root (nothing installed), one with gVisor binaries
// (installed by the host or shipped by the agent), and this machine's own /dev/kvm.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
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
    assert.match(q.message!, /KVM guests do not run/);
    assert.equal(p.backends.find((b) => b.backend === "kata-clh")!.installed, false);
  });

  it("this machine: /dev/kvm opens but without Kata nothing proves a guest runs", async () => {
    const p = await probeHost({ hostRoot: "/" });
    assert.ok(["amd64", "arm64"].includes(p.arch));
    assert.ok(p.kernel && p.kernel.length > 0);
    assert.equal(p.kvm.device, true, "this machine has /dev/kvm (see the issue's facts)");
    assert.equal(p.kvm.guestsRun, false);
    assert.match(p.kvm.message!, /no Kata QEMU/);
  });
});
