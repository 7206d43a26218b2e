#!/usr/bin/env bash
# Runs every test of a Rust test binary in a process of its own, N at a
# time, as cargo-nextest does on the host: the native sandbox suite keeps
# one sandbox per process, and its slots belong to the runtime of the test
# that made them, so tests sharing a process can meet a slot whose runtime
# has ended. scripts/compose-native.sh runs it inside the worker's container,
# which has no cargo.
#
# Usage: scripts/each-test.sh TEST_BINARY [PARALLEL (default 2)]
set -uo pipefail
bin=${1:?usage: scripts/each-test.sh TEST_BINARY [PARALLEL]}
parallel=${2:-2}
tests=$("$bin" --list --format terse | sed -n 's/: test$//p')
count=$(printf '%s\n' "$tests" | grep -c .)
[ "$count" -gt 0 ] || { echo "scripts/each-test.sh: $bin lists no tests" >&2; exit 1; }
export bin
start=$SECONDS
printf '%s\n' "$tests" | xargs -P "$parallel" -I{} bash -c '
  out=$(mktemp)
  t0=$SECONDS
  if "$bin" --exact "$1" --test-threads 1 >"$out" 2>&1; then
    printf "ok      %-70s %3ds\n" "$1" "$((SECONDS - t0))"
    rm -f "$out"
  else
    printf "FAILED  %s\n" "$1"
    cat "$out"
    rm -f "$out"
    exit 1
  fi' _ {}
status=$?
if [ "$status" -eq 0 ]; then
  echo "all $count tests passed, each in its own process, in $((SECONDS - start)) s"
else
  echo "scripts/each-test.sh: some of the $count tests failed (see FAILED above)" >&2
  exit 1
fi
