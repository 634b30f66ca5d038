// A real Kubernetes control plane for tests: etcd + kube-apiserver (+ optionally
// kube-controller-manager, kube-scheduler) on free ports with a generated CA, like controller-runtime's envtest.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, rmSync, writeFileSync, closeSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { createCA, issue, signingKeyPair, type CertificateAuthority } from "../../src/kube/pki.js";
import { ensureBinary } from "./binaries.js";
import { onExit } from "./exit-hooks.js";

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  url: string;
  kubeconfigPath: string;
  kubeConfig(): KubeConfig;
  /** A kubeconfig for another user (client certificate), e.g. to test RBAC. */
  userKubeConfig(user: string, groups?: string[]): Promise<KubeConfig>;
  /** The same as a kubeconfig file's text, for a component (kubelet, kube-proxy); `server` defaults to `url`. */
  userKubeconfigText(user: string, groups?: string[], server?: string): Promise<string>;
  ca: CertificateAuthority;
  dir: string;
  /** The apiserver's JSON audit log (Metadata level), when started with `auditUserGroups`. */
  auditLogPath?: string;
  pids: number[];
  ports: number[];
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager (garbage collection of owner references, namespaces). */
  controllerManager?: boolean;
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Also run kube-scheduler. */
  scheduler?: boolean;
  /** Serve real nodes and pods (the cluster tier) instead of API clients only; see ClusterNetwork. */
  cluster?: ClusterNetwork;
  /** Write an audit log (Metadata level, no request bodies) of the requests made by these user groups only. */
  auditUserGroups?: string[];
}

/**
 * What a control plane for real nodes needs: an address pods reach (the kubernetes Service's
 * endpoint), a Service range whose first IP is in the serving certificate, and a pod range the
 * controller-manager allocates node CIDRs from.
 */
export interface ClusterNetwork {
  /** The node-facing address (eth0's): --advertise-address, in the serving certificate. */
  advertiseAddress: string;
  /** e.g. 10.96.0.0/16; its first address (10.96.0.1) is the kubernetes Service. */
  serviceCIDR: string;
  /** e.g. 10.244.0.0/16, split into /24 node pod CIDRs. */
  clusterCIDR: string;
}

/** The first host address of an IPv4 CIDR (the ClusterIP of the kubernetes Service). */
export function firstServiceIP(cidr: string): string {
  const [net = ""] = cidr.split("/");
  const n = net.split(".").reduce((a, o) => a * 256 + Number(o), 0) + 1;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const running = new Set<ChildProcess>();
const runningDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onExit(() => {
    for (const c of running) c.kill("SIGKILL");
    for (const d of runningDirs) rmSync(d, { recursive: true, force: true });
  });
}

