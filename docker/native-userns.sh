#!/bin/sh
# The native worker's entrypoint: runs the command given (code-runner worker,
# doctor, a test binary) as root of a user namespace of its own, in which
# root is an unprivileged host uid (CODE_RUNNER_USERNS_ROOT, default 100000)
# and the slot uids (CODE_RUNNER_FIRST_UID up, CODE_RUNNER_USERNS_SLOT_UIDS
# of them) are themselves -- so that the worker, root in its container, is
# not root on the host. It matters because the sandbox needs an unmasked
# /proc (systempaths=unconfined): to the host's root, the container's
# /proc/sys would be writable (host-wide sysctls); to this one it is not.
#
# Docker's userns-remap does the same for every container of a daemon;
# Kubernetes' hostUsers: false for one pod. This does it for one container,
# from inside, with what the container already has: CAP_SETUID and
# CAP_SETGID to write the two maps, and the seccomp profile's unshare and
# setns. The cgroup subtree the host delegates must belong to the
# namespace's root (scripts/native-cgroups.sh chowns it).
#
# CODE_RUNNER_USERNS_ROOT=0 runs the command as is (host root).
set -eu
outer=${CODE_RUNNER_USERNS_ROOT:-100000}
first=${CODE_RUNNER_FIRST_UID:-200000}
count=${CODE_RUNNER_USERNS_SLOT_UIDS:-65536}
if [ "$outer" = 0 ] || [ "$(id -u)" != 0 ]; then
  exec "$@"
fi
if ! unshare --user true 2>/dev/null; then
  # `doctor` still runs, as host root, to say why; nothing else does.
  echo "native-userns: cannot create the worker's user namespace (unshare refused: the seccomp profile deploy/native/seccomp.json?)" >&2
  [ "${2:-}" = doctor ] && exec "$@"
  exit 1
fi
dir=$(mktemp -d /tmp/code-runner-userns.XXXXXX)
mkfifo "$dir/ready" "$dir/entered"
# A process holds the new namespace while its maps are written and the
# command enters it (nsenter, as the namespace's owner, gets its root).
unshare --user -- /bin/sh -c 'echo >"$0/ready"; read _ <"$0/entered"' "$dir" &
holder=$!
read _ <"$dir/ready"
printf '0 %s 1\n%s %s %s\n' "$outer" "$first" "$first" "$count" >"/proc/$holder/uid_map"
printf '0 %s 1\n%s %s %s\n' "$outer" "$first" "$first" "$count" >"/proc/$holder/gid_map"
# Let the holder go once the command is in; nsenter keeps this pid.
(sleep 2; echo >"$dir/entered"; rm -rf "$dir") &
exec nsenter --user --target "$holder" -- "$@"
