#!/usr/bin/env bash
# Runs schemathesis against a live code-runner's OpenAPI document: every
# operation, generated valid and invalid requests, every check. One worker:
# with several threads, hypothesis's lambda descriptions sometimes die inside
# CPython 3.11's `ast` ("AST constructor recursion depth mismatch"), a
# runtime error of the tool, not a finding about the API.
# Usage: PYTHON=target/py-venv/bin/python tests/e2e/schemathesis.sh URL/openapi.json [schemathesis options]
set -euo pipefail
python="$(realpath -s "${PYTHON:-target/py-venv/bin/python}")"
# Rules of a request JSON Schema cannot state (distinct file names); see the file.
export SCHEMATHESIS_HOOKS
SCHEMATHESIS_HOOKS="$(cd "$(dirname "$0")" && pwd)/schemathesis_hooks.py"
# schemathesis keeps a cache and reports in its working directory: use a
# throw-away one, not the repository.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
"$python" -m schemathesis.cli run "$@" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --workers 1 \
  --request-timeout 30 \
  --generation-deterministic \
  --suppress-health-check all \
  --no-color \
  --report-dir "$work"
