// `sandboxctl uninstall`: deletes the SandboxConfig, waits while the controller reverts every
// node (showing what blocks it, from status.conditions), then deletes what install applied.
import { ABANDON_ANNOTATION, SANDBOXCONFIG_NAME, STUCK_REASONS, type SandboxConfig } from "../api/index.js";
import { crds } from "../manifests/crds.js";
import { deployOptions } from "../manifests/files.js";
import { CONTROLLER, NAMESPACE } from "../manifests/names.js";
import { installManifests, type Manifest } from "../manifests/render-deploy.js";
import type { KubeClient, KubeObject } from "../kube/client.js";
import { CliError, EXIT } from "./exit-codes.js";
import { sleep, type Io } from "./io.js";
import { deploymentProgress, uninstallState, type WorkloadStatus } from "./render-progress.js";

export interface UninstallOptions {
  timeoutMs: number;
  keepCrds: boolean;
  /** Remove the operator even when SandboxNodes (unreverted nodes) remain. */
  force?: boolean;
  /** Nodes to let go of unreverted (their SandboxNodes get ABANDON_ANNOTATION). */
  abandonNodes?: string[];
  pollMs?: number;
}

/** Names only matter for deletion, so any well-formed image will do. */
const ANY_IMAGE = { repository: "unused", tag: "unused", digest: `sha256:${"0".repeat(64)}` };

export function uninstallOrder(keepCrds: boolean): Manifest[] {
  const objects = installManifests({ ...deployOptions(ANY_IMAGE), serviceMonitor: true }, crds() as unknown as Manifest[]).reverse();
  return keepCrds ? objects.filter((o) => o.kind !== "CustomResourceDefinition") : objects;
}

async function controllerRunning(client: KubeClient): Promise<boolean> {
  const d = await client.getOrNull<KubeObject & WorkloadStatus>("Deployment", CONTROLLER, NAMESPACE);
  return deploymentProgress(d, "controller").ready > 0;
}

async function waitConfigGone(client: KubeClient, name: string, opts: UninstallOptions, io: Io): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const cfg = await client.getOrNull<SandboxConfig & KubeObject>("SandboxConfig", name);
    if (!cfg) {
      io.frame(`✓ SandboxConfig ${name}: every node reverted, finalizer removed\n`);
      return;
    }
    const state = uninstallState(cfg.status?.conditions ?? []);
    const counts = cfg.status?.counts;
    // A node abandoned a moment ago may still be listed until the controller's next status write.
    const stuck = (cfg.status?.nodes ?? []).filter((n) => STUCK_REASONS.includes(n.reason as (typeof STUCK_REASONS)[number]) && !opts.abandonNodes?.includes(n.name));
    // Only stuck nodes left: waiting longer changes nothing until their agent comes back or an admin lets go.
    if (stuck.length && counts && stuck.length + (opts.abandonNodes?.length ?? 0) >= counts.uninstalling && cfg.status?.observedGeneration === cfg.metadata.generation) {
      throw new CliError(
        EXIT.blocked,
        `uninstall is stuck: SandboxConfig ${name} waits for ${stuck.length} node(s) whose revert did not finish within spec.uninstall.nodeTimeoutSeconds:\n` +
          stuck.map((n) => `  ${n.name} ${n.reason}: ${n.message}`).join("\n") +
          `\nfix the agent on those nodes and run sandboxctl uninstall again, or let go of them (their runtime configuration stays; docs/uninstall.md): sandboxctl uninstall ${stuck.map((n) => `--abandon-node ${n.name}`).join(" ")}`,
      );
    }
    const running = await controllerRunning(client);
    const lines = [
      `… SandboxConfig ${name}: waiting for the controller to revert the nodes${counts ? ` (${counts.uninstalling} uninstalling, ${counts.selected} selected)` : ""}`,
      ...state.lines.map((l) => `  ${l}`),
      ...(running ? [] : [`  the controller Deployment ${NAMESPACE}/${CONTROLLER} has no ready pod: nothing will remove the finalizer until it runs`]),
    ];
    io.frame(lines.join("\n") + "\n");
    if (Date.now() > deadline) {
      const what = state.lines.length ? `\n  ${state.lines.join("\n  ")}` : "";
      if (state.blocked) {
        throw new CliError(EXIT.blocked, `uninstall is blocked: SandboxConfig ${name} still exists after ${Math.round(opts.timeoutMs / 1000)}s${what}\ndelete the pods named above (or set spec.uninstall.whenPodsRun: Proceed on the SandboxConfig), then run sandboxctl uninstall again`);
      }
      throw new CliError(
        EXIT.timeout,
        `SandboxConfig ${name} still exists after ${Math.round(opts.timeoutMs / 1000)}s${what}` +
          (running ? "\nthe controller is still reverting nodes: run sandboxctl uninstall again to keep waiting, and sandboxctl status to see each node" : `\nstart the controller (kubectl -n ${NAMESPACE} get pods) so it can revert the nodes and remove its finalizer`),
      );
    }
    await sleep(opts.pollMs ?? 1000);
  }
}

