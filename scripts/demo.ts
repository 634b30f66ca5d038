// The local demo (`npm run demo`): a real single-node cluster (the cluster test tier), the operator
// installed as a user installs it (image from a registry, kubectl), a runc and a `sandboxed` pod
// side by side, then uninstall with containerd's config restored. --keep leaves it up.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NAMESPACE } from "../src/manifests/names.js";
import { binaryPath } from "../test/harness/binaries.js";
import { eventually } from "../test/harness/cluster.js";
import { startKubeCluster, type KubeCluster } from "../test/harness/kube-cluster.js";
import { pushOperatorImage } from "../test/harness/operator-image.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MANIFESTS = "deploy/sandbox-operator.yaml";
const EXAMPLE = "examples/sandboxconfig.yaml";
const CONFIG = "/etc/containerd/config.toml";
const SCRIPT = "echo kernel=$(uname -r); echo dmesg=$(dmesg 2>/dev/null | head -n 1); sleep 3600";

const keep = process.argv.includes("--keep");
if (process.argv.some((a) => a === "-h" || a === "--help")) {
  process.stdout.write("usage: npm run demo [-- --keep]\n  --keep  leave the cluster and the operator running after the two pods (Ctrl-C stops and cleans up)\n");
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  process.stderr.write("demo: must run as root (it boots a node container with systemd, containerd, the kubelet and gVisor): sudo npm run demo\n");
  process.exit(1);
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
const say = (text: string) => process.stdout.write(`${text}\n`);
const phase = (text: string) => say(`\n[${elapsed()}] ▶ ${text}`);
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let cluster: KubeCluster | undefined;
let stopping: Promise<string[]> | undefined;
const stop = () => (stopping ??= cluster ? cluster.stop() : Promise.resolve([]));

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) {
      say(`\n${sig} again: exiting now (the harness's exit hooks kill the node and the control plane)`);
      process.exit(130);
    }
    interrupted = true;
    say(`\n[${elapsed()}] ${sig}: stopping the cluster and restoring the host (${sig} again to force)…`);
    void stop().then(
      (left) => {
        say(left.length ? `left on the host: ${left.join("; ")}` : "host restored: nothing left");
        process.exit(130);
      },
      () => process.exit(130),
    );
  });
}

