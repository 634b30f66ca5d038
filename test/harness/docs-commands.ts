// Extracts the shell commands from fenced code blocks in Markdown (```sh, ```bash, and ```console
// lines starting with "$ "), for the docs-command test.
export interface DocCommand {
  file: string;
  line: number;
  /** The command with comments removed and continuation lines joined. */
  command: string;
}

export function commandsInMarkdown(markdown: string, file = "<md>"): DocCommand[] {
  const out: DocCommand[] = [];
  let lang: string | undefined;
  let pending: { line: number; text: string } | undefined;
  const lines = markdown.split("\n");
  lines.forEach((raw, i) => {
    const fence = /^\s*```\s*([\w-]*)/.exec(raw);
    if (fence) {
      lang = lang === undefined ? fence[1]! : undefined;
      pending = undefined;
      return;
    }
    if (lang === undefined) return;
    let text: string;
    if (lang === "sh" || lang === "bash" || lang === "shell") text = raw;
    else if (lang === "console" || lang === "") {
      // Bare blocks are output, except lines with a "$ " prompt (the docs show command + output).
      if (pending) text = raw;
      else if (/^\s*\$ /.test(raw)) text = raw.replace(/^\s*\$ /, "");
      else return;
    } else return;
    const code = stripComment(text).trimEnd();
    const start = pending ?? { line: i + 1, text: "" };
    if (code.endsWith("\\")) {
      pending = { line: start.line, text: `${start.text}${code.slice(0, -1).trim()} ` };
      return;
    }
    pending = undefined;
    const command = `${start.text}${code.trim()}`.trim();
    if (command) out.push({ file, line: start.line, command });
  });
  return out;
}

/** Drops a shell comment (a # at the start or after whitespace, outside quotes). */
function stripComment(s: string): string {
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

/** Splits a command line into words (single and double quotes, no expansion). */
export function shellWords(s: string): string[] {
  const words: string[] = [];
  let cur = "";
  let quote = "";
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = "";
      else if (c === "\\" && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) words.push(cur);
      cur = "";
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has || cur) words.push(cur);
  return words;
}
