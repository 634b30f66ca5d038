// A deterministic tar writer (ustar + PAX for long names): entries sorted by path, fixed mtime,
// uid/gid 0, normalised modes, so the same files give the same bytes and the same digest.
export type TarEntry =
  | { path: string; type: "file"; mode: number; content: Buffer }
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "symlink"; target: string };

const BLOCK = 512;
/** Every entry's mtime: the epoch, as reproducible-builds.org suggests when no better date exists. */
export const FIXED_MTIME = 0;

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function writeString(buf: Buffer, offset: number, width: number, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > width) throw new Error(`tar: "${value}" does not fit in ${width} bytes`);
  bytes.copy(buf, offset);
}

function paxRecord(key: string, value: string): string {
  // "<len> <key>=<value>\n" where <len> counts the whole record, its own digits included.
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function header(name: string, opts: { mode: number; size: number; typeflag: string; linkname?: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, name);
  writeString(h, 100, 8, octal(opts.mode & 0o7777, 8));
  writeString(h, 108, 8, octal(0, 8));
  writeString(h, 116, 8, octal(0, 8));
  writeString(h, 124, 12, octal(opts.size, 12));
  writeString(h, 136, 12, octal(FIXED_MTIME, 12));
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(h, 156, 1, opts.typeflag);
  if (opts.linkname) writeString(h, 157, 100, opts.linkname);
  writeString(h, 257, 6, "ustar\0");
  writeString(h, 263, 2, "00");
  writeString(h, 265, 32, "root");
  writeString(h, 297, 32, "root");
  let sum = 0;
  for (const byte of h) sum += byte;
  writeString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

const pad = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

function entryBlocks(entry: TarEntry): Buffer[] {
  const name = entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  const linkname = entry.type === "symlink" ? entry.target : undefined;
  const out: Buffer[] = [];
  const pax: string[] = [];
  if (Buffer.byteLength(name) > 100) pax.push(paxRecord("path", name));
  if (linkname && Buffer.byteLength(linkname) > 100) pax.push(paxRecord("linkpath", linkname));
  if (pax.length) {
    const body = Buffer.from(pax.join(""), "utf8");
    out.push(header("PaxHeaders/" + name.slice(0, 80), { mode: 0o644, size: body.length, typeflag: "x" }), body, pad(body.length));
  }
  const shortName = Buffer.byteLength(name) > 100 ? name.slice(0, 99) : name;
  const shortLink = linkname && Buffer.byteLength(linkname) > 100 ? linkname.slice(0, 99) : linkname;
  if (entry.type === "file") {
    out.push(header(shortName, { mode: entry.mode, size: entry.content.length, typeflag: "0" }), entry.content, pad(entry.content.length));
  } else if (entry.type === "dir") {
    out.push(header(shortName, { mode: entry.mode, size: 0, typeflag: "5" }));
  } else {
    out.push(header(shortName, { mode: 0o777, size: 0, typeflag: "2", linkname: shortLink }));
  }
  return out;
}

/** Normalises modes the way reproducible image builders do: 0755 for dirs and executables, else 0644. */
export function normalMode(type: "file" | "dir", hostMode: number): number {
  if (type === "dir") return 0o755;
  return hostMode & 0o111 ? 0o755 : 0o644;
}

/** Adds every missing parent directory, drops duplicates (last wins) and sorts by path. */
export function canonicalEntries(entries: TarEntry[]): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, "").replace(/\/+$/, "");
    if (!path) continue;
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!byPath.has(dir)) byPath.set(dir, { path: dir, type: "dir", mode: 0o755 });
    }
    byPath.set(path, { ...e, path });
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The tar archive of `entries`, canonicalised, ending with the two zero blocks. */
export function tar(entries: TarEntry[]): Buffer {
  const blocks = canonicalEntries(entries).flatMap(entryBlocks);
  blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}
