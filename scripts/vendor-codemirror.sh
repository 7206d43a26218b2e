#!/usr/bin/env bash
# Copies CodeMirror 5 from Debian's libjs-codemirror into the API's assets
# (see crates/api/assets/codemirror/README.md).
set -euo pipefail
src=/usr/share/javascript/codemirror
dest="$(dirname "$0")/../crates/api/assets/codemirror"
[ -d "$src" ] || { echo "install libjs-codemirror first (apt-get install libjs-codemirror)" >&2; exit 1; }
cp "$src/lib/codemirror.js" "$src/lib/codemirror.css" "$src/mode/python/python.js" \
   "$src/mode/javascript/javascript.js" "$src/mode/clike/clike.js" \
   "$src/addon/edit/matchbrackets.js" "$dest/"
dpkg-query -W -f='libjs-codemirror ${Version}\n' libjs-codemirror
