// Pure printer for `sandboxctl doctor`: turns a host Probe into one verdict per backend with
// what is missing and how to fix it, plus the exit decision (can anything run here?).
import type { Backend, BackendProbe, Probe } from "../api/index.js";
import { kataBlockerFix, kataBlockers } from "../agent/probe/kata-blockers.js";

export interface Finding {
  backend: string;
  ok: boolean;
  /** What the probe saw. */
  summary: string;
  /** What to do about it; empty when ok. */
  fix?: string;
}

const isKata = (b: string) => b.startsWith("kata-");

function kataFinding(probe: Probe, b: BackendProbe): Finding {
  if (b.usable) return { backend: b.backend, ok: true, summary: "KVM guests run; Kata is usable" };
  const kata = b.backend as Exclude<Backend, "gvisor">;
  const facts = { kvmModule: probe.kvm.module, vhostVsock: probe.vhostVsock };
  const blockers = kataBlockers(kata, facts);
  if (probe.kvm.device && blockers.length) {
    return { backend: b.backend, ok: false, summary: `Kata cannot run here: ${blockers.join("; ")}`, fix: kataBlockerFix(kata, facts) };
  }
  if (!probe.kvm.device) {
    return {
      backend: b.backend,
      ok: false,
      summary: `/dev/kvm is missing or cannot be opened${probe.kvm.message ? ` (${probe.kvm.message})` : ""}`,
      fix: "enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd; on a VM enable nested virtualization; or allow gvisor",
    };
  }
  if (!probe.kvm.guestsRun) {
    return {
      backend: b.backend,
      ok: false,
      summary: `/dev/kvm opens but KVM guests cannot run${probe.kvm.message ? ` (${probe.kvm.message})` : ""}${probe.kvm.nested === false ? "; nested virtualization is off" : ""}`,
      fix: "run on bare metal or a VM with working nested virtualization; until then use gvisor on this node",
    };
  }
  if (!b.installed) {
    return { backend: b.backend, ok: false, summary: `Kata (${b.backend}) is not installed${b.message ? `: ${b.message}` : ""}`, fix: "allow it in SandboxConfig.spec.runtimes.allowed; the agent installs it" };
  }
  return { backend: b.backend, ok: false, summary: b.message ?? "not usable", fix: "see docs/troubleshooting.md" };
}

function gvisorFinding(b: BackendProbe): Finding {
  if (b.usable) return { backend: b.backend, ok: true, summary: "runsc and its containerd shim are usable" };
  if (!b.installed) {
    return { backend: b.backend, ok: false, summary: `runsc or containerd-shim-runsc-v1 is not installed${b.message ? `: ${b.message}` : ""}`, fix: "allow gvisor in SandboxConfig.spec.runtimes.allowed; the agent installs it (or apt-get install runsc)" };
  }
  return { backend: b.backend, ok: false, summary: b.message ?? "runsc is installed but cannot run a sandbox", fix: "check runsc's log for the failing syscall or mount; see docs/troubleshooting.md" };
}

export function explainProbe(probe: Probe): Finding[] {
  const findings: Finding[] = [];
  if (probe.cri.kind === "unknown") {
    findings.push({ backend: "cri", ok: false, summary: "no supported CRI runtime (containerd or CRI-O) found", fix: "install containerd >= 1.6 or CRI-O, or point the probe at its socket" });
  } else {
    const c = probe.cri;
    const layout = c.layout ? `; ${c.layout}${c.unit ? `; restart unit ${c.unit}` : ""}` : "";
    findings.push({ backend: "cri", ok: true, summary: `${c.kind}${c.version ? ` ${c.version}` : ""}${c.configPath ? ` (${c.configPath})` : ""}${layout}` });
  }
  for (const b of [...probe.backends].sort((x, y) => x.backend.localeCompare(y.backend))) {
    findings.push(isKata(b.backend) ? kataFinding(probe, b) : gvisorFinding(b));
  }
  return findings;
}

/** True when at least one sandbox backend is usable on the host. */
export function anyBackendUsable(probe: Probe): boolean {
  return probe.backends.some((b) => b.usable);
}

export function renderDoctor(probe: Probe, findings: Finding[] = explainProbe(probe)): string {
  const lines = [
    `host: ${probe.arch}${probe.kernel ? `, kernel ${probe.kernel}` : ""}`,
    `kvm: device ${probe.kvm.device ? "yes" : "no"}${probe.kvm.module ? ` (${probe.kvm.module})` : ""}, guests run ${probe.kvm.guestsRun ? "yes" : "no"}${probe.kvm.nested === undefined ? "" : `, nested ${probe.kvm.nested ? "yes" : "no"}`}; vhost_vsock ${probe.vhostVsock ? "yes" : "no"}`,
    "",
  ];
  const width = Math.max(10, ...findings.map((f) => f.backend.length));
  for (const f of findings) {
    lines.push(`${f.ok ? "ok  " : "FAIL"} ${f.backend.padEnd(width)} ${f.summary}`);
    if (!f.ok && f.fix) lines.push(`     ${"".padEnd(width)} fix: ${f.fix}`);
  }
  const usable = probe.backends.filter((b) => b.usable).map((b) => b.backend);
  lines.push("", usable.length ? `sandboxes can run here with: ${usable.join(", ")}` : "no sandbox backend can run here (see the fixes above)");
  return lines.join("\n") + "\n";
}
