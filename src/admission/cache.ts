// A small list+watch cache of one kind, so the webhook answers from memory: relists on 410 and
// periodically, restarts the watch with backoff, and reports whether it has synced.
import type { Logger } from "pino";
import { KubeClient, type KubeObject } from "../kube/client.js";

export interface CacheOptions {
  fieldSelector?: string;
  /** A full relist this often even when the watch looks healthy (client-node's informer can go silent). */
  relistMs?: number;
  watchTimeoutSeconds?: number;
}

export class ListWatchCache<T extends KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly abort = new AbortController();
  private readonly loop: Promise<void>;
  private resolveSynced!: () => void;
  /** Resolves after the first successful list. */
  readonly synced = new Promise<void>((r) => (this.resolveSynced = r));
  isSynced = false;
  /** Bumped on every change, so callers can memoize what they derive from the items. */
  version = 0;

  constructor(
    private readonly client: KubeClient,
    readonly kind: string,
    private readonly log: Logger,
    private readonly opts: CacheOptions = {},
  ) {
    this.loop = this.run();
  }

  get(name: string): T | undefined {
    return this.items.get(name);
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private set(obj: T) {
    this.items.set(obj.metadata.name, obj);
    this.version++;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let backoff = 250;
    while (!signal.aborted) {
      try {
        const list = await this.client.list<T>(this.kind, { fieldSelector: this.opts.fieldSelector });
        this.items.clear();
        for (const item of list.items) this.items.set(item.metadata.name, item);
        this.version++;
        if (!this.isSynced) this.log.info({ kind: this.kind, count: list.items.length }, "cache synced");
        this.isSynced = true;
        this.resolveSynced();
        backoff = 250;
        let rv = list.metadata.resourceVersion;
        const relistAt = Date.now() + (this.opts.relistMs ?? 300_000);
        while (!signal.aborted && Date.now() < relistAt) {
          await this.client.watch<T>(this.kind, { resourceVersion: rv, fieldSelector: this.opts.fieldSelector, timeoutSeconds: this.opts.watchTimeoutSeconds ?? 60, signal }, (ev) => {
            rv = ev.object.metadata.resourceVersion ?? rv;
            if (ev.type === "BOOKMARK") return;
            if (ev.type === "DELETED") {
              this.items.delete(ev.object.metadata.name);
              this.version++;
            } else this.set(ev.object);
          });
        }
      } catch (e) {
        if (signal.aborted) break;
        this.log.warn({ kind: this.kind, err: (e as Error).message, retryMs: backoff }, "list/watch failed; retrying");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }
}
