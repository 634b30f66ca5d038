// Installs runtime payload versions (docs/payloads.md, ADR 0006): pulls the payload image through
// CRI, copies its files out with a short-lived container, renames them into place, and removes
// an old version only when no running sandbox of its handlers can still use it (checked via CRI).
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { SandboxNodeSpec } from "../api/sandboxnode.js";
import type { HostInventory } from "./probe/probe.js";
import { isPayloadData, PAYLOAD_COPY_COMMAND, PAYLOAD_FILES, PAYLOAD_TARGET, PAYLOADS_HOST_DIR } from "../manifests/names.js";
import { isKata } from "../render/node/layout.js";
import { CriError, type CriClient, type PodSandboxItem } from "./cri/client.js";
import { atomicWrite, readOrNull, removeFile } from "./fsutil.js";
import { removeEmptyDirs } from "./txn.js";
import { parseCriLog } from "./verify.js";
import { readySandboxes } from "./handlers-in-use.js";

export type PayloadBackend = keyof typeof PAYLOAD_FILES;
export interface PayloadSpec {
  backend: PayloadBackend;
  /** repository@sha256:<hex>, pinned by digest. */
  image: string;
  imagePullPolicy?: "IfNotPresent" | "Never";
}

/** A payload could not be pulled or installed (reason PayloadInstallFailed); `incomplete`: the image lacks files (no retry helps). */
export class PayloadError extends Error {
  incomplete?: boolean;
}

const INSTALL_ATTEMPTS = 4;

export const PAYLOAD_LABEL = "sandboxing.dev/payload-install";
/** Where the payload copy container writes its log (apply.ts prunes it when emptied). */
export const PAYLOAD_LOG_DIR = "/var/log/sandbox-operator/payload";
const LOG_DIR = PAYLOAD_LOG_DIR;

/** The version key of a pinned reference: the digest's hex. */
export function payloadVersion(image: string): string {
  const m = /@sha256:([a-f0-9]{64})$/.exec(image);
  if (!m) throw new PayloadError(`payload image "${image}" is not pinned by digest: write it as <repository>@sha256:<64 hex> (SandboxConfig spec.payloads, or the agent's --gvisor-payload)`);
  return m[1]!;
}

/** Host path of an installed version: /opt/sandbox-operator/<backend>/<digest hex>. */
export const payloadHostDir = (backend: PayloadBackend, version: string) => `${PAYLOADS_HOST_DIR}/${backend}/${version}`;

export interface VersionRecord {
  backend: PayloadBackend;
  version: string;
  image: string;
  installedAt: string;
  /** The runtime config points at this version since then (the restart that switched to it had finished). */
  currentSince?: string;
  /** The config stopped pointing here at this time: sandboxes created before it may still run these binaries. */
  retiredAt?: string;
}
interface PayloadState {
  versions: VersionRecord[];
  /** Every handler that ever ran a backend's payload: only its sandboxes can hold a version. */
  handlers: Partial<Record<PayloadBackend, string[]>>;
}

export interface PayloadStoreOptions {
  hostRoot: string;
  /** Host path -> path as the CRI runtime sees it (differs under a test host root). */
  runtimePath: (hostPath: string) => string;
  /** The agent's state directory (this process's view). */
  stateDir: string;
  log: Logger;
}

type SandboxConfigLike = Record<string, unknown> & { linux: Record<string, unknown> };

/** Where the copy sandbox goes on a systemd-cgroup node: outside kubepods, so no kubelet accounting claims it. */
const SYSTEMD_CGROUP_PARENT = "system.slice";

export class PayloadStore {
  constructor(private readonly o: PayloadStoreOptions) {}

  private local = (hostPath: string) => join(this.o.hostRoot, hostPath);
  private get statePath() {
    return join(this.o.stateDir, "payloads.json");
  }

  state(): PayloadState {
    const b = readOrNull(this.statePath);
    return b ? (JSON.parse(b.toString()) as PayloadState) : { versions: [], handlers: {} };
  }

  private save(s: PayloadState): void {
    // No version installed: no sandbox can hold one, so the handler list means nothing (and a revert leaves no file).
    if (s.versions.length === 0) removeFile(this.statePath);
    else atomicWrite(this.statePath, JSON.stringify(s, null, 2));
  }

