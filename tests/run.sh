#!/usr/bin/env bash
# Runs every test: installs the Python decoders the independent tile check uses (once),
# then the whole cargo test suite (unit, doc and integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import mapbox_vector_tile, shapely, owslib, schemathesis' 2> /dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
cargo test --locked "$@"
