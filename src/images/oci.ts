// Assembles an OCI image layout archive (oci-layout, index.json, blobs/sha256/*) from layer
// tars; gzip without timestamps and fixed JSON key order keep the digest reproducible.
import { createHash } from "node:crypto";
import { gzipSync, constants } from "node:zlib";
import { tar, type TarEntry } from "./tar.js";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export interface ImageSpec {
  /** e.g. localhost/sandbox-operator */
  repository: string;
  tag: string;
  architecture: string;
  layers: Array<{ comment: string; entries: TarEntry[] }>;
  entrypoint: string[];
  env: string[];
  user: string;
  workingDir: string;
  labels: Record<string, string>;
}

export interface BuiltImage {
  /** The OCI layout as one tar archive (for `ctr images import`, skopeo `oci-archive:`). */
  archive: Buffer;
  /** Manifest digest: what `repository@sha256:...` references. */
  digest: string;
  /** Config digest: the image ID containerd and crictl show. */
  configDigest: string;
  layers: Descriptor[];
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const json = (o: unknown) => Buffer.from(JSON.stringify(o));

export const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** Maps node's process.arch to the OCI/Go architecture name. */
export function ociArch(nodeArch: string): string {
  const map: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };
  const arch = map[nodeArch];
  if (!arch) throw new Error(`no OCI architecture for node's process.arch "${nodeArch}"`);
  return arch;
}

export function buildImage(spec: ImageSpec): BuiltImage {
  const blobs = new Map<string, Buffer>();
  const put = (b: Buffer) => {
    const d = sha256(b);
    blobs.set(d, b);
    return d;
  };
  const diffIds: string[] = [];
  const layers: Descriptor[] = [];
  for (const layer of spec.layers) {
    const raw = tar(layer.entries);
    diffIds.push(sha256(raw));
    // node's gzip writes mtime 0 and a fixed OS byte; level fixed so bytes depend on content only.
    const gz = gzipSync(raw, { level: 6, strategy: constants.Z_DEFAULT_STRATEGY });
    layers.push({ mediaType: MEDIA.layer, digest: put(gz), size: gz.length });
  }
  const config = json({
    created: "1970-01-01T00:00:00Z",
    architecture: spec.architecture,
    os: "linux",
    config: {
      User: spec.user,
      Env: spec.env,
      Entrypoint: spec.entrypoint,
      WorkingDir: spec.workingDir,
      Labels: spec.labels,
    },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: spec.layers.map((l) => ({ created: "1970-01-01T00:00:00Z", created_by: l.comment })),
  });
  const configDesc: Descriptor = { mediaType: MEDIA.config, digest: put(config), size: config.length };
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: configDesc,
    layers,
    annotations: { "org.opencontainers.image.version": spec.tag, "org.opencontainers.image.title": spec.repository },
  });
  const digest = put(manifest);
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest,
        size: manifest.length,
        platform: { architecture: spec.architecture, os: "linux" },
        annotations: {
          // containerd's importer names the image from this annotation; the OCI one carries the tag.
          "io.containerd.image.name": `${spec.repository}:${spec.tag}`,
          "org.opencontainers.image.ref.name": spec.tag,
        },
      },
    ],
  });
  const entries: TarEntry[] = [
    { path: "oci-layout", type: "file", mode: 0o644, content: json({ imageLayoutVersion: "1.0.0" }) },
    { path: "index.json", type: "file", mode: 0o644, content: index },
    ...[...blobs].map(([d, content]): TarEntry => ({ path: `blobs/sha256/${d.slice("sha256:".length)}`, type: "file", mode: 0o644, content })),
  ];
  return { archive: tar(entries), digest, configDigest: configDesc.digest, layers };
}
