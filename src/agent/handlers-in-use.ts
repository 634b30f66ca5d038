// The runtime's ready sandboxes and the handler each runs under, asked through CRI: for the payload
// collector (which versions a sandbox still uses) and for CRI-O's revert, since CRI-O finds a pod's
// runtime only by its handler name in its config: once the handler is gone it can neither stop nor
// remove that pod ("failed to find runtime handler"), so its config must stay until they end.
import { CriClient, type PodSandboxItem } from "./cri/client.js";

/** The runtime's ready sandboxes, each with the handler it runs under (CriClient.sandboxHandler: CRI-O lists none). */
export async function readySandboxes(cri: CriClient): Promise<PodSandboxItem[]> {
  const ready = (await cri.listPodSandbox()).filter((p) => p.state === "SANDBOX_READY");
  return Promise.all(ready.map(async (p) => ({ ...p, runtime_handler: await cri.sandboxHandler(p) })));
}

/** `namespace/name` (or the sandbox id) of each ready sandbox whose handler is in `handlers`. */
export async function sandboxesOnHandlers(socket: string, handlers: readonly string[]): Promise<string[]> {
  const wanted = new Set(handlers);
  if (!wanted.size) return [];
  const cri = new CriClient(socket);
  try {
    return (await readySandboxes(cri)).filter((p) => wanted.has(p.runtime_handler)).map((p) => (p.metadata?.namespace ? `${p.metadata.namespace}/${p.metadata.name} (${p.id.slice(0, 12)})` : p.id));
  } finally {
    cri.close();
  }
}
