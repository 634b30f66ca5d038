// A small Kubernetes REST client over node:https: typed paths for the kinds we use, server-side
// apply with one field manager, status patches, watches, and a request counter for benchmarks.
// Auth comes from the KubeConfig on every request, so rotated service-account tokens are used.
import { Agent, request, type RequestOptions } from "node:https";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { resourceFor, type ResourceRef } from "./resources.js";
import { freshCopy } from "./kubeconfig.js";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
    [k: string]: unknown;
  };
}

/** Any object we send: typed metadata, free-form body. */
export type AnyObject = KubeObject & Record<string, unknown>;

export interface ObjectList<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const isNotFound = (e: unknown) => e instanceof ApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof ApiError && e.status === 409;
export const isGone = (e: unknown) => e instanceof ApiError && e.status === 410;

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface ClientOptions {
  fieldManager?: string;
  userAgent?: string;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
}

export interface Raw {
  status: number;
  body: string;
  /** Response headers, e.g. `warning` (admission warnings, deprecations): read them with warningsOf(). */
  headers: IncomingHttpHeaders;
}

/** The texts of the apiserver's `Warning: 299 - "<text>"` response headers (RFC 7234 warn-text). */
export function warningsOf(headers: IncomingHttpHeaders): string[] {
  const raw = headers.warning;
  if (!raw) return [];
  const out: string[] = [];
  // Several warnings may share one header line, comma-separated; each text is a quoted-string.
  const re = /\d{3} \S+ "((?:[^"\\]|\\.)*)"/g;
  for (const line of Array.isArray(raw) ? raw : [raw]) {
    for (const m of line.matchAll(re)) out.push(m[1]!.replace(/\\(.)/g, "$1"));
  }
  return out;
}

export class KubeClient {
  readonly fieldManager: string;
  /** Requests sent, by verb; read by benchmarks and metrics. */
  readonly requestCounts = new Map<string, number>();
  private readonly server: URL;
  private readonly base: RequestOptions;
  private readonly agent: Agent | HttpAgent;
  /** The Authorization header as the KubeConfig last gave it, and when (see authHeaders). */
  private auth: { headers: Record<string, string>; at: number } | undefined;

  private constructor(
    server: string,
    base: RequestOptions,
    opts: ClientOptions,
    private kc: KubeConfig,
  ) {
    this.server = new URL(server);
    this.fieldManager = opts.fieldManager ?? "sandbox-operator";
    this.agent = this.server.protocol === "https:" ? new Agent({ keepAlive: true, maxSockets: 32, ...(base as object) }) : new HttpAgent({ keepAlive: true, maxSockets: 32 });
    const { Authorization: _auth, ...headers } = (base.headers ?? {}) as Record<string, string>;
    this.base = { ...base, headers: { ...headers, "User-Agent": opts.userAgent ?? this.fieldManager } };
  }

