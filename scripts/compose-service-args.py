#!/usr/bin/python3
"""Prints the `docker run` options of one service of a compose file, one per
line, so that a container can be made with exactly that service's settings
where Compose itself cannot pass one of them.

Why: the native worker needs `security_opt: systempaths=unconfined`. The
engine's API has no such option -- the docker CLI and Compose v2 turn it into
empty MaskedPaths and ReadonlyPaths -- and Compose v1 (Debian 12's
docker-compose 1.29) passes it through, which the engine refuses ("invalid
--security-opt"). scripts/compose-native.sh uses this to start the worker,
and its one-off doctor and test containers, with `docker run` from the
settings in docker-compose.native.yml, which stays the one place they are
written.

Understands what docker-compose.native.yml uses: image, init, user, read_only,
cap_drop, cap_add, security_opt, cgroup_parent, volumes (short form), tmpfs,
environment (a mapping) and ${VAR:-default} in them; anything else in the
service is an error, so that no setting is silently left out.

Several files are merged as Compose merges overrides: later scalars win,
lists are joined.

Usage: scripts/compose-service-args.py FILE[,FILE...] SERVICE [--without SETTING=VALUE ...]
  --without security_opt=seccomp=deploy/native/seccomp.json  leaves one item out
"""

import os
import re
import sys

import yaml

HANDLED = {
    "image", "init", "user", "read_only", "cap_drop", "cap_add", "security_opt",
    "cgroup_parent", "volumes", "tmpfs", "environment",
}
# Settings of the long-running service, not of a container's options.
IGNORED = {"command", "restart", "stop_grace_period", "depends_on", "healthcheck", "ports"}


def interpolate(value):
    def sub(match):
        name, default = match.group(1), match.group(3)
        return os.environ.get(name) or (default or "")
    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", sub, str(value))


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    path, name, rest = args[0], args[1], args[2:]
    without = set()
    while rest:
        if rest[0] != "--without" or len(rest) < 2:
            sys.exit(__doc__)
        without.add(rest[1])
        rest = rest[2:]
    service = {}
    for one in path.split(","):
        with open(one) as f:
            override = yaml.safe_load(f)["services"].get(name) or {}
        for key, value in override.items():
            if isinstance(value, list):
                service[key] = service.get(key, []) + [v for v in value if v not in service.get(key, [])]
            elif isinstance(value, dict):
                service[key] = {**service.get(key, {}), **value}
            else:
                service[key] = value
    unknown = set(service) - HANDLED - IGNORED
    if unknown:
        sys.exit(f"{path}: service {name} uses {sorted(unknown)}, which this script does not translate")
    out = []

    def emit(setting, flag, value):
        value = interpolate(value)
        if f"{setting}={value}" not in without:
            out.extend([flag, value])

    if "user" in service:
        emit("user", "--user", service["user"])
    if service.get("read_only"):
        out.append("--read-only")
    if service.get("init"):
        out.append("--init")
    for cap in service.get("cap_drop", []):
        emit("cap_drop", "--cap-drop", cap)
    for cap in service.get("cap_add", []):
        emit("cap_add", "--cap-add", cap)
    for opt in service.get("security_opt", []):
        emit("security_opt", "--security-opt", opt)
    if "cgroup_parent" in service:
        emit("cgroup_parent", "--cgroup-parent", service["cgroup_parent"])
    for volume in service.get("volumes", []):
        emit("volumes", "--volume", volume)
    for tmpfs in service.get("tmpfs", []):
        emit("tmpfs", "--tmpfs", tmpfs)
    for key, value in (service.get("environment") or {}).items():
        emit("environment", "--env", f"{key}={interpolate(value)}")
    out.append(interpolate(service["image"]))
    print("\n".join(out))


if __name__ == "__main__":
    main()
