// Turns a Probe into human advice per backend: what is missing and how to fix it. Pure; used by
// `sandboxctl doctor` and in the agent's log.
import type { Backend } from "../../api/common.js";
import type { Probe } from "../../api/sandboxnode.js";
import { kataBlockerFix } from "./kata-blockers.js";

export interface ProbeAdvice {
  subject: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export function explainProbe(p: Probe): ProbeAdvice[] {
  const out: ProbeAdvice[] = [];
  out.push(
    p.cri.kind === "unknown"
      ? { subject: "CRI runtime", ok: false, detail: "no containerd or CRI-O found (no socket answered, no binary installed)", fix: "install containerd or CRI-O, or pass the socket with --cri-socket" }
      : { subject: "CRI runtime", ok: true, detail: `${p.cri.kind}${p.cri.version ? ` ${p.cri.version}` : ""}${p.cri.configPath ? `, config ${p.cri.configPath}` : ""}` },
  );
  if (!p.kvm.device) {
    out.push({ subject: "KVM", ok: false, detail: p.kvm.message ?? "/dev/kvm is missing", fix: "enable VT-x/AMD-V in firmware, or nested virtualization on the VM, and load kvm_intel/kvm_amd" });
  } else if (p.kvm.module === "kvm_pvm") {
    out.push({ subject: "KVM", ok: false, detail: p.kvm.message ?? "/dev/kvm is backed by kvm_pvm", fix: kataBlockerFix("kata-clh", { kvmModule: "kvm_pvm", vhostVsock: p.vhostVsock }) });
  } else if (!p.kvm.guestsRun) {
    out.push({ subject: "KVM", ok: false, detail: p.kvm.message ?? "/dev/kvm opens but no guest ran", fix: p.kvm.nested ? "this node is a VM: enable nested virtualization on its hypervisor (or use bare metal) for Kata" : "install Kata Containers so its QEMU can prove a guest runs" });
  } else {
    out.push({ subject: "KVM", ok: true, detail: `guests run${p.kvm.nested ? " (nested)" : ""}` });
  }
  out.push(p.vhostVsock ? { subject: "vhost_vsock", ok: true, detail: "/dev/vhost-vsock present" } : { subject: "vhost_vsock", ok: false, detail: "/dev/vhost-vsock missing (Kata's QEMU talks to its guest agent over it; Cloud Hypervisor and Firecracker use hybrid vsock)", fix: "modprobe vhost_vsock" });
  for (const b of p.backends) {
    out.push({ subject: b.backend, ok: b.usable, detail: b.message ?? (b.usable ? "usable" : "not usable"), fix: b.usable ? undefined : fixFor(p, b.backend, b.installed) });
  }
  return out;
}

function fixFor(p: Probe, backend: Backend, installed: boolean): string {
  if (backend === "gvisor") return installed ? "gVisor needs amd64 or arm64" : "install runsc and containerd-shim-runsc-v1 (gvisor.dev/docs/user_guide/install), or let the agent ship them";
  const blocked = kataBlockerFix(backend, { kvmModule: p.kvm.module, vhostVsock: p.vhostVsock });
  // On PVM, installing Kata would not help: say only what would.
  if (p.kvm.module === "kvm_pvm" && blocked) return blocked;
  const base = installed ? "make KVM guests run on this node (see KVM above)" : "install Kata Containers (kata-deploy puts it under /opt/kata) and make KVM guests run";
  return blocked ? `${base}; ${blocked}` : base;
}

/** Plain-text form, one line per subject. */
export function formatProbeAdvice(advice: readonly ProbeAdvice[]): string {
  return advice.map((a) => `${a.ok ? "ok  " : "FAIL"} ${a.subject}: ${a.detail}${a.fix ? `\n       fix: ${a.fix}` : ""}`).join("\n");
}
