// `sandboxctl status`: one row per selected node from the SandboxNodes and the SandboxConfig's
// summary; `--watch` redraws until interrupted; `-o json|yaml` for scripts.
import { SANDBOXCONFIG_NAME, type SandboxConfig, type SandboxNode } from "../api/index.js";
import { ApiError, type KubeClient, type KubeObject } from "../kube/client.js";
import { CliError, EXIT } from "./exit-codes.js";
import { sleep, type Io } from "./io.js";
import { renderStatus, statusView, type StatusView } from "./render-status.js";

export interface StatusOptions {
  output: "table" | "json" | "yaml";
  watch: boolean;
  intervalMs?: number;
  signal?: AbortSignal;
  now?: () => Date;
}

export async function readStatus(client: KubeClient): Promise<StatusView> {
  try {
    const [config, nodes] = await Promise.all([
      client.getOrNull<SandboxConfig & KubeObject>("SandboxConfig", SANDBOXCONFIG_NAME),
      client.list<SandboxNode & KubeObject>("SandboxNode"),
    ]);
    return statusView(config, nodes.items);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw new CliError(EXIT.notInstalled, "the sandboxing.dev API is not served here (CRDs missing): run sandboxctl install first");
    throw e;
  }
}

export async function status(client: KubeClient, opts: StatusOptions, io: Io): Promise<number> {
  const now = opts.now ?? (() => new Date());
  if (!opts.watch) {
    io.out(renderStatus(await readStatus(client), opts.output, now()));
    return EXIT.ok;
  }
  let last = "";
  while (!opts.signal?.aborted) {
    const view = await readStatus(client);
    // On a terminal redraw every tick (ages move); in a pipe or log print only real changes.
    const key = JSON.stringify(view);
    if (io.isTTY || key !== last) {
      const text = renderStatus(view, opts.output, now());
      io.frame(opts.output === "table" && !io.isTTY && last ? `\n${text}` : text);
      last = key;
    }
    await sleep(opts.intervalMs ?? 1000, opts.signal);
  }
  return EXIT.ok;
}
