// Probes a host (under a host root): CRI runtime kind/version/config, KVM (including whether a
// guest really runs), vhost_vsock, arch, and which sandbox backends are installed and usable.
import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync } from "node:fs";
import { arch as nodeArch, release } from "node:os";
import { join } from "node:path";
import { BACKENDS, type Backend } from "../../api/common.js";
import type { BackendProbe, Probe } from "../../api/sandboxnode.js";
import { CriClient } from "../cri/client.js";
import { defaultLayout, type Layout } from "../../render/node/layout.js";
import { discoverContainerd } from "./discover.js";
import { describeLayout, detectLayout } from "../engines/containerd/distro-layout.js";
import { kataBlockers, kvmModuleOf, PVM_REASON } from "./kata-blockers.js";

export interface ProbeOptions {
  /** Where the host's filesystem is mounted ("/" when running on the host itself). */
  hostRoot: string;
  /** CRI socket as this process sees it; default: the first of the well-known sockets under hostRoot. */
  criSocket?: string;
  /** Directory of binaries the agent ships (runsc, containerd-shim-runsc-v1); they count as installable. */
  payloadDir?: string;
  /** The gVisor payload image the agent installs on apply (docs/payloads.md): gVisor counts as installable. */
  gvisorPayload?: string;
  /** Kata's prefix on the host (default /opt/kata; the agent passes an installed Kata payload's version dir). */
  kataDir?: string;
  /** The Kata payload image kataDir was installed from (docs/payloads.md), for the messages. */
  kataPayload?: string;
  /** How long a test guest may take to print its first console line. */
  guestTimeoutMs?: number;
  /** A KVM result from an earlier probe: booting a test guest again on every re-probe is wasteful. */
  kvm?: Probe["kvm"];
  /** The config.toml to edit (host path), overriding what the containerd process says (--containerd-config). */
  containerdConfig?: string;
  /** Prefix the runtime sees in front of host paths (tests); maps its --config/--address back to host paths. */
  configPrefix?: string;
  /** The host's /proc (the agent's own, with hostPID). */
  procRoot?: string;
}

/** What the probe found, with the host paths the engines need. */
export interface HostInventory {
  probe: Probe;
  /** Socket path as this process sees it, when a CRI runtime answered or a socket exists. */
  socket?: string;
  /** Paths (host view) of the runtime binaries to configure. */
  layout: Layout;
  /** Whether the gVisor binaries come from payloadDir (the agent installs them on apply). */
  shipsGvisor: boolean;
  /** containerd's config.toml as a host path: the one its process runs with, or --containerd-config. */
  containerdConfig: string;
  /** The systemd unit that restarts the runtime (its process's cgroup, else the distribution's), unless --runtime-unit says. */
  unit?: string;
}

const CONTAINERD_SOCKETS = ["/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"];
const CRIO_SOCKETS = ["/run/crio/crio.sock", "/var/run/crio/crio.sock"];
const BIN_DIRS = ["/usr/local/bin", "/usr/bin", "/usr/local/sbin", "/usr/sbin"];

const under = (root: string, p: string) => (root === "/" ? p : join(root, p));

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** First host path (host view) among candidates that exists under hostRoot and is executable. */
function findBinary(hostRoot: string, candidates: string[]): string | undefined {
  return candidates.find((c) => isExecutable(under(hostRoot, c)));
}

export function nodeArchName(a = nodeArch()): string {
  return a === "x64" ? "amd64" : a;
}

/** The containerd layout (docs/distributions.md) and the unit to restart, for status and the restart. */
function containerdLayout(o: ProbeOptions, config: string, version: string | undefined, cgroupUnit: string | undefined): { layout?: string; unit?: string } {
  const major = Number((version ?? "1").split(".")[0]) || 1;
  try {
    const l = detectLayout({ hostRoot: o.hostRoot, configPrefix: o.configPrefix ?? "" }, config, major);
    const unit = cgroupUnit ?? l.unit;
    return { layout: describeLayout(l), ...(unit ? { unit } : {}) };
  } catch (e) {
    return { layout: `unknown: ${(e as Error).message}`, ...(cgroupUnit ? { unit: cgroupUnit } : {}) };
  }
}

