// A keyed work queue like client-go's: a key waits at most once (dedupe), is processed by one
// worker at a time, failed keys retry with per-key exponential backoff, and results can ask to
// come back later (requeueAfter). Terminal errors stop the retries for that key.

/** What a reconcile returns: nothing (done) or when to look again. */
export interface Result {
  requeueAfter?: number;
}

export type Reconcile = (key: string) => Promise<Result | void>;

/** An error that retrying cannot fix (bad input): logged, not retried until the key is added again. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
}

export interface QueueHooks {
  onDepth?(depth: number): void;
  onResult?(key: string, seconds: number, outcome: "success" | "error" | "terminal", err?: unknown): void;
}

export interface WorkQueueOptions {
  /** Concurrent workers (different keys only). */
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Minimum time between two reconciles of the same key: bursts of adds collapse into one pass. */
  minIntervalMs?: number;
  hooks?: QueueHooks;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while being processed: go back in the queue when the worker finishes. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly lastStart = new Map<string, number>();
  private waiters: Array<() => void> = [];
  private stopped = false;
  private running: Promise<void>[] = [];
  private readonly opts: Required<Omit<WorkQueueOptions, "hooks">> & { hooks: QueueHooks };

  constructor(opts: WorkQueueOptions = {}) {
    this.opts = { workers: 1, baseDelayMs: 200, maxDelayMs: 60_000, minIntervalMs: 0, hooks: {}, ...opts };
  }

  get depth(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const since = Date.now() - (this.lastStart.get(key) ?? 0);
    if (this.opts.minIntervalMs > 0 && since < this.opts.minIntervalMs) {
      this.addAfter(key, this.opts.minIntervalMs - since);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
    this.opts.hooks.onDepth?.(this.queue.length);
    const w = this.waiters.shift();
    w?.();
  }

  /** Adds the key after ms; an earlier pending timer for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.timers.set(key, { at, timer });
  }

  /** Backoff for the key's next retry: base * 2^failures, capped. */
  private backoff(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** n);
  }

  private async next(): Promise<string | undefined> {
    while (!this.stopped) {
      const key = this.queue.shift();
      if (key !== undefined) {
        this.queued.delete(key);
        this.opts.hooks.onDepth?.(this.queue.length);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return undefined;
  }

  /** Starts the workers; they run until stop(). */
  start(reconcile: Reconcile): void {
    for (let i = 0; i < this.opts.workers; i++) this.running.push(this.worker(reconcile));
  }

  private async worker(reconcile: Reconcile): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      this.processing.add(key);
      this.lastStart.set(key, Date.now());
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        const result = await reconcile(key);
        this.failures.delete(key);
        this.opts.hooks.onResult?.(key, seconds(), "success");
        if (result?.requeueAfter !== undefined) this.addAfter(key, result.requeueAfter);
      } catch (err) {
        if (err instanceof TerminalError) {
          this.failures.delete(key);
          this.opts.hooks.onResult?.(key, seconds(), "terminal", err);
        } else {
          this.opts.hooks.onResult?.(key, seconds(), "error", err);
          this.addAfter(key, this.backoff(key));
        }
      } finally {
        this.processing.delete(key);
        if (this.dirty.delete(key)) this.add(key);
      }
    }
  }

  /** Stops taking keys, waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters) w();
    this.waiters = [];
    await Promise.all(this.running);
  }
}
