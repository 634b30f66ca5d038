// The agent configures the containerd that really serves CRI, not /etc/containerd/config.toml by
// habit: a real containerd (Debian 1.6; 2.4.2 from modules) runs with its own --config and socket
// under the host root, next to a default config.toml nobody reads. No --cri-socket, no
// --containerd-config: the agent finds the process in /proc, edits its config, verifies gVisor.
// (k3s's own paths, whose config is regenerated from a template: distributions-rancher.test.ts.)
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "smol-toml";
import { NodeAgent } from "../../src/agent/apply.js";
import { commandRestarter } from "../../src/agent/restart.js";
import { debianConfig, startContainerd, v3Config, type Containerd } from "../harness/containerd.js";
import { gvisorPayload } from "../harness/gvisor.js";
import { TEST_IMAGE } from "../harness/images.js";
import { pino } from "pino";
import { cleanup, hostRoot, RUNSC_FLAGS } from "./helpers.js";

const OWN_CONFIG = "/opt/acme/etc/containerd/config.toml";
const OWN_SOCKET = "/run/acme/containerd/containerd.sock";
const HANDLERS = [{ name: "sandboxed", backend: "gvisor" as const, general: true }, { name: "gvisor", backend: "gvisor" as const }];

for (const version of ["1.6", "2"] as const) {
  describe(`containerd ${version} with --config ${OWN_CONFIG} and --address ${OWN_SOCKET}: found in /proc and configured`, { concurrency: false }, () => {
    let root: string;
    let payload: string;
    let c: Containerd;
    let agent: NodeAgent;
    let original: Buffer;
    // A default config.toml that this containerd does not read: it must stay untouched.
    const decoy = "# the host's default containerd config, not the one the kubelet's containerd runs with\nversion = 2\n";

    before(async () => {
      root = hostRoot();
      payload = await gvisorPayload(version);
      c = await startContainerd({ version, hostRoot: root, hostConfigPath: OWN_CONFIG, socket: join(root, OWN_SOCKET), config: version === "1.6" ? debianConfig(root) : v3Config(root) });
      mkdirSync(join(root, "etc/containerd"), { recursive: true });
      writeFileSync(join(root, "etc/containerd/config.toml"), decoy);
      original = readFileSync(c.configPath);
      // No criSocket, no containerdConfig: what the DaemonSet runs with.
      agent = new NodeAgent({ hostRoot: root, payloadDir: payload, restarter: commandRestarter(c.restartScript), configPrefix: root, runscFlags: RUNSC_FLAGS, verifyImage: TEST_IMAGE, log: pino({ level: process.env.AGENT_LOG ?? "warn" }) });
    });
    after(async () => {
      await c?.stop();
      cleanup(root, payload);
    });

    it("the probe reports the process's config and socket, and how it chose them", async () => {
      const p = await agent.probe();
      assert.equal(p.cri.kind, "containerd");
      assert.equal(p.cri.configPath, OWN_CONFIG);
      assert.equal(p.cri.socket, c.socket);
      assert.match(p.cri.source ?? "", new RegExp(`^containerd pid \\d+ \\(--config ${root}${OWN_CONFIG}, --address ${root}${OWN_SOCKET}\\) the only containerd serving a socket under the host root; config ${OWN_CONFIG} from its --config; CRI answered on ${c.socket}$`), p.cri.source);
    });

    it("apply edits that config (or its drop-in), restarts, verifies gVisor; the default config.toml is untouched", async () => {
      const out = await agent.apply({ hash: `disc${version}`, handlers: HANDLERS });
      assert.equal(out.ok, true, out.message);
      assert.deepEqual(out.handlers.map((h) => [h.name, h.verified]), [["sandboxed", true], ["gvisor", true]]);
      assert.match(out.handlers[0]!.kernel ?? "", /gVisor/);
      assert.equal(c.restarts(), 1);
      const cfg = readFileSync(c.configPath, "utf8");
      if (version === "1.6") assert.match(cfg, /runtimes\.sandboxed\]/, "our block is in the config containerd runs with");
      else {
        const dropIn = join(dirname(OWN_CONFIG), "conf.d/50-sandbox-operator.toml");
        assert.ok(existsSync(join(root, dropIn)), `drop-in beside that config: ${dropIn}`);
        assert.deepEqual((parse(cfg) as { imports?: string[] }).imports, [join(root, dropIn)]);
        assert.equal(existsSync(join(root, "etc/containerd/conf.d")), false);
      }
      assert.equal(readFileSync(join(root, "etc/containerd/config.toml"), "utf8"), decoy);
    });

    it("revert restores that config byte-for-byte", async () => {
      const out = await agent.revert();
      assert.equal(out.ok, true, out.message);
      assert.ok(readFileSync(c.configPath).equals(original));
      assert.equal(readFileSync(join(root, "etc/containerd/config.toml"), "utf8"), decoy);
      if (version === "2") assert.equal(existsSync(join(root, dirname(OWN_CONFIG), "conf.d/50-sandbox-operator.toml")), false);
    });
  });
}