  /**
   * TLS settings come from `kc` once; the bearer token is asked of `kc` per request (client-node's
   * tokenFile and exec providers re-read and refresh it), so use loadKubeConfig() for token files.
   */
  static async fromKubeConfig(kc: KubeConfig, opts: ClientOptions = {}): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster: set a current-context");
    const base: RequestOptions = {};
    await kc.applyToHTTPSOptions(base);
    delete (base as { agent?: unknown }).agent;
    return new KubeClient(cluster.server, base, opts, kc);
  }

  /**
   * The Authorization header for the next request. Asking the KubeConfig costs ~60 us (it rebuilds
   * TLS options too), so its answer is kept for a second; client-node's token-file provider itself
   * re-reads the file each minute. `renew` (after a 401) reads the token file now: a kubelet
   * rotates a projected token before the old one expires, but a revoked token must not linger.
   */
  private async authHeaders(renew = false): Promise<Record<string, string>> {
    if (renew) this.kc = freshCopy(this.kc);
    if (!renew && this.auth && Date.now() - this.auth.at < 1_000) return this.auth.headers;
    const o: RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(o);
    const value = (o.headers as Record<string, string | undefined>).Authorization;
    // A token file written with `echo` ends in a newline, which no HTTP header may carry.
    this.auth = { headers: value ? { Authorization: value.trim() } : {}, at: Date.now() };
    return this.auth.headers;
  }

  get totalRequests(): number {
    let n = 0;
    for (const v of this.requestCounts.values()) n += v;
    return n;
  }

  close(): void {
    this.agent.destroy();
  }

  private count(verb: string) {
    this.requestCounts.set(verb, (this.requestCounts.get(verb) ?? 0) + 1);
  }

  /** Sends the request head; a 401 is answered once more with the token read again (a rotated file). */
  private async open(method: string, path: string, headers: Record<string, string>, timeoutMs: number, payload?: string): Promise<IncomingMessage> {
    let response = await this.send(method, path, { ...headers, ...(await this.authHeaders()) }, timeoutMs, payload);
    if (response.statusCode === 401 && this.hasToken()) {
      response.resume();
      response = await this.send(method, path, { ...headers, ...(await this.authHeaders(true)) }, timeoutMs, payload);
    }
    return response;
  }

  private hasToken(): boolean {
    return Boolean(this.auth?.headers.Authorization);
  }

  private send(method: string, path: string, headers: Record<string, string>, timeoutMs: number, payload: string | undefined): Promise<IncomingMessage> {
    const url = new URL(path, this.server);
    const opts: RequestOptions = {
      ...this.base,
      agent: this.agent,
      method,
      hostname: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      headers: { ...(this.base.headers as Record<string, string>), Accept: "application/json", ...headers },
      timeout: timeoutMs,
    };
    const send = this.server.protocol === "https:" ? request : httpRequest;
    let resolveRes!: (r: IncomingMessage) => void;
    let rejectRes!: (e: Error) => void;
    const res = new Promise<IncomingMessage>((resolve, reject) => {
      resolveRes = resolve;
      rejectRes = reject;
    });
    const req = send(opts, resolveRes);
    req.on("error", rejectRes);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)));
    req.end(payload);
    return res;
  }

  async raw(method: string, path: string, body?: unknown, contentType = "application/json", timeoutMs = 30_000): Promise<Raw> {
    this.count(method);
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const headers: Record<string, string> = payload === undefined ? {} : { "Content-Type": contentType, "Content-Length": String(Buffer.byteLength(payload)) };
    const response = await this.open(method, path, headers, timeoutMs, payload);
    let text = "";
    for await (const chunk of response) text += chunk;
    return { status: response.statusCode ?? 0, body: text, headers: response.headers };
  }

  async call<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const r = await this.raw(method, path, body, contentType);
    if (r.status >= 200 && r.status < 300) return (r.body ? JSON.parse(r.body) : {}) as T;
    let status: { reason?: string; message?: string; details?: unknown };
    try {
      status = JSON.parse(r.body);
    } catch {
      status = { message: r.body };
    }
    throw new ApiError(r.status, status.reason ?? String(r.status), `${method} ${path}: ${status.message ?? r.body}`, status.details);
  }

  path(ref: ResourceRef, name?: string, namespace?: string, subresource?: string, query?: Record<string, string | number | boolean | undefined>): string {
    const prefix = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
    const ns = ref.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
    let p = `${prefix}${ns}/${ref.plural}`;
    if (name) p += `/${encodeURIComponent(name)}`;
    if (subresource) p += `/${subresource}`;
    const q = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== "");
    if (q.length) p += "?" + q.map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`).join("&");
    return p;
  }

  async get<T extends KubeObject>(kind: string, name: string, namespace?: string): Promise<T> {
    return this.call<T>("GET", this.path(resourceFor(kind), name, namespace));
  }

  async getOrNull<T extends KubeObject>(kind: string, name: string, namespace?: string): Promise<T | null> {
    try {
      return await this.get<T>(kind, name, namespace);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Lists every page. */
  async list<T extends KubeObject>(kind: string, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const ref = resourceFor(kind);
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.call<ObjectList<T>>("GET", this.path(ref, undefined, opts.namespace, undefined, {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit ?? 500,
        continue: cont,
      }));
      for (const item of page.items) {
        item.apiVersion ??= ref.group ? `${ref.group}/${ref.version}` : ref.version;
        item.kind ??= kind;
      }
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    return { items, metadata: { resourceVersion } };
  }

  async create<T extends KubeObject>(obj: T, opts: { dryRun?: boolean } = {}): Promise<T> {
    const ref = resourceFor(obj.kind!);
    return this.call<T>("POST", this.path(ref, undefined, obj.metadata.namespace, undefined, { fieldManager: this.fieldManager, dryRun: opts.dryRun ? "All" : undefined }), obj);
  }

  async replace<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    const ref = resourceFor(obj.kind!);
    return this.call<T>("PUT", this.path(ref, obj.metadata.name, obj.metadata.namespace, subresource, { fieldManager: this.fieldManager }), obj);
  }

  /** Server-side apply: `obj` holds exactly the fields this manager owns. */
  async apply<T extends KubeObject>(obj: AnyObject | KubeObject, opts: { subresource?: string; force?: boolean; dryRun?: boolean } = {}): Promise<T> {
    const ref = resourceFor(obj.kind!);
    const path = this.path(ref, obj.metadata.name, obj.metadata.namespace, opts.subresource, {
      fieldManager: this.fieldManager,
      force: opts.force ?? true,
      dryRun: opts.dryRun ? "All" : undefined,
    });
    return this.call<T>("PATCH", path, obj, "application/apply-patch+yaml");
  }

  async mergePatch<T extends KubeObject>(kind: string, name: string, patch: unknown, opts: { namespace?: string; subresource?: string } = {}): Promise<T> {
    const path = this.path(resourceFor(kind), name, opts.namespace, opts.subresource, { fieldManager: this.fieldManager });
    return this.call<T>("PATCH", path, patch, "application/merge-patch+json");
  }

  async jsonPatch<T extends KubeObject>(kind: string, name: string, ops: unknown[], opts: { namespace?: string; subresource?: string } = {}): Promise<T> {
    const path = this.path(resourceFor(kind), name, opts.namespace, opts.subresource, { fieldManager: this.fieldManager });
    return this.call<T>("PATCH", path, ops, "application/json-patch+json");
  }

  /** Deletes; a missing object is not an error. Returns false when it was already gone. */
  async delete(kind: string, name: string, namespace?: string, opts: { propagation?: "Foreground" | "Background" | "Orphan"; preconditionUid?: string } = {}): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.propagation) body.propagationPolicy = opts.propagation;
    if (opts.preconditionUid) body.preconditions = { uid: opts.preconditionUid };
    try {
      await this.call("DELETE", this.path(resourceFor(kind), name, namespace), body);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Opens a watch from resourceVersion; calls onEvent for each event until the server closes
   * the stream, the signal aborts or the stream stays silent past idleMs (then rejects).
   */
  async watch<T extends KubeObject>(
    kind: string,
    opts: ListOptions & { resourceVersion: string; timeoutSeconds?: number; idleMs?: number; signal?: AbortSignal; onOpen?: () => void },
    onEvent: (e: WatchEvent<T>) => void,
  ): Promise<void> {
    const ref = resourceFor(kind);
    const path = this.path(ref, undefined, opts.namespace, undefined, {
      watch: 1,
      allowWatchBookmarks: true,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds ?? 300,
    });
    this.count("WATCH");
    const response = await this.open("GET", path, {}, 0);
    if ((response.statusCode ?? 0) >= 300) {
      let text = "";
      for await (const c of response) text += c;
      throw new ApiError(response.statusCode ?? 0, "WatchFailed", `watch ${kind}: ${text}`);
    }
    opts.onOpen?.();
    const idleMs = opts.idleMs ?? ((opts.timeoutSeconds ?? 300) + 30) * 1000;
    await new Promise<void>((resolve, reject) => {
      let buf = "";
      let idle: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          response.destroy();
          reject(new Error(`watch ${kind}: no data for ${idleMs} ms`));
        }, idleMs);
      };
      const finish = (err?: Error) => {
        clearTimeout(idle);
        opts.signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => {
        response.destroy();
        finish();
      };
      opts.signal?.addEventListener("abort", onAbort);
      if (opts.signal?.aborted) return onAbort();
      arm();
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        arm();
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const ev = JSON.parse(line) as WatchEvent<T>;
          if (ev.type === "ERROR") {
            const st = ev.object as unknown as { code?: number; reason?: string; message?: string };
            response.destroy();
            return finish(new ApiError(st.code ?? 500, st.reason ?? "WatchError", `watch ${kind}: ${st.message ?? "error"}`));
          }
          try {
            onEvent(ev);
          } catch (e) {
            response.destroy();
            return finish(e as Error);
          }
        }
      });
      response.on("end", () => finish());
      response.on("error", (e) => finish(e));
      response.on("close", () => finish());
    });
  }
}
