// A real single-node Kubernetes cluster started from test code: control plane on the host, one
// systemd node container (containerd 2, kubelet, kube-proxy, CNI bridge), a local OCI registry.
import { execFile } from "node:child_process";
import { networkInterfaces } from "node:os";
import { dirname } from "node:path";
import { issue } from "../../src/kube/pki.js";
import { waitCriReady } from "../../src/agent/cri/client.js";
import { binaryPath, ensureBinary } from "./binaries.js";
import { removePodSandboxes } from "./containerd.js";
import { freePort, startControlPlane, type ControlPlane } from "./controlplane.js";
import { onExit } from "./exit-hooks.js";
import { diffHost, readSysctls, restoreHostNetwork, restoreSysctls, snapshotHost, type HostSnapshot } from "./host-state.js";
import { buildImageArchive, PAUSE_IMAGES, TEST_IMAGE } from "./images.js";
import { CONTAINERD_SOCKET, CRIO_SOCKET, NODE_BIN, NODE_CNI_BIN, NODE_PKI, NODE_RUNSC_SHIM_16, nodeFiles, type NodeSettings } from "./node-config.js";
import { crioNodeFiles } from "./node-crio.js";
import { startNodeContainer, type Bind, type NodeContainer } from "./node-container.js";
import { ensureNodeRootfs } from "./node-rootfs.js";
import { NAMESPACE } from "../../src/manifests/names.js";
import { startRegistry, type Registry } from "./registry.js";

export const SERVICE_CIDR = "10.96.0.0/16";
export const CLUSTER_CIDR = "10.244.0.0/16";
export const POD_CIDR = "10.244.0.0/24";

export interface KubeClusterOptions {
  nodeName?: string;
  /** The node's containerd: 2.4.2 from the harness cache (default) or Debian's 1.6 in the rootfs. */
  containerd?: "2" | "1.6";
  /** The node's CRI runtime: containerd (default, as above) or CRI-O 1.34 from the harness cache. */
  runtime?: "containerd" | "crio";
  /** Configure a runsc handler by hand in the node's containerd (the harness's own gVisor check). */
  gvisorByHand?: boolean;
  log?: (line: string) => void;
}

export interface KubeCluster {
  cp: ControlPlane;
  node: NodeContainer;
  registry: Registry;
  nodeName: string;
  nodeIP: string;
  containerd: "2" | "1.6";
  runtime: "containerd" | "crio";
  /** The kubelet's CRI socket, as a node path. */
  criSocket: string;
  /** Pull-by-digest references in the local registry. */
  images: { pause: string; busybox: string };
  kubeconfigPath: string;
  /** Runs the real kubectl (built from k8s.io/kubernetes) against this cluster. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Milliseconds from start to node Ready with the default ServiceAccount in place. */
  readyMs: number;
  hostBefore: HostSnapshot;
  /** Tears everything down, restores the host; returns what still differs from before (should be nothing). */
  stop(): Promise<string[]>;
}

/** The node's address: eth0's IPv4 (or the first non-loopback one), since the node shares the host netns. */
export function hostIP(): string {
  const ifs = networkInterfaces();
  const pick = (name: string) => ifs[name]?.find((a) => a.family === "IPv4" && !a.internal)?.address;
  const ip = pick("eth0") ?? Object.keys(ifs).map(pick).find(Boolean);
  if (!ip) throw new Error("no non-loopback IPv4 address: the kubelet needs a routable node IP");
  return ip;
}

