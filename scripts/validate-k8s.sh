#!/usr/bin/env bash
# Validates the Kubernetes manifests (deploy/k8s) offline: renders each
# overlay with scripts/k8s/render.py (the subset of kustomize the manifests
# use; there is no kustomize binary here) and checks every object with
# scripts/k8s/validate.py: the Kubernetes schemas bundled in
# kubernetes-validate (strict), KEDA's documented fields
# (scripts/k8s/keda-facts.yaml), and what the manifests must agree on with
# the code (queue names, environment variables, routes, the worker's drain).
#
# kubernetes-validate comes from PyPI into target/py-venv (as scripts/test.sh
# installs its Python packages); the check itself runs with every proxy
# pointed at a closed loopback port, so a schema fetched from the network
# would fail it. Then scripts/k8s/selftest.py breaks copies of the manifests
# in known ways and requires each to be refused.
# Usage: scripts/validate-k8s.sh [OVERLAY_DIR...]
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py-venv
if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
  echo "installing kubernetes-validate into $venv"
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate>=1.33,<2'
fi

if [ $# -eq 0 ]; then
  set -- deploy/k8s/overlays/*/
fi
closed=http://127.0.0.1:9
offline() {
  HTTPS_PROXY=$closed HTTP_PROXY=$closed https_proxy=$closed http_proxy=$closed \
    ALL_PROXY=$closed all_proxy=$closed NO_PROXY= no_proxy= "$@"
}
offline "$venv/bin/python" scripts/k8s/validate.py "${@%/}"
# And that the check can fail: broken copies of deploy/k8s must be refused.
offline "$venv/bin/python" scripts/k8s/selftest.py
