#!/usr/bin/env bash
# Makes a local PostgreSQL with PostGIS ready for the store tests, and prints the URL they
# use (tests/run.sh exports it as URBANTILE_TEST_PG). Idempotent: installs Debian's
# postgresql-15-postgis-3 when missing (needs root, as CI has), starts the cluster when it is
# down, and makes a role `urbantile` (password `urbantile`) that connects over TCP on
# 127.0.0.1. Each test then creates (and drops) a database of its own.
set -euo pipefail
if ! [ -x /usr/lib/postgresql/15/bin/postgres ] || ! [ -d /usr/share/postgresql/15/extension ] \
  || ! ls /usr/share/postgresql/15/extension/postgis.control > /dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL 15 with PostGIS is missing: run as root, or install postgresql-15-postgis-3" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql-15-postgis-3 >&2
fi
if ! pg_lsclusters -h | grep -q '^15 \+main '; then
  pg_createcluster 15 main >&2
fi
if ! pg_lsclusters -h | grep -q '^15 \+main .* online'; then
  pg_ctlcluster 15 main start >&2
fi
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    sudo -n -u postgres "$@"
  fi
}
# The role creates databases, and CREATE EXTENSION postgis in them needs a superuser (PostGIS
# 3.3 is not a trusted extension): fine for throwaway databases on a cluster that listens on
# localhost only.
for _ in $(seq 1 50); do
  as_postgres psql -qAt -c 'SELECT 1' > /dev/null 2>&1 && break
  sleep 0.2
done
as_postgres psql -qAt -v ON_ERROR_STOP=1 > /dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'urbantile') THEN
    CREATE ROLE urbantile LOGIN PASSWORD 'urbantile' SUPERUSER CREATEDB;
  END IF;
END $$;
SQL
echo "postgres://urbantile:urbantile@127.0.0.1:5432/postgres"
