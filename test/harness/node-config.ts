// The files that make the node container a Kubernetes node: containerd 2.x, kubelet and kube-proxy
// as systemd units with their configs, the CNI bridge network, the local registry's hosts.toml.
import { ENV_CRI_KEYS } from "./containerd.js";
import { shimAdapter16 } from "./gvisor.js";

/** Where the harness puts its binaries inside the node (bind-mounted from the host cache). */
export const NODE_BIN = "/usr/local/bin";
export const NODE_CNI_BIN = "/opt/cni/bin";
export const NODE_PKI = "/etc/kubernetes/pki";
export const CONTAINERD_SOCKET = "/run/containerd/containerd.sock";
/** /run, not /var/run: the harness reaches it through /proc/<node PID 1>/root, where /var/run (an absolute symlink) would resolve on the host. */
export const CRIO_SOCKET = "/run/crio/crio.sock";
/** containerd 1.6 only: gVisor's shim proper, behind the adapter at NODE_BIN (test/harness/gvisor.ts). */
export const NODE_RUNSC_SHIM_16 = "/usr/local/lib/sandbox-operator-harness/containerd-shim-runsc-v1";

export interface NodeSettings {
  name: string;
  /** containerd 2.4.2 from the harness cache, or Debian's 1.6 from the rootfs with its own unit. */
  containerd: "2" | "1.6";
  /** The node's CRI runtime: containerd (above), or CRI-O from the harness cache (test/harness/node-crio.ts). */
  runtime?: "containerd" | "crio";
  /** eth0's address: the node's InternalIP (the node shares the host's network namespace). */
  ip: string;
  /** This node's pod range (the bridge's host-local IPAM subnet), e.g. 10.244.0.0/24. */
  podCIDR: string;
  /** The cluster's pod range (kube-proxy's local-traffic detection), e.g. 10.244.0.0/16. */
  clusterCIDR: string;
  /** The local registry, host:port on loopback. */
  registry: string;
  /** Pause image by digest in the local registry (containerd's sandbox image). */
  pauseImage: string;
  kubeletPort: number;
  kubeletHealthzPort: number;
  proxyHealthzPort: number;
  proxyMetricsPort: number;
  /**
   * A runsc handler written by hand into the CRI config, only so the harness can show gVisor runs
   * on this node; the operator writes its own handlers.
   */
  gvisorByHand: boolean;
}

export function containerdConfig(s: NodeSettings): string {
  return s.containerd === "1.6" ? containerdConfig16(s) : containerdConfig2(s);
}

/**
 * containerd 2.x, config version 3 (2.4 migrates it to 4 on load, with a warning; 3 is what
 * 2.0-2.3 read too), as a node admin would write it for a kubeadm-style node.
 */
function containerdConfig2(s: NodeSettings): string {
  const rt = `plugins.'io.containerd.cri.v1.runtime'`;
  return [
    "version = 3",
    "",
    `[${rt}]`,
    // This VM only (see ENV_CRI_KEYS): no CAP_SYS_RESOURCE, no AppArmor.
    ...ENV_CRI_KEYS.map((k) => `  ${k}`),
    `[${rt}.containerd]`,
    `  default_runtime_name = 'runc'`,
    `[${rt}.containerd.runtimes.runc]`,
    `  runtime_type = 'io.containerd.runc.v2'`,
    `[${rt}.containerd.runtimes.runc.options]`,
    // The kubelet's cgroup driver is systemd (systemd is PID 1 here): runc must agree.
    `  SystemdCgroup = true`,
    ...(s.gvisorByHand ? [`[${rt}.containerd.runtimes.runsc]`, `  runtime_type = 'io.containerd.runsc.v1'`] : []),
    `[${rt}.cni]`,
    `  bin_dirs = ['${NODE_CNI_BIN}']`,
    `  conf_dir = '/etc/cni/net.d'`,
    `[plugins.'io.containerd.cri.v1.images'.pinned_images]`,
    `  sandbox = '${s.pauseImage}'`,
    `[plugins.'io.containerd.cri.v1.images'.registry]`,
    `  config_path = '/etc/containerd/certs.d'`,
    "",
  ].join("\n");
}

/** Debian's containerd 1.6 config.toml (version 2) with what a kubeadm-style node adds. */
function containerdConfig16(s: NodeSettings): string {
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  return [
    "version = 2",
    "",
    "[plugins]",
    `  [${cri}]`,
    ...ENV_CRI_KEYS.map((k) => `    ${k}`),
    `    sandbox_image = "${s.pauseImage}"`,
    `    [${cri}.containerd]`,
    `      default_runtime_name = "runc"`,
    `      [${cri}.containerd.runtimes.runc]`,
    `        runtime_type = "io.containerd.runc.v2"`,
    `        [${cri}.containerd.runtimes.runc.options]`,
    `          SystemdCgroup = true`,
    ...(s.gvisorByHand ? [`      [${cri}.containerd.runtimes.runsc]`, `        runtime_type = "io.containerd.runsc.v1"`] : []),
    `    [${cri}.cni]`,
    `      bin_dir = "${NODE_CNI_BIN}"`,
    `      conf_dir = "/etc/cni/net.d"`,
    `    [${cri}.registry]`,
    `      config_path = "/etc/containerd/certs.d"`,
    `  [plugins."io.containerd.internal.v1.opt"]`,
    `    path = "/var/lib/containerd/opt"`,
    "",
  ].join("\n");
}

/**
 * The local registry over plain HTTP: it listens on loopback only, which the node shares; this is
 * the hosts.toml pattern containerd documents (and kind's local-registry guide uses).
 */
