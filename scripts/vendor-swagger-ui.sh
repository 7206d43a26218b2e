#!/usr/bin/env bash
# Refreshes the vendored Swagger UI (crates/api/assets/swagger-ui/) from the
# PyPI package swagger-ui-py, which ships Swagger UI's dist files: the docs
# page must work without a CDN, so the files live in the repository and are
# embedded in the binary. Usage: scripts/vendor-swagger-ui.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-25.7.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m pip download --no-deps --quiet "swagger-ui-py==$version" -d "$work"
(cd "$work" && /usr/bin/python3 -m zipfile -e swagger_ui_py-*.whl unpacked)
static="$work/unpacked/swagger_ui/static"
dest=crates/api/assets/swagger-ui
for file in swagger-ui-bundle.js swagger-ui.css LICENSE favicon-32x32.png; do
  cp "$static/$file" "$dest/$file"
done
grep -o 'PACKAGE_VERSION:"[^"]*"' "$dest/swagger-ui-bundle.js" | head -1
