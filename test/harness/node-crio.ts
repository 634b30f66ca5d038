// The files that make the cluster tier's node a CRI-O node: CRI-O 1.34 (the harness build, its
// pinns) as a systemd unit, the base drop-in a CRI-O package ships (runc under Debian's conmon,
// systemd cgroups like the kubelet), registries.conf mirroring the local registry, a signature
// policy. Debian's containerd in the rootfs stays off: this node has one runtime.
import { bundleConfigWrapper } from "./gvisor.js";
import { commonNodeFiles, CRIO_SOCKET, NODE_BIN, NODE_CNI_BIN, type NodeSettings } from "./node-config.js";

/**
 * This VM only: root here lacks CAP_SYS_RESOURCE (its only missing capability), and CRI-O, unlike
 * the containerd node (restrict_oom_score_adj; privileged = the capabilities it has), asks runc for
 * the kubelet's negative OOM scores (critical pods -997) and for every capability in a privileged
 * container, both of which runc then fails to apply. This wrapper raises negative scores to 0 and
 * puts CAP_CHOWN where the bundle names CAP_SYS_RESOURCE, then runs Debian's runc unchanged.
 */
export function runcVmClamp(runc: string): string {
  return bundleConfigWrapper("runc", runc, ["s/\"oomScoreAdj\": *-[0-9]*/\"oomScoreAdj\": 0/", "s/\"CAP_SYS_RESOURCE\"/\"CAP_CHOWN\"/g"]);
}

export const NODE_RUNC_CLAMP = `${NODE_BIN}/runc-vm-clamp`;

export const CRIO_NODE_BASE_DROPIN = "/etc/crio/crio.conf.d/10-crio.conf";

/** What a CRI-O package's 10-crio.conf holds, with this node's pause image and pinns. */
export function crioNodeBaseConfig(s: NodeSettings): string {
  return `# CRI-O base configuration of the sandbox-operator cluster tier's node (test/harness/node-crio.ts).
[crio]
storage_driver = "overlay"

[crio.api]
listen = "${CRIO_SOCKET}"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "systemd"
pinns_path = "${NODE_BIN}/pinns"
hooks_dir = []
cdi_spec_dirs = []
irqbalance_config_file = ""
irqbalance_config_restore_file = "disable"

[crio.runtime.runtimes.runc]
runtime_path = "${NODE_RUNC_CLAMP}"
runtime_type = "oci"
runtime_root = "/run/runc"
monitor_path = "/usr/bin/conmon"
monitor_cgroup = "pod"

[crio.image]
pause_image = "${s.pauseImage}"
# The image's own command: the harness's pause image (test/harness/images.ts) has no /pause binary.
pause_command = ""
signature_policy = "/etc/containers/policy.json"

[crio.network]
network_dir = "/etc/cni/net.d"
plugin_dirs = ["${NODE_CNI_BIN}"]

[crio.nri]
enable_nri = false
`;
}

/** The local registry over plain HTTP, and docker.io and localhost mirrored to it (as the containerd node's hosts.toml files do). */
export function crioRegistriesConf(registry: string): string {
  const entry = (prefix: string) => `[[registry]]\nprefix = "${prefix}"\nlocation = "${registry}"\ninsecure = true\n`;
  return [`unqualified-search-registries = []`, ``, entry(registry), entry("docker.io"), entry("localhost")].join("\n");
}

/** CRI-O's packaged crio.service, pointed at NODE_BIN. */
export function crioUnit(): string {
  return `[Unit]
Description=CRI-O container runtime (sandbox-operator test harness build)
Documentation=https://github.com/cri-o/cri-o
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
Environment=PATH=${NODE_BIN}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=${NODE_BIN}/crio
ExecReload=/bin/kill -s HUP $MAINPID
TasksMax=infinity
LimitNOFILE=1048576
LimitNPROC=1048576
LimitCORE=infinity
OOMScoreAdjust=-999
TimeoutStartSec=0
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
`;
}

/** Every file a CRI-O node needs at boot, by node path (as nodeFiles for a containerd node). */
export function crioNodeFiles(s: NodeSettings): Record<string, string> {
  return {
    ...commonNodeFiles(s),
    [CRIO_NODE_BASE_DROPIN]: crioNodeBaseConfig(s),
    "/etc/containers/registries.conf": crioRegistriesConf(s.registry),
    "/etc/containers/policy.json": JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }),
    "/etc/systemd/system/crio.service": crioUnit(),
    [NODE_RUNC_CLAMP]: runcVmClamp("/usr/sbin/runc"),
    // Debian's containerd (in the rootfs for the 1.6 tier) never starts on this node.
    "/etc/systemd/system/containerd.service.d/10-not-on-a-crio-node.conf": "[Unit]\nConditionPathExists=/nonexistent-on-a-crio-node\n",
  };
}
