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
# The API's OpenAPI check (schemathesis) and the playground's browser test
# (Selenium driving headless Chromium) run from a Python virtualenv.
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need_packages+=(python3-venv)
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || need_packages+=(chromium-driver)
command -v redis-cli >/dev/null 2>&1 || need_packages+=(redis-tools)
# scripts/verify-systemd.sh checks deploy/systemd with systemd-analyze.
command -v systemd-analyze >/dev/null 2>&1 || need_packages+=(systemd)
# scripts/compose-service-args.py reads docker-compose.native.yml.
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need_packages+=(python3-yaml)
# The many-hosts test makes network namespaces and veth pairs (ip) and
# starts workers in them (nsenter).
command -v ip >/dev/null 2>&1 || need_packages+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need_packages+=(util-linux)
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

# schemathesis and selenium from PyPI, in a virtualenv under target/ (the
# end-to-end tests find it there; CODE_RUNNER_TEST_PYTHON overrides); and
# piston-rspy, a Piston client the Piston API's tests run unchanged; and
# Judge0's official Python SDK, which tests/e2e/judge0.rs runs unchanged;
# and kubernetes-validate, the Kubernetes schemas scripts/validate-k8s.sh
# checks the manifests against.
venv=target/py-venv
if ! "$venv/bin/python" -c 'import schemathesis, selenium, piston_rspy, judge0, kubernetes_validate' >/dev/null 2>&1; then
  echo "preparing $venv (schemathesis, selenium, piston-rspy, judge0, kubernetes-validate)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5' 'selenium>=4.20,<5' \
    'piston-rspy>=0.4.3,<0.5' 'judge0>=0.0.8,<0.1' 'kubernetes-validate>=1.33,<2'
fi

# --- docker backend (issue 5) ----------------------------------------------
# Its tests (crates/sandbox/tests/docker.rs) run on the real engine and need
# the job image: built offline from a debootstrapped Debian base; what exists
# is skipped (the base, the cached debootstrap tarball, cached build steps).
# gVisor's runsc (Debian's package) is registered with the engine when it is
# not, so that a test runs a job under a runtime other than the default.
bash scripts/build-images.sh base runner redis
bash scripts/register-runsc.sh
# ----------------------------------------------------------------------------

# --- docker-compose deployment (issue 5) ------------------------------------
# The service image from the debug binary, then the seed's docker-compose.yml
# brought up for real, one job per language through the published port, and
# brought down. It runs before the test suite so the suite's summary is the
# last thing printed.
cargo build --bin code-runner
CODE_RUNNER_SERVICE_PROFILE=debug bash scripts/build-images.sh service
CODE_RUNNER_SERVICE_PROFILE=debug bash scripts/compose-smoke.sh
# ----------------------------------------------------------------------------

# --- Kubernetes manifests (issue 16) ----------------------------------------
# deploy/k8s's overlays rendered and checked offline: the Kubernetes schemas
# (strict), KEDA's fields, and the names and settings the code reads.
bash scripts/validate-k8s.sh
# deploy/systemd's units (bare hosts), checked offline by systemd-analyze.
bash scripts/verify-systemd.sh
# ----------------------------------------------------------------------------

# --- the native worker in an unprivileged container (issue 16) --------------
# docker-compose.native.yml: no `privileged`, no Docker socket. The worker's
# image (the job image's toolchains, bubblewrap, the debug binary), then
# scripts/compose-native.sh: `code-runner doctor` in the worker's container
# (must pass; without the seccomp profile, must fail), the native sandbox
# suite (conformance, limits, attacks) run inside that container, and the
# deployment up with jobs through its port.
CODE_RUNNER_SERVICE_PROFILE=debug bash scripts/build-images.sh native
bash scripts/compose-native.sh
# ----------------------------------------------------------------------------

# The integration tests start their own redis-server processes on random
# ports; nothing needs to be running beforehand. The workspace has no
# doctests, so nextest (which skips them) runs everything.
if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace --no-fail-fast)
else
  runner=(cargo test --workspace --no-fail-fast)
fi
# The suite holds programs to wall clocks of a few seconds. A fresh machine
# is still writing back the gigabytes built above (images, binaries), and a
# program whose interpreter is read from that disk can spend its whole
# clock waiting for it (seen once in CI: two docker tests whose python used
# 74 ms of CPU in 2 s). So build the tests, flush, and read the job image's
# files once, before any clock starts.
cargo test --workspace --no-run --quiet
sync
warm=$(docker create --network none code-runner-runner:latest)
docker export "$warm" >/dev/null
docker rm "$warm" >/dev/null
"${runner[@]}" "$@"
