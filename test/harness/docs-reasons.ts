// Finds every condition reason the operator's code can emit (by scanning its sources) and every
// reason docs/troubleshooting.md documents, for the troubleshooting-coverage test.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** Where reasons are set: the controller, the agent, the OpenShift path, and the CLI's status view. */
export const REASON_SOURCES = ["src/controller", "src/agent", "src/openshift", "src/cli/render-status.ts"];

export interface ReasonHit {
  reason: string;
  at: string;
}

/**
 * Reason literals in one file. A reason is a PascalCase string literal in the expression that
 * follows `reason:`, `reason =`, `reason ===`/`!==` or `reason ??` (any identifier ending in
 * `reason`/`Reason`), ternary continuation lines included. Literals the expression only compares
 * against (`x.state === "Degraded" ? reason : "AsExpected"`) are not reasons.
 */
export function reasonsInSource(text: string, file = "<source>"): ReasonHit[] {
  const hits: ReasonHit[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/\b\w*[rR]eason\??\s*(:|===|!==|==|=(?!>)|\?\?)/g)) {
      let rest = line.slice(m.index + m[0].length);
      for (let j = i + 1; j < lines.length && /^\s*[?:]/.test(lines[j]!); j++) rest += " " + lines[j]!;
      for (const lit of expression(rest).matchAll(/(===|!==|==)?\s*"([A-Z][A-Za-z]+)"/g)) {
        if (!lit[1]) hits.push({ reason: lit[2]!, at: `${file}:${i + 1}` });
      }
    }
  });
  return hits;
}

/** The expression at the start of `s`: up to the first `,` `;` `)` `]` `}` outside brackets and strings. */
function expression(s: string): string {
  let depth = 0;
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
      continue;
    }
    if (c === '"' || c === "'" || c === "`") quote = c;
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) {
      if (depth === 0) return s.slice(0, i);
      depth--;
    } else if ((c === "," || c === ";") && depth === 0) return s.slice(0, i);
  }
  return s;
}

function tsFiles(path: string): string[] {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path).flatMap((n) => tsFiles(join(path, n))).filter((f) => f.endsWith(".ts") && !/\.test(-util)?\.ts$/.test(f));
}

/** Every reason the code can emit, with where; `root` is the repository. */
export function reasonsInCode(root: string, sources = REASON_SOURCES): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of sources.flatMap((s) => tsFiles(join(root, s)))) {
    for (const h of reasonsInSource(readFileSync(f, "utf8"), relative(root, f))) out.set(h.reason, [...(out.get(h.reason) ?? []), h.at]);
  }
  return out;
}

/** Reasons documented: backticked words in the table rows of the troubleshooting page. */
export function reasonsInDocs(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const line of markdown.split("\n")) {
    if (!line.startsWith("|")) continue;
    for (const m of line.matchAll(/`([A-Z][A-Za-z]+)`/g)) out.add(m[1]!);
  }
  return out;
}
