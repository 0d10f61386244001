#!/usr/bin/env bash
# Runs Bulwark's whole test suite on a fresh Debian machine: installs what the
# tests need (restic 0.14 as the interop oracle, setpriv), then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v restic >/dev/null 2>&1 || need+=(restic)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
restic version

cargo test --workspace --locked "$@"