/** The CLI from this checkout, as `npx sandboxctl` runs it. */
function sandboxctl(c: KubeCluster, args: string[]): string {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "--kubeconfig", c.kubeconfigPath, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`sandboxctl ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}


const podJson = (name: string, image: string, runtimeClassName?: string) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { runtimeClassName, terminationGracePeriodSeconds: 1, containers: [{ name: "main", image, command: ["sh", "-c", SCRIPT] }] },
  });

function kernelTable(rows: Array<[string, string]>): string {
  const parse = (log: string) => ({ kernel: /kernel=(.*)/.exec(log)?.[1]?.trim() ?? "?", dmesg: /dmesg=(.*)/.exec(log)?.[1]?.trim() || "(empty: the host restricts its kernel log; dmesg_restrict)" });
  return [
    `  ${"".padEnd(20)}${"uname -r".padEnd(18)}first line of dmesg`,
    ...rows.map(([label, log]) => {
      const r = parse(log);
      return `  ${label.padEnd(20)}${r.kernel.padEnd(18)}${r.dmesg}`;
    }),
  ].join("\n");
}

async function main(): Promise<void> {
  say(`sandbox-operator demo${keep ? " (--keep)" : ""}: a single-node cluster on this machine, the operator installed as pods`);
  phase("cluster: etcd, kube-apiserver, controller-manager, scheduler; a node container (systemd, containerd 2, kubelet, kube-proxy, CNI); a local registry");
  const c = (cluster = await startKubeCluster({ gvisorByHand: false, log: () => undefined }));
  const kubectl = binaryPath("kubectl");
  say(`  node ${c.nodeName} (${c.nodeIP}) Ready in ${(c.readyMs / 1000).toFixed(1)} s; registry ${c.registry.host}; gVisor's runsc is installed on the node, not configured`);
  const original = readFileSync(c.node.hostPath(CONFIG));
  say(`  ${CONFIG} sha256 ${sha256(original)}`);

  phase("image: built as `npm run build:image` builds it, pushed to the registry by digest");
  const image = await pushOperatorImage(c.registry);
  say(`  ${image.ref} (the node resolves localhost/sandbox-operator through its registry mirror)`);

  phase(`install: kubectl apply --server-side -f ${MANIFESTS}`);
  await c.kubectl(["apply", "--server-side", "-f", join(ROOT, MANIFESTS)]);
  for (const d of ["sandbox-operator-controller", "sandbox-operator-webhook"]) await c.kubectl(["-n", NAMESPACE, "rollout", "status", `deployment/${d}`, "--timeout=240s"], { timeoutMs: 250_000 });
  say(
    (await c.kubectl(["-n", NAMESPACE, "get", "pods", "-o", "custom-columns=POD:.metadata.name,STATUS:.status.phase"]))
      .trimEnd()
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n"),
  );

  phase(`kubectl apply -f ${EXAMPLE}; the agent configures containerd, restarts it, verifies with a Pod (sandboxctl status)`);
  await c.kubectl(["apply", "-f", join(ROOT, EXAMPLE)]);
  await eventually("SandboxConfig Ready", async () => /^True$/.test((await c.kubectl(["get", "sandboxconfig", "cluster", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`])).trim()), 300_000, 1000);
  say(sandboxctl(c, ["status"]).trimEnd());
  const labels = JSON.parse(await c.kubectl(["get", "node", c.nodeName, "-o", "jsonpath={.metadata.labels}"])) as Record<string, string>;
  say(`  Node ${c.nodeName}: ${Object.entries(labels).filter(([k]) => k.startsWith("sandboxing.dev/")).map(([k, v]) => `${k}=${v}`).join(", ")}`);

  phase("two pods, one on runc, one with runtimeClassName: sandboxed (kubectl logs)");
  await c.kubectl(["apply", "-f", "-"], { input: podJson("runc-pod", c.images.busybox) });
  await c.kubectl(["apply", "-f", "-"], { input: podJson("sandboxed-pod", c.images.busybox, "sandboxed") });
  const logs: Array<[string, string]> = [];
  for (const [label, name] of [["runc pod", "runc-pod"], ["sandboxed pod", "sandboxed-pod"]] as const) {
    await c.kubectl(["wait", `pod/${name}`, "--for=condition=Ready", "--timeout=120s"], { timeoutMs: 130_000 });
    let log = "";
    await eventually(`${name} logs`, async () => /dmesg=/.test((log = await c.kubectl(["logs", name]))), 30_000, 1000);
    logs.push([label, log]);
  }
  say(kernelTable(logs));
  say(`  host kernel: ${release()}`);

  if (keep) {
    phase("--keep: everything stays up");
    say(`  kubeconfig: ${c.kubeconfigPath}`);
    say(`  kubectl:    ${kubectl} --kubeconfig ${c.kubeconfigPath} get pods -A`);
    say(`  status:     npx tsx src/cli/main.ts --kubeconfig ${c.kubeconfigPath} status --watch`);
    say(`  node:       nsenter --target ${c.node.pid} --mount --pid -- journalctl -u kubelet -u containerd`);
    say(`  stop:       Ctrl-C here (or kill -TERM ${process.pid}): stops the cluster and restores the host`);
    await new Promise(() => undefined);
  }

  phase("uninstall as docs/uninstall.md says: delete the pods, the SandboxConfig (waits for the node's revert), the operator");
  await c.kubectl(["delete", "pod", "runc-pod", "sandboxed-pod", "--wait=true", "--timeout=60s"], { timeoutMs: 70_000 });
  await c.kubectl(["delete", "sandboxconfig", "cluster", "--wait=true", "--timeout=240s"], { timeoutMs: 250_000 });
  await c.kubectl(["delete", "-f", join(ROOT, MANIFESTS), "--ignore-not-found", "--wait=true", "--timeout=180s"], { timeoutMs: 190_000 });
  const restored = readFileSync(c.node.hostPath(CONFIG));
  const same = restored.equals(original);
  say(`  containerd config ${same ? "restored" : "NOT restored"}: sha256 before ${sha256(original)}`);
  say(`                                   after  ${sha256(restored)}${same ? "  (byte-identical)" : ""}`);
  const rcs = (await c.kubectl(["get", "runtimeclass", "-o", "name"])).trim();
  const left = JSON.parse(await c.kubectl(["get", "node", c.nodeName, "-o", "jsonpath={.metadata.labels}"])) as Record<string, string>;
  const ours = Object.keys(left).filter((k) => k.startsWith("sandboxing.dev/"));
  say(`  RuntimeClasses left: ${rcs ? rcs.split("\n").length : 0}; namespace ${NAMESPACE}: ${(await c.kubectl(["get", "ns", NAMESPACE, "--ignore-not-found", "-o", "name"])).trim() || "gone"}; Node labels of ours left: ${ours.join(", ") || "none"}`);
  if (!same) throw new Error("containerd's config was not restored byte for byte");

  phase("stop: the node, the control plane, the registry; the host restored");
  const hostLeft = await stop();
  say(hostLeft.length ? `  left on the host: ${hostLeft.join("; ")}` : "  host restored: nothing left");
  say(`\n[${elapsed()}] done: demo finished, nothing left running`);
  if (hostLeft.length) process.exitCode = 1;
}

main().catch(async (e: Error) => {
  process.stderr.write(`demo failed: ${e.message}\n`);
  const left = await stop().catch(() => []);
  if (left.length) process.stderr.write(`left on the host: ${left.join("; ")}\n`);
  process.exit(1);
});