/** Marks a node's SandboxNode abandoned: the controller deletes it and unlabels the Node without a revert. */
async function abandon(client: KubeClient, node: string, io: Io): Promise<void> {
  if (!(await client.getOrNull("SandboxNode", node))) {
    const names = (await client.list("SandboxNode")).items.map((n) => n.metadata.name);
    throw new CliError(EXIT.usage, `--abandon-node ${node}: there is no SandboxNode ${node}; ${names.length ? `the SandboxNodes are: ${names.join(", ")}` : "no SandboxNode is left"} (kubectl get sandboxnodes)`);
  }
  await client.mergePatch("SandboxNode", node, { metadata: { annotations: { [ABANDON_ANNOTATION]: "true" } } });
  io.err(`abandoned node ${node}: the controller lets go of it without reverting it; its sandbox runtime configuration stays on the node (docs/uninstall.md)\n`);
}

export async function uninstall(client: KubeClient, opts: UninstallOptions, io: Io): Promise<number> {
  const crdPresent = await client.getOrNull("CustomResourceDefinition", "sandboxconfigs.sandboxing.dev");
  if (crdPresent) {
    for (const node of opts.abandonNodes ?? []) await abandon(client, node, io);
    const configs = await client.list<SandboxConfig & KubeObject>("SandboxConfig");
    for (const cfg of configs.items) {
      if (!cfg.metadata.deletionTimestamp) {
        await client.delete("SandboxConfig", cfg.metadata.name);
        io.err(`deleted SandboxConfig ${cfg.metadata.name}; the controller now reverts every node\n`);
      }
    }
    for (const cfg of configs.items) await waitConfigGone(client, cfg.metadata.name, opts, io);
    if (configs.items.length === 0) io.err(`no SandboxConfig (expected ${SANDBOXCONFIG_NAME}); nothing to revert\n`);
    const leftover = await client.list("SandboxNode");
    if (leftover.items.length && !opts.force) {
      // Deleting the CRDs now would drop these without their nodes being reverted.
      throw new CliError(
        EXIT.blocked,
        `${leftover.items.length} SandboxNode(s) remain although no SandboxConfig does: ${leftover.items.map((n) => n.metadata.name).join(", ")}\n` +
          `their nodes may still carry sandbox runtime configuration; start the controller (kubectl -n ${NAMESPACE} get pods) so it reverts them, ` +
          "or pass --force to remove the operator anyway (nodes keep their configuration)",
      );
    }
  }
  let deleted = 0;
  for (const obj of uninstallOrder(opts.keepCrds)) {
    if (await client.delete(obj.kind, obj.metadata.name, obj.metadata.namespace, { propagation: "Background" })) {
      deleted++;
      io.err(`deleted ${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata.name}\n`);
    }
  }
  io.out(`sandbox-operator is uninstalled (${deleted} objects deleted${opts.keepCrds ? ", CRDs kept" : ""}); namespace ${NAMESPACE} finishes terminating in the background\n`);
  return EXIT.ok;
}
