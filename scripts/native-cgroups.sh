#!/usr/bin/env bash
# Makes (up) or removes (down) the cgroup subtree the host delegates to the
# native worker's container (docker-compose.native.yml), on a cgroup-v1 host
# such as the development machines (v1 controllers, a v2 mount holding none):
#
#   /sys/fs/cgroup/<controller>/code-runner-native         limits set here bound
#                                                          the worker and every job
#   /sys/fs/cgroup/<controller>/code-runner-native/<id>    the container's own cgroup
#                                                          (compose cgroup_parent)
#   /sys/fs/cgroup/<controller>/code-runner-native/slots   bound read-write into the
#                                                          container: its slot cgroups
#
# for memory, pids, cpu and cpuacct. Only `slots` is visible to the container:
# it cannot raise the limits above it. Never the whole hierarchy.
#
# `slots` (its directory, tasks and cgroup.procs) belongs to the host uid that
# is root in the worker's user namespace (CODE_RUNNER_USERNS_ROOT, default
# 100000; docker/native-userns.sh): the worker is not host root.
#
# Usage: scripts/native-cgroups.sh up|down
# Environment (up): CODE_RUNNER_NATIVE_MEMORY (bytes, default 7 GiB),
#   CODE_RUNNER_NATIVE_PIDS (default 32768), CODE_RUNNER_NATIVE_CPUS (cores,
#   default all of them).
set -euo pipefail
name=code-runner-native
controllers=(memory pids cpu cpuacct)
root=/sys/fs/cgroup

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/native-cgroups.sh: needs root" >&2
  exit 1
fi
if [ -e "$root/cgroup.controllers" ]; then
  echo "scripts/native-cgroups.sh: this host has a cgroup-v2 hierarchy; see docs/native-container.md, \"cgroup v2\"" >&2
  exit 1
fi
for c in "${controllers[@]}"; do
  [ -d "$root/$c" ] || { echo "scripts/native-cgroups.sh: no cgroup-v1 $c hierarchy at $root/$c" >&2; exit 1; }
done

case ${1:-} in
  up)
    for c in "${controllers[@]}"; do
      # cpu and cpuacct may be one hierarchy (cpu,cpuacct): mkdir -p is idempotent.
      mkdir -p "$root/$c/$name/slots"
      owner=${CODE_RUNNER_USERNS_ROOT:-100000}
      chown "$owner:$owner" "$root/$c/$name/slots" "$root/$c/$name/slots/tasks" \
        "$root/$c/$name/slots/cgroup.procs"
    done
    echo "${CODE_RUNNER_NATIVE_MEMORY:-$((7 << 30))}" >"$root/memory/$name/memory.limit_in_bytes"
    echo "${CODE_RUNNER_NATIVE_PIDS:-32768}" >"$root/pids/$name/pids.max"
    cpus=${CODE_RUNNER_NATIVE_CPUS:-$(nproc)}
    echo 100000 >"$root/cpu/$name/cpu.cfs_period_us"
    echo "$((cpus * 100000))" >"$root/cpu/$name/cpu.cfs_quota_us"
    ;;
  down)
    # Deepest first; whatever a worker left (it removes its own on exit).
    for c in "${controllers[@]}"; do
      dir=$root/$c/$name
      [ -d "$dir" ] || continue
      find "$dir" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
      rmdir "$dir" 2>/dev/null || true
      if [ -d "$dir" ]; then
        echo "scripts/native-cgroups.sh: $dir is still in use" >&2
      fi
    done
    ;;
  *)
    echo "usage: scripts/native-cgroups.sh up|down" >&2
    exit 2
    ;;
esac
