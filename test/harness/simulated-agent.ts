// A node agent played by the test: for every SandboxNode it writes status.probe, then applies,
// verifies or reverts exactly as docs/agent-contract.md says, via the status subresource.
// Knobs: usable backends per node, failing nodes, a delay per step; it records concurrency.
import { AGENT_NODE_LABEL, AGENT_NODE_LABEL_VALUE, BACKENDS, SANDBOXNODE_KIND, type Backend, type Condition, type Probe, type SandboxNode, type SandboxNodeStatus } from "../../src/api/index.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { Informer } from "../../src/kube/informer.js";
import { specDesiredFor } from "../../src/render/desired-node.js";
import type { KubeConfig } from "@kubernetes/client-node";

type SN = SandboxNode & KubeObject;

export interface SimulatedAgentOptions {
  /** Backends the node can run (default: gvisor only, like a machine without nested KVM). */
  usable?: (node: string) => Backend[];
  /** Nodes whose apply fails verification, with the CRI error text. */
  fail?: (node: string) => string | undefined;
  /** ms each apply/revert takes (default 0). */
  delayMs?: number;
  /** Nodes that never answer (their agent is not running); asked on every event, so a test can stop an agent. */
  silent?: (node: string) => boolean;
  /** Nodes whose revert fails (phase Failed, as the agent reports a revert it could not finish), with the error text. */
  failRevert?: (node: string) => string | undefined;
  /**
   * Act like the DaemonSet's nodeSelector: answer only on Nodes that carry the agent label
   * (AGENT_NODE_LABEL), so a label set too late or removed too early stalls as it would for real.
   */
  requireAgentLabel?: boolean;
  /** Informer relist period (default 30 s; 0 = never, as the controller runs). */
  resyncMs?: number;
}

export function probeFor(usable: Backend[]): Probe {
  return {
    arch: "amd64",
    kernel: "6.1.0-sim",
    cri: { kind: "containerd", version: "2.1.4", configPath: "/etc/containerd/config.toml", socket: "/run/containerd/containerd.sock" },
    kvm: { device: usable.some((b) => b !== "gvisor"), guestsRun: usable.some((b) => b !== "gvisor") },
    vhostVsock: usable.some((b) => b !== "gvisor"),
    backends: BACKENDS.map((b) => ({ backend: b, installed: true, usable: usable.includes(b), ...(usable.includes(b) ? {} : { message: "simulated: not usable here" }) })),
  };
}

const cond = (type: string, status: "True" | "False", reason: string, message: string, gen?: number): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  ...(gen !== undefined ? { observedGeneration: gen } : {}),
});

export class SimulatedAgent {
  readonly informer: Informer<SN>;
  /** Nodes being applied or reverted right now, and the most seen at once. */
  private readonly working = new Set<string>();
  maxConcurrent = 0;
  /** Every (node, action, hash) the agent carried out, in order. */
  readonly log: Array<{ node: string; action: "Apply" | "Revert" | "Fail"; hash?: string; at: number }> = [];
  /** Nodes with a SandboxNode the agent could not act on because the Node lacked the agent label. */
  readonly unscheduled = new Set<string>();
  private readonly busy = new Set<string>();
  private readonly dirty = new Set<string>();
  private stopped = false;

  private constructor(
    readonly client: KubeClient,
    private readonly opts: SimulatedAgentOptions,
  ) {
    this.informer = new Informer<SN>(client, SANDBOXNODE_KIND, { resyncMs: opts.resyncMs ?? 30_000 });
    this.informer.on((sn, _old, deleted) => {
      if (!deleted) void this.react(sn.metadata.name);
    });
  }

  static async start(kc: KubeConfig, opts: SimulatedAgentOptions = {}): Promise<SimulatedAgent> {
    const client = await KubeClient.fromKubeConfig(kc, { fieldManager: "sandbox-agent-sim" });
    const agent = new SimulatedAgent(client, opts);
    agent.informer.start();
    await agent.informer.waitForSync();
    return agent;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
    this.client.close();
  }

  /** Forget a node's failure state as an agent restart would (failedHash cleared on restart). */
  resetMaxConcurrent(): void {
    this.maxConcurrent = this.working.size;
  }

