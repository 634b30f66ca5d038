// A test-only Kata payload image (never shipped): kata-deploy's /opt/kata layout with Kata's real
// containerd-shim-kata-v2 (built from ../shared/fixtures/kata/) and stand-ins for everything else.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { buildKataPayloadImage, type PayloadBuildResult } from "../../src/images/payload.js";
import { ensureBinary } from "./binaries.js";

/** Where the test payload's files come from (image label). */
export const KATA_PAYLOAD_SOURCE = "test only: Kata 4.1.0 containerd-shim-kata-v2 built from the fixture source; hypervisors, virtiofsd, guest kernel and image are stand-ins";

/** The stand-in programs: each says what it is and fails, so nothing mistakes one for a hypervisor. */
export const KATA_STAND_IN_PROGRAMS = ["bin/qemu-system-x86_64", "bin/qemu-system-aarch64", "bin/cloud-hypervisor", "bin/firecracker", "bin/jailer", "libexec/virtiofsd"];

const standInProgram = (name: string, tag: string) => `#!/bin/sh\necho "stand-in ${name} of the sandbox-operator test Kata payload ${tag}: it boots nothing" >&2\nexit 1\n`;

/**
 * An /opt/kata tree like a kata-static release: the real shim, stand-in hypervisors, and a stand-in
 * guest kernel and image under versioned names with kata-deploy's vmlinux.container /
 * kata-containers.img symlinks to them. `tag` goes into every stand-in, so versions differ.
 */
export async function kataPayloadTree(tag: string): Promise<string> {
  const shim = await ensureBinary("containerd-shim-kata-v2");
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-kata-payload-"));
  const put = (rel: string, content: string | Buffer, mode = 0o644) => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content, { mode });
  };
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync(shim, join(dir, "bin/containerd-shim-kata-v2"));
  for (const p of KATA_STAND_IN_PROGRAMS) put(p, standInProgram(p, tag), 0o755);
  const share = "share/kata-containers";
  put(`${share}/vmlinux-standin-${tag}.container`, `stand-in guest kernel of the sandbox-operator test Kata payload ${tag}\n`);
  put(`${share}/kata-containers-standin-${tag}.img`, `stand-in guest image of the sandbox-operator test Kata payload ${tag}\n`);
  symlinkSync(`vmlinux-standin-${tag}.container`, join(dir, share, "vmlinux.container"));
  symlinkSync(`kata-containers-standin-${tag}.img`, join(dir, share, "kata-containers.img"));
  return dir;
}

/** The test Kata payload image for `tag` (repository default localhost/sandbox-operator-kata). */
export async function buildTestKataPayload(tag: string, repository?: string): Promise<PayloadBuildResult> {
  const dir = await kataPayloadTree(tag);
  try {
    return buildKataPayloadImage({ dir, tag, repository, source: KATA_PAYLOAD_SOURCE });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A test host root sees this machine's KVM as a node would: its /dev/kvm (a device node with the same
 * numbers; /dev/vhost-vsock likewise when there) and which kvm modules are loaded (/sys/module/kvm_*).
 */
export function mirrorKvmFacts(root: string): void {
  mkdirSync(join(root, "dev"), { recursive: true });
  for (const dev of ["kvm", "vhost-vsock"]) {
    const st = statSync(`/dev/${dev}`, { throwIfNoEntry: false });
    if (st?.isCharacterDevice()) execFileSync("mknod", ["-m", "0600", join(root, "dev", dev), "c", String(st.rdev >> 8), String(st.rdev & 0xff)]);
  }
  for (const m of ["kvm_pvm", "kvm_intel", "kvm_amd"]) if (existsSync(`/sys/module/${m}`)) mkdirSync(join(root, "sys/module", m), { recursive: true });
}
