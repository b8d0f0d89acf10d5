#!/usr/bin/env bash
# The README's test command, whole on a fresh Debian machine (as root, which CI is): installs
# what the tests need once, then runs every test (unit, doc and integration tests).
#   - Debian packages, when missing: chromium (the map page test drives it; playwright-core
#     comes from npm), gdal-bin (ogrinfo, a real OGC API - Features client; ogr2ogr writes
#     the planners' formats that ingest reads), proj-bin (cs2cs, the projection oracle), nodejs and npm
#     (the build installs the page's packages, build.rs), python3 with pip;
#   - the Python test clients (tests/requirements.txt: mapbox-vector-tile, shapely, owslib,
#     schemathesis, prometheus-client, pmtiles);
#   - PostgreSQL 15 with PostGIS for the PostGIS store tests (tests/pg_setup.sh installs
#     postgresql-15-postgis-3, starts the cluster and makes a test role).
# URBANTILE_TEST_PG=postgres://... uses another server; URBANTILE_SKIP_PG=1 skips PostGIS.
# Extra arguments go to cargo test (e.g. tests/run.sh --test live).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium > /dev/null || need+=(chromium)
command -v ogrinfo > /dev/null || need+=(gdal-bin)
command -v cs2cs > /dev/null || need+=(proj-bin)
command -v node > /dev/null || need+=(nodejs)
command -v npm > /dev/null || need+=(npm)
command -v python3 > /dev/null || need+=(python3)
python3 -m pip --version > /dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
if ! python3 -c 'import mapbox_vector_tile, shapely, owslib, schemathesis, prometheus_client, pmtiles' 2> /dev/null; then
  # Debian's own python3 refuses system-wide installs (PEP 668) unless told otherwise; the
  # test clients are only for these tests.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
    -r tests/requirements.txt
fi
if [ "${URBANTILE_SKIP_PG:-}" != 1 ] && [ -z "${URBANTILE_TEST_PG:-}" ]; then
  URBANTILE_TEST_PG="$(tests/pg_setup.sh)"
  export URBANTILE_TEST_PG
fi
cargo test --locked "$@"
