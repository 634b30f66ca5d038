// Pure printers for `sandboxctl status`: rows from the SandboxConfig's summary and the
// SandboxNodes, the table, the header lines and the JSON/YAML document.
import { stringify } from "yaml";
import type { Condition, SandboxConfig, SandboxNode } from "../api/index.js";
import { specDesiredFor } from "../render/desired-node.js";

export interface StatusRow {
  node: string;
  backend: string;
  state: string;
  reason: string;
  message?: string;
  /** creationTimestamp of the SandboxNode (ISO), when it exists. */
  since?: string;
}

export interface StatusView {
  config: {
    name: string;
    exists: boolean;
    deleting: boolean;
    conditions: Condition[];
    counts?: NonNullable<SandboxConfig["status"]>["counts"];
    runtimeClasses: string[];
  };
  nodes: StatusRow[];
}

const cond = (conditions: Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

/** A node's state when the controller has not summarised it yet: read from the agent's status. */
export function nodeState(sn: SandboxNode): { state: string; reason: string; message?: string } {
  const conditions = sn.status?.conditions;
  const degraded = cond(conditions, "Degraded");
  const ready = cond(conditions, "Ready");
  const progressing = cond(conditions, "Progressing");
  if (sn.spec.action === "Revert") return { state: "Uninstalling", reason: progressing?.reason ?? ready?.reason ?? "RevertRequested", message: progressing?.message };
  if (degraded?.status === "True") return { state: "Degraded", reason: degraded.reason, message: degraded.message };
  if (ready?.status === "True" && sn.status?.appliedHash && sn.status.appliedHash === specDesiredFor(sn.spec, sn.status.probe)?.hash) return { state: "Ready", reason: ready.reason, message: ready.message };
  if (progressing?.status === "True") return { state: "Progressing", reason: progressing.reason, message: progressing.message };
  return pendingOrPhase(sn, ready);
}

function pendingOrPhase(sn: SandboxNode, ready: Condition | undefined): { state: string; reason: string; message?: string } {
  const phase = sn.status?.phase;
  if (phase === "Applying" || phase === "Verifying" || phase === "RollingBack") return { state: "Progressing", reason: phase };
  return { state: "Pending", reason: ready?.reason ?? (sn.status ? "WaitingForRollout" : "WaitingForAgent"), message: ready?.message };
}

function nodeBackend(sn: SandboxNode | undefined): string | undefined {
  const general = sn && specDesiredFor(sn.spec, sn.status?.probe)?.handlers.find((h) => h.general);
  return general?.backend;
}

export function statusView(config: SandboxConfig | null, nodes: SandboxNode[], configName = "cluster"): StatusView {
  const summaries = new Map((config?.status?.nodes ?? []).map((n) => [n.name, n]));
  const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const names = [...new Set([...byName.keys(), ...summaries.keys()])].sort();
  const rows = names.map((name): StatusRow => {
    const sn = byName.get(name);
    const summary = summaries.get(name);
    const fromNode = sn ? nodeState(sn) : undefined;
    const since = (sn?.metadata as { creationTimestamp?: string } | undefined)?.creationTimestamp;
    return {
      node: name,
      backend: summary?.backend ?? nodeBackend(sn) ?? "-",
      state: summary?.state ?? fromNode?.state ?? "Pending",
      reason: summary?.reason ?? fromNode?.reason ?? "-",
      ...(summary?.message ?? fromNode?.message ? { message: summary?.message ?? fromNode?.message } : {}),
      ...(since ? { since } : {}),
    };
  });
  return {
    config: {
      name: config?.metadata.name ?? configName,
      exists: config !== null,
      deleting: Boolean(config?.metadata.deletionTimestamp),
      conditions: config?.status?.conditions ?? [],
      ...(config?.status?.counts ? { counts: config.status.counts } : {}),
      runtimeClasses: config?.status?.runtimeClasses ?? [],
    },
    nodes: rows,
  };
}

/** kubectl-style age: 45s, 12m, 5h, 3d. */
export function age(since: string | undefined, now: Date): string {
  if (!since) return "-";
  const s = Math.max(0, Math.floor((now.getTime() - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 120 * 60) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Left-aligned columns separated by three spaces, like kubectl. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("   ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

function headerLines(view: StatusView): string[] {
  const c = view.config;
  if (!c.exists) return [`SandboxConfig ${c.name}: not found (create one: kubectl apply -f examples/sandboxconfig.yaml)`];
  const ready = cond(c.conditions, "Ready");
  const parts = [`SandboxConfig ${c.name}${c.deleting ? " (uninstalling)" : ""}:`];
  parts.push(ready ? `Ready=${ready.status} (${ready.reason})` : "Ready=Unknown (no status yet: is the controller running?)");
  if (c.counts) parts.push(`${c.counts.ready}/${c.counts.selected} nodes ready`);
  if (c.counts?.degraded) parts.push(`${c.counts.degraded} degraded`);
  if (c.counts?.progressing) parts.push(`${c.counts.progressing} progressing`);
  if (c.counts?.uninstalling) parts.push(`${c.counts.uninstalling} uninstalling`);
  const lines = [parts.join(" ")];
  if (c.runtimeClasses.length) lines.push(`RuntimeClasses: ${c.runtimeClasses.join(", ")}`);
  for (const t of ["Degraded", "Progressing"]) {
    const x = cond(c.conditions, t);
    if (x?.status === "True") lines.push(`${t}: ${x.reason}${x.message ? `: ${x.message}` : ""}`);
  }
  return lines;
}

export function renderStatusTable(view: StatusView, now: Date): string {
  const head = headerLines(view).join("\n") + "\n";
  if (view.nodes.length === 0) return head + "No nodes selected yet.\n";
  const rows = view.nodes.map((r) => [r.node, r.backend, r.state, r.reason, age(r.since, now)]);
  return head + "\n" + table(["NODE", "BACKEND", "STATE", "REASON", "AGE"], rows);
}

export function renderStatus(view: StatusView, format: "table" | "json" | "yaml", now: Date): string {
  if (format === "json") return JSON.stringify(view, null, 2) + "\n";
  // Quoted for YAML 1.1 readers (PyYAML, go-yaml) too: a plain `off` is a boolean there.
  if (format === "yaml") return stringify(view, { lineWidth: 0, compat: "yaml-1.1" });
  return renderStatusTable(view, now);
}
