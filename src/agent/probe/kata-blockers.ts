// Why Kata cannot run on a host, from facts the probe reads (which kvm module backs /dev/kvm,
// /dev/vhost-vsock), before any guest is tried. Pure: the probe and `sandboxctl doctor` share it.
import type { Backend } from "../../api/common.js";

/** The module behind /dev/kvm, as /sys/module shows it; kvm_pvm wins when present (it stands in for the others). */
export type KvmModule = "kvm_intel" | "kvm_amd" | "kvm_pvm";

export function kvmModuleOf(loaded: (module: KvmModule) => boolean): KvmModule | undefined {
  return (["kvm_pvm", "kvm_intel", "kvm_amd"] as const).find(loaded);
}

export interface VirtFacts {
  kvmModule?: KvmModule;
  vhostVsock: boolean;
}

export const PVM_REASON =
  "/dev/kvm is backed by kvm_pvm (Pagetable-based Virtual Machine): it runs only PVM-enabled guest kernels, and Kata's guest kernels are not, so no Kata VM can boot here";
/** Kata's QEMU loader refuses a host without it (virtcontainers/utils SupportsVsocks); Cloud Hypervisor and Firecracker use hybrid vsock over a Unix socket. */
export const NO_VHOST_VSOCK_REASON = "no /dev/vhost-vsock: Kata's QEMU reaches its guest agent over vhost-vsock, and Kata refuses a QEMU config without it";

/** Every reason, known before booting anything, that this Kata backend cannot run a VM on the host. */
export function kataBlockers(backend: Exclude<Backend, "gvisor">, f: VirtFacts): string[] {
  const out: string[] = [];
  if (f.kvmModule === "kvm_pvm") out.push(PVM_REASON);
  if (backend === "kata-qemu" && !f.vhostVsock) out.push(NO_VHOST_VSOCK_REASON);
  return out;
}

/** The fix for those reasons, in the same order of importance. */
export function kataBlockerFix(backend: Exclude<Backend, "gvisor">, f: VirtFacts): string | undefined {
  if (f.kvmModule === "kvm_pvm") return "Kata needs hardware virtualization: bare metal, or a VM whose hypervisor offers nested VT-x/AMD-V (kvm_intel/kvm_amd); use gvisor on this node";
  if (backend === "kata-qemu" && !f.vhostVsock) return "modprobe vhost_vsock (and list it in /etc/modules-load.d)";
  return undefined;
}
