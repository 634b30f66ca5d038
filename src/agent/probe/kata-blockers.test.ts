// Table test of why Kata cannot run (kvm_pvm, no vhost-vsock): the pure part the probe and
// `sandboxctl doctor` share (src/cli/doctor-pvm.test.ts checks what the doctor prints).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kataBlockers, kvmModuleOf, NO_VHOST_VSOCK_REASON, PVM_REASON, type VirtFacts } from "./kata-blockers.js";

describe("kataBlockers", () => {
  const cases: Array<[string, VirtFacts, Record<"kata-qemu" | "kata-clh" | "kata-fc", string[]>]> = [
    ["PVM and no vhost-vsock (this project's test machines)", { kvmModule: "kvm_pvm", vhostVsock: false }, { "kata-qemu": [PVM_REASON, NO_VHOST_VSOCK_REASON], "kata-clh": [PVM_REASON], "kata-fc": [PVM_REASON] }],
    ["PVM with vhost-vsock", { kvmModule: "kvm_pvm", vhostVsock: true }, { "kata-qemu": [PVM_REASON], "kata-clh": [PVM_REASON], "kata-fc": [PVM_REASON] }],
    ["kvm_intel without vhost-vsock: only QEMU needs it", { kvmModule: "kvm_intel", vhostVsock: false }, { "kata-qemu": [NO_VHOST_VSOCK_REASON], "kata-clh": [], "kata-fc": [] }],
    ["kvm_amd with vhost-vsock", { kvmModule: "kvm_amd", vhostVsock: true }, { "kata-qemu": [], "kata-clh": [], "kata-fc": [] }],
    ["module unknown", { vhostVsock: true }, { "kata-qemu": [], "kata-clh": [], "kata-fc": [] }],
  ];
  for (const [title, facts, want] of cases) {
    it(title, () => {
      for (const [b, reasons] of Object.entries(want)) assert.deepEqual(kataBlockers(b as keyof typeof want, facts), reasons, b);
    });
  }
  it("kvm_pvm wins over the module it stands in for", () => {
    assert.equal(kvmModuleOf((m) => m === "kvm_pvm" || m === "kvm_intel"), "kvm_pvm");
    assert.equal(kvmModuleOf((m) => m === "kvm_amd"), "kvm_amd");
    assert.equal(kvmModuleOf(() => false), undefined);
  });
});
