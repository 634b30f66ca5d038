// A list+watch cache for one kind: lists, then watches from the list's resourceVersion;
// restarts with backoff on any error (410 Gone means relist), treats a watch that stays silent
// past idleMs as dead, relists periodically only if asked. Handlers get the key, never the event.
import { isGone, type KubeClient, type KubeObject, type ListOptions } from "./client.js";
import { logger } from "../telemetry/logger.js";

export interface InformerOptions<T = KubeObject> extends Pick<ListOptions, "labelSelector" | "fieldSelector" | "namespace"> {
  /**
   * Full relist this often even when the watch is healthy; 0 or unset: never (a watch that ends
   * is reopened from the last resourceVersion; only an error or 410 Gone relists).
   */
  resyncMs?: number;
  /**
   * Applied to every object before it is cached (list, watch, upsert): keep only the fields the
   * owner reads, so the cache of thousands of objects stays small (e.g. drop managedFields).
   */
  transform?: (obj: T) => T;
  /** Server-side watch timeout; the watch is reopened after it (default 240 s). */
  watchTimeoutSeconds?: number;
  /** A watch with no event or bookmark for this long is considered dead (default watch timeout + 30 s). */
  idleMs?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

export type Handler<T> = (obj: T, old: T | undefined, deleted: boolean) => void;

export const keyOf = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

/** etcd resource versions are integers; compare as such (only ever used to ignore stale copies). */
function newer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return true;
  try {
    return BigInt(a) >= BigInt(b);
  } catch {
    return true;
  }
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: Handler<T>[] = [];
  private synced = false;
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private syncWaiters: Array<() => void> = [];
  private readonly log;
  /** Counts of list/watch restarts, read by metrics. */
  restarts = 0;
  lastEventAt = 0;

  constructor(
    private readonly client: KubeClient,
    readonly kind: string,
    private readonly opts: InformerOptions<T> = {},
  ) {
    this.log = logger("informer", { kind, selector: opts.labelSelector });
  }

  on(handler: Handler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  /**
   * Puts an object we just wrote (the apiserver's answer) into the cache so the next reconcile
   * does not act on the copy from before our own write; older copies never replace newer ones.
   */
  upsert(written: T): void {
    const obj = this.transform(written);
    const key = keyOf(obj);
    const old = this.cache.get(key);
    if (old && !newer(obj.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    this.cache.set(key, obj);
  }

  private transform(obj: T): T {
    return this.opts.transform ? this.opts.transform(obj) : obj;
  }

  forget(key: string): void {
    this.cache.delete(key);
  }

  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.loop = undefined;
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener("abort", () => resolve());
    });
  }

  private emit(obj: T, old: T | undefined, deleted: boolean): void {
    for (const h of this.handlers) {
      try {
        h(obj, old, deleted);
      } catch (e) {
        this.log.error({ err: e }, "informer handler threw");
      }
    }
  }

  /** Replaces the cache with a fresh list and emits the differences. */
  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const listed of items) {
      const item = this.transform(listed);
      const key = keyOf(item);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, item);
      if (!old || old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit(item, old, false);
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit(old, old, true);
      }
    }
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters) w();
      this.syncWaiters = [];
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 240;
    const idleMs = this.opts.idleMs ?? (timeoutSeconds + 30) * 1000;
    const resyncMs = this.opts.resyncMs || Infinity;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const { labelSelector, fieldSelector, namespace } = this.opts;
        const sel = { labelSelector, fieldSelector, namespace };
        const list = await this.client.list<T>(this.kind, sel);
        this.replace(list.items);
        let rv = list.metadata.resourceVersion;
        const listedAt = Date.now();
        failures = 0;
        // Watch until the periodic relist is due; each server-side timeout just reopens.
        while (!signal.aborted && Date.now() - listedAt < resyncMs) {
          const remaining = Math.max(1, Math.ceil((resyncMs - (Date.now() - listedAt)) / 1000));
          await this.client.watch<T>(
            this.kind,
            { ...sel, resourceVersion: rv, timeoutSeconds: Math.min(timeoutSeconds, remaining), idleMs, signal },
            (ev) => {
              this.lastEventAt = Date.now();
              if (ev.object.metadata?.resourceVersion) rv = ev.object.metadata.resourceVersion;
              if (ev.type === "BOOKMARK") return;
              const obj = this.transform(ev.object);
              const key = keyOf(obj);
              const old = this.cache.get(key);
              if (ev.type === "DELETED") {
                this.cache.delete(key);
                this.emit(obj, old, true);
              } else if (!old || newer(obj.metadata.resourceVersion, old.metadata.resourceVersion)) {
                this.cache.set(key, obj);
                this.emit(obj, old, false);
              }
            },
          );
        }
      } catch (err) {
        if (signal.aborted) break;
        this.restarts++;
        const delay = isGone(err) ? 0 : Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.baseBackoffMs ?? 500) * 2 ** failures++);
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, "list/watch failed; relisting after backoff");
        await sleep(delay, signal);
      }
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
