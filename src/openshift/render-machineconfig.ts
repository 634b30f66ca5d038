// Pure renderers for the OpenShift MachineConfig path: the MachineConfigPool our nodes join and
// the MachineConfig (Ignition 3.x) that enables the RHCOS extension and writes our CRI-O, Kata and gVisor files.
import { createHash } from "node:crypto";

export const MCO_GROUP_VERSION = "machineconfiguration.openshift.io/v1";
/** Label on a MachineConfig naming the pool role(s) that take it. */
export const MC_ROLE_LABEL = "machineconfiguration.openshift.io/role";
/** The RHCOS extension that ships Kata Containers (QEMU) and its CRI-O wiring. */
export const SANDBOX_EXTENSION = "sandboxed-containers";
/** Role of the pool we create; nodes get `node-role.kubernetes.io/<role>` so they join it. */
export const DEFAULT_POOL_ROLE = "sandboxed";
export const MASTER_POOL = "master";
export const WORKER_ROLE = "worker";
export const DEFAULT_CRIO_DROPIN_PATH = "/etc/crio/crio.conf.d/50-sandbox-operator.conf";
/** Ignition spec version the MachineConfig uses: 3.2.0 is accepted by the MCO of OpenShift 4.8 and later. */
export const IGNITION_VERSION = "3.2.0";
export const MANAGED_BY = { "app.kubernetes.io/managed-by": "sandbox-operator" };
/** Annotation on our MachineConfig: hash of the files it writes, so tracking can tell old content from new. */
export const CONTENT_HASH_ANNOTATION = "sandboxing.dev/content-hash";

export const nodeRoleLabel = (role: string) => `node-role.kubernetes.io/${role}`;
/** Our MachineConfig's name for a pool role; the 50- prefix orders it after the base configs (00-) and before user overrides (99-). */
export const machineConfigName = (role: string) => `50-sandbox-operator-${role}`;

export interface KataFile {
  path: string;
  content: string;
}

/** What the MachineConfig writes: the CRI-O drop-in, Kata configuration and runsc.toml, as the shared node renderers (the agent's too) render them. */
export interface MachineConfigContent {
  crioDropIn: string;
  kataFiles: KataFile[];
  /** The gVisor shim's runsc.toml, when a handler runs gVisor. */
  runscConfig?: KataFile;
  /** Where the CRI-O drop-in goes; must be under /etc/crio/crio.conf.d/. */
  crioDropInPath?: string;
}

export interface IgnitionFile {
  path: string;
  mode: number;
  overwrite: boolean;
  contents: { source: string };
}

export interface IgnitionConfig {
  ignition: { version: string };
  storage: { files: IgnitionFile[] };
}

export interface MachineConfig {
  apiVersion: string;
  kind: "MachineConfig";
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: { config: IgnitionConfig; extensions: string[] };
}

export interface MachineConfigPool {
  apiVersion: string;
  kind: "MachineConfigPool";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    machineConfigSelector: { matchExpressions: Array<{ key: string; operator: "In"; values: string[] }> };
    nodeSelector: { matchLabels: Record<string, string> };
    maxUnavailable?: number | string;
  };
}

/** Input that cannot be rendered; the message names the field and what to do. */
export class RenderError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const ROLE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkRole(role: string): void {
  if (!ROLE.test(role) || role.length > 50) throw new RenderError("pool role", `"${role}" must be a DNS label of at most 50 characters, e.g. sandboxed`);
  if (role === WORKER_ROLE) throw new RenderError("pool role", "the worker pool already exists and must not be replaced; choose another role such as sandboxed");
}

/** Ignition takes file contents as a data: URL; base64 keeps every byte (TOML quotes, newlines) intact. */
export function dataUrl(content: string): string {
  return `data:text/plain;charset=utf-8;base64,${Buffer.from(content, "utf8").toString("base64")}`;
}

/** Inverse of dataUrl for the forms Ignition accepts (base64 or percent-encoded); used by tracking and tests. */
export function decodeDataUrl(source: string): string {
  const m = /^data:([^,]*),(.*)$/s.exec(source);
  if (!m) throw new RenderError("contents.source", `"${source.slice(0, 40)}" is not a data: URL`);
  return m[1]!.endsWith(";base64") ? Buffer.from(m[2]!, "base64").toString("utf8") : decodeURIComponent(m[2]!);
}

