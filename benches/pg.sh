#!/usr/bin/env bash
# PostGIS replicas benchmark (issue 11; not a CI test): the release binaries on the
# metropolitan set (N=10 by default) in a local PostgreSQL with PostGIS, all over 127.0.0.1:
#   1. bulk ingest of the set into a fresh database (one `urbantile ingest` per layer);
#   2. start-up of two replicas on it (seconds until /health answers);
#   3. single-feature POSTs to replica A, wrk -c4, to schools (no clusters) and urban_problems;
#   4. write-to-visible across replicas: PATCH on A, until B's tile and B's /changes show it
#      (benches/live_latency.py), idle and under an uncached tile load on B;
#   5. uncached composite tiles (the z10-z16 cycle, cache off, gzip and identity) from
#      replica B and from the SQLite store of the same set, in the same run.
# Writes benches/results/pg-<date>.md.
#
#   benches/pg.sh
#   N=3 DURATION=5s benches/pg.sh
#   BIN=/path/to/release benches/pg.sh     # prebuilt binaries, no cargo build
#
# Needs wrk, python3, psql and a PostgreSQL with PostGIS: URBANTILE_TEST_PG (an admin URL)
# or tests/pg_setup.sh's local one. Drops and creates the database urbantile_bench. Stops
# what it started (servers, load generators) by PID, on exit too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
DURATION=${DURATION:-20s}
PORT=${PORT:-18795}
. benches/lib.sh
ADMIN=${URBANTILE_TEST_PG:-$(tests/pg_setup.sh)}
PG=${ADMIN%/*}/urbantile_bench
A=$((PORT + 1))
B=$((PORT + 2))
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

psql -qX "$ADMIN" -c 'DROP DATABASE IF EXISTS urbantile_bench' -c 'CREATE DATABASE urbantile_bench' > /dev/null
now() { date +%s.%N; }
since() { python3 -c "print(round($(now) - $1, 2))"; }

# 1. Bulk ingest.
start=$(now)
for f in "$DATA"/*.geojsonseq; do
  "$BIN/urbantile" --database "$PG" ingest "$(basename "$f" .geojsonseq)" "$f" > /dev/null 2>&1
done
ingest_s=$(since "$start")
features=$(psql -qXAt "$PG" -c 'SELECT count(*) FROM features')
KEY=$("$BIN/urbantile" --database "$PG" keys add bench --write urban_problems,schools | tail -1)

# 2. Two replicas; each is timed from its start to its first /health answer (in STARTED;
# not run in a subshell, so that PIDS keeps the server's PID).
replica() {
  local port=$1
  shift
  local t0
  t0=$(now)
  "$BIN/urbantile" --database "$PG" serve --bind "127.0.0.1:$port" "$@" > "$WORK/replica-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 1200); do
    curl -sf "http://127.0.0.1:$port/health" > /dev/null && break
    sleep 0.05
  done
  curl -sf "http://127.0.0.1:$port/health" > /dev/null || { cat "$WORK/replica-$port.log"; exit 1; }
  STARTED=$(since "$t0")
}
replica "$A"
start_a=$STARTED
replica "$B" --cache-mb 0
start_b=$STARTED
rss_b=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/${PIDS[1]}/status")

# 3. POSTs to A: to a point layer without clusters (the store and the index), then to the
# clustered urban problems (each run of writes also rebuilds the layer's clusters).
posts=$(LAYER=schools KEY=$KEY wrk -t1 -c4 -d"$DURATION" --latency -s benches/post.lua "http://127.0.0.1:$A")
posts_clustered=$(KEY=$KEY wrk -t1 -c4 -d"$DURATION" --latency -s benches/post.lua "http://127.0.0.1:$A")

# 4. Write-to-visible across replicas, idle, then under uncached tiles on B.
PORT=$B tile_urls > "$WORK/urls"
idle=$(python3 benches/live_latency.py "127.0.0.1:$A" "$KEY" 200 "127.0.0.1:$B")
URLS_FILE="$WORK/urls" GZIP=1 wrk -t1 -c8 -d120s -s benches/cycle.lua "http://127.0.0.1:$B" > /dev/null &
LOADER=$!
PIDS+=($LOADER)
sleep 2
loaded=$(python3 benches/live_latency.py "127.0.0.1:$A" "$KEY" 200 "127.0.0.1:$B")
kill "$LOADER" 2> /dev/null || true
wait "$LOADER" 2> /dev/null || true

# 5. Uncached composite tiles: replica B (PostGIS), then the SQLite store, same list.
tiles() {
  URLS_FILE="$WORK/urls" GZIP="$2" wrk -t2 -c32 -d"$DURATION" --latency -s benches/cycle.lua "http://127.0.0.1:$1"
}
pg_gzip=$(tiles "$B" 1)
pg_plain=$(tiles "$B" 0)
kill "${PIDS[0]}" "${PIDS[1]}" 2> /dev/null || true
wait "${PIDS[0]}" "${PIDS[1]}" 2> /dev/null || true
PIDS=()
start_server "$DB" "$WORK/sqlite.log" --cache-mb 0
sq_gzip=$(tiles "$PORT" 1)
sq_plain=$(tiles "$PORT" 0)
stop_server

field() { awk -v n="$2" '$1 == n {print $'"$3"'}' <<< "$1"; }
ratio() { python3 -c "print(round(100 * $1 / $2, 1))"; }
REPORT=benches/results/pg-$(date -u +%Y%m%d-%H%M).md
{
  echo "# PostGIS replicas benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, shared; PostgreSQL $(psql -qXAt "$ADMIN" -c 'SHOW server_version') with PostGIS on the same machine, default settings; load generators on the same machine too."
  echo "Data: metro N=$N, $features features. wrk runs of $DURATION."
  echo
  echo "| measure | figure | issue 11 target |"
  echo "| --- | --- | --- |"
  echo "| bulk ingest of the set (15 \`urbantile ingest\` runs) | ${ingest_s} s | < 30 s |"
  echo "| replica start to first /health answer (A, B) | ${start_a} s, ${start_b} s | < 10 s |"
  echo "| replica B resident memory after start | ${rss_b} MiB | |"
  echo "| single-feature POSTs to A, wrk -c4, schools (no clusters) | $(wrk_field "$posts" rps)/s, p50 $(wrk_field "$posts" p50), p99 $(wrk_field "$posts" p99) | >= 2,000/s |"
  echo "| the same to urban_problems (clustered: $(psql -qXAt "$PG" -c "SELECT count(*) FROM features WHERE layer = 'urban_problems'") points at the end) | $(wrk_field "$posts_clustered" rps)/s, p50 $(wrk_field "$posts_clustered" p50), p99 $(wrk_field "$posts_clustered" p99) | |"
  echo "| write on A to visible in B's tile, idle: p50 / p99 / max ms | $(field "$idle" write_to_visible 2) / $(field "$idle" write_to_visible 3) / $(field "$idle" write_to_visible 4) | p99 < 100 ms |"
  echo "| write on A to B's change event, idle: p50 / p99 / max ms | $(field "$idle" change_event 2) / $(field "$idle" change_event 3) / $(field "$idle" change_event 4) | |"
  echo "| write on A to visible in B's tile, B under uncached tiles: p50 / p99 / max ms | $(field "$loaded" write_to_visible 2) / $(field "$loaded" write_to_visible 3) / $(field "$loaded" write_to_visible 4) | p99 < 100 ms |"
  echo "| uncached composite tiles, gzip: replica B (PostGIS) / SQLite | $(wrk_field "$pg_gzip" rps) / $(wrk_field "$sq_gzip" rps) tiles/s ($(ratio "$(wrk_field "$pg_gzip" rps)" "$(wrk_field "$sq_gzip" rps)")%) | within 10% |"
  echo "| uncached composite tiles, identity: replica B (PostGIS) / SQLite | $(wrk_field "$pg_plain" rps) / $(wrk_field "$sq_plain" rps) tiles/s ($(ratio "$(wrk_field "$pg_plain" rps)" "$(wrk_field "$sq_plain" rps)")%) | within 10% |"
} > "$REPORT"
cat "$REPORT"
echo "wrote $REPORT"
