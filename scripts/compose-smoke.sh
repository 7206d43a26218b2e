#!/usr/bin/env bash
# Brings the docker-compose.yml deployment up for real (`up -d --build`), runs
# one job in each of the five languages through the published port, checks
# the answers, and brings it all down again (on failure too, with the logs).
# Then checks that the worker left no job container behind.
#
# Before the jobs it checks the worker's job containers (the pooled ones):
# each runs as a uid of its own, and, on an engine that nests containers in
# a container (cgroupfs driver, cgroup v1), its cgroup is under the worker's,
# so the service's cpus and memory limits bound the jobs too.
#
# Uses `docker compose` (v2) when present, else `docker-compose` (v1). Adds
# docker-compose.small-host.yml when the host has fewer than 16 cores: the
# engine refuses a CPU limit above the host's count.
#
# Needs the images' inputs: scripts/build-images.sh (the Debian base and the
# service binary) must have run. Usage: scripts/compose-smoke.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

log() { printf '[compose-smoke %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "scripts/compose-smoke.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi
# The classic builder when BuildKit's buildx plugin is absent.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
fi

files=(-f docker-compose.yml)
cores=$(nproc)
if [ "$cores" -lt 16 ]; then
  files+=(-f docker-compose.small-host.yml)
  export CODE_RUNNER_WORKER_CPUS=$cores
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CODE_RUNNER_PORT=$port
export COMPOSE_PROJECT_NAME=code-runner-smoke-$$
compose+=("${files[@]}")
server=http://127.0.0.1:$port

worker_instance=""
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "failed (exit $status); the services' logs:"
    "${compose[@]}" logs --no-color --tail=40 >&2 || true
  fi
  log "down"
  "${compose[@]}" down -v --remove-orphans --timeout 60 >/dev/null 2>&1 || true
  if [ -n "$worker_instance" ]; then
    local left
    left=$(docker ps -aq --filter "label=code-runner.instance=$worker_instance")
    if [ -n "$left" ]; then
      echo "scripts/compose-smoke.sh: job containers left behind: $left" >&2
      docker rm -fv $left >/dev/null 2>&1 || true
      status=1
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "up -d --build (${compose[*]}, port $port)"
"${compose[@]}" up -d --build >"/tmp/compose-smoke-$$.log" 2>&1 ||
  { tail -n 40 "/tmp/compose-smoke-$$.log" >&2; rm -f "/tmp/compose-smoke-$$.log"; exit 1; }
rm -f "/tmp/compose-smoke-$$.log"

worker_id=$("${compose[@]}" ps -q code-runner-worker)
worker_instance=$(docker inspect --format '{{.Config.Hostname}}' "$worker_id")
nano_cpus=$(docker inspect --format '{{.HostConfig.NanoCpus}}' "$worker_id")
memory=$(docker inspect --format '{{.HostConfig.Memory}}' "$worker_id")
log "worker $worker_instance: cpus $((nano_cpus / 1000000000)), memory $((memory / 1024 / 1024)) MiB"

# The worker's pooled job containers (it fills its pools at start-up).
job_ids=""
for _ in $(seq 120); do
  job_ids=$(docker ps -q --filter "label=code-runner.instance=$worker_instance")
  [ "$(printf '%s\n' $job_ids | grep -c .)" -ge 2 ] && break
  sleep 0.5
done
[ -n "$job_ids" ] || { echo "scripts/compose-smoke.sh: the worker started no job container" >&2; exit 1; }
uids=$(for id in $job_ids; do docker inspect --format '{{index .Config.Labels "code-runner.uid"}} {{.Config.User}}' "$id"; done)
if [ "$(printf '%s\n' "$uids" | awk '{print $1}' | sort | uniq -d)" != "" ] ||
  printf '%s\n' "$uids" | awk '{ split($2, u, ":"); if (u[1] != $1 || $1 < 1000) bad = 1 } END { exit !bad }'; then
  echo "scripts/compose-smoke.sh: job containers share a uid or run as a system uid: $uids" >&2
  exit 1
fi
log "job containers run as uids $(printf '%s\n' "$uids" | awk '{print $1}' | sort -n | tr '\n' ' ')"
engine_cgroups=$(docker info --format '{{.CgroupDriver}} {{.CgroupVersion}}')
if [ "$engine_cgroups" = "cgroupfs 1" ]; then
  worker_pid=$(docker inspect --format '{{.State.Pid}}' "$worker_id")
  worker_cgroup=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$worker_pid/cgroup")
  for id in $job_ids; do
    parent=$(docker inspect --format '{{.HostConfig.CgroupParent}}' "$id")
    pid=$(docker inspect --format '{{.State.Pid}}' "$id")
    cgroup=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$pid/cgroup" 2>/dev/null || true)
    if [ "$parent" != "$worker_cgroup" ] || [ "${cgroup%/*}" != "$worker_cgroup" ]; then
      echo "scripts/compose-smoke.sh: job container $id (cgroup $cgroup, parent '$parent') is not under the worker's cgroup $worker_cgroup" >&2
      exit 1
    fi
  done
  log "job containers are under the worker's cgroup $worker_cgroup (its limits bound them)"
else
  log "engine cgroups '$engine_cgroups': the jobs are bounded only by a configured parent (docs/docker.md); not checked"
fi

# The API answers once it and Redis are up (60 s at most).
python3 - "$server" <<'EOF'
import sys, time, urllib.request
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(sys.argv[1] + "/health", timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the API did not answer /health within 60 s")
        time.sleep(0.5)
EOF

# Submits every job first, then polls each result (30 s at most per job).
python3 - "$server" <<'EOF'
import json, sys, time, urllib.request

server = sys.argv[1]
jobs = {
    "python": ("print('hello from python')", "hello from python\n"),
    "javascript": ("console.log('hello from javascript')", "hello from javascript\n"),
    "java": ('public class Main { public static void main(String[] a) { System.out.println("hello from java"); } }',
             "hello from java\n"),
    "cpp": ('#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }', "hello from cpp\n"),
    "c": ('#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }', "hello from c\n"),
}

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)

ids = {lang: call("POST", "/run-code", {"language": lang, "code": code})["task_id"]
       for lang, (code, _) in jobs.items()}
failed = 0
for lang, task in ids.items():
    deadline = time.monotonic() + 30
    while True:
        result = call("GET", f"/results/{task}")
        if result["status"] != "PENDING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    want = jobs[lang][1]
    ok = result["status"] == "SUCCESS" and result["result"] == {"output": want}
    print(f"{lang:<11} {result['status']:<8} {json.dumps(result['result'])[:100]}")
    failed += not ok
print(f"{len(jobs) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
log "all five languages answered through the published port"
