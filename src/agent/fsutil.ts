// Crash-safe file operations for host files: temp + fsync + rename (never rewrite a file in
// place, so a running binary is never "text file busy"), and reads that treat absence as null.
import { createHash, randomBytes } from "node:crypto";
import { closeSync, copyFileSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

export function readOrNull(p: string): Buffer | null {
  try {
    return readFileSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename, fsync dir. */
export function atomicWrite(path: string, data: Buffer | string, mode = 0o644): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${randomBytes(4).toString("hex")}`);
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** Removes a file and syncs its directory; absent is fine. */
export function removeFile(path: string): void {
  rmSync(path, { force: true });
  try {
    fsyncDir(dirname(path));
  } catch {
    // The directory may not exist either: nothing to sync.
  }
}

/**
 * Removes `dir` if it is empty, then each parent that is left empty, up to and including `top`
 * (a directory outside `top` is never touched). Stops at the first one that still holds
 * anything. Returns the directories removed.
 */
export function removeEmptyDirsUp(dir: string, top: string): string[] {
  const removed: string[] = [];
  for (let d = dir; d === top || d.startsWith(`${top}/`); d = dirname(d)) {
    try {
      rmdirSync(d);
      removed.push(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") break;
    }
  }
  if (removed.length) fsyncDir(dirname(removed[removed.length - 1]!));
  return removed;
}

/** Keeps a copy of `src` at `dst`: a hard link when possible (cheap for binaries), else a copy. */
export function preserve(src: string, dst: string): void {
  mkdirSync(dirname(dst), { recursive: true });
  rmSync(dst, { force: true });
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

export function modeOf(p: string): number | null {
  try {
    return statSync(p).mode & 0o7777;
  } catch {
    return null;
  }
}

/** A path's key inside our state directory: readable, unique, no slashes. */
export const encodePath = (p: string) => p.replace(/^\/+/, "").replace(/%/g, "%25").replace(/\//g, "%2F");
