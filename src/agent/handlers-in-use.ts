// Which ready sandboxes run on a set of our handlers, asked of the runtime through CRI. CRI-O finds
// a pod's runtime only by its handler name in its config: once the handler is gone it can neither
// stop nor remove that pod ("failed to find runtime handler"), so its config must stay until they end.
import { CriClient } from "./cri/client.js";

/** `namespace/name` (or the sandbox id) of each ready sandbox whose handler is in `handlers`. */
export async function sandboxesOnHandlers(socket: string, handlers: readonly string[]): Promise<string[]> {
  const wanted = new Set(handlers);
  if (!wanted.size) return [];
  const cri = new CriClient(socket);
  try {
    const ready = (await cri.listPodSandbox()).filter((p) => p.state === "SANDBOX_READY");
    const on = await Promise.all(ready.map(async (p) => (wanted.has(await cri.sandboxHandler(p)) ? p : null)));
    return on.filter((p) => p !== null).map((p) => (p.metadata?.namespace ? `${p.metadata.namespace}/${p.metadata.name} (${p.id.slice(0, 12)})` : p.id));
  } finally {
    cri.close();
  }
}
