// Test-only stand-ins for what k3s/RKE2, microk8s and k0s do to containerd's config at each start,
// written from their docs (not their code): run by the test containerd's start script (generate).
//   k3s <dir> <base-file> <major>      render <dir>/config.toml from config(-v3).toml.tmpl, {{ template "base" . }} = base
//   microk8s <args-dir> <snap-data> <snap-common>   render containerd.toml from containerd-template.toml (${SNAP_*})
//   k0s <etc-k0s> <run-k0s> <cri-base-file> <version>  containerd.toml importing containerd-cri.toml (CRI drop-ins merged in) and the others
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { pathToFileURL } from "node:url";

type Tree = Record<string, unknown>;

/** k3s: containerd 2.x builds read config-v3.toml.tmpl, else config.toml.tmpl; 1.x builds config.toml.tmpl; none: the base. */
export function renderK3s(dir: string, base: string, major: number): string {
  const v3 = join(dir, "config-v3.toml.tmpl");
  const v2 = join(dir, "config.toml.tmpl");
  const template = major >= 2 ? (existsSync(v3) ? v3 : existsSync(v2) ? v2 : null) : existsSync(v2) ? v2 : null;
  if (!template) return base;
  const text = readFileSync(template, "utf8").replaceAll(`{{ template "base" . }}`, base.trimEnd());
  // This stand-in knows only the base template; anything else would need Go's text/template.
  if (text.includes("{{")) throw new Error(`${template}: the k3s stand-in renders only {{ template "base" . }}`);
  return text;
}

/** microk8s substitutes its snap paths into the template. */
export function renderMicrok8s(template: string, snapData: string, snapCommon: string): string {
  return template.replaceAll("${SNAP_DATA}", snapData).replaceAll("${SNAP_COMMON}", snapCommon);
}

const CRI_KEYS = /^(io\.containerd\.grpc\.v1\.cri|io\.containerd\.cri\.v1\.[a-z]+)$/;

function mergePatch(target: Tree, patch: Tree): Tree {
  for (const [k, v] of Object.entries(patch)) {
    const t = target[k];
    target[k] = v && typeof v === "object" && !Array.isArray(v) && t && typeof t === "object" && !Array.isArray(t) ? mergePatch(t as Tree, v as Tree) : v;
  }
  return target;
}

/** k0s (1.27.1+): drop-ins with a CRI plugin section are merged into its CRI config; the rest are imported. */
export function renderK0s(etc: string, run: string, criBase: string, version: number): { config: string; cri: string } {
  const dropDir = join(etc, "containerd.d");
  const files = existsSync(dropDir) ? readdirSync(dropDir).filter((n) => n.endsWith(".toml")).sort() : [];
  const cri = parse(criBase) as Tree;
  const imports = [join(run, "containerd-cri.toml")];
  for (const n of files) {
    const t = parse(readFileSync(join(dropDir, n), "utf8")) as Tree;
    const plugins = (t.plugins ?? {}) as Tree;
    if (Object.keys(plugins).some((k) => CRI_KEYS.test(k))) mergePatch(cri, { plugins });
    else imports.push(join(dropDir, n));
  }
  const config = [`# k0s_managed=true`, `# This is a placeholder configuration for k0s managed containerd.`, `version = ${version}`, `imports = ${JSON.stringify(imports)}`, ``].join("\n");
  return { config, cri: stringify({ version, ...cri }) + "\n" };
}

function main(argv: string[]): void {
  const [distro, ...args] = argv;
  if (distro === "k3s") {
    const [dir, baseFile, major] = args as [string, string, string];
    writeFileSync(join(dir, "config.toml"), renderK3s(dir, readFileSync(baseFile, "utf8"), Number(major)));
  } else if (distro === "microk8s") {
    const [argsDir, snapData, snapCommon] = args as [string, string, string];
    writeFileSync(join(argsDir, "containerd.toml"), renderMicrok8s(readFileSync(join(argsDir, "containerd-template.toml"), "utf8"), snapData, snapCommon));
  } else if (distro === "k0s") {
    const [etc, run, criBaseFile, version] = args as [string, string, string, string];
    const config = join(etc, "containerd.toml");
    // k0s leaves a containerd.toml alone once its magic first line is gone.
    if (existsSync(config) && !readFileSync(config, "utf8").startsWith("# k0s_managed=true")) return;
    const out = renderK0s(etc, run, readFileSync(criBaseFile, "utf8"), Number(version));
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, "containerd-cri.toml"), out.cri);
    writeFileSync(config, out.config);
  } else throw new Error(`unknown distribution stand-in ${distro}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main(process.argv.slice(2));
