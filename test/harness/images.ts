// Builds the images the node tests and the demo run — a pause image and a small test image, both
// from Debian's busybox-static — as one OCI archive, and imports it with `ctr` (no registry here).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CriClient } from "../../src/agent/cri/client.js";

const run = promisify(execFile);

/** Sandbox images containerd 1.6 and 2.x ask for by default; we tag our pause image with each. */
export const PAUSE_IMAGES = ["registry.k8s.io/pause:3.6", "registry.k8s.io/pause:3.8", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.2"];
export const TEST_IMAGE = "localhost/sandbox-operator/busybox:1";
const BUSYBOX = "/usr/bin/busybox";
// nc, hostname, mount: the cluster tier's pod-network and mount-propagation checks (busybox-static's wget segfaults here).
const APPLETS = ["sh", "sleep", "uname", "dmesg", "head", "cat", "echo", "true", "ls", "grep", "tail", "nc", "hostname", "mount", "printf", "wc"];

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

function requireBusybox(): void {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static, or run scripts/setup.sh test)`);
  const head = readFileSync(BUSYBOX).subarray(0, 4096).toString("latin1");
  if (head.includes("ld-linux")) throw new Error(`${BUSYBOX} is dynamically linked: install busybox-static instead of busybox`);
}

/** Writes an OCI image layout archive holding both images; returns its path (cached per dir). */
export async function buildImageArchive(dir = join(tmpdir(), "sandbox-operator-images")): Promise<string> {
  requireBusybox();
  // Named by what it holds, so a changed tag list builds a new archive.
  const archive = join(dir, `images-${sha256([...PAUSE_IMAGES, TEST_IMAGE, ...APPLETS].join(",")).slice(0, 12)}.oci.tar`);
  if (existsSync(archive)) return archive;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(dir, "build-"));
  try {
    const rootfs = join(work, "rootfs");
    mkdirSync(join(rootfs, "bin"), { recursive: true });
    for (const d of ["proc", "sys", "dev", "etc", "tmp"]) mkdirSync(join(rootfs, d));
    copyFileSync(BUSYBOX, join(rootfs, "bin", "busybox"));
    chmodSync(join(rootfs, "bin", "busybox"), 0o755);
    for (const a of APPLETS) symlinkSync("busybox", join(rootfs, "bin", a));
    const layout = join(work, "layout");
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    const layerTar = join(work, "layer.tar");
    // Fixed owner and mtime so the layer digest is the same on every machine.
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "--sort=name", "-C", rootfs, "-cf", layerTar, "."]);
    const layer = readFileSync(layerTar);
    const layerDigest = sha256(layer);
    writeFileSync(join(layout, "blobs", "sha256", layerDigest), layer);
    const blob = (obj: unknown) => {
      const b = Buffer.from(JSON.stringify(obj));
      const d = sha256(b);
      writeFileSync(join(layout, "blobs", "sha256", d), b);
      return { digest: `sha256:${d}`, size: b.length };
    };
    const image = (cmd: string[]) => {
      const config = blob({
        architecture: process.arch === "arm64" ? "arm64" : "amd64",
        os: "linux",
        config: { Env: ["PATH=/bin"], Cmd: cmd },
        rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
      });
      return blob({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layer.length }],
      });
    };
    // The pause container only has to wait and exit on SIGTERM.
    const pause = image(["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]);
    const test = image(["/bin/sh"]);
    const entry = (m: { digest: string; size: number }, ref: string) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...m,
      annotations: { "io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.split(":").pop() },
    });
    writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [...PAUSE_IMAGES.map((r) => entry(pause, r)), entry(test, TEST_IMAGE)] }));
    const tmp = `${archive}.tmp-${process.pid}`;
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", layout, "-cf", tmp, "."]);
    await run("mv", [tmp, archive]);
    return archive;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Imports the pause and test images into the CRI namespace (k8s.io) of the containerd at `socket`,
 * then waits until CRI itself resolves each one. containerd 2.x keeps a second, in-memory image
 * store for CRI that it fills from ImageCreate events after `ctr import` returns; a RunPodSandbox
 * in that window does not find the pause image and tries to pull it (containerd#12980 names the
 * same window). 1.6 resolves through its metadata store and passes at once.
 */
export async function importImages(ctr: string, socket: string, timeoutMs = 30_000): Promise<void> {
  const archive = await buildImageArchive();
  await run(ctr, ["--address", socket, "--namespace", "k8s.io", "images", "import", archive], { maxBuffer: 16 << 20 });
  const cri = new CriClient(socket, 5_000);
  try {
    const deadline = Date.now() + timeoutMs;
    let missing = [...PAUSE_IMAGES, TEST_IMAGE];
    while (missing.length > 0) {
      const seen = await Promise.all(missing.map(async (ref) => ((await cri.imageStatus(ref)) ? null : ref)));
      missing = seen.filter((r): r is string => r !== null);
      if (missing.length === 0) break;
      if (Date.now() > deadline) throw new Error(`CRI at ${socket} does not see imported images after ${timeoutMs} ms: ${missing.join(", ")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    cri.close();
  }
}