  /** Whether every file of the backend's payload is a file in the version dir, executable unless it is data (Kata's kernel and image). */
  private complete(backend: PayloadBackend, dir: string): boolean {
    return PAYLOAD_FILES[backend].every((f) => {
      const st = statSync(join(dir, f), { throwIfNoEntry: false });
      return !!st && st.isFile() && (isPayloadData(f) || (st.mode & 0o111) !== 0);
    });
  }

  /** Whether a version dir (host path) is on disk. */
  has(hostDir: string): boolean {
    return existsSync(this.local(hostDir));
  }

  /** The version the runtime config points at (since its restart), if any. */
  current(backend: PayloadBackend): VersionRecord | undefined {
    return this.state().versions.find((v) => v.backend === backend && v.currentSince && !v.retiredAt);
  }

  /** Installs the version (idempotent: a complete version dir is kept as it is); returns its host dir. */
  async ensure(cri: CriClient, spec: PayloadSpec): Promise<string> {
    const version = payloadVersion(spec.image);
    const hostDir = payloadHostDir(spec.backend, version);
    if (!existsSync(this.local(hostDir)) || !this.complete(spec.backend, this.local(hostDir))) {
      await this.pull(cri, spec);
      // A kubelet kills CRI sandboxes it did not make (ADR 0004) and may catch the copy: each try starts clean.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.install(cri, spec, hostDir);
          break;
        } catch (e) {
          if (attempt >= INSTALL_ATTEMPTS || (e as PayloadError).incomplete) throw e;
          this.o.log.warn({ backend: spec.backend, attempt, err: (e as Error).message }, "payload copy failed; trying again");
        }
      }
    }
    const s = this.state();
    if (!s.versions.some((v) => v.backend === spec.backend && v.version === version)) {
      s.versions.push({ backend: spec.backend, version, image: spec.image, installedAt: new Date().toISOString() });
      this.save(s);
    }
    return hostDir;
  }

  private async pull(cri: CriClient, spec: PayloadSpec): Promise<void> {
    if (await cri.imageStatus(spec.image)) return;
    if (spec.imagePullPolicy === "Never") throw new PayloadError(`the ${spec.backend} payload image ${spec.image} is not on the node and its imagePullPolicy is Never: load it onto the node, or allow pulls`);
    this.o.log.info({ backend: spec.backend, image: spec.image }, "pulling the payload image");
    try {
      await cri.pullImage(spec.image);
    } catch (e) {
      throw new PayloadError(`the node cannot pull the ${spec.backend} payload image ${spec.image} (${(e as Error).message}); mirror it where this node pulls from (docs/payloads.md), or set spec.payloads.${spec.backend}.image in the SandboxConfig`);
    }
  }

  /** Copies the image's files into a fresh temp dir beside the version dir, checks them, renames it into place. */
  private async install(cri: CriClient, spec: PayloadSpec, hostDir: string): Promise<void> {
    const started = Date.now();
    const uid = randomBytes(6).toString("hex");
    const incoming = `${PAYLOADS_HOST_DIR}/${spec.backend}/.incoming-${uid}`;
    mkdirSync(this.local(incoming), { recursive: true, mode: 0o755 });
    try {
      await this.copyOut(cri, spec, incoming, uid);
      if (!this.complete(spec.backend, this.local(incoming))) {
        const e = new PayloadError(`the ${spec.backend} payload image ${spec.image} lacks ${PAYLOAD_FILES[spec.backend].join(" or ")} under /payload (docs/payloads.md says what a payload image holds)`);
        e.incomplete = true;
        throw e;
      }
      // An earlier incomplete copy (a crash before the rename cannot leave one; a hand edit could).
      rmSync(this.local(hostDir), { recursive: true, force: true });
      renameSync(this.local(incoming), this.local(hostDir));
      this.o.log.info({ backend: spec.backend, image: spec.image, dir: hostDir, ms: Date.now() - started }, "installed payload version");
    } finally {
      rmSync(this.local(incoming), { recursive: true, force: true });
    }
  }

  /** The copy sandbox's cgroup parent: none (cgroupfs driver) until the runtime says it uses systemd's. */
  private cgroupParent = "";

  /** RunPodSandbox for the copy; a runtime on the systemd cgroup driver wants a slice as parent (as the kubelet gives). */
  private async runCopySandbox(cri: CriClient, config: SandboxConfigLike): Promise<string> {
    try {
      return await cri.runPodSandbox(this.withCgroupParent(config), "");
    } catch (e) {
      if (this.cgroupParent || !(e instanceof CriError) || !/cgroupsPath to be of format "slice:prefix:name"/.test(e.message)) throw e;
      this.cgroupParent = SYSTEMD_CGROUP_PARENT;
      return cri.runPodSandbox(this.withCgroupParent(config), "");
    }
  }

  /** The sandbox config with the cgroup parent in use: RunPodSandbox and the container's CreateContainer take the same. */
  private withCgroupParent<T extends SandboxConfigLike>(config: T): T {
    return { ...config, linux: { ...config.linux, cgroup_parent: this.cgroupParent } };
  }

  private async copyOut(cri: CriClient, spec: PayloadSpec, incoming: string, uid: string): Promise<void> {
    const logLocal = this.local(join(LOG_DIR, uid));
    mkdirSync(logLocal, { recursive: true });
    const sandboxConfig = {
      metadata: { name: `payload-${spec.backend}-${uid}`, uid, namespace: "sandbox-operator-payload", attempt: 0 },
      hostname: "",
      log_directory: this.o.runtimePath(join(LOG_DIR, uid)),
      labels: { [PAYLOAD_LABEL]: "true" },
      linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } },
    };
    let podId: string | undefined;
    try {
      // The runtime's default handler (runc): the payload is not trusted to run, only to be copied.
      podId = await this.runCopySandbox(cri, sandboxConfig);
      const cid = await cri.createContainer(
        podId,
        {
          metadata: { name: "install", attempt: 0 },
          image: { image: spec.image, user_specified_image: spec.image },
          command: PAYLOAD_COPY_COMMAND,
          log_path: "install.log",
          labels: { [PAYLOAD_LABEL]: "true" },
          // The sandbox's namespaces (CRI-O refuses a pod-level PID namespace the sandbox lacks).
          linux: { security_context: { namespace_options: sandboxConfig.linux.security_context.namespace_options } },
          mounts: [{ container_path: PAYLOAD_TARGET, host_path: this.o.runtimePath(incoming), readonly: false, selinux_relabel: false }],
        },
        // The container's cgroup follows the sandbox config it is created with: the same parent.
        this.withCgroupParent(sandboxConfig),
      );
      await cri.startContainer(cid);
      const deadline = Date.now() + 120_000;
      for (;;) {
        const st = await cri.containerStatus(cid);
        if (st.state === "CONTAINER_EXITED") {
          if (st.exit_code !== 0) throw new PayloadError(`copying the ${spec.backend} payload out of ${spec.image} failed (exit ${st.exit_code}): ${parseCriLog(readText(join(logLocal, "install.log"))).join(" | ").slice(0, 500)}`);
          return;
        }
        if (Date.now() > deadline) throw new PayloadError(`copying the ${spec.backend} payload out of ${spec.image} did not finish within 120 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (e) {
      if (e instanceof PayloadError) throw e;
      throw new PayloadError(`installing the ${spec.backend} payload ${spec.image} failed: ${e instanceof CriError ? e.message : (e as Error).message}`);
    } finally {
      if (podId) {
        await cri.stopPodSandbox(podId).catch(() => undefined);
        await cri.removePodSandbox(podId).catch(() => undefined);
      }
      rmSync(logLocal, { recursive: true, force: true });
    }
  }

  /** The config now points at `version` (its restart done) for these handlers: every other version of the backend is retired now. */
  switched(backend: PayloadBackend, version: string | undefined, handlers: readonly string[]): void {
    const s = this.state();
    const now = new Date().toISOString();
    for (const v of s.versions.filter((x) => x.backend === backend)) {
      if (v.version === version) {
        v.currentSince ??= now;
        delete v.retiredAt;
      } else if (!v.retiredAt) v.retiredAt = now;
    }
    s.handlers[backend] = [...new Set([...(s.handlers[backend] ?? []), ...handlers])].sort();
    this.save(s);
  }

  /** After an uninstall's restart: no config points at any version any more. */
  retireAll(): void {
    const s = this.state();
    const now = new Date().toISOString();
    for (const v of s.versions) v.retiredAt ??= now;
    this.save(s);
  }

  /**
   * Removes retired versions no ready sandbox can use: one of the backend's handlers, created before
   * the version was retired. Versions never switched to (a failed apply) count as retired now.
   * Returns what is kept because a sandbox still runs on it, for the log and the status message.
   */
  async collect(cri: CriClient): Promise<{ removed: string[]; inUse: string[] }> {
    const s = this.state();
    const now = new Date().toISOString();
    // Asked of the runtime only once a retired version needs it.
    let sandboxes: PodSandboxItem[] | undefined;
    const removed: string[] = [];
    const inUse: string[] = [];
    const keep: VersionRecord[] = [];
    for (const v of s.versions) {
      if (!v.retiredAt && v.currentSince) {
        keep.push(v);
        continue;
      }
      v.retiredAt ??= now;
      const cutoff = Date.parse(v.retiredAt) * 1e6;
      const handlers = new Set(s.handlers[v.backend] ?? []);
      const users = (sandboxes ??= await readySandboxes(cri)).filter((p) => handlers.has(p.runtime_handler) && Number(p.created_at) <= cutoff);
      const dir = payloadHostDir(v.backend, v.version);
      if (users.length) {
        inUse.push(`${dir} (used by sandbox ${users.map((p) => p.metadata?.namespace ? `${p.metadata.namespace}/${p.metadata.name}` : p.id).join(", ")})`);
        keep.push(v);
        continue;
      }
      rmSync(this.local(dir), { recursive: true, force: true });
      removed.push(dir);
    }
    if (removed.length || keep.length !== s.versions.length || s.versions.some((v) => v.retiredAt === now)) this.save({ ...s, versions: keep });
    // The backend's directory and ours under /opt go with their last version (nothing of ours is left empty).
    if (removed.length) removeEmptyDirs([...new Set(s.versions.map((v) => this.local(`${PAYLOADS_HOST_DIR}/${v.backend}`))), this.local(PAYLOADS_HOST_DIR)]);
    if (removed.length) this.o.log.info({ removed }, "removed payload versions no sandbox uses");
    if (inUse.length) this.o.log.info({ inUse }, "keeping retired payload versions while sandboxes use them");
    return { removed, inUse };
  }

  /** Versions this agent installed that are still on disk (host paths). */
  installed(): string[] {
    return this.state().versions.map((v) => payloadHostDir(v.backend, v.version));
  }
}

/** The gVisor payload this desired state installs: spec.payloads.gvisor, else the agent's default; none without a gVisor handler. */
export function gvisorPayloadFor(desired: NonNullable<SandboxNodeSpec["desired"]>, agentDefault: string | undefined): PayloadSpec | undefined {
  if (!desired.handlers.some((h) => h.backend === "gvisor")) return undefined;
  const p = desired.payloads?.gvisor;
  if (p) return { backend: "gvisor", image: p.image, ...(p.imagePullPolicy ? { imagePullPolicy: p.imagePullPolicy } : {}) };
  return agentDefault ? { backend: "gvisor", image: agentDefault } : undefined;
}

/** The Kata payload this desired state installs: spec.payloads.kata (the controller sends it only while a Kata backend is allowed); no default. */
export function kataPayloadFor(desired: NonNullable<SandboxNodeSpec["desired"]>): PayloadSpec | undefined {
  const p = desired.payloads?.kata;
  return p ? { backend: "kata", image: p.image, ...(p.imagePullPolicy ? { imagePullPolicy: p.imagePullPolicy } : {}) } : undefined;
}

/** Handler names of desired whose sandboxes run on this backend's payload. */
export const handlersOf = (desired: NonNullable<SandboxNodeSpec["desired"]>, backend: PayloadBackend) =>
  desired.handlers.filter((h) => (backend === "kata" ? isKata(h.backend) : h.backend === backend)).map((h) => h.name);

/**
 * The inventory with a backend's files taken from an installed version dir (host path): gVisor's
 * two binaries instead of the host's or --payload-dir's; for Kata the dir is the whole /opt/kata tree.
 */
export function withPayloadLayout(inv: HostInventory, backend: PayloadBackend, hostDir: string): HostInventory {
  if (backend === "kata") return { ...inv, layout: { ...inv.layout, kataDir: hostDir, kataShim: `${hostDir}/${PAYLOAD_FILES.kata[0]}` } };
  return { ...inv, shipsGvisor: false, layout: { ...inv.layout, runsc: `${hostDir}/runsc`, gvisorShim: `${hostDir}/containerd-shim-runsc-v1` } };
}

function readText(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}
