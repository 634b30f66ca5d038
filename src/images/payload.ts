// Builds a runtime payload image (docs/payloads.md): the gVisor binaries, or a Kata /opt/kata tree,
// under /payload and a static busybox whose `cp` the agent's short-lived install container runs (ADR 0006).
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { buildImage, ociArch, type BuiltImage } from "./oci.js";
import type { TarEntry } from "./tar.js";
import { PAYLOAD_COPY_COMMAND, PAYLOAD_FILES, PAYLOAD_ROOT } from "../manifests/names.js";
import { VERIFY_BUSYBOX } from "./build.js";

export const DEFAULT_GVISOR_PAYLOAD_REPOSITORY = "localhost/sandbox-operator-gvisor";
export const DEFAULT_KATA_PAYLOAD_REPOSITORY = "localhost/sandbox-operator-kata";

export interface PayloadBuildOptions {
  /** A directory with runsc and containerd-shim-runsc-v1 (files or symlinks to them). */
  dir: string;
  repository?: string;
  tag: string;
  /** Where the build says these binaries came from (image label and history line). */
  source: string;
  busybox?: string;
}

export interface PayloadBuildResult extends BuiltImage {
  repository: string;
  tag: string;
}

/** The payload files, each an executable regular file (symlinks followed), named in the error when not. */
export function gvisorPayloadEntries(dir: string): TarEntry[] {
  return PAYLOAD_FILES.gvisor.map((name): TarEntry => {
    const file = join(dir, name);
    let content: Buffer;
    try {
      content = readFileSync(file);
    } catch {
      throw new Error(`gVisor payload dir ${dir}: ${name} is missing (the payload is runsc and containerd-shim-runsc-v1 from the same gVisor release)`);
    }
    const st = statSync(file);
    if (!st.isFile() || !(st.mode & 0o111)) throw new Error(`gVisor payload dir ${dir}: ${name} is not an executable file`);
    return { path: `${PAYLOAD_ROOT}/${name}`, type: "file", mode: 0o755, content };
  });
}

/** The busybox the install copy runs, refused when it is not static. */
function busyboxEntries(path = VERIFY_BUSYBOX): TarEntry[] {
  const busybox = readFileSync(path);
  if (busybox.subarray(0, 4096).includes("ld-linux")) throw new Error(`${path} is dynamically linked: install busybox-static`);
  return [
    { path: "bin", type: "dir", mode: 0o755 },
    { path: "bin/busybox", type: "file", mode: 0o755, content: busybox },
    { path: PAYLOAD_ROOT, type: "dir", mode: 0o755 },
  ];
}

function payloadImage(o: PayloadBuildOptions, backend: "gvisor" | "kata", repository: string, entries: TarEntry[], comment: string): PayloadBuildResult {
  const built = buildImage({
    repository,
    tag: o.tag,
    architecture: ociArch(process.arch),
    layers: [{ comment, entries: [...busyboxEntries(o.busybox), ...entries] }],
    entrypoint: PAYLOAD_COPY_COMMAND,
    env: ["PATH=/bin"],
    user: "0:0",
    workingDir: "/",
    labels: { "org.opencontainers.image.title": `sandbox-operator ${backend === "kata" ? "Kata" : "gVisor"} payload`, "org.opencontainers.image.version": o.tag, "dev.sandboxing.payload.backend": backend, "dev.sandboxing.payload.source": o.source },
  });
  return { ...built, repository, tag: o.tag };
}

/** The payload image: one layer with /payload/<files> and /bin/busybox; no entrypoint is needed. */
export function buildGvisorPayloadImage(o: PayloadBuildOptions): PayloadBuildResult {
  return payloadImage(o, "gvisor", o.repository ?? DEFAULT_GVISOR_PAYLOAD_REPOSITORY, gvisorPayloadEntries(o.dir), `gVisor payload: runsc + containerd-shim-runsc-v1 (${o.source}); busybox-static for the install copy`);
}

/** Every directory, file and symlink under `dir`, as entries under `under`, sorted so equal trees give equal layers. */
function treeEntries(dir: string, under: string): TarEntry[] {
  const out: TarEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name);
    const path = `${under}/${name}`;
    const st = lstatSync(file);
    if (st.isSymbolicLink()) out.push({ path, type: "symlink", target: readlinkSync(file) });
    else if (st.isDirectory()) out.push({ path, type: "dir", mode: 0o755 }, ...treeEntries(file, path));
    else if (st.isFile()) out.push({ path, type: "file", mode: st.mode & 0o111 ? 0o755 : 0o644, content: readFileSync(file) });
  }
  return out;
}

/**
 * A Kata payload image from a directory laid out like kata-deploy's /opt/kata (a kata-static release
 * unpacked: bin/, libexec/, share/kata-containers/, share/defaults/): the whole tree under /payload.
 * Refused, naming the file, when the shim, guest kernel or image is missing.
 */
export function buildKataPayloadImage(o: PayloadBuildOptions): PayloadBuildResult {
  for (const f of PAYLOAD_FILES.kata) {
    if (!statSync(join(o.dir, f), { throwIfNoEntry: false })?.isFile()) throw new Error(`Kata payload dir ${o.dir}: ${f} is missing (a Kata payload is kata-deploy's /opt/kata tree: ${PAYLOAD_FILES.kata.join(", ")}, and the hypervisors under bin/)`);
  }
  return payloadImage(o, "kata", o.repository ?? DEFAULT_KATA_PAYLOAD_REPOSITORY, treeEntries(o.dir, PAYLOAD_ROOT), `Kata payload: the /opt/kata tree (${o.source}); busybox-static for the install copy`);
}
