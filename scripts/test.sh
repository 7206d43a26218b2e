#!/usr/bin/env bash
# Runs the whole test suite with real parts: it installs what the tests need
# when it is missing (Debian packages: redis-server, bubblewrap), then runs
# every test of the workspace. Needs root (the native sandbox uses cgroups,
# mounts and per-job uids). Usage: scripts/test.sh [extra cargo-nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server)
[ -x /usr/bin/bwrap ] || need_packages+=(bubblewrap)
command -v javac >/dev/null 2>&1 || need_packages+=(openjdk-17-jdk-headless)
command -v node >/dev/null 2>&1 || need_packages+=(nodejs)
command -v g++ >/dev/null 2>&1 || need_packages+=(g++)
[ -x /usr/bin/python3 ] || need_packages+=(python3)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "installing: ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_packages[@]}"
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the sandbox tests need root (cgroups, mounts, per-job uids)" >&2
  exit 1
fi

# The integration tests start their own redis-server processes on random
# ports; nothing needs to be running beforehand.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast "$@"
fi
