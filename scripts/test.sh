#!/usr/bin/env bash
# Runs Bulwark's whole test suite on a fresh Debian machine: installs what the
# tests need (restic 0.14 as the interop oracle, rclone, setpriv, moto_server,
# PostgreSQL for database sources, systemd-analyze for the packaged units),
# then the gates (rustfmt, clippy -D warnings, cargo audit against the vendored
# RustSec snapshot), cargo test, plus the S3 tests with the `s3` feature.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v restic >/dev/null 2>&1 || need+=(restic)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
command -v openssl >/dev/null 2>&1 || need+=(openssl)   # the hub's TLS test makes a certificate
command -v timeout >/dev/null 2>&1 || need+=(coreutils)
# database-source tests start their own PostgreSQL (15 on bookworm) clusters as
# the `postgres` user: server binaries (initdb, pg_ctl) and the client tools
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v pg_dump >/dev/null 2>&1 || need+=(postgresql-client)
# the packaged systemd units are checked with `systemd-analyze verify`
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
# monitors: a real DNS server (dnsmasq) for the dns probe; promtool (prometheus) checks the shipped
# alert rules and the /metrics exposition
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
restic version
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing: moto[server] (pip)"
  python3 -m pip install -q 'moto[server]'
fi
# a real SMTP sink for the email notifier's tests
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "installing: aiosmtpd (pip)"
  python3 -m pip install -q aiosmtpd
fi

# an independent restic reader checks Bulwark's snapshots (tests/parity.rs)
if ! command -v pyrrhic >/dev/null 2>&1; then
  echo "installing: pyrrhic-restic (pip)"
  python3 -m pip install -q 'pyrrhic-restic==0.6.3' 'msgspec<0.10'
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# Gates before the suite: formatting, lints (also of the S3 code), known
# advisories (RustSec snapshot in ../shared/vendor/advisory-db: these machines
# cannot fetch the database).
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked -p bulwark -p bulwark-engine -p bulwark-store --features s3 --all-targets -- -D warnings
if ! command -v cargo-audit >/dev/null 2>&1; then
  echo "installing: cargo-audit (cargo install, ~8 minutes on 2 cores)"
  cargo install --locked --quiet cargo-audit
fi
advisories="$(cd .. && pwd)/shared/vendor/advisory-db"
cargo audit --no-fetch --db "$advisories" --file Cargo.lock

cargo test --workspace --locked "$@"
# S3-compatible repositories live behind the `s3` feature (opendal doubles the
# build time); their end-to-end test runs against moto_server.
cargo test --locked -p bulwark --features s3 --test s3 "$@"
# The keyless store's conformance suite on S3 (moto_server).
cargo test --locked -p bulwark-store --features s3 "$@"
# The keyless mirror (replication) to S3 (moto_server).
cargo test --locked -p bulwark-replicate --features s3 --test s3 "$@"
