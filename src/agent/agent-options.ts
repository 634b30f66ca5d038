// The node agent's options: where the host is, how to reach and restart its runtime, what it
// installs by default, how it proves handlers. The NodeAgent (apply.ts) takes them as given.
import type { Logger } from "pino";
import type { Restarter } from "./restart.js";
import type { VerifyImage, VerifyResult } from "./verify.js";

export interface NodeAgentOptions {
  hostRoot: string;
  /** CRI socket as this process sees it (default: probed under hostRoot). */
  criSocket?: string;
  /** Binaries the agent ships (runsc, containerd-shim-runsc-v1), installed under /opt/sandbox-operator/bin. */
  payloadDir?: string;
  /** The default gVisor payload image (pinned by digest) the agent installs; SandboxConfig spec.payloads.gvisor overrides it. */
  gvisorPayload?: string;
  restarter: Restarter;
  /** Prefix the runtime needs in front of host paths written into its configs ("" on a real host; the host root in tests). */
  configPrefix?: string;
  /** Extra runsc flags (runsc.toml [runsc_config]), e.g. { network: "none" } where netstack cannot run. */
  runscFlags?: Record<string, string>;
  /** Image the verification container runs (needs sh, uname, dmesg) unless desired.verification names one. */
  verifyImage: string;
  containerdBinary?: string;
  /** containerd's config.toml to edit (host path); default: the one the containerd process runs with (probe). */
  containerdConfig?: string;
  /** Host process whose mount namespace host commands run in (`containerd config default` fallback); default 1. */
  hostPid?: number;
  kataDir?: string;
  log: Logger;
  /** How handlers are proven; default: sandboxes made directly through CRI (nodes without a kubelet). */
  verifier?: HandlerVerifier;
  /** Fault injection for crash tests only (test/node/fixtures/apply-once.ts): the process SIGKILLs itself at this step. */
  fault?: string;
}

/** Proves handlers another way than raw CRI sandboxes: Pods through the kubelet (verify-pod.ts). */
export interface HandlerVerifier {
  readonly name: string;
  /** handler "" = the runtime's default (a plain runc pod). */
  verify(handler: string, image: VerifyImage): Promise<VerifyResult>;
  /** Removes what a crashed run left; returns how many. */
  cleanup(): Promise<number>;
}
