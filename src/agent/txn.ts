// The agent's durable state on the host: a lock so two agents never interleave, a journal so a
// crash at any line is rolled back at the next start, originals backed up once, and what we own.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { atomicWrite, encodePath, preserve, readOrNull, removeFile, sha256 } from "./fsutil.js";

/** A file change planned by an engine; paths are host paths as the agent sees them (under the host root). */
export interface FileChange {
  path: string;
  /** New content; null removes the file. */
  content: Buffer | null;
  mode?: number;
  /** A file we did not create (containerd 1.x config.toml): its original is backed up once. */
  foreign: boolean;
  /** The CRI runtime reads this file only at start: a change needs a restart. */
  restart: boolean;
}

export interface JournalEntry {
  op: "apply" | "revert";
  hash: string;
  /** prepared -> written -> restarting -> restarted -> verifying */
  step: "prepared" | "written" | "restarting" | "restarted" | "verifying";
  files: Array<{ path: string; existed: boolean }>;
  /** Directories this transaction's writes create (deepest first): removed again when they end up empty. */
  dirs?: string[];
  startedAt: string;
}

export interface OwnedState {
  /** desired.hash the node runs, verified. */
  appliedHash: string;
  /** Files we created (removed on revert). */
  owned: string[];
  /** Foreign files we edited: their original is in backups/, restored on revert. */
  edited: Array<{ path: string; existed: boolean; wroteSha: string }>;
  handlers: Array<{ name: string; backend: string; kernel?: string }>;
  failedHash?: string;
  failedMessage?: string;
  /** Directories our writes created (deepest first): a revert removes those left empty. */
  dirs?: string[];
}

/** The directories above `paths` that do not exist yet, up to (not including) `root`, deepest first. */
export function missingDirs(root: string, paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    for (let d = dirname(p); d.startsWith(`${root.replace(/\/+$/, "")}/`) && !existsSync(d); d = dirname(d)) out.add(d);
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** Removes each directory that is empty (deepest first); others stay. Returns those removed. */
export function removeEmptyDirs(dirs: readonly string[]): string[] {
  const removed: string[] = [];
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(d);
      removed.push(d);
    } catch {
      // Not empty (someone else's files, or ours still in use), or already gone.
    }
  }
  return removed;
}

const STALE_LOCK_MS = 30_000;

export class StateDir {
  readonly dir: string;

  constructor(readonly hostRoot: string) {
    this.dir = join(hostRoot, "var", "lib", "sandbox-operator");
    mkdirSync(this.dir, { recursive: true });
  }

  private get journalPath() {
    return join(this.dir, "journal.json");
  }
  private get statePath() {
    return join(this.dir, "state.json");
  }
  private prevPath(p: string) {
    return join(this.dir, "txn", encodePath(p));
  }
  backupPath(p: string) {
    return join(this.dir, "backups", encodePath(p));
  }

  journal(): JournalEntry | null {
    const b = readOrNull(this.journalPath);
    return b ? (JSON.parse(b.toString()) as JournalEntry) : null;
  }

  /** Starts a transaction: keeps the current bytes of every file it will touch, then records the journal. */
  begin(op: JournalEntry["op"], hash: string, paths: string[]): JournalEntry {
    rmSync(join(this.dir, "txn"), { recursive: true, force: true });
    const files = paths.map((p) => {
      const existed = existsSync(p);
      if (existed) preserve(p, this.prevPath(p));
      return { path: p, existed };
    });
    const dirs = missingDirs(this.hostRoot, paths);
    const j: JournalEntry = { op, hash, step: "prepared", files, ...(dirs.length ? { dirs } : {}), startedAt: new Date().toISOString() };
    atomicWrite(this.journalPath, JSON.stringify(j, null, 2));
    return j;
  }

  step(j: JournalEntry, step: JournalEntry["step"]): void {
    j.step = step;
    atomicWrite(this.journalPath, JSON.stringify(j, null, 2));
  }

