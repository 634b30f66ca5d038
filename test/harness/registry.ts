// A real OCI registry for the cluster tier (CNCF distribution, loopback only) and a push of an OCI
// image layout archive to it over the distribution API, returning the pull-by-digest reference.
import { execFile, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensureBinary } from "./binaries.js";
import { freePort } from "./controlplane.js";
import { onExit } from "./exit-hooks.js";

const run = promisify(execFile);

export interface Registry {
  /** 127.0.0.1:<port>, the host part of image references. */
  host: string;
  dir: string;
  /** Pushes one image of an OCI layout archive; returns `<host>/<repository>@sha256:...`. */
  push(archive: string, repository: string, opts?: { ref?: string; tag?: string }): Promise<string>;
  stop(): Promise<void>;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}


export async function startRegistry(): Promise<Registry> {
  const bin = await ensureBinary("registry");
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-registry-"));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: "warn" },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: { addr: host },
    }),
  );
  const log = openSync(join(dir, "registry.log"), "a");
  // OTEL_TRACES_EXPORTER=none: distribution v3 otherwise tries to export traces to localhost:4318.
  const child = spawn(bin, ["serve", config], { stdio: ["ignore", log, log], env: { ...process.env, OTEL_TRACES_EXPORTER: "none" } });
  closeSync(log);
  const unhook = onExit(() => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
    unhook();
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const text = readFileSync(join(dir, "registry.log"), "utf8");
      await stop();
      throw new Error(`registry did not answer on ${host}/v2/ (exit ${child.exitCode}):\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host, dir, push: (archive, repository, opts) => pushArchive(host, archive, repository, opts), stop };
}

async function check(res: Response, what: string, ok: number[]): Promise<Response> {
  if (!ok.includes(res.status)) throw new Error(`registry ${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

async function pushBlob(base: string, layout: string, d: Descriptor): Promise<void> {
  if ((await fetch(`${base}/blobs/${d.digest}`, { method: "HEAD" })).status === 200) return;
  const start = await check(await fetch(`${base}/blobs/uploads/`, { method: "POST" }), `start upload of ${d.digest}`, [202]);
  const location = start.headers.get("location");
  if (!location) throw new Error(`registry: upload of ${d.digest} answered 202 without a Location`);
  const url = new URL(location, base);
  url.searchParams.set("digest", d.digest);
  const body = readFileSync(join(layout, "blobs", ...d.digest.split(":")));
  await check(await fetch(url, { method: "PUT", body, headers: { "content-type": "application/octet-stream", "content-length": String(body.length) } }), `upload of ${d.digest}`, [201]);
}

/** Pushes a manifest (or an index, children first) with every blob it names; PUT by digest. */
async function pushManifest(base: string, layout: string, d: Descriptor): Promise<void> {
  const raw = readFileSync(join(layout, "blobs", ...d.digest.split(":")));
  const m = JSON.parse(raw.toString()) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  for (const child of m.manifests ?? []) await pushManifest(base, layout, child);
  for (const blob of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) await pushBlob(base, layout, blob);
  await check(await fetch(`${base}/manifests/${d.digest}`, { method: "PUT", body: raw, headers: { "content-type": d.mediaType } }), `manifest ${d.digest}`, [201]);
}

/**
 * Picks the image named `ref` (io.containerd.image.name or org.opencontainers.image.ref.name) from
 * the archive's index.json, or its only image, and pushes it to `repository`.
 */
async function pushArchive(host: string, archive: string, repository: string, opts: { ref?: string; tag?: string } = {}): Promise<string> {
  const layout = mkdtempSync(join(tmpdir(), "sandbox-operator-push-"));
  try {
    await run("tar", ["-xf", archive, "-C", layout]);
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: Descriptor[] };
    const names = (d: Descriptor) => [d.annotations?.["io.containerd.image.name"], d.annotations?.["org.opencontainers.image.ref.name"]];
    const matches = opts.ref ? index.manifests.filter((d) => names(d).includes(opts.ref)) : index.manifests;
    const digests = new Set(matches.map((d) => d.digest));
    if (digests.size !== 1) throw new Error(`${archive}: ${opts.ref ? `ref ${opts.ref}` : "no ref given"} matches ${digests.size} images; names: ${index.manifests.map((d) => names(d).filter(Boolean).join("|")).join(", ")}`);
    const d = matches[0]!;
    const base = `http://${host}/v2/${repository}`;
    await pushManifest(base, layout, d);
    if (opts.tag) {
      const raw = readFileSync(join(layout, "blobs", ...d.digest.split(":")));
      await check(await fetch(`${base}/manifests/${opts.tag}`, { method: "PUT", body: raw, headers: { "content-type": d.mediaType } }), `tag ${opts.tag}`, [201]);
    }
    return `${host}/${repository}@${d.digest}`;
  } finally {
    rmSync(layout, { recursive: true, force: true });
  }
}
