// Loads a KubeConfig so that rotated service-account tokens are picked up: users with a
// `tokenFile` become @kubernetes/client-node's tokenFile auth provider, which re-reads the file.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { homedir } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";

interface RawUser {
  name?: string;
  user?: { token?: string; "token-file"?: string; tokenFile?: string };
}

/**
 * The token file each user of the kubeconfig file names (`tokenFile`, as kubectl and client-go
 * read it, relative to the file's directory). client-node reads `tokenFile` once at load time;
 * client-go re-reads it. We make client-node do what client-go does.
 */
function tokenFiles(path: string): Map<string, string> {
  const out = new Map<string, string>();
  let doc: { users?: RawUser[] } | null;
  try {
    doc = parse(readFileSync(path, "utf8")) as { users?: RawUser[] } | null;
  } catch {
    return out; // client-node has already reported a file it cannot read
  }
  for (const u of doc?.users ?? []) {
    const file = u.user?.["token-file"] ?? u.user?.tokenFile;
    if (!u.name || !file || u.user?.token) continue;
    out.set(u.name, isAbsolute(file) ? file : join(dirname(path), file));
  }
  return out;
}

/** Rewrites token-file users to the tokenFile auth provider (read again when auth is applied). */
export function rereadTokenFiles(kc: KubeConfig, files: Map<string, string>): KubeConfig {
  if (!files.size) return kc;
  kc.users = kc.users.map((u) => {
    const tokenFile = files.get(u.name);
    if (!tokenFile || u.authProvider || u.exec) return u;
    return { ...u, token: undefined, authProvider: { name: "tokenFile", config: { tokenFile } } };
  });
  return kc;
}

/**
 * The kubeconfig every component uses: `path`, else $KUBECONFIG, ~/.kube/config or the
 * in-cluster service account (whose projected token client-node re-reads by itself).
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  let sources: string[];
  if (path) {
    kc.loadFromFile(path);
    sources = [path];
  } else {
    kc.loadFromDefault();
    const env = process.env.KUBECONFIG;
    sources = env ? env.split(":").filter(Boolean) : [join(homedir(), ".kube", "config")];
  }
  const files = new Map<string, string>();
  for (const s of sources.reverse()) for (const [user, file] of tokenFiles(s)) files.set(user, file); // the first file wins, as in kubectl
  return rereadTokenFiles(kc, files);
}

/** A copy with fresh authenticators, so a token file is read now rather than when its cache expires. */
export function freshCopy(kc: KubeConfig): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromOptions({ clusters: kc.clusters, contexts: kc.contexts, users: kc.users, currentContext: kc.currentContext });
  return copy;
}
