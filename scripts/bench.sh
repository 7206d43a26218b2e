#!/usr/bin/env bash
# Benchmarks code-runner on this machine and prints one report: each figure,
# its target and its ratio to the bare program, all measured in this run. The
# report also quotes figures of the original design (the seed's FastAPI +
# Celery + Docker deployment) and ratios to them: those are fixed reference
# numbers written into the benchmark (crates/bench/src/report.rs), not
# measured by this script, and marked "[fixed ref]" wherever they appear.
#
# It builds the release binaries, starts a private redis-server and the API
# on free loopback ports, measures POST /run-code with no worker running (so
# the queue only fills), flushes Redis, starts a worker, then measures the
# bare python3 baseline, python hello latency and throughput, idle memory,
# judge mode (C, 1,000 tests in one job; Java, 100 tests), which needs
# gcc on the host for the bare C baseline, and live output (a program's write
# to the SSE client, p50/p99; (c) with an SSE client on each of 500 jobs).
# Everything it started is stopped on exit, on failure too.
#
# Installs redis-server and bubblewrap from Debian's packages when missing.
# Needs root: the worker's sandbox manages cgroups, mounts and per-job uids.
#
# Usage: scripts/bench.sh [--no-build] [--jobs-only] [--json FILE] [more code-runner-bench flags]
#   --no-build  benchmark the code-runner binary already in target/release
#               (only the benchmark itself is built), e.g. while the tree
#               does not compile.
#   --jobs-only leave out judge mode (e), (f) and live output (g), the long
#               part of a run: (a) to (d) and (b'), (c') only.
set -euo pipefail
# Not cd'ing there, so a relative --json path is the caller's.
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/bench.sh: must run as root (the worker's sandbox uses cgroups, mounts and per-job uids)" >&2
  exit 1
fi

need_packages=()
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_packages+=(redis-tools)
[ -x /usr/bin/bwrap ] || need_packages+=(bubblewrap)
[ -x /usr/bin/python3 ] || need_packages+=(python3)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "installing: ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_packages[@]}"
fi

build_service=1
jobs_only=0
bench_args=()
for arg in "$@"; do
  case $arg in
    --no-build) build_service=0 ;;
    --jobs-only) jobs_only=1 ;;
    *) bench_args+=("$arg") ;;
  esac
done

# The root package is the default member, so name each binary.
packages=(-p code-runner-bench)
[ "$build_service" -eq 1 ] && packages+=(-p code-runner)
(cd "$repo" && cargo build --release --quiet "${packages[@]}")
runner=$repo/target/release/code-runner
bench=$repo/target/release/code-runner-bench
if [ ! -x "$runner" ]; then
  echo "scripts/bench.sh: no $runner; run without --no-build first" >&2
  exit 1
fi

work=$(mktemp -d /tmp/code-runner-bench.XXXXXX)
started=()

# Stops what this script started, newest first: TERM, then KILL after 5 s.
cleanup() {
  local status=$?
  local pid i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    pid=${started[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    echo "scripts/bench.sh: failed (exit $status); the service logs:" >&2
    tail -n 20 "$work"/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on the loopback (the kernel picks it).
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs the command until it succeeds, 100 times 0.1 s at most.
wait_for() {
  local _
  for _ in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "scripts/bench.sh: gave up waiting for: $*" >&2
  return 1
}

# Fails when a process started here has already exited (the EXIT trap then
# prints the logs).
ensure_alive() {
  local pid=$1 name=$2
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "scripts/bench.sh: $name exited early" >&2
    return 1
  fi
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
started+=("$redis_pid")
wait_for redis-cli -p "$redis_port" ping
redis_url="redis://127.0.0.1:$redis_port/"

api_port=$(free_port)
# Phase (a) queues about 150,000 jobs with no worker: lift the API's queue
# length limit (backpressure, default 10,000) and the per-client cap of
# unfinished jobs (default 1,000: the benchmark is one client) or it would
# measure 503s and 429s; and phase (g) follows 500 jobs at once, one event
# stream each (default 16 per client). Set through the environment so an API
# without the settings still starts.
CODE_RUNNER_MAX_QUEUE_LENGTH=1000000000 CODE_RUNNER_MAX_UNFINISHED_PER_CLIENT=1000000000 \
  CODE_RUNNER_MAX_EVENT_STREAMS_PER_CLIENT=100000 \
  RUST_LOG=warn \
  "$runner" api --redis-url "$redis_url" --bind "127.0.0.1:$api_port" \
  --key-prefix bench >"$work/api.log" 2>&1 &
api_pid=$!
started+=("$api_pid")
server="http://127.0.0.1:$api_port"

# (a) with no worker: every accepted job just waits in the queue.
"$bench" --server "$server" --phase submit --api-pid "$api_pid" --state "$work/state.json" \
  --no-report "${bench_args[@]}"
ensure_alive "$api_pid" api

# The queued jobs must not reach the worker; Redis starts over empty.
redis-cli -p "$redis_port" flushall >/dev/null

RUST_LOG=warn "$runner" worker --redis-url "$redis_url" --key-prefix bench \
  >"$work/worker.log" 2>&1 &
worker_pid=$!
started+=("$worker_pid")
sleep 1
ensure_alive "$worker_pid" worker

# (e) and (f), judge mode, after the idle memory is read: a C program on
# 1,000 tests in one job (the API's default --max-tests and --max-test-bytes
# fit it) against the same binary bare and 1,000 separate submissions; a
# Java solution on 100 tests against 100 separate submissions. Then (g),
# live output over SSE.
phases=baseline,latency,throughput,rss,judge,judge-java,live
[ "$jobs_only" -eq 1 ] && phases=baseline,latency,throughput,rss
# The pids also give phase (c) its split of the machine's CPU per job.
"$bench" --server "$server" --phase "$phases" \
  --api-pid "$api_pid" --worker-pid "$worker_pid" --redis-pid "$redis_pid" \
  --state "$work/state.json" \
  --no-report "${bench_args[@]}"
ensure_alive "$api_pid" api
ensure_alive "$worker_pid" worker

# (b') and (c'): the same hello jobs on a worker whose language table has
# `prefork = true` for python (each run forked from the slot's pristine
# interpreter, docs/prefork.md), against the bare figures of this run.
kill -TERM "$worker_pid"
wait "$worker_pid" 2>/dev/null || true
python_run='run = ["/usr/bin/python3", "main.py"]'
cp "$repo/crates/sandbox/languages.toml" "$work/languages.toml"
grep -qxF "$python_run" "$work/languages.toml"
sed -i "s|^run = \[\"/usr/bin/python3\", \"main.py\"\]\$|&\nprefork = true|" "$work/languages.toml"
grep -qx 'prefork = true' "$work/languages.toml"
RUST_LOG=warn "$runner" worker --redis-url "$redis_url" --key-prefix bench \
  --languages "$work/languages.toml" >"$work/worker-prefork.log" 2>&1 &
worker_pid=$!
started+=("$worker_pid")
sleep 1
ensure_alive "$worker_pid" worker
"$bench" --server "$server" --phase latency-prefork,throughput-prefork \
  --api-pid "$api_pid" --worker-pid "$worker_pid" --redis-pid "$redis_pid" \
  --state "$work/state.json" "${bench_args[@]}"
ensure_alive "$api_pid" api
ensure_alive "$worker_pid" worker
