// Unpacks the operator image's OCI archive into a root file system and runs a program from it the
// way the agent's pod does: chrooted, root file system read-only, host /proc (hostPID) and /dev.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface Descriptor {
  digest: string;
}

/** Extracts the archive and applies its layers in manifest order with tar (our images carry no whiteouts). */
export function unpackImage(archive: string, dir = mkdtempSync(join(tmpdir(), "sandbox-operator-rootfs-"))): UnpackedImage {
  const layout = join(dir, "oci");
  const rootfs = join(dir, "rootfs");
  mkdirSync(layout, { recursive: true });
  mkdirSync(rootfs, { recursive: true });
  execFileSync("tar", ["-xf", archive, "-C", layout]);
  const blob = (d: string) => join(layout, "blobs", "sha256", d.replace(/^sha256:/, ""));
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: Descriptor[] };
  if (index.manifests.length !== 1) throw new Error(`${archive}: expected one manifest in index.json, found ${index.manifests.length}`);
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), "utf8")) as { config: Descriptor; layers: Descriptor[] };
  for (const l of manifest.layers) execFileSync("tar", ["-xzf", blob(l.digest), "-C", rootfs, "--no-same-owner"]);
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), "utf8")) as { config: { Env?: string[] } };
  return { rootfs, env: config.config.Env ?? [], cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface UnpackedImage {
  rootfs: string;
  /** The image config's Env (PATH=/usr/bin:/bin ...), which a container runtime would set. */
  env: string[];
  cleanup(): void;
}

export interface PodLikeOptions {
  /** host directory -> path inside the root file system (like a hostPath volume). */
  binds?: Record<string, string>;
}

/**
 * Runs argv chrooted into rootfs inside a private mount namespace (gone when the process exits):
 * the root file system bind-mounted read-only (readOnlyRootFilesystem), /proc of this PID
 * namespace (the pod's hostPID), /dev, and each bind. Stays in this PID and network namespace.
 */
export function spawnFromImage(image: UnpackedImage, argv: string[], opts: PodLikeOptions = {}): ChildProcess {
  const rootfs = image.rootfs;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const binds = Object.entries(opts.binds ?? {});
  const script = [
    "set -e",
    `R=${q(rootfs)}`,
    ...binds.map(([, inside]) => `mkdir -p "$R"${q(inside)}`),
    "mkdir -p \"$R/proc\" \"$R/dev\"",
    'mount --bind "$R" "$R"',
    ...binds.map(([host, inside]) => `mount --rbind ${q(host)} "$R"${q(inside)}`),
    'mount -t proc proc "$R/proc"',
    'mount --rbind /dev "$R/dev"',
    'mount -o remount,bind,ro "$R"',
    // Only the image's environment, as a container runtime gives it.
    `exec /usr/bin/env -i ${image.env.map(q).join(" ")} /usr/sbin/chroot "$R" ${argv.map(q).join(" ")}`,
  ].join("\n");
  return spawn("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs argv from the image to completion; its exit code and output. */
export function runFromImage(image: UnpackedImage, argv: string[], opts: PodLikeOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawnFromImage(image, argv, opts);
    let stdout = "";
    let stderr = "";
    p.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
