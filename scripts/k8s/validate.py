"""Validates the Kubernetes manifests of deploy/k8s offline: renders each
overlay (render.py), then checks every object three ways.

1. Kubernetes objects against the Kubernetes JSON schemas bundled in
   kubernetes-validate, strict (an unknown field fails), for K8S_VERSION. A
   kind it has no schema for fails too, unless it is one of KEDA's.
2. KEDA's objects (ScaledObject, TriggerAuthentication; CRDs the schemas do
   not know) against keda-facts.yaml: every field known and of its type, the
   required ones present, only the metadata keys the redis-streams scaler
   reads, one trigger in lagCount mode (consumerGroup and a non-zero
   lagCount, no other mode's target) and at most one in XPENDING mode, none
   in XLEN mode.
3. What the manifests must agree on with the code: the stream and group
   names the queue uses (crates/queue/src/redis_queue/mod.rs) and that it
   never trims the stream; every environment variable is one its role reads
   (src/config.rs); the probes' paths are routes (crates/api/src/routes.rs);
   the worker pod stays unprivileged, its profiles exist in deploy/k8s/node,
   its slot uids fit the pod's user namespace, its termination grace
   period covers its drain, and no autoscaled Deployment sets replicas.

Usage: validate.py OVERLAY_DIR...   (exit 1 on any failure)
"""

import json
import os
import re
import sys

import yaml

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render  # noqa: E402

# A version that knows hostUsers, procMount and appArmorProfile, the lowest
# the worker pod supports (user namespaces and ProcMountType on by default).
K8S_VERSION = "1.33"

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FACTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keda-facts.yaml")
NODE_DIR = os.path.join(ROOT, "deploy", "k8s", "node")

# Which argument structs each subcommand flattens (src/main.rs, `Command`).
ROLE_ARGS = {
    "api": ["CommonArgs", "ApiArgs", "ProgramLimitArgs"],
    "worker": ["CommonArgs", "WorkerArgs"],
}
# Read outside src/config.rs: tracing's filter (src/main.rs, init_tracing).
OTHER_ENV = {"RUST_LOG"}
# What bubblewrap must be able to call under the worker pod's seccomp profile.
BWRAP_SYSCALLS = {"unshare", "clone", "clone3", "mount", "umount2", "pivot_root", "setns"}
# The worker's drain beyond CODE_RUNNER_SHUTDOWN_GRACE_SECS, in seconds:
# noticing the signal (poll_wait, 1 s), stopping and releasing the rest
# (1 s), the last heartbeat (report::LAST_REPORT_TIMEOUT, 2 s). Beside the
# arithmetic in deploy/k8s/base/worker.yaml.
DRAIN_OVERHEAD_SECS = 1 + 1 + 2
# Margin of the shutdown grace over compile + run wall clocks (sandbox
# set-up, storing the result).
JOB_OVERHEAD_SECS = 5


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


class Code:
    """Facts read from the Rust sources, so the manifests follow the code."""

    def __init__(self):
        config = read("src/config.rs")
        self.env_by_struct = {}
        self.defaults = {}
        for match in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", config, re.S):
            names = re.findall(r'env = "([A-Z0-9_]+)"', match.group(2))
            self.env_by_struct[match.group(1)] = set(names)
        for match in re.finditer(
            r'env = "([A-Z0-9_]+)",\s*default_value(?:_t)? = ("?[^,\n)]+"?)', config
        ):
            self.defaults[match.group(1)] = match.group(2).strip('"').replace("_", "")
        for role, structs in ROLE_ARGS.items():
            for struct in structs:
                if not self.env_by_struct.get(struct):
                    raise SystemExit(f"validate: no env names of {struct} in src/config.rs (moved?)")

        queue = read("crates/queue/src/redis_queue/mod.rs")
        jobs = re.search(r'jobs: format!\("\{prefix\}(:[\w-]+)"\)', queue)
        group = re.search(r'group: format!\("\{prefix\}(:[\w-]+)"\)', queue)
        if not (jobs and group):
            raise SystemExit("validate: cannot find the stream and group names in redis_queue/mod.rs")
        self.stream_suffix, self.group_suffix = jobs.group(1), group.group(1)

        routes = read("crates/api/src/routes.rs")
        self.routes = set(re.findall(r'\.route\(\s*"([^"]+)"', routes))

    def role_env(self, role):
        names = set(OTHER_ENV)
        for struct in ROLE_ARGS[role]:
            names |= self.env_by_struct[struct]
        return names


