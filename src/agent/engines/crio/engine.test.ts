// CRI-O engine plan: one owned drop-in (host path under the host root), removed when no handler is left.
import assert from "node:assert/strict";
import { it } from "node:test";
import { parse } from "smol-toml";
import { defaultLayout } from "../../../render/node/layout.js";
import { CrioEngine } from "./engine.js";

const input = (handlers: Parameters<CrioEngine["plan"]>[0]["handlers"]) => ({ handlers, allowedAnnotations: [], runtimeLayout: defaultLayout(), runtimePath: (p: string) => p });

it("plans the owned drop-in in crio.conf.d under the host root, restart on change", () => {
  const [c, ...rest] = new CrioEngine("/host").plan(input([{ name: "sandboxed", backend: "kata-qemu", general: true }]));
  assert.equal(rest.length, 0);
  assert.equal(c!.path, "/host/etc/crio/crio.conf.d/50-sandbox-operator.conf");
  assert.equal(c!.foreign, false);
  assert.equal(c!.restart, true);
  const t = parse(c!.content!.toString()) as { crio: { runtime: { runtimes: Record<string, { runtime_type: string }> } } };
  assert.equal(t.crio.runtime.runtimes.sandboxed!.runtime_type, "vm");
});

it("no handlers: the drop-in is removed", () => {
  const [c] = new CrioEngine("/host").plan(input([]));
  assert.equal(c!.content, null);
});
