// Builds a runtime payload image (docs/payloads.md): the gVisor binaries under /payload and a
// static busybox whose `cp` the agent's short-lived install container runs (ADR 0006).
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { buildImage, ociArch, type BuiltImage } from "./oci.js";
import type { TarEntry } from "./tar.js";
import { PAYLOAD_COPY_COMMAND, PAYLOAD_FILES, PAYLOAD_ROOT } from "../manifests/names.js";
import { VERIFY_BUSYBOX } from "./build.js";

export const DEFAULT_GVISOR_PAYLOAD_REPOSITORY = "localhost/sandbox-operator-gvisor";

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

/** The payload image: one layer with /payload/<files> and /bin/busybox; no entrypoint is needed. */
export function buildGvisorPayloadImage(o: PayloadBuildOptions): PayloadBuildResult {
  const repository = o.repository ?? DEFAULT_GVISOR_PAYLOAD_REPOSITORY;
  const busybox = readFileSync(o.busybox ?? VERIFY_BUSYBOX);
  if (busybox.subarray(0, 4096).includes("ld-linux")) throw new Error(`${o.busybox ?? VERIFY_BUSYBOX} is dynamically linked: install busybox-static`);
  const entries: TarEntry[] = [
    { path: "bin", type: "dir", mode: 0o755 },
    { path: "bin/busybox", type: "file", mode: 0o755, content: busybox },
    { path: PAYLOAD_ROOT, type: "dir", mode: 0o755 },
    ...gvisorPayloadEntries(o.dir),
  ];
  const built = buildImage({
    repository,
    tag: o.tag,
    architecture: ociArch(process.arch),
    layers: [{ comment: `gVisor payload: runsc + containerd-shim-runsc-v1 (${o.source}); busybox-static for the install copy`, entries }],
    entrypoint: PAYLOAD_COPY_COMMAND,
    env: ["PATH=/bin"],
    user: "0:0",
    workingDir: "/",
    labels: { "org.opencontainers.image.title": "sandbox-operator gVisor payload", "org.opencontainers.image.version": o.tag, "dev.sandboxing.payload.backend": "gvisor", "dev.sandboxing.payload.source": o.source },
  });
  return { ...built, repository, tag: o.tag };
}
