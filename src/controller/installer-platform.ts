// Chooses the installer per pass: platform detection (cached, re-run periodically and after an
// error) decides DaemonSet or MachineConfig; a MachineConfig request the cluster cannot serve installs nothing.
import type { SandboxConfig } from "../api/index.js";
import type { KubeClient } from "../kube/client.js";
import { detectPlatform, type InstallMethodSetting, type PlatformDecision, type PlatformStatus } from "../openshift/index.js";
import { logger } from "../telemetry/logger.js";
import type { RuntimeClassObject } from "./desired-runtimeclasses.js";
import type { MachineConfigInstaller } from "./installer-machineconfig.js";
import type { InstallerResult, NodeInstaller } from "./installer.js";
import type { RolloutPlan } from "./policy-rollout.js";

export interface PlatformInstallerOptions {
  client: KubeClient;
  daemonSet: NodeInstaller;
  machineConfig: MachineConfigInstaller;
  /** Detect again after this long (default 5 min): APIs can appear (MCO installed) or go. */
  redetectMs?: number;
  detect?: (client: KubeClient, requested: InstallMethodSetting) => Promise<PlatformDecision>;
  now?: () => number;
}

/** A config that asks for an install method this cluster cannot serve: nothing is installed, the condition says why. */
export function unavailablePlan(config: SandboxConfig, error: { reason: string; message: string }): RolloutPlan {
  return {
    nodes: [],
    budget: 0,
    inProgress: 0,
    needPods: false,
    selected: 0,
    uninstalling: false,
    generation: config.metadata.generation,
    configUid: config.metadata.uid,
    release: [],
    hold: true,
    conditions: [
      { type: "Ready", status: "False", reason: error.reason, message: error.message },
      { type: "Progressing", status: "False", reason: error.reason, message: "nothing was installed or changed; fix spec.installMethod" },
      { type: "Degraded", status: "True", reason: error.reason, message: error.message },
    ],
  };
}

export class PlatformInstaller implements NodeInstaller {
  last: RolloutPlan | undefined;
  private decision: { value: PlatformDecision; at: number; requested: InstallMethodSetting } | undefined;
  private stale = true;
  private active: NodeInstaller;
  private readonly log = logger("platform");

  constructor(private readonly o: PlatformInstallerOptions) {
    this.active = o.daemonSet;
  }

  get platform(): PlatformStatus {
    if (this.active === this.o.machineConfig && !this.decision?.value.error) return this.o.machineConfig.platform;
    return this.decision?.value.status ?? this.o.daemonSet.platform;
  }

  private async decide(requested: InstallMethodSetting): Promise<PlatformDecision> {
    const now = (this.o.now ?? Date.now)();
    const d = this.decision;
    if (d && !this.stale && d.requested === requested && now - d.at < (this.o.redetectMs ?? 300_000)) return d.value;
    const value = await (this.o.detect ?? detectPlatform)(this.o.client, requested);
    if (!d || JSON.stringify(d.value.status) !== JSON.stringify(value.status) || d.requested !== requested) {
      this.log.info({ requested, kind: value.status.kind, installMethod: value.status.installMethod, infrastructure: value.status.infrastructure, error: value.error?.reason }, "platform decided");
    }
    this.decision = { value, at: now, requested };
    this.stale = false;
    return value;
  }

  async reconcile(config: SandboxConfig | null): Promise<InstallerResult> {
    try {
      const requested = (config?.spec.installMethod ?? "Auto") as InstallMethodSetting;
      const d = await this.decide(requested);
      const deleting = !config || !!config.metadata.deletionTimestamp;
      if (d.error && !deleting) {
        this.active = this.o.daemonSet;
        this.last = unavailablePlan(config, d.error);
        return { plan: this.last, requeueAfter: this.o.redetectMs ?? 300_000 };
      }
      // An uninstall with the method unavailable undoes what the agent path may have left.
      this.active = !d.error && d.status.installMethod === "MachineConfig" ? this.o.machineConfig : this.o.daemonSet;
      if (this.active === this.o.machineConfig) this.o.machineConfig.detected = d.status;
      const r = await this.active.reconcile(config);
      this.last = r.plan;
      return r;
    } catch (e) {
      this.stale = true; // the API may have changed under us: detect again on the retry
      throw e;
    }
  }

  runtimeClasses(config: SandboxConfig): RuntimeClassObject[] | undefined {
    if (this.last?.hold) return [];
    return this.active.runtimeClasses?.(config);
  }

  async nodesClean(): Promise<boolean> {
    return (await this.o.daemonSet.nodesClean()) && (await this.o.machineConfig.nodesClean());
  }
}