  /** Puts every file of the transaction back as it was before it (byte-for-byte); returns whether anything changed. */
  rollbackFiles(j: JournalEntry): boolean {
    let changed = false;
    for (const f of j.files) {
      const now = readOrNull(f.path);
      if (f.existed) {
        const prev = readFileSync(this.prevPath(f.path));
        if (!now || !now.equals(prev)) {
          atomicWrite(f.path, prev, statSync(this.prevPath(f.path)).mode & 0o7777);
          changed = true;
        }
      } else if (now) {
        removeFile(f.path);
        changed = true;
      }
    }
    removeEmptyDirs(j.dirs ?? []);
    return changed;
  }

  /** Ends a transaction (committed or rolled back). */
  end(): void {
    removeFile(this.journalPath);
    rmSync(join(this.dir, "txn"), { recursive: true, force: true });
  }

  /** Backs up a foreign file's original once; later calls keep the first backup. */
  backupOnce(p: string): { existed: boolean } {
    const meta = join(this.dir, "backups", `${encodePath(p)}.json`);
    const m = readOrNull(meta);
    if (m) return JSON.parse(m.toString()) as { existed: boolean };
    const cur = readOrNull(p);
    if (cur) atomicWrite(this.backupPath(p), cur, statSync(p).mode & 0o7777);
    const info = { existed: !!cur, sha256: cur ? sha256(cur) : null, path: p, at: new Date().toISOString() };
    atomicWrite(meta, JSON.stringify(info, null, 2));
    return { existed: !!cur };
  }

  backup(p: string): { existed: boolean; content: Buffer | null } | null {
    const m = readOrNull(join(this.dir, "backups", `${encodePath(p)}.json`));
    if (!m) return null;
    const info = JSON.parse(m.toString()) as { existed: boolean };
    return { existed: info.existed, content: info.existed ? readFileSync(this.backupPath(p)) : null };
  }

  dropBackup(p: string): void {
    removeFile(this.backupPath(p));
    removeFile(join(this.dir, "backups", `${encodePath(p)}.json`));
  }

  state(): OwnedState | null {
    const b = readOrNull(this.statePath);
    return b ? (JSON.parse(b.toString()) as OwnedState) : null;
  }

  saveState(s: OwnedState | null): void {
    if (s) atomicWrite(this.statePath, JSON.stringify(s, null, 2));
    else removeFile(this.statePath);
  }
}

function pidNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return "unknown";
  }
}

/**
 * An exclusive lock on the host (one agent changes a node at a time). Held as a file with the
 * holder's pid and pid namespace, its mtime refreshed every 5 s; a lock whose holder is gone (same
 * namespace) or that was not refreshed for 30 s (another container) is stale and taken over.
 */
export class HostLock {
  private timer?: NodeJS.Timeout;
  private readonly path: string;

  constructor(private readonly state: StateDir) {
    this.path = join(state.dir, "lock");
  }

  private stale(): boolean {
    try {
      const info = JSON.parse(readFileSync(this.path, "utf8")) as { pid: number; ns: string };
      if (Date.now() - statSync(this.path).mtimeMs > STALE_LOCK_MS) return true;
      if (info.ns === pidNamespace() && !existsSync(`/proc/${info.pid}`)) return true;
      return info.ns === pidNamespace() && info.pid === process.pid;
    } catch {
      return true;
    }
  }

  /** Takes the lock or throws naming the holder. */
  acquire(): void {
    // release() removes the state directory once nothing of ours is left in it.
    mkdirSync(this.state.dir, { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.path, "wx", 0o600);
        writeSync(fd, JSON.stringify({ pid: process.pid, ns: pidNamespace(), at: new Date().toISOString() }));
        closeSync(fd);
        this.timer = setInterval(() => {
          const now = new Date();
          try {
            utimesSync(this.path, now, now);
          } catch {
            // Released meanwhile.
          }
        }, 5_000);
        this.timer.unref();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        if (!this.stale()) break;
        rmSync(this.path, { force: true });
      }
    }
    let holder = "unknown";
    try {
      holder = readFileSync(this.path, "utf8");
    } catch {
      // gone now
    }
    throw new Error(`another sandbox-operator agent holds ${this.path} (${holder}); it must finish first (the lock goes stale ${STALE_LOCK_MS / 1000}s after its holder dies)`);
  }

  release(): void {
    clearInterval(this.timer);
    rmSync(this.path, { force: true });
    // After a revert nothing of ours is left: no empty directory either.
    removeEmptyDirs([join(this.state.dir, "backups"), this.state.dir]);
  }
}
