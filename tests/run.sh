#!/usr/bin/env bash
# Runs every test: installs the Python decoders the independent tile check uses (once),
# makes a local PostgreSQL with PostGIS ready for the PostGIS store tests (installing
# Debian's postgresql-15-postgis-3 once, as root; see tests/pg_setup.sh), then the whole
# cargo test suite (unit, doc and integration tests).
# URBANTILE_TEST_PG=postgres://... uses another server; URBANTILE_SKIP_PG=1 skips PostGIS.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import mapbox_vector_tile, shapely, owslib, schemathesis' 2> /dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
if [ "${URBANTILE_SKIP_PG:-}" != 1 ] && [ -z "${URBANTILE_TEST_PG:-}" ]; then
  URBANTILE_TEST_PG="$(tests/pg_setup.sh)"
  export URBANTILE_TEST_PG
fi
cargo test --locked "$@"
