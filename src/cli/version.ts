// `sandboxctl version`: the CLI's version and where it runs; read from package.json at runtime so
// the same file serves the repository, the npm package and the container image.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../manifests/image-lock.js";

export interface VersionInfo {
  version: string;
  node: string;
  platform: string;
}

export function versionInfo(): VersionInfo {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version: string };
  return { version: pkg.version, node: process.version, platform: `${process.platform}/${process.arch}` };
}

export function renderVersion(v: VersionInfo, output: "text" | "json"): string {
  if (output === "json") return JSON.stringify(v) + "\n";
  return `sandboxctl ${v.version} (node ${v.node}, ${v.platform})\n`;
}
