#!/usr/bin/env bash
# Installs what the tests and the demo need, and only what is missing: npm dependencies,
# Debian packages, and upstream binaries built from Go modules into ~/.cache/sandbox-operator.
# Safe to run any number of times. Usage: scripts/setup.sh [test|demo]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = demo ] && [ "$(id -u)" != 0 ]; then
  echo "demo: must run as root (it boots a node container with systemd, containerd, the kubelet and gVisor): sudo npm run demo" >&2
  exit 1
fi

# debootstrap: the cluster tier builds its node rootfs with it (test/harness/node-rootfs.ts).
# conmon: CRI-O's monitor in the node tier; gcc, libc6-dev, pkg-config, libseccomp-dev,
# libsqlite3-dev: CRI-O's cgo build and pinns (test/harness/binaries.ts).
# libblkid-dev: Ignition's cgo build (it reads filesystems with libblkid), the MachineConfig node test.
DEBIAN_PACKAGES=(containerd runc runsc busybox-static iproute2 util-linux debootstrap conmon gcc libc6-dev pkg-config libseccomp-dev libsqlite3-dev libblkid-dev)

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: Debian packages missing: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packaged containerd starts a system service; our tests and demo run their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then systemctl stop containerd || true; fi
fi

if [ "${1:-}" = demo ]; then
  # The demo runs the cluster tier's cluster: the control plane, the node's parts, the registry.
  npx tsx test/harness/build.ts etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl \
    containerd2 containerd2-shim-runc-v2 ctr2 runsc containerd-shim-runsc-v1 cni-bridge cni-host-local cni-loopback cni-portmap registry
else
  npx tsx test/harness/build.ts
fi
