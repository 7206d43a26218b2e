#!/usr/bin/env bash
# Brings up docker-compose.native.yml -- the worker runs jobs with the native
# backend inside its own unprivileged container (no `privileged`, no Docker
# socket) -- and tests the sandbox through it, in this order:
#
#   1. the delegated cgroup subtree (scripts/native-cgroups.sh up);
#   2. `code-runner doctor` in a container with the worker's settings: every
#      check must pass;
#   3. the same doctor with the seccomp profile left out (the engine's
#      default instead) must fail, naming the user namespace: the settings
#      are what makes it work, and doctor sees it;
#   4. the native sandbox suite (crates/sandbox/tests/native.rs: conformance,
#      limits, attacks, interactive, judge), the test binary built on the
#      host, run inside a container with the worker's settings, each test in
#      a process of its own (scripts/each-test.sh, as nextest does);
#   5. the deployment up (API, Redis, worker), one job per language and a
#      few hostile ones through the published port, then down.
#
# The worker's containers are made with `docker run` from the worker
# service's settings in docker-compose.native.yml (scripts/compose-service-args.py):
# Compose v1, Debian 12's docker-compose, cannot pass systempaths=unconfined
# to the engine. The API and Redis come up with Compose; the worker joins
# their network under its service name.
#
# Needs the images (scripts/build-images.sh service native redis) and root.
# Usage: scripts/compose-native.sh [NATIVE_SUITE_BINARY]
#   (without a binary, it is built: cargo test --test native --no-run)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

start=$SECONDS
log() { printf '[compose-native %(%H:%M:%S)T +%ds] %s\n' -1 "$((SECONDS - start))" "$*" >&2; }