def queue_trimming():
    """Lines of crates/queue that trim a stream or delete entries without
    acknowledging them: (file:line, text). Comments are skipped."""
    found = []
    base = os.path.join(ROOT, "crates", "queue", "src")
    for directory, _, files in os.walk(base):
        for name in sorted(files):
            if not name.endswith((".rs", ".lua")):
                continue
            path = os.path.join(directory, name)
            comment = "--" if name.endswith(".lua") else "//"
            with open(path) as f:
                lines = f.read().splitlines()
            has_ack = any("XACK" in line for line in lines)
            for number, line in enumerate(lines, 1):
                code = line.strip()
                if code.startswith(comment):
                    continue
                rel = os.path.relpath(path, ROOT)
                if re.search(r"\b(XTRIM|MAXLEN|MINID)\b", code, re.I):
                    found.append((f"{rel}:{number}", code))
                elif re.search(r"\bXDEL\b", code) and not has_ack:
                    found.append((f"{rel}:{number}", code + "  (XDEL without XACK in this file)"))
    return found


class Checker:
    def __init__(self, code, facts):
        self.code = code
        self.facts = facts
        self.errors = []

    def fail(self, where, message):
        self.errors.append(f"{where}: {message}")

    # --- KEDA --------------------------------------------------------------

    def check_fields(self, where, value, spec):
        """Checks `value` against a field description of keda-facts.yaml."""
        if isinstance(spec, str):
            spec = {"type": spec}
        kind = spec["type"]
        types = {
            "string": str, "integer": int, "boolean": bool, "object": dict, "array": list,
            "int-or-string": (int, str),
        }
        if kind == "integer" and isinstance(value, bool) or not isinstance(value, types[kind]):
            self.fail(where, f"must be {kind}, is {type(value).__name__} ({value!r})")
            return
        if "enum" in spec and value not in spec["enum"]:
            self.fail(where, f"{value!r} is not one of {spec['enum']}")
        if kind == "array" and "fields" in spec:
            for i, item in enumerate(value):
                self.check_members(f"{where}[{i}]", item, spec["fields"])
        elif kind == "object" and "fields" in spec:
            self.check_members(where, value, spec["fields"])
        elif kind == "object" and "values" in spec:
            for key, item in value.items():
                self.check_fields(f"{where}.{key}", item, spec["values"])

    def check_members(self, where, value, fields):
        if not isinstance(value, dict):
            self.fail(where, f"must be an object, is {value!r}")
            return
        for key in value:
            if key not in fields:
                self.fail(where, f"unknown field {key!r} (KEDA knows {', '.join(sorted(fields))})")
        for key, spec in fields.items():
            required = isinstance(spec, dict) and spec.get("required")
            if key in value:
                self.check_fields(f"{where}.{key}", value[key], spec)
            elif required:
                self.fail(where, f"missing required field {key!r}")

    def check_keda_object(self, where, obj):
        for key in obj:
            if key not in ("apiVersion", "kind", "metadata", "spec"):
                self.fail(where, f"unknown top-level field {key!r}")
        if obj.get("apiVersion") not in self.facts["apiVersions"]:
            self.fail(where, f"apiVersion {obj.get('apiVersion')} is not {self.facts['apiVersions']}")
        for key in obj.get("metadata") or {}:
            if key not in ("name", "namespace", "labels", "annotations"):
                self.fail(where, f"metadata.{key} is not expected in a manifest")
        spec_facts = {
            "ScaledObject": self.facts["scaledObjectSpec"],
            "TriggerAuthentication": self.facts["triggerAuthenticationSpec"],
        }.get(obj.get("kind"))
        if spec_facts is None:
            self.fail(where, f"KEDA kind {obj.get('kind')} is not described in keda-facts.yaml")
            return
        self.check_members(f"{where} spec", obj.get("spec") or {}, spec_facts)

    def check_scaled_object(self, where, obj, objects):
        spec = obj.get("spec") or {}
        facts = self.facts["redisStreams"]
        if spec.get("minReplicaCount", 0) != 0:
            self.fail(where, "minReplicaCount must be 0 (workers scale to and from zero)")
        target = spec.get("scaleTargetRef") or {}
        deployments = {
            o["metadata"]["name"]: o for o in objects
            if o.get("kind") == (target.get("kind") or "Deployment")
        }
        worker = deployments.get(target.get("name"))
        if worker is None:
            self.fail(where, f"scaleTargetRef {target.get('name')} is not a rendered Deployment")
        auths = {
            o["metadata"]["name"]: o for o in objects if o.get("kind") == "TriggerAuthentication"
        }
        prefix = self.key_prefix(objects)
        triggers = spec.get("triggers") or []
        modes, names = [], {}
        for i, trigger in enumerate(triggers):
            at = f"{where} triggers[{i}]"
            if trigger.get("type") != "redis-streams":
                self.fail(at, f"type {trigger.get('type')!r}: this deployment scales on redis-streams")
                continue
            metadata = trigger.get("metadata") or {}
            known = set(facts["metadata"]) | {f"{k}FromEnv" for k in facts["fromEnv"]}
            for key in metadata:
                if key not in known:
                    self.fail(at, f"metadata key {key!r} is not read by the redis-streams scaler")
            for key in facts["integers"]:
                if key in metadata:
                    try:
                        int(str(metadata[key]))
                    except ValueError:
                        self.fail(at, f"metadata.{key} {metadata[key]!r} is not an integer")
            # The mode, as KEDA picks it (redisStreamsMetadata.Validate): no
            # consumerGroup is XLEN; consumerGroup with a non-zero lagCount is
            # lag; consumerGroup without is XPENDING (pendingEntriesCount).
            lag = str(metadata.get("lagCount", ""))
            if "consumerGroup" not in metadata:
                self.fail(at, "no consumerGroup: KEDA would scale on XLEN, which counts running jobs as backlog")
                continue
            if lag.isdigit() and int(lag) > 0:
                mode, target = "lag", lag
                for other in ("pendingEntriesCount", "streamLength"):
                    if other in metadata:
                        self.fail(at, f"{other} belongs to another mode; lagCount mode ignores it")
            else:
                mode, target = "pending", str(metadata.get("pendingEntriesCount", ""))
                if "lagCount" in metadata:
                    self.fail(at, f"lagCount {metadata['lagCount']!r} is not a positive integer")
                if not target.isdigit() or int(target) == 0:
                    self.fail(at, "XPENDING mode without an explicit pendingEntriesCount")
                if "streamLength" in metadata:
                    self.fail(at, "streamLength belongs to the XLEN mode")
            modes.append(mode)
            names[mode] = trigger.get("name")
            # The names the queue uses, fixed.
            stream = prefix + self.code.stream_suffix
            group = prefix + self.code.group_suffix
            if metadata.get("stream") != stream:
                self.fail(at, f"stream {metadata.get('stream')!r} is not the queue's {stream!r}")
            if metadata.get("consumerGroup") != group:
                self.fail(at, f"consumerGroup {metadata.get('consumerGroup')!r} is not the queue's {group!r}")
            # Somewhere to connect to.
            params = set()
            ref = trigger.get("authenticationRef")
            if ref:
                auth = auths.get(ref.get("name"))
                if auth is None and ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication":
                    self.fail(at, f"authenticationRef {ref.get('name')} is not a rendered TriggerAuthentication")
                elif auth is not None:
                    for item in (auth.get("spec") or {}).get("secretTargetRef") or []:
                        params.add(item.get("parameter"))
                        if item.get("parameter") not in facts["authParams"]:
                            self.fail(at, f"auth parameter {item.get('parameter')!r} is not one the scaler reads")
            address_keys = {"address", "addresses", "host", "hosts"}
            if not (address_keys & (set(metadata) | params | {k[:-7] for k in metadata if k.endswith("FromEnv")})):
                self.fail(at, "no Redis address (address/host in metadata, FromEnv or the TriggerAuthentication)")
            # One worker per target jobs: a worker's slots.
            if worker is not None and target.isdigit():
                env = self.container_env(worker, objects, "worker")
                concurrency = env.get("CODE_RUNNER_CONCURRENCY", self.code.defaults.get("CODE_RUNNER_CONCURRENCY"))
                if concurrency is not None and str(concurrency) != target:
                    self.fail(at, f"{mode} target {target} differs from the worker's "
                                  f"CODE_RUNNER_CONCURRENCY {concurrency}")
        # Exactly one lag trigger (the backlog: from zero, and up); at most
        # one XPENDING trigger (jobs taken: running, released or orphaned,
        # which keep a worker up until they are done).
        if modes.count("lag") != 1:
            self.fail(where, f"needs exactly one redis-streams trigger in lagCount mode, has {modes.count('lag')} "
                             "(lagCount missing or 0: KEDA would use XPENDING, which never wakes a worker for a new job)")
        if modes.count("pending") > 1:
            self.fail(where, "more than one XPENDING trigger")
        # With both, KEDA must add them (jobs waiting + jobs taken): the HPA
        # alone would take the larger, and busy workers would hide a backlog.
        modifiers = (spec.get("advanced") or {}).get("scalingModifiers")
        if modes.count("pending") == 1 and modes.count("lag") == 1:
            formula = (modifiers or {}).get("formula", "")
            summed = re.fullmatch(r"\s*(\w+)\s*\+\s*(\w+)\s*", formula)
            if not (names.get("lag") and names.get("pending")):
                self.fail(where, "the lag and XPENDING triggers need names for the scaling modifier")
            elif not summed or set(summed.groups()) != {names["lag"], names["pending"]}:
                self.fail(where, f"scalingModifiers.formula {formula!r} must add the two triggers: "
                                 f"{names['lag']} + {names['pending']}")
            target = str((modifiers or {}).get("target", ""))
            if worker is not None:
                env = self.container_env(worker, objects, "worker")
                concurrency = env.get("CODE_RUNNER_CONCURRENCY", self.code.defaults.get("CODE_RUNNER_CONCURRENCY"))
                if target != str(concurrency):
                    self.fail(where, f"scalingModifiers.target {target!r} differs from the worker's "
                                     f"CODE_RUNNER_CONCURRENCY {concurrency}")
            if (modifiers or {}).get("metricType", "AverageValue") != "AverageValue":
                self.fail(where, "scalingModifiers.metricType must be AverageValue (one worker per target jobs)")
            if str((modifiers or {}).get("activationTarget", "0")) != "0":
                self.fail(where, "scalingModifiers.activationTarget must be 0 (one job wakes a worker)")

    # --- the code and the pods ------------------------------------------------

    def key_prefix(self, objects):
        for obj in objects:
            if obj.get("kind") == "ConfigMap" and "CODE_RUNNER_KEY_PREFIX" in (obj.get("data") or {}):
                return obj["data"]["CODE_RUNNER_KEY_PREFIX"]
        return self.code.defaults.get("CODE_RUNNER_KEY_PREFIX", "code-runner")

    def container_env(self, obj, objects, name):
        """A container's environment: configMap envFrom, then env (values
        from Secrets are only named)."""
        configmaps = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ConfigMap"}
        for spec in render.pod_specs(obj):
            for container in spec.get("containers") or []:
                if container.get("name") != name:
                    continue
                env = {}
                for source in container.get("envFrom") or []:
                    ref = source.get("configMapRef")
                    if ref:
                        data = (configmaps.get(ref.get("name")) or {}).get("data") or {}
                        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
                    elif source.get("secretRef"):
                        pass
                for item in container.get("env") or []:
                    env[item["name"]] = item.get("value", "<from " + ",".join(item.get("valueFrom", {})) + ">")
                return env
        return {}

    def check_pod(self, where, obj, objects):
        for spec in render.pod_specs(obj):
            if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
                self.fail(where, "shares a host namespace (hostNetwork/hostPID/hostIPC)")
            for volume in spec.get("volumes") or []:
                if "hostPath" in volume:
                    self.fail(where, f"volume {volume.get('name')} is a hostPath")
            for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                at = f"{where} container {container.get('name')}"
                context = container.get("securityContext") or {}
                if context.get("privileged"):
                    self.fail(at, "privileged")
                if context.get("procMount") == "Unmasked" and spec.get("hostUsers") is not False:
                    self.fail(at, "procMount Unmasked needs hostUsers: false")
                args = container.get("args") or []
                role = args[0] if args else None
                image = container.get("image", "")
                if "code-runner" in image and role not in ROLE_ARGS:
                    self.fail(at, f"args {args!r}: expected the api or worker subcommand")
                if role in ROLE_ARGS:
                    env = self.container_env(obj, objects, container.get("name"))
                    allowed = self.code.role_env(role)
                    for key in sorted(env):
                        if key not in allowed:
                            self.fail(at, f"environment variable {key} is not read by `code-runner {role}`")
                    self.check_probes(at, container)
                    if role == "worker":
                        self.check_worker(at, spec, env)
                if image.split("/")[-1].startswith("redis:"):
                    tag = image.split(":")[-1]
                    if not (tag.split(".")[0].isdigit() and int(tag.split(".")[0]) >= 7):
                        self.fail(at, f"{image}: KEDA's lagCount mode needs Redis 7 or later")

    def check_probes(self, where, container):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
            if path is not None and path not in self.code.routes:
                self.fail(where, f"{probe} path {path} is not a route of the API")

    def check_worker(self, where, spec, env):
        context = spec.get("securityContext") or {}
        if spec.get("hostUsers") is not False:
            self.fail(where, "the worker pod needs hostUsers: false (its own user namespace)")
        seccomp = context.get("seccompProfile") or {}
        if seccomp.get("type") != "Localhost":
            self.fail(where, "the worker pod needs its Localhost seccomp profile")
        else:
            path = os.path.join(NODE_DIR, os.path.basename(seccomp.get("localhostProfile", "")))
            try:
                with open(path) as f:
                    profile = json.load(f)
            except (OSError, ValueError) as e:
                self.fail(where, f"seccomp profile {path}: {e}")
            else:
                for rule in profile.get("syscalls", []):
                    if rule.get("action") != "SCMP_ACT_ALLOW":
                        blocked = BWRAP_SYSCALLS & set(rule.get("names", []))
                        if blocked:
                            self.fail(where, f"seccomp profile blocks {sorted(blocked)}, which bubblewrap needs")
                if profile.get("defaultAction") != "SCMP_ACT_ALLOW":
                    allowed = set()
                    for rule in profile.get("syscalls", []):
                        if rule.get("action") == "SCMP_ACT_ALLOW":
                            allowed |= set(rule.get("names", []))
                    if BWRAP_SYSCALLS - allowed:
                        self.fail(where, f"seccomp profile does not allow {sorted(BWRAP_SYSCALLS - allowed)}")
        apparmor = context.get("appArmorProfile") or {}
        if apparmor.get("type") != "Localhost":
            self.fail(where, "the worker pod needs its Localhost AppArmor profile")
        else:
            name = apparmor.get("localhostProfile", "")
            path = os.path.join(NODE_DIR, f"{name}.apparmor")
            if not os.path.exists(path) or f"profile {name} " not in open(path).read():
                self.fail(where, f"no AppArmor profile {name} in {path}")
        # Slot uids: each slot and its companion lease one, inside the 65536
        # uids of the pod's user namespace.
        concurrency = int(env.get("CODE_RUNNER_CONCURRENCY", self.code.defaults["CODE_RUNNER_CONCURRENCY"]))
        first_uid = int(env.get("CODE_RUNNER_FIRST_UID", self.code.defaults["CODE_RUNNER_FIRST_UID"]))
        if first_uid + 2 * concurrency > 65536:
            self.fail(where, f"slot uids {first_uid}..{first_uid + 2 * concurrency} exceed the pod's 65536 uids")
        # The drain.
        grace = int(env.get("CODE_RUNNER_SHUTDOWN_GRACE_SECS", self.code.defaults["CODE_RUNNER_SHUTDOWN_GRACE_SECS"]))
        compile_ms = int(env.get("CODE_RUNNER_COMPILE_TIME_LIMIT_MS", self.code.defaults["CODE_RUNNER_COMPILE_TIME_LIMIT_MS"]))
        run_ms = int(env.get("CODE_RUNNER_TIME_LIMIT_MS", self.code.defaults["CODE_RUNNER_TIME_LIMIT_MS"]))
        longest = -(-(compile_ms + run_ms) // 1000) + JOB_OVERHEAD_SECS
        if grace < longest:
            self.fail(where, f"CODE_RUNNER_SHUTDOWN_GRACE_SECS {grace} < compile + run + {JOB_OVERHEAD_SECS} s = {longest}")
        period = spec.get("terminationGracePeriodSeconds", 30)
        if period < grace + DRAIN_OVERHEAD_SECS:
            self.fail(where, f"terminationGracePeriodSeconds {period} < drain {grace} + {DRAIN_OVERHEAD_SECS} s")

    # --- one overlay ------------------------------------------------------------

    def check_overlay(self, directory):
        before = len(self.errors)
        try:
            objects = render.render(directory)
        except (render.RenderError, OSError, yaml.YAMLError) as e:
            self.fail(directory, f"render: {e}")
            return
        keda = set(self.facts["apiVersions"])
        seen = set()
        for obj in objects:
            where = f"{directory}: {obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            key = (obj.get("apiVersion"), obj.get("kind"), (obj.get("metadata") or {}).get("name"))
            if key in seen:
                self.fail(where, "defined twice")
            seen.add(key)
            if obj.get("apiVersion") in keda:
                self.check_keda_object(where, obj)
                if obj.get("kind") == "ScaledObject":
                    self.check_scaled_object(where, obj, objects)
            else:
                try:
                    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
                except ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    self.fail(where, f"schema {K8S_VERSION}: {path}: {e.message}")
                except SchemaNotFoundError:
                    self.fail(where, f"no Kubernetes {K8S_VERSION} schema for {obj.get('apiVersion')} {obj.get('kind')}")
            self.check_pod(where, obj, objects)
        # An autoscaled Deployment must not set replicas: every re-apply would
        # reset what the autoscaler chose (workers to 0 mid-backlog).
        scaled = {
            ((o.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
            for o in objects if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")
        }
        for obj in objects:
            if obj.get("kind") == "Deployment" and obj["metadata"]["name"] in scaled \
                    and "replicas" in (obj.get("spec") or {}):
                self.fail(f"{directory}: Deployment/{obj['metadata']['name']}",
                          "sets replicas although an autoscaler owns the count")
        if not any(o.get("kind") == "ScaledObject" for o in objects):
            self.fail(directory, "no ScaledObject for the workers")
        status = "ok" if len(self.errors) == before else "FAILED"
        print(f"{status}: {directory}: {len(objects)} objects")


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(FACTS) as f:
        facts = yaml.safe_load(f)
    checker = Checker(Code(), facts)
    for where, line in queue_trimming():
        checker.fail(where, f"the queue trims or deletes unacknowledged stream entries "
                            f"(KEDA would read the backlog as 0): {line}")
    for directory in argv[1:]:
        checker.check_overlay(directory)
    for error in checker.errors:
        print(f"error: {error}")
    if checker.errors:
        print(f"{len(checker.errors)} error(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
