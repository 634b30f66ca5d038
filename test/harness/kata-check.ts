// Runs kata-check (Kata 4.1.0's own configuration loader and OCI annotation code, built by binaries.ts)
// on a rendered Kata file, byte for byte at its own absolute path, inside a chroot of stand-in files.
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { type Layout } from "../../src/render/node/layout.js";
import { ensureBinary } from "./binaries.js";

const run = promisify(execFile);

/** What Kata resolved (the fields the tests read; kata-check prints all of oci.RuntimeConfig). */
export interface KataHypervisorConfig {
  HypervisorPath: string;
  KernelPath: string;
  ImagePath: string;
  JailerPath: string;
  KernelParams: { Key: string; Value: string }[] | null;
  MemorySize: number;
  NumVCPUsF: number;
  DefaultMaxVCPUs: number;
  SharedFS: string;
  VirtioFSDaemon: string;
  VirtioFSCache: string;
  BlockDeviceDriver: string;
  EnableAnnotations: string[] | null;
  HypervisorPathList: string[] | null;
  ColdPlugVFIO: string;
  HotPlugVFIO: string;
  PCIeRootPort: number;
  [k: string]: unknown;
}

export interface AnnotationVerdict {
  key: string;
  value: string;
  accepted: boolean;
  error?: string;
  kernelParams?: string;
}

export interface KataCheckResult {
  resolvedPath: string;
  /** Keys of the file no field of Kata's configuration reads. */
  unknownKeys: string[];
  /** The vCPU ceiling Kata computed here (it clamps default_vcpus to it). */
  hostCPUs: number;
  config: { HypervisorType: string; HypervisorConfig: KataHypervisorConfig; StaticSandboxResourceMgmt: boolean; SandboxCgroupOnly: boolean; DisableGuestSeccomp: boolean; [k: string]: unknown };
  annotations?: AnnotationVerdict[];
}

/**
 * The files a Kata install provides under a layout (kata-deploy's /opt/kata, RHCOS's /usr), which
 * the loader insists exist (and, for the image, are not empty). One-line stand-ins: nothing is executed.
 * A config naming any other path fails to load.
 */
export function kataStandIns(layout: Layout, arch: "amd64" | "arm64" = "amd64"): string[] {
  const k = layout.kataDir;
  return [
    `${k}/bin/${arch === "arm64" ? "qemu-system-aarch64" : "qemu-system-x86_64"}`,
    `${k}/bin/cloud-hypervisor`,
    `${k}/bin/firecracker`,
    `${k}/bin/jailer`,
    `${k}/share/kata-containers/vmlinux.container`,
    `${k}/share/kata-containers/kata-containers.img`,
    `${k}/libexec/virtiofsd`,
    layout.kataShim,
  ];
}

export interface KataCheckOptions {
  /** Absolute paths that must exist for the loader (kataStandIns(layout)). */
  standIns: readonly string[];
  /** Absolute paths of real files on this machine (an installed payload's), copied in at the same paths instead of stand-ins. */
  real?: readonly string[];
  /** Pod annotations to send one at a time through oci.SandboxConfig. */
  annotations?: readonly { key: string; value: string }[];
}

/**
 * A test-only departure, named in docs/kata.md: the chroot holds a stand-in `/dev/vhost-vsock`, because
 * Kata's QEMU loader refuses a host without one and these machines have none. The host's /proc/cpuinfo
 * is copied in, so Kata counts this host's CPUs as the shim would. Nothing else is there.
 */
async function inChroot<T>(file: { path: string; content: string }, opts: KataCheckOptions, body: (root: string, bin: string) => Promise<T>): Promise<T> {
  const checker = await ensureBinary("kata-check");
  const root = mkdtempSync(join(tmpdir(), "kata-check-"));
  try {
    for (const p of [...opts.standIns, "/dev/vhost-vsock"]) {
      mkdirSync(join(root, dirname(p)), { recursive: true });
      writeFileSync(join(root, p), "stand-in for kata-check\n");
      chmodSync(join(root, p), 0o755);
    }
    for (const p of opts.real ?? []) {
      mkdirSync(join(root, dirname(p)), { recursive: true });
      copyFileSync(p, join(root, p));
    }
    mkdirSync(join(root, "proc"));
    writeFileSync(join(root, "proc", "cpuinfo"), readFileSync("/proc/cpuinfo"));
    mkdirSync(join(root, "tmp"), { recursive: true });
    mkdirSync(join(root, dirname(file.path)), { recursive: true });
    writeFileSync(join(root, file.path), file.content);
    try {
      linkSync(checker, join(root, "kata-check"));
    } catch {
      copyFileSync(checker, join(root, "kata-check"));
    }
    if (opts.annotations) writeFileSync(join(root, "annotations.json"), JSON.stringify(opts.annotations));
    return await body(root, "/kata-check");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const args = (file: { path: string }, opts: KataCheckOptions) => ["-config", file.path, ...(opts.annotations ? ["-annotations", "/annotations.json"] : [])];

/** Loads the file with Kata's loader; throws with Kata's own message when Kata refuses it. */
export async function kataCheck(file: { path: string; content: string }, opts: KataCheckOptions): Promise<KataCheckResult> {
  return inChroot(file, opts, async (root, bin) => {
    try {
      const { stdout } = await run("chroot", [root, bin, ...args(file, opts)], { maxBuffer: 64 << 20 });
      return JSON.parse(stdout) as KataCheckResult;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`Kata's loader refused ${file.path}: ${err.stderr?.trim() || err.message}`, { cause: e });
    }
  });
}

/** Kata's refusal message for a file its loader must refuse; throws when Kata accepts it. */
export async function kataRefusal(file: { path: string; content: string }, opts: KataCheckOptions): Promise<string> {
  return inChroot(file, opts, async (root, bin) => {
    try {
      await run("chroot", [root, bin, ...args(file, opts)], { maxBuffer: 64 << 20 });
    } catch (e) {
      return (e as { stderr?: string }).stderr?.trim() ?? "";
    }
    throw new Error(`Kata's loader accepted ${file.path}, which it should refuse`);
  });
}

/** The guest kernel command line Kata resolved, as one string (what the hypervisor gets). */
export const kernelCmdline = (h: KataHypervisorConfig) => (h.KernelParams ?? []).map((p) => (p.Value ? `${p.Key}=${p.Value}` : p.Key)).join(" ");