export async function kubectlAt(kubeconfig: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const bin = await ensureBinary("kubectl");
  return new Promise((resolve, reject) => {
    const child = execFile(bin, [`--kubeconfig=${kubeconfig}`, ...args], { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(" ")}: ${err.message.split("\n")[0]}\n${stderr}${stdout}`, { cause: err }));
      else resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, diag: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = (e as Error).message.split("\n").slice(0, 3).join(" ");
    }
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms (last: ${last || "false"})\n${await diag()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const CONTAINERD2 = ["containerd2", "containerd2-shim-runc-v2", "ctr2", "containerd-shim-runsc-v1"] as const;
const NODE_BINARIES = ["kubelet", "kube-proxy", "runsc"] as const;
const CRIO = ["crio", "pinns"] as const;
const CNI = ["cni-bridge", "cni-host-local", "cni-loopback", "cni-portmap"] as const;

export async function startKubeCluster(opts: KubeClusterOptions = {}): Promise<KubeCluster> {
  const t0 = Date.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(`[cluster] ${l}\n`));
  const nodeName = opts.nodeName ?? "sandbox-node";
  const containerd = opts.containerd ?? "2";
  const runtime = opts.runtime ?? "containerd";
  const criSocket = runtime === "crio" ? CRIO_SOCKET : CONTAINERD_SOCKET;
  const runtimeUnit = runtime === "crio" ? "crio" : "containerd";
  for (const b of [...(runtime === "crio" ? CRIO : CONTAINERD2), ...NODE_BINARIES, ...CNI, "kubectl", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd", "registry"]) await ensureBinary(b);
  const rootfs = await ensureNodeRootfs();
  const hostBefore = await snapshotHost(rootfs);
  const sysctls = readSysctls();
  const nodeIP = hostIP();
  const cleanups: Array<() => Promise<unknown>> = [];
  const teardown = async (): Promise<string[]> => {
    const errors: string[] = [];
    for (const c of cleanups.reverse()) await c().catch((e: Error) => errors.push(e.message));
    cleanups.length = 0;
    restoreSysctls(sysctls);
    const left = diffHost(hostBefore, await snapshotHost(rootfs));
    return [...errors, ...left];
  };
  try {
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    const archive = await buildImageArchive();
    const images = { pause: await registry.push(archive, "pause", { ref: PAUSE_IMAGES[0] }), busybox: await registry.push(archive, "busybox", { ref: TEST_IMAGE, tag: "1" }) };
    log(`registry ${registry.host}: ${images.pause}, ${images.busybox}`);

    // The operator's service accounts are audited: the tier checks their roles against what they used.
    const cp = await startControlPlane({ controllerManager: true, scheduler: true, cluster: { advertiseAddress: nodeIP, serviceCIDR: SERVICE_CIDR, clusterCIDR: CLUSTER_CIDR }, auditUserGroups: [`system:serviceaccounts:${NAMESPACE}`] });
    cleanups.push(() => cp.stop());
    const apiURL = `https://${nodeIP}:${new URL(cp.url).port}`;
    log(`control plane ${cp.url} (advertised ${apiURL}) in ${Date.now() - t0} ms`);

    const settings: NodeSettings = {
      name: nodeName,
      containerd,
      runtime,
      ip: nodeIP,
      podCIDR: POD_CIDR,
      clusterCIDR: CLUSTER_CIDR,
      registry: registry.host,
      pauseImage: images.pause,
      kubeletPort: await freePort(),
      kubeletHealthzPort: await freePort(),
      proxyHealthzPort: await freePort(),
      proxyMetricsPort: await freePort(),
      gvisorByHand: runtime === "containerd" && (opts.gvisorByHand ?? true),
    };
    // Node identity as the Node authorizer expects it: system:node:<name> in system:nodes.
    const serving = await issue(cp.ca, { commonName: `system:node:${nodeName}`, organizations: ["system:nodes"], dnsNames: [nodeName, "localhost"], ips: [nodeIP, "127.0.0.1"], server: true });
    const files: Record<string, string> = {
      ...(runtime === "crio" ? crioNodeFiles(settings) : nodeFiles(settings)),
      [`${NODE_PKI}/ca.crt`]: cp.ca.certPem,
      [`${NODE_PKI}/kubelet.crt`]: serving.certPem,
      [`${NODE_PKI}/kubelet.key`]: serving.keyPem,
      "/etc/kubernetes/kubelet.conf": await cp.userKubeconfigText(`system:node:${nodeName}`, ["system:nodes"], apiURL),
      "/etc/kubernetes/kube-proxy.conf": await cp.userKubeconfigText("system:kube-proxy", [], apiURL),
    };
    const atBin = (b: string) => ({ host: binaryPath(b), node: `${NODE_BIN}/${binaryPath(b).split("/").pop()}`, readOnly: true });
    const binds: Bind[] = [
      ...NODE_BINARIES.map(atBin),
      // containerd 1.6 is Debian's; gVisor's shim sits behind the 1.6 adapter (nodeFiles writes it).
      ...(runtime === "crio" ? CRIO.map(atBin) : containerd === "2" ? CONTAINERD2.map(atBin) : [{ host: binaryPath("containerd-shim-runsc-v1"), node: NODE_RUNSC_SHIM_16, readOnly: true }]),
      { host: dirname(binaryPath("cni-bridge")), node: NODE_CNI_BIN, readOnly: true },
    ];
    const node = await startNodeContainer({ name: nodeName, rootfs, binds, files, realDirs: ["/var/lib/containerd", "/var/lib/containers", "/var/lib/kubelet"] });
    cleanups.push(async () => restoreHostNetwork(rootfs, hostBefore));
    cleanups.push(() => node.stop());
    cleanups.push(() => cleanNode(node, criSocket));
    // If this process dies without stop(): the node's own hook has killed it by now; undo the rest.
    const unhook = onExit(() => {
      restoreHostNetwork(rootfs, hostBefore);
      restoreSysctls(sysctls);
    });
    cleanups.push(async () => unhook());
    log(`node ${nodeName} (${runtime === "crio" ? "CRI-O" : `containerd ${containerd}`}) booted (systemd PID ${node.pid}) at ${Date.now() - t0} ms`);

    const diag = async () =>
      [
        `--- systemctl --failed ---\n${(await node.systemctl("--failed", "--no-legend").catch((e: Error) => ({ stdout: e.message }))).stdout}`,
        ...(await Promise.all([runtimeUnit, "kubelet", "kube-proxy"].map(async (u) => `--- journal ${u} ---\n${await node.journal(u, 40)}`))),
      ].join("\n");
    await (async () => {
      await node.systemctl("enable", "--now", `${runtimeUnit}.service`);
      await waitCriReady(node.hostPath(criSocket), 30_000);
    })().catch(async (e: Error) => {
      throw new Error(`${runtimeUnit} in the node: ${e.message}\n${await diag()}`, { cause: e });
    });
    await node.systemctl("enable", "--now", "kubelet.service", "kube-proxy.service");
    const kubectl = (args: string[], o?: { input?: string; timeoutMs?: number }) => kubectlAt(cp.kubeconfigPath, args, o);
    await until("node Ready", async () => (await kubectl(["get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`])).trim() === "True", 120_000, diag);
    await until("default ServiceAccount and kube-root-ca.crt", async () => (await kubectl(["get", "serviceaccount/default", "configmap/kube-root-ca.crt", "-n", "default", "-o", "name"])).trim().split("\n").length === 2, 60_000, diag);
    const readyMs = Date.now() - t0;
    log(`cluster ready in ${readyMs} ms`);
    return { cp, node, registry, nodeName, nodeIP, containerd, runtime, criSocket, images, kubeconfigPath: cp.kubeconfigPath, kubectl, readyMs, hostBefore, stop: teardown };
  } catch (e) {
    const left = await teardown();
    throw new Error(`cluster did not start: ${(e as Error).message}${left.length ? `\nafter teardown: ${left.join("; ")}` : ""}`, { cause: e });
  }
}

/**
 * Undoes in the node what reaches outside it (the shared network namespace), while the node still
 * runs: pod sandboxes are removed through CRI (the CNI plugins' DEL removes veths, IPAM state and
 * per-pod rules) and kube-proxy removes its own rules. restoreHostNetwork() does the rest.
 */
async function cleanNode(node: NodeContainer, criSocket: string): Promise<void> {
  await node.systemctl("stop", "kubelet.service", "kube-proxy.service").catch(() => undefined);
  // If the runtime is down, the sandboxes' netns go with the node's mount namespace.
  await removePodSandboxes(node.hostPath(criSocket), 10_000);
  await node.exec([`${NODE_BIN}/kube-proxy`, "--cleanup", "--v=0"]).catch(() => undefined);
}
