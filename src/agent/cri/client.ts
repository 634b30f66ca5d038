// A small CRI v1 client over the runtime's unix socket (@grpc/grpc-js + our runtime.proto
// subset): version/status, pod sandboxes, containers, images — what verification needs.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const HERE = dirname(fileURLToPath(import.meta.url));

/** runtime.proto sits beside this file in src/ and in the image's dist/ (build.ts RUNTIME_ASSETS); a local dist/ looks back into src/. */
export function protoPath(): string {
  const candidates = [join(HERE, "runtime.proto"), join(HERE, "..", "..", "..", "..", "src", "agent", "cri", "runtime.proto")];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`CRI proto not found (looked in ${candidates.join(", ")}); ship src/agent/cri/runtime.proto with the agent`);
  return found;
}

type Msg = Record<string, unknown>;
type Unary = (req: Msg, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Msg) => void) => void;

export interface VersionInfo {
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

export interface ContainerStatus {
  id: string;
  state: "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";
  exit_code: number;
  reason: string;
  message: string;
  log_path: string;
}

export interface PodSandboxItem {
  id: string;
  state: "SANDBOX_READY" | "SANDBOX_NOTREADY";
  runtime_handler: string;
  /** Nanoseconds since the epoch. */
  created_at: number;
  labels: Record<string, string>;
  metadata?: { name: string; namespace: string; uid: string };
}

/** The handler in a verbose PodSandboxStatus `info` JSON: CRI-O's spec annotation, or containerd's runtimeHandler. */
export function runtimeHandlerFromInfo(info: string | undefined): string {
  if (!info) return "";
  try {
    const j = JSON.parse(info) as { runtimeHandler?: string; runtimeSpec?: { annotations?: Record<string, string> } };
    return j.runtimeSpec?.annotations?.["io.kubernetes.cri-o.RuntimeHandler"] ?? j.runtimeHandler ?? "";
  } catch {
    return "";
  }
}

/** A CRI error with the gRPC code name and the runtime's own text (what status reports). */
export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: string,
    readonly details: string,
  ) {
    super(`CRI ${method}: ${code}: ${details}`);
  }
}

let definition: grpc.GrpcObject | undefined;
function loadDefinition(): grpc.GrpcObject {
  definition ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(protoPath(), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
  );
  return definition;
}

export class CriClient {
  private readonly runtime: grpc.Client;
  private readonly images: grpc.Client;

