// Parses the durations the CLI flags take (90s, 5m, 1h30m, or plain seconds) into milliseconds.
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched = re.lastIndex;
  }
  if (!t || matched !== t.length) throw new Error(`"${text}" is not a duration: use e.g. 90s, 5m or 1h30m`);
  return Math.round(total);
}