export function registryHostsToml(registry: string): string {
  return [`server = "http://${registry}"`, "", `[host."http://${registry}"]`, `  capabilities = ["pull", "resolve"]`, ""].join("\n");
}

/**
 * A registry mirror, as an air-gapped node has one: pulls of `upstream` (docker.io, or `localhost`
 * for the operator's default image name) resolve in the local registry; nothing is fetched upstream.
 */
export function mirrorHostsToml(upstream: string, registry: string): string {
  const server = upstream === "docker.io" ? "https://registry-1.docker.io" : `https://${upstream}`;
  return [`server = "${server}"`, "", `[host."http://${registry}"]`, `  capabilities = ["pull", "resolve"]`, ""].join("\n");
}

/** Upstream names the local registry mirrors (docs/development.md: the cluster tier's registry). */
export const MIRRORED = ["docker.io", "localhost"] as const;

/** Upstream's containerd.service (containerd/containerd, containerd.service), pointed at NODE_BIN. */
export function containerdUnit(): string {
  return `[Unit]
Description=containerd container runtime (v2, sandbox-operator test harness build)
Documentation=https://containerd.io
After=network.target local-fs.target dbus.service

[Service]
Environment=PATH=${NODE_BIN}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=${NODE_BIN}/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`;
}

export function kubeletConfig(s: NodeSettings): string {
  return JSON.stringify(
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      address: s.ip,
      port: s.kubeletPort,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      healthzPort: s.kubeletHealthzPort,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: `${NODE_PKI}/ca.crt` } },
      authorization: { mode: "Webhook" },
      tlsCertFile: `${NODE_PKI}/kubelet.crt`,
      tlsPrivateKeyFile: `${NODE_PKI}/kubelet.key`,
      cgroupDriver: "systemd",
      containerRuntimeEndpoint: `unix://${s.runtime === "crio" ? CRIO_SOCKET : CONTAINERD_SOCKET}`,
      // This VM has no swap accounting worth enforcing; a real node decides this per cluster.
      failSwapOn: false,
      clusterDomain: "cluster.local",
      resolvConf: "/etc/resolv.conf",
      staticPodPath: "/etc/kubernetes/manifests",
      serializeImagePulls: false,
      rotateCertificates: false,
    },
    null,
    2,
  );
}

export function kubeletUnit(s: NodeSettings): string {
  const runtime = s.runtime === "crio" ? "crio.service" : "containerd.service";
  return `[Unit]
Description=kubelet (sandbox-operator test harness build)
Wants=${runtime}
After=${runtime}

[Service]
ExecStart=${NODE_BIN}/kubelet --config=/etc/kubernetes/kubelet-config.json --kubeconfig=/etc/kubernetes/kubelet.conf --node-ip=${s.ip} --hostname-override=${s.name} --v=2
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

export function kubeProxyConfig(s: NodeSettings): string {
  return JSON.stringify(
    {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      mode: "iptables",
      clientConnection: { kubeconfig: "/etc/kubernetes/kube-proxy.conf" },
      hostnameOverride: s.name,
      clusterCIDR: s.clusterCIDR,
      healthzBindAddress: `127.0.0.1:${s.proxyHealthzPort}`,
      metricsBindAddress: `127.0.0.1:${s.proxyMetricsPort}`,
      // Leave the host's conntrack table size and timeouts alone (the node shares the host's kernel).
      conntrack: { maxPerCore: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
    },
    null,
    2,
  );
}

export function kubeProxyUnit(): string {
  return `[Unit]
Description=kube-proxy (sandbox-operator test harness build)
After=network.target

[Service]
ExecStart=${NODE_BIN}/kube-proxy --config=/etc/kubernetes/kube-proxy.json --v=2
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

/** The pod network: one bridge with host-local IPAM and masquerade, portmap for hostPorts. */
export function cniConflist(s: NodeSettings): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "sandbox-operator-pods",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet: s.podCIDR }]], routes: [{ dst: "0.0.0.0/0" }] },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

/**
 * Every file the node needs at boot, by node path (certificates and kubeconfigs come from the
 * caller). containerd 1.6 keeps Debian's own unit.
 */
/** The files every node gets, whatever its runtime. */
export function commonNodeFiles(s: NodeSettings): Record<string, string> {
  return {
    "/etc/kubernetes/kubelet-config.json": kubeletConfig(s),
    "/etc/systemd/system/kubelet.service": kubeletUnit(s),
    "/etc/kubernetes/kube-proxy.json": kubeProxyConfig(s),
    "/etc/systemd/system/kube-proxy.service": kubeProxyUnit(),
    "/etc/cni/net.d/10-sandbox-operator-pods.conflist": cniConflist(s),
    "/etc/kubernetes/manifests/.keep": "",
  };
}

/** A containerd node's files (a CRI-O node's: crioNodeFiles in node-crio.ts). */
export function nodeFiles(s: NodeSettings): Record<string, string> {
  return {
    "/etc/containerd/config.toml": containerdConfig(s),
    [`/etc/containerd/certs.d/${s.registry}/hosts.toml`]: registryHostsToml(s.registry),
    ...Object.fromEntries(MIRRORED.map((u) => [`/etc/containerd/certs.d/${u}/hosts.toml`, mirrorHostsToml(u, s.registry)])),
    ...(s.containerd === "2" ? { "/etc/systemd/system/containerd.service": containerdUnit() } : { [`${NODE_BIN}/containerd-shim-runsc-v1`]: shimAdapter16(NODE_RUNSC_SHIM_16) }),
    ...commonNodeFiles(s),
  };
}
