// `sandboxctl doctor` on a PVM host without vhost-vsock (this project's machines): both printers (the
// agent's advice, which the real command uses, and the CLI's own) name kvm_pvm instead of a generic line.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Probe } from "../api/index.js";
import { explainProbe as agentAdvice } from "../agent/probe/render.js";
import { PVM_REASON } from "../agent/probe/kata-blockers.js";
import { explainProbe, renderDoctor } from "./render-doctor.js";

describe("doctor on a PVM host", () => {
  const probe = {
    arch: "amd64",
    cri: { kind: "containerd" },
    kvm: { device: true, guestsRun: false, nested: true, module: "kvm_pvm", message: PVM_REASON },
    vhostVsock: false,
    backends: [
      { backend: "kata-qemu", installed: true, usable: false },
      { backend: "kata-clh", installed: false, usable: false },
      { backend: "gvisor", installed: true, usable: true },
    ],
  } as Probe;
  it("names kvm_pvm for every Kata backend and vhost-vsock for QEMU only, instead of a generic line", () => {
    const f = Object.fromEntries(explainProbe(probe).map((x) => [x.backend, x]));
    assert.match(f["kata-qemu"]!.summary, /^Kata cannot run here: \/dev\/kvm is backed by kvm_pvm .*; no \/dev\/vhost-vsock/);
    assert.match(f["kata-clh"]!.summary, /kvm_pvm/);
    assert.doesNotMatch(f["kata-clh"]!.summary, /vhost-vsock/);
    assert.match(f["kata-qemu"]!.fix!, /hardware virtualization/);
    assert.match(renderDoctor(probe), /^kvm: device yes \(kvm_pvm\), guests run no/m);
  });
  it("the agent's advice gives the PVM fix for KVM and each Kata backend, not 'install Kata'", () => {
    const a = Object.fromEntries(agentAdvice(probe).map((x) => [x.subject, x]));
    assert.match(a.KVM!.detail, /kvm_pvm/);
    for (const b of ["KVM", "kata-qemu", "kata-clh"]) assert.match(a[b]!.fix!, /^Kata needs hardware virtualization/, b);
    assert.equal(a.gvisor!.fix, undefined);
  });
});
