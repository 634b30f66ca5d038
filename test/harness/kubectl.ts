// The real kubectl (v1.34.4, built from k8s.io/kubernetes by ensureBinary, never the machine's own)
// against a test control plane: the YAML 1.1 reader and the client that the docs tell readers to use.
import { spawn } from "node:child_process";
import type { AnyObject } from "../../src/kube/client.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { ensureBinary } from "./binaries.js";

export interface KubectlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs kubectl with `--kubeconfig` from the repository root (the docs' relative paths resolve there). */
export async function kubectl(kubeconfigPath: string, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  const bin = await ensureBinary("kubectl");
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [`--kubeconfig=${kubeconfigPath}`, ...args], { cwd: repoRoot(), stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: kubeconfigPath } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? "");
  });
}

/** Like kubectl(), but throws with kubectl's own message when it exits non-zero; returns stdout. */
export async function kubectlOk(kubeconfigPath: string, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await kubectl(kubeconfigPath, args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * The objects of a manifest file as kubectl reads them (YAML 1.1, through sigs.k8s.io/yaml): a
 * client-side dry-run, so nothing is sent; it needs the control plane only to map each kind.
 */
export async function kubectlRead(kubeconfigPath: string, file: string): Promise<AnyObject[]> {
  const stdout = await kubectlOk(kubeconfigPath, ["create", "--dry-run=client", "--validate=false", "-o", "json", "-f", file]);
  // `create -o json` prints one indented JSON object per manifest object, each closing at column 0.
  const objects = JSON.parse(`[${stdout.trim().replace(/^\}\s*\{/gm, "},{")}]`) as Array<AnyObject & { items?: AnyObject[] }>;
  return objects.flatMap((o) => (o.kind === "List" && Array.isArray(o.items) ? o.items : [o]));
}