  /** `socket` is a filesystem path as this process sees it. */
  constructor(
    readonly socket: string,
    private readonly timeoutMs = 30_000,
  ) {
    const v1 = (loadDefinition().runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
    const Runtime = v1.RuntimeService as grpc.ServiceClientConstructor;
    const Images = v1.ImageService as grpc.ServiceClientConstructor;
    const target = `unix://${socket}`;
    // No retries/backoff inside grpc: callers decide, and a dead socket must fail fast.
    const opts = { "grpc.enable_retries": 0, "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 1000 };
    this.runtime = new Runtime(target, grpc.credentials.createInsecure(), opts);
    this.images = new Images(target, grpc.credentials.createInsecure(), opts);
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }

  private call<T>(client: grpc.Client, method: string, req: Msg, timeoutMs = this.timeoutMs): Promise<T> {
    const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
    return new Promise<T>((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new CriError(method, grpc.status[err.code] ?? String(err.code), err.details || err.message));
        else resolve(res as T);
      });
    });
  }

  version(timeoutMs?: number): Promise<VersionInfo> {
    return this.call(this.runtime, "Version", { version: "v1" }, timeoutMs);
  }

  /** Runtime conditions (RuntimeReady, NetworkReady) and, on newer runtimes, the handlers it knows. */
  status(timeoutMs?: number): Promise<{ status: { conditions: Array<{ type: string; status: boolean; reason: string; message: string }> }; runtime_handlers: Array<{ name: string }> }> {
    return this.call(this.runtime, "Status", { verbose: false }, timeoutMs);
  }

  /** Status with the runtime's own details (containerd: `info.config`, its CRI config as JSON). */
  statusVerbose(timeoutMs?: number): Promise<{ runtime_handlers?: Array<{ name: string }>; info?: Record<string, string> }> {
    return this.call(this.runtime, "Status", { verbose: true }, timeoutMs);
  }

  async runPodSandbox(config: Msg, handler: string): Promise<string> {
    const r = await this.call<{ pod_sandbox_id: string }>(this.runtime, "RunPodSandbox", { config, runtime_handler: handler }, 120_000);
    return r.pod_sandbox_id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, "StopPodSandbox", { pod_sandbox_id: id }, 60_000);
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, "RemovePodSandbox", { pod_sandbox_id: id }, 60_000);
  }

  async listPodSandbox(labelSelector: Record<string, string> = {}): Promise<PodSandboxItem[]> {
    const r = await this.call<{ items: PodSandboxItem[] }>(this.runtime, "ListPodSandbox", { filter: { label_selector: labelSelector } });
    return r.items;
  }

  /**
   * The handler a sandbox runs under. ListPodSandbox carries it on containerd; CRI-O leaves it
   * empty there and in PodSandboxStatus, and keeps it only as the infra spec's
   * io.kubernetes.cri-o.RuntimeHandler annotation, which the verbose status shows. "" = the default runtime.
   */
  async sandboxHandler(p: Pick<PodSandboxItem, "id" | "runtime_handler">): Promise<string> {
    if (p.runtime_handler) return p.runtime_handler;
    try {
      const r = await this.call<{ info?: Record<string, string> }>(this.runtime, "PodSandboxStatus", { pod_sandbox_id: p.id, verbose: true });
      return runtimeHandlerFromInfo(r.info?.info);
    } catch (e) {
      // Removed since it was listed: it runs nothing.
      if (e instanceof CriError && e.code === "NOT_FOUND") return "";
      throw e;
    }
  }

  async createContainer(podId: string, config: Msg, sandboxConfig: Msg): Promise<string> {
    const r = await this.call<{ container_id: string }>(this.runtime, "CreateContainer", { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig }, 120_000);
    return r.container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call(this.runtime, "StartContainer", { container_id: id }, 120_000);
  }

  async stopContainer(id: string, timeoutSeconds = 0): Promise<void> {
    await this.call(this.runtime, "StopContainer", { container_id: id, timeout: timeoutSeconds }, 60_000);
  }

  async removeContainer(id: string): Promise<void> {
    await this.call(this.runtime, "RemoveContainer", { container_id: id });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const r = await this.call<{ status: ContainerStatus }>(this.runtime, "ContainerStatus", { container_id: id, verbose: false });
    return r.status;
  }

  /** The image's id, or null when the runtime does not have it. */
  async imageStatus(image: string): Promise<string | null> {
    const r = await this.call<{ image: { id: string } | null }>(this.images, "ImageStatus", { image: { image }, verbose: false });
    return r.image?.id || null;
  }

  async pullImage(image: string): Promise<string> {
    const r = await this.call<{ image_ref: string }>(this.images, "PullImage", { image: { image } }, 300_000);
    return r.image_ref;
  }
}

/**
 * Waits until the runtime answers Version and reports RuntimeReady. One client (one channel) for
 * every attempt, closed once at the end: a client closed while its connection is still being set
 * up leaves a half-open connection behind, and CRI-O (cmux) then waits for it forever when it is
 * next stopped.
 */
export async function waitCriReady(socket: string, timeoutMs = 30_000): Promise<VersionInfo> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  const c = new CriClient(socket, 2_000);
  try {
    while (Date.now() < deadline) {
      try {
        const v = await c.version(2_000);
        const st = await c.status(2_000);
        const ready = st.status?.conditions?.find((x) => x.type === "RuntimeReady");
        if (ready?.status) return v;
        last = `RuntimeReady=${ready?.status ?? "missing"} ${ready?.reason ?? ""} ${ready?.message ?? ""}`.trim();
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  } finally {
    c.close();
  }
  throw new Error(`CRI runtime at ${socket} not ready after ${timeoutMs} ms: ${last}`);
}
