#!/usr/bin/env bash
# Builds every image of code-runner's Docker deployment with no container
# registry: a Debian base made here with debootstrap from Debian's package
# mirror and `docker import`ed, then the Dockerfiles under docker/ FROM it.
#
#   code-runner-base:bookworm   debootstrap --variant=minbase bookworm
#   code-runner-runner:latest   the job image: python3, node, JDK 17, gcc/g++,
#                               the in-container init, a non-root user
#   code-runner:latest          the service (api and worker): the release binary
#   code-runner-redis:latest    Debian's redis-server
#   code-runner-native:latest   the native worker: the job image's toolchains,
#                               bubblewrap and the release binary
#                               (docker-compose.native.yml)
#
# What already exists is skipped: the base image when the engine has it, the
# debootstrap tarball when it is cached (CODE_RUNNER_IMAGE_CACHE, default
# /var/cache/code-runner-images), and unchanged Dockerfile steps through the
# engine's build cache. Installs what it needs (debootstrap) with apt-get, so
# it works on a fresh Debian or Ubuntu machine; needs root and a Docker engine.
#
# Usage: scripts/build-images.sh [base|runner|service|redis|native ...]
#        (default: base runner service redis)
# Environment:
#   CODE_RUNNER_BASE_IMAGE   base image to build FROM (default code-runner-base:bookworm;
#                            on a machine with a registry, e.g. debian:bookworm-slim)
#   CODE_RUNNER_DOCKER_IMAGE job image name (default code-runner-runner:latest)
#   CODE_RUNNER_SERVICE_PROFILE  cargo profile of the service binary: release
#                            (default) or debug (CI reuses the test build)
#   DEBIAN_MIRROR            (default http://deb.debian.org/debian)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

base_image=${CODE_RUNNER_BASE_IMAGE:-code-runner-base:bookworm}
runner_image=${CODE_RUNNER_DOCKER_IMAGE:-code-runner-runner:latest}
service_image=${CODE_RUNNER_SERVICE_IMAGE:-code-runner:latest}
redis_image=${CODE_RUNNER_REDIS_IMAGE:-code-runner-redis:latest}
native_image=${CODE_RUNNER_NATIVE_IMAGE:-code-runner-native:latest}
profile=${CODE_RUNNER_SERVICE_PROFILE:-release}
cache=${CODE_RUNNER_IMAGE_CACHE:-/var/cache/code-runner-images}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(base runner service redis)

log() { printf '[build-images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/build-images.sh: needs root (debootstrap, the Docker socket)" >&2
  exit 1
fi
docker version --format '{{.Server.Version}}' >/dev/null ||
  { echo "scripts/build-images.sh: no Docker engine reachable" >&2; exit 1; }

# The classic builder when BuildKit's buildx plugin is absent (as with
# Debian's docker.io); both read the same Dockerfiles.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# base: debootstrap minbase -> tarball (cached) -> docker import.
build_base() {
  if have_image "$base_image"; then
    log "base: $base_image exists, skipped"
    return
  fi
  if [ "$base_image" != code-runner-base:bookworm ]; then
    echo "scripts/build-images.sh: base image $base_image is not on this engine (pull it, or unset CODE_RUNNER_BASE_IMAGE)" >&2
    exit 1
  fi
  local arch tarball
  arch=$(dpkg --print-architecture)
  tarball=$cache/$suite-minbase-$arch.tar
  if [ ! -s "$tarball" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
      log "installing debootstrap"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    mkdir -p "$cache"
    local rootfs
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$rootfs'" EXIT
    log "base: debootstrap --variant=minbase $suite (from $mirror)"
    debootstrap --variant=minbase --arch="$arch" "$suite" "$rootfs" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 ||
      { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
    configure_rootfs "$rootfs"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
  else
    log "base: using cached $tarball"
  fi
  log "base: docker import -> $base_image"
  docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$base_image" >/dev/null
}

# Makes the debootstrapped tree a lean image base: all of bookworm's suites,
# no recommends, no docs/man pages/locales, empty apt lists and caches.
configure_rootfs() {
  local root=$1
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $suite-security main
EOF
  cat >"$root/etc/apt/apt.conf.d/90code-runner" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/90code-runner" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
  # A policy that keeps services from starting inside a build.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/*/ "$root"/var/log/*.log
}

build_dockerfile() {
  local name=$1 dockerfile=$2 tag=$3
  shift 3
  log "$name: docker build -f $dockerfile -> $tag"
  local out
  out=$(mktemp)
  if ! docker build --build-arg "BASE_IMAGE=$base_image" "$@" \
    -f "$dockerfile" -t "$tag" . >"$out" 2>&1; then
    tail -n 40 "$out" >&2
    rm -f "$out"
    exit 1
  fi
  rm -f "$out"
}

# The code-runner binary the service and native images copy.
build_binary() {
  case $profile in
    release) log "$1: cargo build --release -p code-runner"
             cargo build --release --quiet -p code-runner ;;
    debug) log "$1: cargo build -p code-runner (debug)"
           cargo build --quiet -p code-runner ;;
    *) echo "scripts/build-images.sh: CODE_RUNNER_SERVICE_PROFILE is release or debug" >&2; exit 2 ;;
  esac
}

for target in "${targets[@]}"; do
  case $target in
    base) build_base ;;
    runner)
      have_image "$base_image" || build_base
      build_dockerfile runner docker/runner.Dockerfile "$runner_image"
      ;;
    service)
      have_image "$base_image" || build_base
      build_binary service
      build_dockerfile service docker/service.Dockerfile "$service_image" \
        --build-arg "PROFILE=$profile"
      ;;
    native)
      have_image "$runner_image" || {
        have_image "$base_image" || build_base
        build_dockerfile runner docker/runner.Dockerfile "$runner_image"
      }
      build_binary native
      build_dockerfile native docker/native.Dockerfile "$native_image" \
        --build-arg "PROFILE=$profile" --build-arg "RUNNER_IMAGE=$runner_image"
      ;;
    redis)
      have_image "$base_image" || build_base
      build_dockerfile redis docker/redis.Dockerfile "$redis_image"
      ;;
    *)
      echo "scripts/build-images.sh: unknown target $target (base, runner, service, redis, native)" >&2
      exit 2
      ;;
  esac
done
log "done: $(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^code-runner' | tr '\n' ' ')"
