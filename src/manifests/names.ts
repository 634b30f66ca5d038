// Names every component and manifest agrees on: namespace, service accounts, labels, ports,
// entry points. One place, so the controller, agent, webhook, CLI and docs cannot drift apart.
export const NAMESPACE = "sandbox-operator-system";
export const PART_OF = "sandbox-operator";

/** The label the controller puts on each selected Node; the agent DaemonSet runs only there (defined in src/api, which components import). */
export { AGENT_NODE_LABEL, AGENT_NODE_LABEL_VALUE } from "../api/common.js";

export const CONTROLLER = "sandbox-operator-controller";
export const AGENT = "sandbox-operator-agent";
export const WEBHOOK = "sandbox-operator-webhook";

/** The Lease the controller replicas elect a leader on (in NAMESPACE). */
export const LEADER_LEASE = "sandbox-operator-controller";
/** Webhook configurations (validating and mutating) the webhook keeps its caBundle in. */
export const WEBHOOK_CONFIGURATION = "sandbox-operator";
/** The Secret holding the webhook's own CA (self-managed certificates; in NAMESPACE). */
export const WEBHOOK_CA_SECRET = "sandbox-operator-webhook-ca";
/** The Secret cert-manager writes the serving certificate to, when cert-manager is used. */
export const WEBHOOK_CERT_SECRET = "sandbox-operator-webhook-tls";
/** The ValidatingAdmissionPolicy that keeps each agent to its own SandboxNode. */
export const AGENT_NODE_POLICY = "sandbox-operator-agent-own-node";
/** The ValidatingAdmissionPolicy that keeps the verification RuntimeClasses to the agents' own Pods. */
export const VERIFY_POD_POLICY = "sandbox-operator-verify-pods";

/** OpenShift (4.14+) admits a pod under exactly the SCC this annotation names instead of picking one by priority; other clusters ignore it. */
export const REQUIRED_SCC_ANNOTATION = "openshift.io/required-scc";
/** The SCC the agent's pods use on OpenShift: the built-in one (docs/install-openshift.md says why not our own). */
export const AGENT_SCC = "privileged";
/** The SCC the controller's and webhook's pods use on OpenShift: the default for pods without host access. */
export const RESTRICTED_SCC = "restricted-v2";

/** Ports every component serves (documented in docs/install-kubernetes.md). */
export const PORTS = { metrics: 8080, health: 8081, webhook: 9443 } as const;

/** In the image: the node binary and each component's entry file (compiled from src/<component>/main.ts). */
export const IMAGE_APP_DIR = "/app";
export const NODE_BIN = "/usr/bin/node";
export const ENTRYPOINTS = {
  cli: `${IMAGE_APP_DIR}/dist/src/cli/main.js`,
  controller: `${IMAGE_APP_DIR}/dist/src/controller/main.js`,
  agent: `${IMAGE_APP_DIR}/dist/src/agent/main.js`,
  webhook: `${IMAGE_APP_DIR}/dist/src/admission/main.js`,
} as const;

/** Where the agent sees the host's root file system (its host-root prefix). */
export const AGENT_HOST_ROOT = "/host";
/** In the image: runsc + containerd-shim-runsc-v1 the agent installs on hosts (empty unless built with a payload). */
export const AGENT_PAYLOAD_DIR = "/opt/sandbox-operator/payload";

/**
 * Runtime payload images (docs/payloads.md): the files sit under PAYLOAD_ROOT; the agent's install
 * container runs PAYLOAD_COPY_COMMAND with the new version's host directory mounted at PAYLOAD_TARGET.
 */
export const PAYLOAD_ROOT = "/payload";
export const PAYLOAD_TARGET = "/target";
export const PAYLOAD_COPY_COMMAND = ["/bin/busybox", "cp", "-a", `${PAYLOAD_ROOT}/.`, `${PAYLOAD_TARGET}/`];
/**
 * What each backend's payload must hold under PAYLOAD_ROOT. Kata's is kata-deploy's /opt/kata tree:
 * its shim, and the guest kernel and image every Kata hypervisor boots (hypervisors are per backend, optional).
 */
export const PAYLOAD_FILES = {
  gvisor: ["runsc", "containerd-shim-runsc-v1"],
  kata: ["bin/containerd-shim-kata-v2", "share/kata-containers/vmlinux.container", "share/kata-containers/kata-containers.img"],
} as const;
/** Payload files that are data, not programs (no execute bit needed): the guest kernel and image. */
export const isPayloadData = (file: string) => file.startsWith("share/");
/** On the host: one directory per installed payload version, <dir>/<backend>/<digest hex>. */
export const PAYLOADS_HOST_DIR = "/opt/sandbox-operator";

/**
 * In the image: a static busybox and the applets the verification container uses (sh, uname,
 * dmesg, head), off the image's PATH, so the agent's own image is the default verification image.
 */
export const VERIFY_TOOLS_DIR = "/usr/lib/sandbox-operator/verify";

/** An image reference pinned by digest: `repository@sha256:...`. */
export interface ImageRef {
  repository: string;
  tag: string;
  digest: string;
  /** The gVisor payload image built with the operator (deploy/image.json `gvisorPayload`): the agent's default payload. */
  gvisorPayload?: { repository: string; tag: string; digest: string };
}

export function imageReference(image: ImageRef): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(image.digest)) {
    throw new Error(`image digest "${image.digest}" is not sha256:<64 hex>: run npm run build:image to record the image's digest in deploy/image.json`);
  }
  return `${image.repository}@${image.digest}`;
}
/** The ValidatingAdmissionPolicy that limits the controller to the labels and objects it owns. */
export const CONTROLLER_SCOPE_POLICY = "sandbox-operator-controller-scope";