function checkPath(field: string, path: string): void {
  if (!path.startsWith("/") || path.includes("/../") || path.endsWith("/") || /\s/.test(path)) {
    throw new RenderError(field, `"${path}" must be an absolute file path without "..", spaces or a trailing slash`);
  }
  // RHCOS mounts /usr read-only (ostree); the MCO can only write under /etc and /var.
  if (!path.startsWith("/etc/") && !path.startsWith("/var/")) {
    throw new RenderError(field, `"${path}" is outside /etc and /var, which RHCOS does not let the MachineConfig write; render it under /etc`);
  }
}

/** The files our MachineConfig writes, validated and sorted by path (deterministic output). */
export function contentFiles(content: MachineConfigContent): KataFile[] {
  const crioPath = content.crioDropInPath ?? DEFAULT_CRIO_DROPIN_PATH;
  checkPath("crioDropInPath", crioPath);
  if (!crioPath.startsWith("/etc/crio/crio.conf.d/")) throw new RenderError("crioDropInPath", `"${crioPath}" must be under /etc/crio/crio.conf.d/ so CRI-O reads it as a drop-in`);
  if (!content.crioDropIn.trim()) throw new RenderError("crioDropIn", "is empty: pass the CRI-O engine's rendered drop-in");
  const files: KataFile[] = [{ path: crioPath, content: content.crioDropIn }];
  content.kataFiles.forEach((f, i) => {
    checkPath(`kataFiles[${i}].path`, f.path);
    files.push(f);
  });
  if (content.runscConfig) {
    checkPath("runscConfig.path", content.runscConfig.path);
    files.push(content.runscConfig);
  }
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new RenderError("files", `two files target ${f.path}; each path may be written once`);
    seen.add(f.path);
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** sha256 (hex, first 16) over paths and contents: changes exactly when what the nodes get changes. */
export function contentHash(content: MachineConfigContent): string {
  const h = createHash("sha256");
  for (const f of contentFiles(content)) h.update(f.path).update("\0").update(f.content).update("\0");
  h.update(SANDBOX_EXTENSION);
  return h.digest("hex").slice(0, 16);
}

export function renderIgnition(content: MachineConfigContent): IgnitionConfig {
  return {
    ignition: { version: IGNITION_VERSION },
    storage: {
      // mode 420 = 0644: CRI-O and the Kata runtime read these as root; nothing in them is secret.
      files: contentFiles(content).map((f) => ({ path: f.path, mode: 0o644, overwrite: true, contents: { source: dataUrl(f.content) } })),
    },
  };
}

/** The MachineConfig for a pool role (our own pool, or `master` on compact clusters). */
export function renderMachineConfig(role: string, content: MachineConfigContent): MachineConfig {
  if (!ROLE.test(role)) throw new RenderError("pool role", `"${role}" must be a DNS label`);
  return {
    apiVersion: MCO_GROUP_VERSION,
    kind: "MachineConfig",
    metadata: {
      name: machineConfigName(role),
      labels: { [MC_ROLE_LABEL]: role, ...MANAGED_BY },
      annotations: { [CONTENT_HASH_ANNOTATION]: contentHash(content) },
    },
    spec: { config: renderIgnition(content), extensions: [SANDBOX_EXTENSION] },
  };
}

/**
 * Our pool: nodes labelled `node-role.kubernetes.io/<role>` join it, and it renders both the
 * worker MachineConfigs and ours, so its nodes stay workers plus our files.
 */
export function renderMachineConfigPool(role: string = DEFAULT_POOL_ROLE, opts: { maxUnavailable?: number | string } = {}): MachineConfigPool {
  checkRole(role);
  const spec: MachineConfigPool["spec"] = {
    machineConfigSelector: { matchExpressions: [{ key: MC_ROLE_LABEL, operator: "In", values: [WORKER_ROLE, role] }] },
    nodeSelector: { matchLabels: { [nodeRoleLabel(role)]: "" } },
    // spec.paused is left out on purpose: admins pause pools to choose when nodes reboot, and
    // server-side apply must not take that field from them.
  };
  if (opts.maxUnavailable !== undefined) spec.maxUnavailable = opts.maxUnavailable;
  return {
    apiVersion: MCO_GROUP_VERSION,
    kind: "MachineConfigPool",
    metadata: { name: role, labels: { [`pools.operator.machineconfiguration.openshift.io/${role}`]: "", ...MANAGED_BY } },
    spec,
  };
}
