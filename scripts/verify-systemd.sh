#!/usr/bin/env bash
# Checks the systemd units of deploy/systemd offline with `systemd-analyze
# verify` (unknown keys, bad values, a missing binary): a copy of each whose
# ExecStart points at the debug binary. Any complaint fails.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$PWD/target/debug/code-runner
[ -x "$binary" ] || { echo "scripts/verify-systemd.sh: build target/debug/code-runner first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in deploy/systemd/*.service; do
  sed "s|/usr/local/bin/code-runner|$binary|" "$unit" >"$work/$(basename "$unit")"
done
out=$(systemd-analyze verify "$work"/*.service 2>&1 || true)
if [ -n "$out" ]; then
  echo "$out" >&2
  echo "scripts/verify-systemd.sh: deploy/systemd has problems" >&2
  exit 1
fi
echo "ok: deploy/systemd units verified"
