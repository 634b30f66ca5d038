// Table tests for the doctor printer: one verdict per backend from a Probe, with the fix, and
// the exit decision; including this machine's case (KVM opens, guests do not run, gVisor works).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Probe } from "../api/index.js";
import { anyBackendUsable, explainProbe, renderDoctor } from "./render-doctor.js";

const base: Probe = {
  arch: "amd64",
  kernel: "6.1.0",
  cri: { kind: "containerd", version: "1.6.20", configPath: "/etc/containerd/config.toml" },
  kvm: { device: true, guestsRun: false, nested: false, message: "QEMU did not boot a guest within 10s" },
  vhostVsock: true,
  backends: [
    { backend: "kata-qemu", installed: true, usable: false },
    { backend: "gvisor", installed: true, usable: true },
  ],
};

describe("explainProbe", () => {
  const cases: Array<[string, Probe, Array<[string, boolean, RegExp]>]> = [
    ["this machine: KVM opens but guests do not run; gVisor works", base, [
      ["cri", true, /containerd 1\.6\.20 \(\/etc\/containerd\/config\.toml\)/],
      ["gvisor", true, /usable/],
      ["kata-qemu", false, /\/dev\/kvm opens but KVM guests cannot run \(QEMU did not boot a guest within 10s\); nested virtualization is off/],
    ]],
    ["no /dev/kvm", { ...base, kvm: { device: false, guestsRun: false } }, [
      ["cri", true, /containerd/],
      ["gvisor", true, /usable/],
      ["kata-qemu", false, /\/dev\/kvm is missing or cannot be opened/],
    ]],
    ["KVM fine but no vhost_vsock", { ...base, kvm: { device: true, guestsRun: true }, vhostVsock: false }, [
      ["cri", true, /containerd/],
      ["gvisor", true, /usable/],
      ["kata-qemu", false, /Kata cannot run here: no \/dev\/vhost-vsock/],
    ]],
    ["KVM fine, Kata not installed", { ...base, kvm: { device: true, guestsRun: true }, backends: [{ backend: "kata-clh", installed: false, usable: false }] }, [
      ["cri", true, /containerd/],
      ["kata-clh", false, /Kata \(kata-clh\) is not installed/],
    ]],
    ["no CRI runtime, runsc missing", { ...base, cri: { kind: "unknown" }, backends: [{ backend: "gvisor", installed: false, usable: false, message: "runsc not in PATH" }] }, [
      ["cri", false, /no supported CRI runtime/],
      ["gvisor", false, /not installed: runsc not in PATH/],
    ]],
    ["k3s: the layout and the restart unit are named", { ...base, cri: { kind: "containerd", version: "2.1.5-k3s1", configPath: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml", layout: "k3s: template /var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl (k3s regenerates …)", unit: "k3s.service" } }, [
      ["cri", true, /^containerd 2\.1\.5-k3s1 \(\/var\/lib\/rancher\/k3s\/agent\/etc\/containerd\/config\.toml\); k3s: template \S+config-v3\.toml\.tmpl \(k3s regenerates …\); restart unit k3s\.service$/],
      ["gvisor", true, /usable/],
      ["kata-qemu", false, /KVM guests cannot run/],
    ]],
    ["everything works", { ...base, kvm: { device: true, guestsRun: true }, backends: [{ backend: "kata-qemu", installed: true, usable: true }] }, [
      ["cri", true, /containerd/],
      ["kata-qemu", true, /KVM guests run/],
    ]],
  ];
  for (const [title, probe, want] of cases) {
    it(title, () => {
      const got = explainProbe(probe);
      assert.deepEqual(got.map((f) => [f.backend, f.ok]), want.map(([b, ok]) => [b, ok]));
      want.forEach(([, , re], i) => assert.match(got[i]!.summary, re));
      for (const f of got) assert.equal(Boolean(f.fix), !f.ok, `${f.backend}: a fix exactly when not ok`);
    });
  }
});

describe("renderDoctor", () => {
  it("prints the verdicts, the fixes and the conclusion", () => {
    const text = renderDoctor(base);
    assert.equal(
      text,
      [
        "host: amd64, kernel 6.1.0",
        "kvm: device yes, guests run no, nested no; vhost_vsock yes",
        "",
        "ok   cri        containerd 1.6.20 (/etc/containerd/config.toml)",
        "ok   gvisor     runsc and its containerd shim are usable",
        "FAIL kata-qemu  /dev/kvm opens but KVM guests cannot run (QEMU did not boot a guest within 10s); nested virtualization is off",
        "                fix: run on bare metal or a VM with working nested virtualization; until then use gvisor on this node",
        "",
        "sandboxes can run here with: gvisor",
        "",
      ].join("\n"),
    );
    assert.equal(anyBackendUsable(base), true);
  });

  it("aligns the column to the longest subject", () => {
    const text = renderDoctor(base, [
      { backend: "CRI runtime", ok: true, summary: "containerd" },
      { backend: "gvisor", ok: false, summary: "missing", fix: "install it" },
    ]);
    assert.match(text, /\nok {3}CRI runtime containerd\nFAIL gvisor {6}missing\n {17}fix: install it\n/);
  });

  it("says nothing can run when no backend is usable", () => {
    const none = { ...base, backends: [{ backend: "kata-qemu" as const, installed: true, usable: false }] };
    assert.match(renderDoctor(none), /no sandbox backend can run here/);
    assert.equal(anyBackendUsable(none), false);
  });
});
