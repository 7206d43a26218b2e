"""Shows that validate.py can fail: breaks a copy of deploy/k8s in known ways,
one at a time, and requires each broken copy to be refused with the
expected message. scripts/validate-k8s.sh runs it after the real check.

Usage: selftest.py   (exit 1 if a broken manifest passes)
"""

import os
import shutil
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validate  # noqa: E402

# (what is broken, file under deploy/k8s, text replaced, replacement,
#  a message the checker must give)
BREAKS = [
    ("misspelled hostUsers", "base/worker.yaml",
     "hostUsers: false", "hostUser: false", "'hostUser' was unexpected"),
    ("unknown container field", "base/api.yaml",
     "          args: [\"api\"]\n", "          args: [\"api\"]\n          restartPolicyy: Always\n",
     "'restartPolicyy' was unexpected"),
    ("ScaledObject without lagCount", "base/keda.yaml",
     "        lagCount: \"8\"\n", "", "lagCount missing or 0"),
    ("a lag trigger with pendingEntriesCount too", "base/keda.yaml",
     "        lagCount: \"8\"\n", "        lagCount: \"8\"\n        pendingEntriesCount: \"8\"\n",
     "belongs to another mode"),
    ("a trigger in XLEN mode (no consumerGroup)", "base/keda.yaml",
     "        consumerGroup: code-runner:workers\n", "", "KEDA would scale on XLEN"),
    ("the triggers' maximum instead of their sum", "base/keda.yaml",
     "formula: backlog + taken", "formula: max(backlog, taken)", "must add the two triggers"),
    ("unknown ScaledObject field", "base/keda.yaml",
     "  pollingInterval: 5", "  pollingIntervall: 5", "unknown field 'pollingIntervall'"),
    ("another stream than the queue's", "base/keda.yaml",
     "stream: code-runner:jobs", "stream: code-runner:queue", "is not the queue's"),
    ("an environment variable the worker does not read", "base/worker.yaml",
     "CODE_RUNNER_FIRST_UID", "CODE_RUNNER_FIRST_UIDS", "is not read by `code-runner worker`"),
    ("a grace period shorter than the drain", "base/worker.yaml",
     "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30",
     "terminationGracePeriodSeconds 30"),
    ("replicas on an autoscaled Deployment", "base/worker.yaml",
     "spec:\n  # No `replicas`", "spec:\n  replicas: 0\n  # No `replicas`",
     "sets replicas although an autoscaler owns the count"),
    ("a privileged worker", "base/worker.yaml",
     "privileged: false", "privileged: true", "privileged"),
]

SOURCE = os.path.join(validate.ROOT, "deploy", "k8s")


def run_break(code, facts, name, path, old, new, expected):
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "k8s")
        shutil.copytree(SOURCE, copy)
        target = os.path.join(copy, path)
        with open(target) as f:
            text = f.read()
        if old not in text:
            return f"{name}: {path} no longer contains {old.strip()!r}; update the self-test"
        with open(target, "w") as f:
            f.write(text.replace(old, new, 1))
        checker = validate.Checker(code, facts)
        overlays = os.path.join(copy, "overlays")
        # The checker prints one line per overlay; keep the self-test quiet.
        stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
        try:
            for overlay in sorted(os.listdir(overlays)):
                checker.check_overlay(os.path.join(overlays, overlay))
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        if not any(expected in error for error in checker.errors):
            return f"{name}: not refused as expected ({expected!r}); errors: {checker.errors}"
    return None


def main():
    with open(validate.FACTS) as f:
        facts = yaml.safe_load(f)
    code = validate.Code()
    failures = [
        failure for failure in (run_break(code, facts, *b) for b in BREAKS) if failure
    ]
    for failure in failures:
        print(f"self-test: {failure}")
    if failures:
        return 1
    print(f"self-test: {len(BREAKS)} broken manifests, each refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