function startProcess(name: string, bin: string, args: string[], dir: string): ChildProcess {
  installExitHook();
  const log = openSync(join(dir, `${name}.log`), "a");
  const child = spawn(bin, args, { stdio: ["ignore", log, log], cwd: dir });
  closeSync(log);
  running.add(child);
  child.on("exit", () => running.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

function logTail(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, `${name}.log`), "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "(no log)";
  }
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess, onFail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what}: process exited with ${child.exitCode}\n${onFail?.() ?? ""}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms\n${onFail?.() ?? ""}`);
}

function httpsGet(url: string, tls: { ca: string; cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

function kubeconfigYaml(url: string, caPem: string, user: string, certPem: string, keyPem: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: { server: url, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(certPem), "client-key-data": b64(keyPem) } }],
    contexts: [{ name: "test", context: { cluster: "test", user } }],
    "current-context": "test",
  });
}

/** Audit flags: one JSON line per request stage of the given groups, and every write of RBAC objects (by anyone). */
function auditArgs(dir: string, groups: string[] | undefined): string[] {
  if (!groups?.length) return [];
  const policy = join(dir, "audit-policy.yaml");
  writeFileSync(policy, JSON.stringify({ apiVersion: "audit.k8s.io/v1", kind: "Policy", omitStages: ["RequestReceived"], rules: [{ level: "Metadata", userGroups: groups }, { level: "Metadata", verbs: ["create", "patch", "update", "delete"], resources: [{ group: "rbac.authorization.k8s.io" }] }, { level: "None" }] }));
  return [`--audit-policy-file=${policy}`, `--audit-log-path=${join(dir, "audit.log")}`, "--audit-log-format=json", "--audit-log-maxbackup=0"];
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const [etcdBin, apiserverBin] = [await ensureBinary("etcd"), await ensureBinary("kube-apiserver")];
  const kcmBin = opts.controllerManager ? await ensureBinary("kube-controller-manager") : undefined;
  const schedulerBin = opts.scheduler ? await ensureBinary("kube-scheduler") : undefined;
  const net = opts.cluster;
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-cp-"));
  installExitHook();
  runningDirs.add(dir);
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    for (const c of [...children].reverse()) await stopProcess(c);
    rmSync(dir, { recursive: true, force: true });
    runningDirs.delete(dir);
  };
  try {
    const ca = await createCA("sandbox-operator-test-ca");
    const serviceCIDR = net?.serviceCIDR ?? "10.0.0.0/24";
    const serving = await issue(ca, {
      commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
      ips: ["127.0.0.1", firstServiceIP(serviceCIDR), ...(net ? [net.advertiseAddress] : [])],
      server: true,
    });
    const admin = await issue(ca, { commonName: "admin", organizations: ["system:masters"], client: true });
    // The apiserver's identity towards kubelets (logs, exec, port-forward); kubelets authorize it by SubjectAccessReview.
    const kubeletClient = await issue(ca, { commonName: "kube-apiserver-kubelet-client", organizations: ["system:masters"], client: true });
    const sa = await signingKeyPair();
    const files: Record<string, string> = {
      "ca.crt": ca.certPem,
      "ca.key": ca.keyPem,
      "apiserver.crt": serving.certPem,
      "apiserver.key": serving.keyPem,
      "sa.key": sa.privatePem,
      "sa.pub": sa.publicPem,
      "apiserver-kubelet-client.crt": kubeletClient.certPem,
      "apiserver-kubelet-client.key": kubeletClient.keyPem,
    };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o600 });

    const [etcdClient, etcdPeer, securePort] = [await freePort(), await freePort(), await freePort()];
    ports.push(etcdClient, etcdPeer, securePort);
    const etcd = startProcess("etcd", etcdBin, [
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
      "--quota-backend-bytes=8589934592",
    ], dir);
    children.push(etcd);
    await waitFor("etcd", async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`)).ok, 30_000, etcd, () => logTail(dir, "etcd"));

    const url = `https://127.0.0.1:${securePort}`;
    const apiserver = startProcess("kube-apiserver", apiserverBin, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--secure-port=${securePort}`,
      // Pods reach the apiserver at the advertised address through the kubernetes Service.
      `--bind-address=${net ? "0.0.0.0" : "127.0.0.1"}`,
      `--advertise-address=${net?.advertiseAddress ?? "127.0.0.1"}`,
      `--cert-dir=${dir}`,
      `--tls-cert-file=${join(dir, "apiserver.crt")}`,
      `--tls-private-key-file=${join(dir, "apiserver.key")}`,
      `--client-ca-file=${join(dir, "ca.crt")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${join(dir, "sa.pub")}`,
      `--service-account-signing-key-file=${join(dir, "sa.key")}`,
      `--service-cluster-ip-range=${serviceCIDR}`,
      "--authorization-mode=Node,RBAC",
      "--allow-privileged=true",
      "--profiling=false",
      ...(net
        ? [
            `--kubelet-client-certificate=${join(dir, "apiserver-kubelet-client.crt")}`,
            `--kubelet-client-key=${join(dir, "apiserver-kubelet-client.key")}`,
            `--kubelet-certificate-authority=${join(dir, "ca.crt")}`,
            "--kubelet-preferred-address-types=InternalIP",
          ]
        : // API-only: no pods get tokens mounted, and no Service routes to the apiserver.
          ["--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none"]),
      ...auditArgs(dir, opts.auditUserGroups),
      ...(opts.apiserverArgs ?? []),
    ], dir);
    children.push(apiserver);
    const tls = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
    await waitFor("kube-apiserver /readyz", async () => (await httpsGet(`${url}/readyz`, tls)).status === 200, 120_000, apiserver, () => logTail(dir, "kube-apiserver"));

    const kubeconfigPath = join(dir, "admin.kubeconfig");
    writeFileSync(kubeconfigPath, kubeconfigYaml(url, ca.certPem, "admin", admin.certPem, admin.keyPem), { mode: 0o600 });

    if (kcmBin) {
      const kcm = startProcess("kube-controller-manager", kcmBin, [
        `--kubeconfig=${kubeconfigPath}`,
        // A cluster runs every default controller (ReplicaSets, EndpointSlices, node lifecycle, kube-root-ca.crt, node CIDRs).
        `--controllers=${net ? "*" : "garbagecollector,namespace,serviceaccount-token,serviceaccount"}`,
        ...(net ? ["--allocate-node-cidrs=true", `--cluster-cidr=${net.clusterCIDR}`, "--node-cidr-mask-size=24", `--service-cluster-ip-range=${serviceCIDR}`] : []),
        `--service-account-private-key-file=${join(dir, "sa.key")}`,
        `--root-ca-file=${join(dir, "ca.crt")}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--use-service-account-credentials=false",
      ], dir);
      children.push(kcm);
    }
    if (schedulerBin) {
      const schedPort = await freePort();
      ports.push(schedPort);
      const schedCert = await issue(ca, { commonName: "system:kube-scheduler", client: true });
      const schedKubeconfig = join(dir, "scheduler.kubeconfig");
      writeFileSync(schedKubeconfig, kubeconfigYaml(url, ca.certPem, "system:kube-scheduler", schedCert.certPem, schedCert.keyPem), { mode: 0o600 });
      children.push(
        startProcess("kube-scheduler", schedulerBin, [`--kubeconfig=${schedKubeconfig}`, `--authentication-kubeconfig=${schedKubeconfig}`, `--authorization-kubeconfig=${schedKubeconfig}`, "--leader-elect=false", "--bind-address=127.0.0.1", `--secure-port=${schedPort}`], dir),
      );
    }

    return {
      url,
      kubeconfigPath,
      ca,
      dir,
      ...(opts.auditUserGroups?.length ? { auditLogPath: join(dir, "audit.log") } : {}),
      ports,
      pids: children.map((c) => c.pid!),
      kubeConfig() {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
      async userKubeConfig(user: string, groups: string[] = []) {
        const pair = await issue(ca, { commonName: user, organizations: groups, client: true });
        const kc = new KubeConfig();
        kc.loadFromString(kubeconfigYaml(url, ca.certPem, user, pair.certPem, pair.keyPem));
        return kc;
      },
      async userKubeconfigText(user: string, groups: string[] = [], server = url) {
        const pair = await issue(ca, { commonName: user, organizations: groups, client: true });
        return kubeconfigYaml(server, ca.certPem, user, pair.certPem, pair.keyPem);
      },
      stop,
    };
  } catch (err) {
    const logs = ["etcd", "kube-apiserver"].map((n) => `--- ${n}.log ---\n${logTail(dir, n)}`).join("\n");
    await stop();
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
  }
}

/** Loads the control plane named by SANDBOX_TEST_KUBECONFIG when set (reuse), else starts one. */
export async function testControlPlane(opts: ControlPlaneOptions = {}): Promise<{ kubeConfig(): KubeConfig; kubeconfigPath: string; stop(): Promise<void>; shared: boolean; cp?: ControlPlane }> {
  const shared = process.env.SANDBOX_TEST_KUBECONFIG;
  if (shared) {
    return {
      kubeconfigPath: shared,
      shared: true,
      kubeConfig() {
        const kc = new KubeConfig();
        kc.loadFromFile(shared);
        return kc;
      },
      stop: async () => {},
    };
  }
  const cp = await startControlPlane(opts);
  return { kubeConfig: () => cp.kubeConfig(), kubeconfigPath: cp.kubeconfigPath, stop: () => cp.stop(), shared: false, cp };
}
