#!/usr/bin/env bash
# Benchmarks the docker backend on this machine, in one run: the latency of a
# python hello world (print('hi')) through the DockerSandbox with no pool,
# with a warm pool, and back to back, against a bare
# `docker run --rm <job image> python3 -c "print('hi')"` of the same image.
# Target: p50 <= 100 ms with the pool.
#
# Builds the job image when missing (scripts/build-images.sh runner) and the
# example crates/sandbox/examples/docker_latency.rs in release mode. Needs a
# Docker engine (root or the docker group).
#
# Usage: scripts/bench-docker.sh [--runs N] [--runtime RUNTIME] [--image IMAGE]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

image=${CODE_RUNNER_DOCKER_IMAGE:-code-runner-runner:latest}
if ! docker image inspect "$image" >/dev/null 2>&1; then
  bash scripts/build-images.sh runner
fi
cargo build --release --quiet -p code-runner-sandbox --example docker_latency
exec target/release/examples/docker_latency --image "$image" "$@"
