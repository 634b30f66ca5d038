// Command-line parsing for runtime discovery, by table: what containerd and kubelet command lines
// look like on kubeadm, k3s, RKE2-like and systemd nodes, and which containerd is chosen.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chooseContainerd, containerdProcess, endpointPath, parseContainerdArgs, parseKubeletArgs, splitCmdline, systemdUnitOf, type ContainerdProcess } from "./cmdline.js";

describe("parseContainerdArgs", () => {
  const cases: Array<[string, string[], ReturnType<typeof parseContainerdArgs>]> = [
    ["systemd unit, no flags", ["/usr/bin/containerd"], {}],
    ["k3s", ["containerd", "-c", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml", "-a", "/run/k3s/containerd/containerd.sock", "--state", "/run/k3s/containerd", "--root", "/var/lib/rancher/k3s/agent/containerd"], { config: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml", address: "/run/k3s/containerd/containerd.sock" }],
    ["long flags with =", ["/usr/local/bin/containerd", "--config=/etc/c/config.toml", "--address=/run/c.sock"], { config: "/etc/c/config.toml", address: "/run/c.sock" }],
    ["long flags with space, log level between", ["containerd", "--log-level", "debug", "--config", "/x.toml", "--address", "/y.sock"], { config: "/x.toml", address: "/y.sock" }],
    ["single-dash long flags (urfave/cli)", ["containerd", "-config", "/x.toml", "-address=/y.sock"], { config: "/x.toml", address: "/y.sock" }],
    ["the last one wins", ["containerd", "-c", "/a.toml", "-c", "/b.toml"], { config: "/b.toml" }],
    ["a subcommand is not the daemon", ["containerd", "config", "default"], null],
    ["a subcommand after flags", ["containerd", "--address", "/y.sock", "config", "dump"], null],
    ["the shim is not containerd", ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock"], null],
    ["another program", ["/usr/bin/dockerd", "--containerd", "/run/containerd/containerd.sock"], null],
    ["empty (a kernel thread)", [], null],
  ];
  for (const [name, argv, want] of cases) it(name, () => assert.deepEqual(parseContainerdArgs(argv), want));
});

describe("parseKubeletArgs", () => {
  const cases: Array<[string, string[], ReturnType<typeof parseKubeletArgs>]> = [
    ["kubeadm: config file, endpoint in it", ["/usr/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--config=/var/lib/kubelet/config.yaml", "--v", "2"], { config: "/var/lib/kubelet/config.yaml" }],
    ["endpoint flag", ["kubelet", "--container-runtime-endpoint", "unix:///run/k3s/containerd/containerd.sock", "--fail-swap-on=false"], { endpoint: "unix:///run/k3s/containerd/containerd.sock" }],
    ["not a kubelet", ["/usr/bin/kube-proxy", "--config=/x"], null],
  ];
  for (const [name, argv, want] of cases) it(name, () => assert.deepEqual(parseKubeletArgs(argv), want));
});

it("splitCmdline: NUL-separated with a trailing NUL; empty strings inside are kept", () => {
  assert.deepEqual(splitCmdline("containerd\0-c\0/x.toml\0"), ["containerd", "-c", "/x.toml"]);
  assert.deepEqual(splitCmdline("a\0\0b\0"), ["a", "", "b"]);
  assert.deepEqual(splitCmdline(""), []);
});

it("endpointPath: unix:// and bare paths; other schemes have no path", () => {
  assert.equal(endpointPath("unix:///run/containerd/containerd.sock"), "/run/containerd/containerd.sock");
  assert.equal(endpointPath("/run/crio/crio.sock"), "/run/crio/crio.sock");
  assert.equal(endpointPath("tcp://127.0.0.1:1234"), undefined);
});

it("containerdProcess fills in containerd's defaults", () => {
  assert.deepEqual(containerdProcess(7, ["/usr/bin/containerd"]), { pid: 7, config: "/etc/containerd/config.toml", address: "/run/containerd/containerd.sock", explicitConfig: false });
});

describe("chooseContainerd", () => {
  const p = (pid: number, address: string): ContainerdProcess => ({ pid, address, config: `/etc/${pid}.toml`, explicitConfig: true });
  const docker = p(10, "/run/containerd/containerd.sock");
  const k3s = p(20, "/run/k3s/containerd/containerd.sock");
  const sockets: Record<string, string> = { "/host/run/k3s/containerd/containerd.sock": "/run/k3s/containerd/containerd.sock", "unix:///run/k3s/containerd/containerd.sock": "/run/k3s/containerd/containerd.sock" };
  // The shell compares inodes; here: the hint names the process's address.
  const serves = (hints: { criSocket?: string; kubeletEndpoint?: string }) => (c: ContainerdProcess, which: "cri-socket" | "kubelet") => sockets[(which === "cri-socket" ? hints.criSocket : hints.kubeletEndpoint)!] === c.address;
  const cases: Array<[string, ContainerdProcess[], { criSocket?: string; kubeletEndpoint?: string }, number | undefined, RegExp]> = [
    ["--cri-socket names one", [docker, k3s], { criSocket: "/host/run/k3s/containerd/containerd.sock" }, 20, /serves --cri-socket/],
    ["--cri-socket that nobody serves: none, and the kubelet is not asked", [docker], { criSocket: "/nowhere.sock", kubeletEndpoint: "unix:///run/k3s/containerd/containerd.sock" }, undefined, /no containerd process serves --cri-socket \/nowhere\.sock/],
    ["the kubelet's endpoint beats the default socket", [docker, k3s], { kubeletEndpoint: "unix:///run/k3s/containerd/containerd.sock" }, 20, /the kubelet's endpoint/],
    ["kubelet on something else (CRI-O): the only containerd", [k3s], { kubeletEndpoint: "unix:///run/crio/crio.sock" }, 20, /the only containerd serving a socket under the host root/],
    ["two, no kubelet: the default socket", [docker, k3s], {}, 10, /the default socket \(2 containerd processes\)/],
    ["none: say hostPID", [], {}, undefined, /no containerd process found in \/proc \(does the agent pod have hostPID\?\)/],
    ["two, neither default: ambiguous", [k3s, p(30, "/run/other.sock")], {}, undefined, /2 containerd processes \(pids 20, 30\) and none is the kubelet's: pass --cri-socket/],
  ];
  for (const [name, cands, hints, pid, why] of cases) {
    it(name, () => {
      const c = chooseContainerd(cands, hints, serves(hints));
      assert.equal(c.chosen?.pid, pid);
      assert.match(c.why, why);
    });
  }
});

describe("systemdUnitOf: the unit that restarts the runtime, from its cgroup", () => {
  const cases: Array<[string, string, string | undefined]> = [
    ["cgroup v1, Debian's containerd", "12:pids:/system.slice/containerd.service\n1:name=systemd:/system.slice/containerd.service\n0::/system.slice/containerd.service\n", "containerd.service"],
    ["cgroup v2, k3s's embedded containerd", "0::/system.slice/k3s.service\n", "k3s.service"],
    ["k3s agent", "0::/system.slice/k3s-agent.service\n", "k3s-agent.service"],
    ["RKE2 server", "0::/system.slice/rke2-server.service\n", "rke2-server.service"],
    ["microk8s (snap unit)", "0::/system.slice/snap.microk8s.daemon-containerd.service\n", "snap.microk8s.daemon-containerd.service"],
    ["a kind node: the innermost unit", "1:name=systemd:/docker/0123abcd/system.slice/containerd.service\n", "containerd.service"],
    ["v1 name=systemd wins over the v2 line", "1:name=systemd:/system.slice/k0sworker.service\n0::/\n", "k0sworker.service"],
    ["no systemd unit (a test's containerd)", "1:name=systemd:/\n0::/\n", undefined],
  ];
  for (const [name, cgroup, want] of cases) it(name, () => assert.equal(systemdUnitOf(cgroup), want));
});
