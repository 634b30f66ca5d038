// The apiserver's own request counters (apiserver_request_total), summed by verb and resource, so
// tests and benches count requests where they arrive instead of trusting the client's own count.
import type { KubeClient } from "../../src/kube/client.js";

/** Requests by "VERB resource" or "VERB resource/subresource" (every code, scope and group summed). */
export type RequestCounts = Record<string, number>;

const WRITE_VERBS = new Set(["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"]);

export const isWrite = (key: string): boolean => WRITE_VERBS.has(key.split(" ")[0]!);

function label(labels: string, name: string): string {
  return new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1] ?? "";
}

/** Parses a /metrics text; requests without a resource (e.g. /metrics, /healthz) are left out. */
export function parseRequestTotals(text: string): RequestCounts {
  const out: RequestCounts = {};
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$/gm)) {
    const resource = label(m[1]!, "resource");
    if (!resource) continue;
    const sub = label(m[1]!, "subresource");
    const key = `${label(m[1]!, "verb")} ${resource}${sub ? `/${sub}` : ""}`;
    out[key] = (out[key] ?? 0) + Number(m[2]);
  }
  return out;
}

export async function apiserverRequests(client: KubeClient): Promise<RequestCounts> {
  const r = await client.raw("GET", "/metrics");
  if (r.status !== 200) throw new Error(`GET /metrics on the apiserver: ${r.status} ${r.body.slice(0, 200)}`);
  return parseRequestTotals(r.body);
}

/** after - before, keys with no change left out. */
export function diffCounts(before: RequestCounts, after: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Sum of the write requests (verbs that change objects) in counts, optionally only for these resources. */
export function writes(counts: RequestCounts, resources?: string[]): number {
  let n = 0;
  for (const [k, v] of Object.entries(counts)) if (isWrite(k) && (!resources || resources.includes(k.split(" ")[1]!))) n += v;
  return n;
}