async function probeCri(o: ProbeOptions): Promise<{ cri: Probe["cri"]; socket?: string; containerdConfig: string }> {
  const found = discoverContainerd({ hostRoot: o.hostRoot, configPrefix: o.configPrefix, criSocket: o.criSocket, containerdConfig: o.containerdConfig, procRoot: o.procRoot });
  const containerdConfig = found.configPath;
  // The socket of the containerd the kubelet uses first, then the well-known ones.
  const candidates = o.criSocket ? [o.criSocket] : [...new Set([...(found.socket ? [found.socket] : []), ...[...CONTAINERD_SOCKETS, ...CRIO_SOCKETS].map((s) => under(o.hostRoot, s))])];
  for (const socket of candidates) {
    if (!existsSync(socket)) continue;
    const c = new CriClient(socket, 3_000);
    try {
      const v = await c.version(3_000);
      const kind = /containerd/i.test(v.runtime_name) ? "containerd" : /cri-o|crio/i.test(v.runtime_name) ? "crio" : "unknown";
      const configPath = kind === "containerd" ? containerdConfig : kind === "crio" ? "/etc/crio/crio.conf" : undefined;
      const source = kind === "containerd" ? `${found.source}; CRI answered on ${socket}` : `${v.runtime_name} answered on ${socket}`;
      const version = v.runtime_version.replace(/^v/, "");
      const layout = kind === "containerd" ? containerdLayout(o, containerdConfig, version, found.unit) : {};
      return { cri: { kind, version, configPath, socket, source, ...layout }, socket, containerdConfig };
    } catch {
      // Not answering: try the next socket, then fall back to what is installed.
    } finally {
      c.close();
    }
  }
  const containerd = findBinary(o.hostRoot, BIN_DIRS.map((d) => `${d}/containerd`));
  const crio = findBinary(o.hostRoot, BIN_DIRS.map((d) => `${d}/crio`));
  const none = `no CRI socket answered (${candidates.join(", ")})`;
  if (containerd) return { cri: { kind: "containerd", configPath: containerdConfig, source: `${found.source}; ${none}; ${containerd} installed` }, containerdConfig };
  if (crio) return { cri: { kind: "crio", configPath: "/etc/crio/crio.conf", source: `${none}; ${crio} installed` }, containerdConfig };
  return { cri: { kind: "unknown", source: none }, containerdConfig };
}

function readTrim(p: string): string | undefined {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Runs a guest kernel under Kata's QEMU with KVM and waits for its first console line. */
function guestBoots(qemu: string, kernel: string, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    const child = spawn(qemu, ["-accel", "kvm", "-m", "256", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-append", "console=ttyS0 panic=-1 reboot=t"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const done = (ok: boolean, message: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve({ ok, message });
    };
    const timer = setTimeout(() => done(false, `/dev/kvm opens but a test guest printed nothing within ${timeoutMs} ms (nested virtualization off or blocked?)`), timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (/Linux version/.test(out)) done(true, "a test guest booted under KVM");
    });
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", (e) => done(false, `cannot run ${qemu}: ${e.message}`));
    child.on("exit", (code) => done(false, `test guest exited ${code} before printing a kernel banner: ${out.slice(-300).trim()}`));
  });
}

const NO_GUEST_TO_TRY = "/dev/kvm opens, but no Kata QEMU and guest kernel under";
/** A KVM result that tried no guest (no Kata QEMU yet): a later probe, after a Kata payload is installed, must try again. */
export const guestUntried = (kvm: Probe["kvm"]) => kvm.device && !kvm.guestsRun && !!kvm.message?.startsWith(NO_GUEST_TO_TRY);

