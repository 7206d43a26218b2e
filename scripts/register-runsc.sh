#!/usr/bin/env bash
# Registers gVisor's runsc (Debian 12's `runsc` package, bookworm/main) as an
# OCI runtime of the local Docker engine, so that the docker backend's tests
# run a job under a runtime other than the default one and inspect it there
# (crates/sandbox/tests/docker.rs, configured_runtime_reaches_the_container,
# which fails when the runtime is not registered). Idempotent: nothing
# happens when the engine already lists `runsc`.
#
# It installs the package when /usr/bin/runsc is missing, adds
# {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}
# to /etc/docker/daemon.json (a backup is kept next to it) and makes the
# engine reload it with SIGHUP (runtimes reload without a restart, so running
# containers are untouched). `--network=none`: job containers have no network,
# and gVisor's own network stack then needs nothing from the host.
#
# Fails (exit 1, saying why) when runsc cannot be installed or the engine does
# not take it; daemon.json is then restored. Needs root.
set -euo pipefail

log() { printf '[register-runsc] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
registered() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info)"
if registered; then
  exit 0
fi
if [ ! -x /usr/bin/runsc ]; then
  log "installing Debian's runsc package (gVisor)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends runsc >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    if ! apt-get install -y -qq --no-install-recommends runsc >/dev/null; then
      candidate=$(apt-cache policy runsc 2>/dev/null | awk '/Candidate:/ { print $2; exit }' || true)
      fail "cannot install Debian's runsc package (apt's candidate: ${candidate:-none})"
    fi
  fi
fi
/usr/bin/runsc --version >/dev/null 2>&1 || fail "/usr/bin/runsc does not run"

# The engine's process, to reload its configuration.
dockerd_pid=""
if [ -s /var/run/docker.pid ]; then
  dockerd_pid=$(cat /var/run/docker.pid)
elif command -v pidof >/dev/null 2>&1; then
  dockerd_pid=$(pidof dockerd || true)
fi
case "$dockerd_pid" in
  '' | *' '*) fail "cannot find the one dockerd process to reload (no /var/run/docker.pid)" ;;
esac

config=/etc/docker/daemon.json
backup=$config.code-runner-backup
mkdir -p /etc/docker
had_config=0
if [ -f "$config" ]; then
  cp "$config" "$backup"
  had_config=1
fi
restore() {
  if [ "$had_config" = 1 ]; then cp "$backup" "$config"; else rm -f "$config"; fi
  kill -HUP "$dockerd_pid" 2>/dev/null || true
}
if ! /usr/bin/python3 - "$config" <<'EOF'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("runtimes", {})["runsc"] = {
    "path": "/usr/bin/runsc",
    "runtimeArgs": ["--network=none"],
}
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=2)
os.replace(path + ".tmp", path)
EOF
then
  restore
  fail "cannot update $config"
fi
kill -HUP "$dockerd_pid"
for _ in $(seq 100); do
  if registered; then
    log "runsc registered with the engine"
    exit 0
  fi
  sleep 0.1
done
restore
fail "the engine did not take runsc after a reload; $config restored"
