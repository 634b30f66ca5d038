// The CLI's I/O edges: output streams (a live view that redraws on a terminal and appends
// otherwise) and the cluster connection from --kubeconfig / --context.
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { loadKubeConfig } from "../kube/kubeconfig.js";
import { KubeClient } from "../kube/client.js";
import { CliError, EXIT } from "./exit-codes.js";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Replaces the previous live frame on a terminal; prints frames one after another otherwise. */
  frame(text: string): void;
  isTTY: boolean;
}

export function processIo(): Io {
  const isTTY = Boolean(process.stdout.isTTY);
  let lastLines = 0;
  let lastFrame = "";
  return {
    isTTY,
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    frame(text) {
      if (isTTY) {
        // Move up over the previous frame and clear it, then draw the new one.
        if (lastLines) process.stdout.write(`\x1b[${lastLines}F\x1b[0J`);
        process.stdout.write(text);
        lastLines = text.split("\n").length - 1;
      } else if (text !== lastFrame) {
        // In a log or pipe, print a frame only when it changed.
        process.stdout.write(text);
      }
      lastFrame = text;
    },
  };
}

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
}

export async function connect(opts: ConnectOptions): Promise<KubeClient> {
  let kc: KubeConfig;
  try {
    if (opts.kubeconfig && !existsSync(opts.kubeconfig)) throw new CliError(EXIT.unreachable, `--kubeconfig ${opts.kubeconfig}: no such file`);
    kc = loadKubeConfig(opts.kubeconfig);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(EXIT.unreachable, `cannot read the kubeconfig (${opts.kubeconfig ?? process.env.KUBECONFIG ?? "~/.kube/config"}): ${(e as Error).message}`);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) throw new CliError(EXIT.unreachable, `kubeconfig has no context "${opts.context}"; contexts: ${kc.getContexts().map((c) => c.name).join(", ") || "none"}`);
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) throw new CliError(EXIT.unreachable, "no cluster in the kubeconfig's current context: set KUBECONFIG, pass --kubeconfig or --context");
  return KubeClient.fromKubeConfig(kc, { fieldManager: "sandboxctl", userAgent: "sandboxctl" });
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