  private async writeStatus(sn: SN, status: SandboxNodeStatus): Promise<void> {
    const updated = await this.client.apply<SN>(
      { apiVersion: "sandboxing.dev/v1alpha1", kind: SANDBOXNODE_KIND, metadata: { name: sn.metadata.name }, status: { ...status, observedGeneration: sn.metadata.generation, agentVersion: "sim", heartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, "Z") } } as unknown as KubeObject,
      { subresource: "status" },
    );
    this.informer.upsert(updated);
  }

  /** One level-based step for a node; re-runs while the object changed under it. */
  private async react(name: string): Promise<void> {
    if (this.stopped || this.opts.silent?.(name)) return;
    if (this.busy.has(name)) {
      this.dirty.add(name);
      return;
    }
    this.busy.add(name);
    try {
      for (let i = 0; i < 20 && !this.stopped; i++) {
        this.dirty.delete(name);
        const sn = this.informer.get(name);
        if (!sn) return;
        const acted = await this.step(sn).catch((e: Error) => {
          if (!/not found|NotFound|404|Conflict/i.test(e.message)) console.error(`simulated agent ${name}: ${e.message}`);
          return false;
        });
        if (!acted && !this.dirty.has(name)) return;
      }
    } finally {
      this.busy.delete(name);
    }
  }

  private async work<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.working.add(name);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.working.size);
    try {
      if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
      return await fn();
    } finally {
      this.working.delete(name);
    }
  }

  private async revert(sn: SN): Promise<boolean> {
    const name = sn.metadata.name;
    const st = sn.status ?? {};
    const gen = sn.metadata.generation;
    const failure = this.opts.failRevert?.(name);
    if (failure) {
      if (st.phase === "Failed") return false;
      await this.work(name, () => this.writeStatus(sn, { ...st, phase: "Failed", conditions: [cond("Ready", "False", "RevertFailed", failure, gen), cond("Degraded", "True", "RevertFailed", failure, gen)] }));
      this.log.push({ node: name, action: "Fail", at: Date.now() });
      return true;
    }
    if (st.phase === "Reverted" && !st.appliedHash) return false;
    await this.work(name, () => this.writeStatus(sn, { ...st, phase: "Reverted", appliedHash: "", failedHash: undefined, handlers: [], conditions: [cond("Ready", "False", "Reverted", "the node runs none of our configuration", gen)] }));
    this.log.push({ node: name, action: "Revert", at: Date.now() });
    return true;
  }

  private async step(sn: SN): Promise<boolean> {
    const name = sn.metadata.name;
    const st = sn.status ?? {};
    const gen = sn.metadata.generation;
    if (this.opts.requireAgentLabel) {
      const node = await this.client.getOrNull<KubeObject>("Node", name);
      if (node?.metadata.labels?.[AGENT_NODE_LABEL] !== AGENT_NODE_LABEL_VALUE) {
        this.unscheduled.add(name);
        return false;
      }
    }
    if (!st.probe) {
      await this.writeStatus(sn, { probe: probeFor(this.opts.usable?.(name) ?? ["gvisor"]), phase: "Waiting", appliedHash: "", conditions: [cond("Ready", "False", "WaitingForRollout", "probed; waiting for proceed", gen)] });
      return true;
    }
    const { action, proceed } = sn.spec;
    // As the agent does (src/agent/loop.ts): spec.desired, or desired from spec.fromConfig and the probe while nothing is applied.
    const desired = sn.spec.desired || !st.appliedHash ? specDesiredFor(sn.spec, st.probe) : undefined;
    if (action === "Revert" && proceed) return this.revert(sn);
    if (action === "Apply" && proceed && desired && desired.handlers.length && desired.hash !== st.appliedHash && desired.hash !== st.failedHash) {
      const failure = this.opts.fail?.(name);
      if (failure) {
        await this.work(name, () => this.writeStatus(sn, { ...st, phase: "Failed", failedHash: desired.hash, handlers: desired.handlers.map((h) => ({ name: h.name, backend: h.backend, verified: false, message: failure })), conditions: [cond("Ready", "False", "VerificationFailed", failure, gen), cond("Degraded", "True", "VerificationFailed", failure, gen)] }));
        this.log.push({ node: name, action: "Fail", hash: desired.hash, at: Date.now() });
        return true;
      }
      await this.work(name, () =>
        this.writeStatus(sn, {
          ...st,
          phase: "Applied",
          appliedHash: desired.hash,
          failedHash: undefined,
          handlers: desired.handlers.map((h) => ({ name: h.name, backend: h.backend, verified: true, kernel: h.backend === "gvisor" ? "4.4.0" : "6.12.0-kata" })),
          conditions: [cond("Ready", "True", "Verified", "every handler ran a sandbox", gen), cond("Degraded", "False", "AsExpected", "", gen)],
        }),
      );
      this.log.push({ node: name, action: "Apply", hash: desired.hash, at: Date.now() });
      return true;
    }
    return false;
  }
}
