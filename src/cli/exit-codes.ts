// sandboxctl's exit codes (docs/cli.md lists the same table) and the mapping from an error to
// one of them with a message that says what to do next.
import { ApiError } from "../kube/client.js";

export const EXIT = {
  /** Done; for doctor: at least one backend can run here. */
  ok: 0,
  /** An unexpected error (a bug: please report it with the message). */
  error: 1,
  /** Bad command line: unknown command, flag or value. */
  usage: 2,
  /** The cluster could not be reached, or the kubeconfig/context is unusable. */
  unreachable: 3,
  /** Timed out waiting (install: controller not ready; uninstall: finalizer not done). */
  timeout: 4,
  /** Uninstall is blocked by something the cluster reports (e.g. sandboxed pods still run). */
  blocked: 5,
  /** doctor: no sandbox backend can run on this machine. */
  unusable: 6,
  /** The kubeconfig user may not do this (401/403). */
  forbidden: 7,
  /** Not installed: the sandboxing.dev CRDs are missing. */
  notInstalled: 8,
} as const;

export class CliError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const NETWORK = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]);

/** The exit code and a one-paragraph message for any error a command throws. */
export function classify(err: unknown): { code: number; message: string } {
  if (err instanceof CliError) return { code: err.code, message: err.message };
  if (err instanceof ApiError) {
    if (err.status === 401) return { code: EXIT.forbidden, message: `${err.message}\nthe apiserver did not accept your credentials: refresh the kubeconfig or pick another --context` };
    if (err.status === 403) return { code: EXIT.forbidden, message: `${err.message}\nyour user lacks this permission: use a cluster-admin context (install/uninstall need cluster-admin)` };
    if (err.status === 404 && /sandboxing\.dev/.test(err.message)) return { code: EXIT.notInstalled, message: `${err.message}\nsandbox-operator is not installed in this cluster: run sandboxctl install` };
    return { code: EXIT.error, message: err.message };
  }
  const e = err as NodeJS.ErrnoException & { code?: string };
  if (e?.code && NETWORK.has(e.code)) return { code: EXIT.unreachable, message: `cannot reach the cluster (${e.code}: ${e.message}): check the kubeconfig's server and --context` };
  if (e instanceof Error && /kubeconfig|current cluster|context/i.test(e.message)) return { code: EXIT.unreachable, message: `${e.message}: set KUBECONFIG, pass --kubeconfig or --context` };
  return { code: EXIT.error, message: e instanceof Error ? (e.stack ?? e.message) : String(err) };
}