if [ $# -gt 0 ]; then
  suite=$1
  shift
else
  log "building the native sandbox suite (cargo test -p code-runner-sandbox --test native --no-run)"
  suite=$(cargo test -p code-runner-sandbox --test native --no-run --message-format=json --quiet |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "native" and m.get("executable"):
        print(m["executable"])')
fi
suite=$(realpath "$suite")
[ -x "$suite" ] || { echo "scripts/compose-native.sh: $suite is not an executable test binary" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "scripts/compose-native.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi
compose_files=(docker-compose.native.yml)
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
  compose_files+=(docker-compose.native-apparmor.yml)
fi
files=()
for f in "${compose_files[@]}"; do files+=(-f "$f"); done
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CODE_RUNNER_PORT=$port
export COMPOSE_PROJECT_NAME=code-runner-native-$$
compose+=("${files[@]}")
server=http://127.0.0.1:$port
worker_name=$COMPOSE_PROJECT_NAME-worker
# `docker run` options of the worker service, minus what `--without` names.
worker_args() {
  local args=() w
  for w in "$@"; do args+=(--without "$w"); done
  /usr/bin/python3 scripts/compose-service-args.py "$(IFS=,; echo "${compose_files[*]}")" code-runner-worker "${args[@]}"
}
mapfile -t worker < <(worker_args)
[ ${#worker[@]} -gt 1 ] || { echo "scripts/compose-native.sh: no worker settings" >&2; exit 1; }

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "failed (exit $status); the services' logs:"
    "${compose[@]}" logs --no-color --tail=60 >&2 || true
    docker logs --tail 60 "$worker_name" >&2 2>&1 || true
  fi
  log "down"
  docker rm -f "$worker_name" >/dev/null 2>&1 || true
  "${compose[@]}" down -v --remove-orphans --timeout 60 >/dev/null 2>&1 || true
  bash scripts/native-cgroups.sh down || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The subtree the worker's container may write.
bash scripts/native-cgroups.sh up
log "cgroup subtree /code-runner-native delegated (memory, pids, cpu, cpuacct)"

# 2. doctor, with exactly the worker's settings.
log "doctor in a container with the worker's settings"
report=$(docker run --rm "${worker[@]}" doctor) || { printf '%s\n' "$report" >&2; exit 1; }
printf '%s\n' "$report" >&2
# ... and root there is not the host's root.
printf '%s\n' "$report" | grep -q 'root here is host uid 100000' ||
  { echo "scripts/compose-native.sh: the worker is not in a user namespace of its own" >&2; exit 1; }

# ... and the host's sysctls are out of its reach although /proc is unmasked
# (writing back the value the host has: a no-op, were it to succeed).
value=$(cat /proc/sys/kernel/printk_ratelimit)
if docker run --rm "${worker[@]:0:${#worker[@]}-1}" --entrypoint /usr/local/libexec/code-runner-userns \
  "${worker[@]: -1}" /bin/sh -c "echo $value >/proc/sys/kernel/printk_ratelimit" 2>/dev/null; then
  echo "scripts/compose-native.sh: the worker's container can write host sysctls" >&2
  exit 1
fi
log "the worker is host uid 100000 in its own user namespace; host sysctls are not writable"

# 3. The same container without the seccomp profile (the engine's default
# instead, which refuses unshare without CAP_SYS_ADMIN): doctor must fail and
# say why.
log "doctor without deploy/native/seccomp.json (must fail)"
mapfile -t no_seccomp < <(worker_args security_opt=seccomp=deploy/native/seccomp.json)
set +e
refused=$(docker run --rm "${no_seccomp[@]}" doctor 2>&1)
refused_status=$?
set -e
printf '%s\n' "$refused" | grep -E '^MISSING' >&2 || true
if [ "$refused_status" -ne 1 ] || ! printf '%s\n' "$refused" | grep -q '^MISSING  user namespace'; then
  echo "scripts/compose-native.sh: doctor without the seccomp profile should have failed on the user namespace (exit $refused_status):" >&2
  printf '%s\n' "$refused" >&2
  exit 1
fi

# 4. The native sandbox suite inside the worker's container: the test binary
# and the keeper it names are under $repo, bound read-only at the same path.
log "native sandbox suite in the worker's container ($(basename "$suite"))"
docker run --rm -v "$repo:$repo:ro" -w "$repo/crates/sandbox" \
  --entrypoint /usr/local/libexec/code-runner-userns \
  "${worker[@]}" /bin/bash "$repo/scripts/each-test.sh" "$suite" 2
log "native sandbox suite passed in the unprivileged container"

# 5. The deployment itself.
log "up -d code-runner-api redis (${compose[*]}, port $port), then the worker"
"${compose[@]}" up -d code-runner-api redis >"/tmp/compose-native-$$.log" 2>&1 ||
  { tail -n 40 "/tmp/compose-native-$$.log" >&2; rm -f "/tmp/compose-native-$$.log"; exit 1; }
rm -f "/tmp/compose-native-$$.log"
docker run -d --name "$worker_name" --network "${COMPOSE_PROJECT_NAME}_default" \
  --network-alias code-runner-worker "${worker[@]}" worker >/dev/null

/usr/bin/python3 - "$server" <<'EOF'
import json, sys, time, urllib.request

server = sys.argv[1]
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(server + "/health", timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the API did not answer /health within 60 s")
        time.sleep(0.5)

# (language, code, check of the result)
hello = lambda want: (lambda r: r["status"] == "SUCCESS" and r["result"] == {"output": want})
jobs = {
    "python": ("python", "print('hello from python')", hello("hello from python\n")),
    "javascript": ("javascript", "console.log('hello from javascript')", hello("hello from javascript\n")),
    "java": ("java", 'public class Main { public static void main(String[] a) { System.out.println("hello from java"); } }',
             hello("hello from java\n")),
    "cpp": ("cpp", '#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }', hello("hello from cpp\n")),
    "c": ("c", '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }', hello("hello from c\n")),
    # Not root, no capabilities, no network, not the container's processes.
    "isolation": ("python", """
import os, socket
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]
try:
    socket.create_connection(('redis', 6379), timeout=2); net = 'reached redis'
except OSError as e:
    net = 'no network'
print(os.getuid(), caps, net, sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:3])
""", lambda r: r["status"] == "SUCCESS" and r["result"]["output"].split()[:4] == ["1000", "0000000000000000", "no", "network"]),
    # The memory cgroup of the slot, in the delegated subtree, ends it.
    "memory": ("python", "x = bytearray(2 << 30)\nprint('allocated')",
               lambda r: "allocated" not in json.dumps(r["result"]) and r["status"] != "SUCCESS"),
    # The pids cgroup holds a fork bomb.
    "fork bomb": ("c", "#include <unistd.h>\nint main(void) { for (;;) fork(); }",
                  lambda r: r["status"] not in ("PENDING", "SUCCESS")),
}

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)

ids = {name: call("POST", "/run-code", {"language": lang, "code": code})["task_id"]
       for name, (lang, code, _) in jobs.items()}
failed = 0
for name, task in ids.items():
    deadline = time.monotonic() + 60
    while True:
        result = call("GET", f"/results/{task}")
        if result["status"] != "PENDING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ok = jobs[name][2](result)
    print(f"{name:<11} {'ok' if ok else 'FAILED':<7} {result['status']:<8} {json.dumps(result['result'])[:110]}")
    failed += not ok
print(f"{len(jobs) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
log "five languages and the hostile jobs answered through the published port"
# The worker stops cleanly, and nothing of its jobs outlives it: no process
# is left in the delegated subtree (the slot directories themselves are
# swept by the next start, or by scripts/native-cgroups.sh down).
docker stop -t 60 "$worker_name" >/dev/null
left=$(find /sys/fs/cgroup/{memory,pids,cpu,cpuacct}/code-runner-native/slots -name cgroup.procs -exec cat {} + | wc -l)
if [ "$left" -ne 0 ]; then
  echo "scripts/compose-native.sh: $left processes left in the worker's cgroups after it stopped" >&2
  exit 1
fi
log "the worker stopped; no process left in its cgroups"