async function probeKvm(o: ProbeOptions, kataDir: string): Promise<Probe["kvm"]> {
  const dev = under(o.hostRoot, "/dev/kvm");
  let device = false;
  let openError = "";
  try {
    closeSync(openSync(dev, "r+"));
    device = true;
  } catch (e) {
    openError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
  const nestedParam = readTrim(under(o.hostRoot, "/sys/module/kvm_intel/parameters/nested")) ?? readTrim(under(o.hostRoot, "/sys/module/kvm_amd/parameters/nested"));
  const cpuinfo = readTrim(under(o.hostRoot, "/proc/cpuinfo")) ?? "";
  // This node is itself a VM when the CPU says "hypervisor": its guests would be nested.
  const isGuest = /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo);
  const nested = nestedParam !== undefined ? nestedParam === "Y" || nestedParam === "1" : isGuest;
  const module = kvmModuleOf((m) => existsSync(under(o.hostRoot, `/sys/module/${m}`)));
  const known = module ? { module } : {};
  if (!device) {
    return { device, guestsRun: false, nested, ...known, message: `/dev/kvm cannot be opened (${openError}): enable virtualization (VT-x/AMD-V) or nested virtualization for this VM` };
  }
  // Booting a stock kernel under PVM only shows it dying in KVM's emulator: say why instead.
  if (module === "kvm_pvm") return { device, guestsRun: false, nested, ...known, message: PVM_REASON };
  const qemu = findBinary(o.hostRoot, [`${kataDir}/bin/qemu-system-x86_64`, `${kataDir}/bin/qemu-system-aarch64`]);
  const kernel = `${kataDir}/share/kata-containers/vmlinux.container`;
  if (!qemu || !existsSync(under(o.hostRoot, kernel))) {
    return { device, guestsRun: false, nested, ...known, message: `${NO_GUEST_TO_TRY} ${kataDir} to prove a guest runs; install Kata Containers to use Kata` };
  }
  const r = await guestBoots(under(o.hostRoot, qemu), under(o.hostRoot, kernel), o.guestTimeoutMs ?? 15_000);
  return { device, guestsRun: r.ok, nested, ...known, message: r.message };
}

const HYPERVISOR_BIN: Record<string, string[]> = {
  "kata-qemu": ["qemu-system-x86_64", "qemu-system-aarch64"],
  "kata-clh": ["cloud-hypervisor"],
  "kata-fc": ["firecracker"],
};

/** containerd before 1.7 cannot read the start reply of today's gVisor shim (containerd 2's JSON bootstrap). */
export const payloadShimUnsupported = (cri: Probe["cri"]) => cri.kind === "containerd" && /^v?1\.[0-6]\./.test(cri.version ?? "");

function probeGvisor(o: ProbeOptions, cri: Probe["cri"], arch: string, layout: Layout): { probe: BackendProbe; layout: Layout; ships: boolean } {
  const fromImage = !!o.gvisorPayload && !payloadShimUnsupported(cri);
  const ships = !fromImage && !!o.payloadDir && isExecutable(join(o.payloadDir, "runsc")) && isExecutable(join(o.payloadDir, "containerd-shim-runsc-v1"));
  const runsc = findBinary(o.hostRoot, [layout.runsc, ...BIN_DIRS.map((d) => `${d}/runsc`)]);
  const shim = findBinary(o.hostRoot, [layout.gvisorShim, ...BIN_DIRS.map((d) => `${d}/containerd-shim-runsc-v1`)]);
  // containerd and CRI-O alike run gVisor through its shim (CRI-O as a "vm" runtime).
  const installed = !!runsc && !!shim;
  const useHost = !ships && !fromImage && installed;
  const archOk = arch === "amd64" || arch === "arm64";
  const missing = [!runsc && "runsc", !shim && "containerd-shim-runsc-v1"].filter(Boolean).join(" and ");
  let message: string;
  if (!archOk) message = `gVisor does not support ${arch}`;
  else if (fromImage) message = `the agent installs the gVisor payload ${o.gvisorPayload} under /opt/sandbox-operator/gvisor/<digest>/ on apply`;
  else if (ships) message = `the agent installs runsc and containerd-shim-runsc-v1 into ${layout.installDir}/bin on apply`;
  else if (installed) message = `runsc at ${runsc}${shim ? `, shim at ${shim}` : ""}`;
  else if (o.gvisorPayload) message = `containerd ${cri.version} cannot run the gVisor payload's shim (it needs containerd 1.7 or later) and ${missing} is not installed on the host; install gVisor built for containerd 1.6, or upgrade containerd`;
  else message = `${missing} not found on the host; install gVisor (runsc and containerd-shim-runsc-v1) or use the agent image that ships them`;
  return {
    probe: { backend: "gvisor", installed, usable: (installed || ships || fromImage) && archOk, message },
    layout: useHost ? { ...layout, runsc: runsc!, gvisorShim: shim ?? layout.gvisorShim } : layout,
    ships,
  };
}

function probeKata(o: ProbeOptions, kataDir: string, kvm: Probe["kvm"], vhostVsock: boolean, layout: Layout): { probes: BackendProbe[]; layout: Layout } {
  const kataShim = findBinary(o.hostRoot, [layout.kataShim, ...BIN_DIRS.map((d) => `${d}/containerd-shim-kata-v2`)]);
  const guestAssets = ["vmlinux.container", "kata-containers.img"].every((f) => existsSync(under(o.hostRoot, `${kataDir}/share/kata-containers/${f}`)));
  const probes: BackendProbe[] = [];
  for (const b of BACKENDS.filter((x): x is Exclude<Backend, "gvisor"> => x !== "gvisor")) {
    const hv = findBinary(o.hostRoot, HYPERVISOR_BIN[b]!.map((n) => `${kataDir}/bin/${n}`));
    const installed = !!kataShim && !!hv && guestAssets;
    const missing = [!kataShim && "containerd-shim-kata-v2", !hv && HYPERVISOR_BIN[b]![0], !guestAssets && "guest kernel/image"].filter(Boolean).join(", ");
    const blockers = kataBlockers(b, { kvmModule: kvm.module, vhostVsock });
    const why = blockers.join("; ");
    const fix = o.kataPayload ? `the Kata payload ${o.kataPayload} lacks it (docs/payloads.md says what a Kata payload holds)` : "install Kata Containers (kata-deploy layout), or name a Kata payload in SandboxConfig spec.payloads.kata";
    const where = o.kataPayload ? `installed from the Kata payload ${o.kataPayload} at ${kataDir}` : "installed";
    let message: string;
    if (!installed) message = `${missing} missing under ${kataDir}; ${fix}${why ? `; even then Kata cannot run here: ${why}` : ""}`;
    else if (why) message = `${where}, but Kata cannot run here: ${why}`;
    else if (kvm.guestsRun) message = `${where}; KVM guests run`;
    else message = `${where}, but KVM guests do not run here: ${kvm.message ?? ""}`.trim();
    probes.push({ backend: b, installed, usable: installed && kvm.guestsRun && blockers.length === 0, message });
  }
  return { probes, layout: kataShim ? { ...layout, kataShim } : layout };
}

export async function probeHostDetailed(o: ProbeOptions): Promise<HostInventory> {
  const kataDir = o.kataDir ?? "/opt/kata";
  const [{ cri, socket, containerdConfig }, kvm] = await Promise.all([probeCri(o), o.kvm ? Promise.resolve(o.kvm) : probeKvm(o, kataDir)]);
  const arch = nodeArchName();
  const kernel = readTrim(under(o.hostRoot, "/proc/sys/kernel/osrelease")) ?? release();
  const vhostVsock = existsSync(under(o.hostRoot, "/dev/vhost-vsock"));
  const kata = probeKata(o, kataDir, kvm, vhostVsock, defaultLayout({ kataDir }));
  const gvisor = probeGvisor(o, cri, arch, kata.layout);
  const probe: Probe = { arch, kernel, cri, kvm, vhostVsock, backends: [...kata.probes, gvisor.probe] };
  return { probe, socket, layout: gvisor.layout, shipsGvisor: gvisor.ships, containerdConfig, ...(cri.unit ? { unit: cri.unit } : {}) };
}

/** The probe alone, as `sandboxctl doctor` and the status reporter want it. */
export async function probeHost(o: ProbeOptions): Promise<Probe> {
  return (await probeHostDetailed(o)).probe;
}
