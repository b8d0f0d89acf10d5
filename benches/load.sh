#!/usr/bin/env bash
# Load benchmark: the release server on the metropolitan data set (N x N copies of the
# city, N=10 by default), driven over 127.0.0.1 by wrk cycling through every tile that
# covers the data at z10-z16 for the composite of all layers, with and without
# Accept-Encoding: gzip:
#   1. with the tile cache off (--cache-mb 0), plus feature queries one at a time;
#   2. with the cache on, on a copy of the store: cached gzip tiles against /ping (a fixed
#      answer) in the same run, single-feature POSTs, and write-to-visible and change-event
#      latency (benches/live_latency.py), idle and under the tile load.
# Writes benches/results/load-<date>.md.
#
#   benches/load.sh            # N=10, 20 s per run
#   N=3 DURATION=5s benches/load.sh
#   BIN=/path/to/release benches/load.sh   # prebuilt binaries (a folder), no cargo build
#   TILES_ONLY=1 benches/load.sh           # only the composite tile runs and /ping
#   REPORT=/tmp/x.md benches/load.sh       # the report there instead of benches/results/
# (benches/ab.sh runs it A/B between two builds with all three.)
#
# Needs wrk (Debian package) and python3. Stops the server it started, by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18787}
DATA=data/metro-$N
DB=data/metro-$N.db
OUT=benches/results
mkdir -p "$OUT" data

if [ -z "${BIN:-}" ]; then
  cargo build --release --bins 2>&1 | tail -1
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
TILES_ONLY=${TILES_ONLY:-}

if [ ! -f "$DATA/.complete" ]; then
  echo "generating metro N=$N into $DATA"
  "$BIN/urbantile-gen" metro --n "$N" --out "$DATA"
  touch "$DATA/.complete"
fi
if [ ! -f "$DB.complete" ]; then
  rm -f "$DB" "$DB-wal" "$DB-shm"
  start=$(date +%s.%N)
  for f in "$DATA"/*.geojsonseq; do
    "$BIN/urbantile" --database "sqlite://$DB" ingest "$(basename "$f" .geojsonseq)" "$f"
  done
  ingest_s=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
  echo "$ingest_s" > "$DB.complete"
fi
ingest_s=$(cat "$DB.complete")

LOG=$(mktemp)
URLS=$(mktemp)
COPY=$(mktemp -d)
PID=
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$LOG" "$URLS" "$COPY"' EXIT
# Starts the server on store $1 with extra flags; waits until it answers.
start_server() {
  local db=$1
  shift
  "$BIN/urbantile" --database "sqlite://$db" serve --bind "127.0.0.1:$PORT" "$@" > "$LOG" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null || { cat "$LOG"; exit 1; }
}
stop_server() {
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
}
start_server "$DB" --cache-mb 0
index_ms=$(grep -o 'index built.*' "$LOG" | grep -o 'ms=[0-9]*' | cut -d= -f2)
features=$(grep -o 'index built.*' "$LOG" | grep -o 'features=[0-9]*' | cut -d= -f2)

curl -sf "http://127.0.0.1:$PORT/catalog" | python3 -c '
import json, math, sys
cat = json.load(sys.stdin)["layers"]
ids = ",".join(l["id"] for l in cat)
bs = [l["bounds"] for l in cat if l["bounds"]]
w, s = min(b[0] for b in bs), min(b[1] for b in bs)
e, n = max(b[2] for b in bs), max(b[3] for b in bs)
def tile(lon, lat, z):
    k = 2 ** z
    return int((lon + 180) / 360 * k), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k)
for z in range(10, 17):
    x0, y0 = tile(w, n, z)
    x1, y1 = tile(e, s, z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            print(f"/tiles/{ids}/{z}/{x}/{y}.mvt")
' > "$URLS"
tiles=$(wc -l < "$URLS")
echo "N=$N: $features features, $tiles tiles at z10-z16, index built in ${index_ms} ms"

run() {
  URLS_FILE="$URLS" GZIP="$1" ACCEPT_ENCODING="${2:-}" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/cycle.lua "http://127.0.0.1:$PORT" 
}
summarise() {
  local rps p50 p99
  rps=$(grep 'Requests/sec' <<<"$1" | awk '{print $2}')
  p50=$(grep -E '^ +50%' <<<"$1" | awk '{print $2}')
  p99=$(grep -E '^ +99%' <<<"$1" | awk '{print $2}')
  echo "| $2 | $rps | $p50 | $p99 |"
}
plain=$(run 0)
gzip=$(run 1)
browser=$(run 1 "gzip, deflate, br, zstd")

# Feature queries (OGC API items and the planners' routes), one request at a time, over the
# first copy of the city (central Helsinki).
QUERY_DURATION=${QUERY_DURATION:-5s}
if [ -z "$TILES_ONLY" ]; then
query() {
  echo "$1" > "$COPY/query"
  URLS_FILE="$COPY/query" GZIP=0 wrk -t1 -c1 -d"$QUERY_DURATION" --latency -s benches/cycle.lua "http://127.0.0.1:$PORT"
}
q_bbox=$(query "/collections/buildings/items?bbox=24.942,60.168,24.947,60.171&limit=100")
q_cql2=$(query "/collections/accidents/items?limit=100&filter=S_INTERSECTS%28geometry%2CBBOX%2824.94%2C60.166%2C24.95%2C60.172%29%29%20AND%20severity%3D%27serious%27")
q_nearest=$(query "/collections/schools/nearest?point=24.9445,60.1690&k=5")
q_contain=$(query "/collections/zoning/containing?point=24.9445,60.1690")
q_aggregate=$(query "/collections/accidents/aggregate?by=zoning&sum=vehicles")
fi
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
bytes_plain=$(grep -o 'Transfer/sec: *[0-9.]*[KMG]*B' <<<"$plain" | awk '{print $2}')
bytes_gzip=$(grep -o 'Transfer/sec: *[0-9.]*[KMG]*B' <<<"$gzip" | awk '{print $2}')
bytes_browser=$(grep -o 'Transfer/sec: *[0-9.]*[KMG]*B' <<<"$browser" | awk '{print $2}')
stop_server

# 2. The cache on, on a copy of the store (the writes below must not change the data set).
python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')" "$DB"
if [ -z "$TILES_ONLY" ]; then
  cp "$DB" "$COPY/store.db"
  KEY=$("$BIN/urbantile" --database "sqlite://$COPY/store.db" keys add bench --write urban_problems,schools | tail -1)
  start_server "$COPY/store.db"
else
  # Only reads: the store itself.
  start_server "$DB"
fi
# Fill the cache with one pass over the cycle, measuring the mean compressed tile.
mean_gz=$(python3 - "$PORT" "$URLS" <<'PY'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
sizes = []
for path in open(sys.argv[2]):
    conn.request("GET", path.strip(), headers={"Accept-Encoding": "gzip"})
    r = conn.getresponse()
    body = r.read()
    if r.status == 200:
        sizes.append(len(body))
print(round(sum(sizes) / len(sizes)))
PY
)
cached=$(run 1)
fixed() {
  echo "$1" > "$COPY/fixed"
  URLS_FILE="$COPY/fixed" GZIP=1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/cycle.lua "http://127.0.0.1:$PORT"
}
ping=$(fixed /ping)
ping_sized=$(fixed "/ping?bytes=$mean_gz")
rps() { grep 'Requests/sec' <<<"$1" | awk '{print $2}'; }
ratio=$(python3 -c "print(round(100 * $(rps "$cached") / $(rps "$ping_sized")))")
ratio_tiny=$(python3 -c "print(round(100 * $(rps "$cached") / $(rps "$ping")))")
cache_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
if [ -z "$TILES_ONLY" ]; then
posts=$(LAYER=schools KEY=$KEY wrk -t1 -c4 -d"$QUERY_DURATION" --latency -s benches/post.lua "http://127.0.0.1:$PORT")
posts_clustered=$(KEY=$KEY wrk -t1 -c4 -d"$QUERY_DURATION" --latency -s benches/post.lua "http://127.0.0.1:$PORT")
post_errors=$( (grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$posts" || true) | awk '{print $NF}')
latency_idle=$(python3 benches/live_latency.py "127.0.0.1:$PORT" "$KEY" 200)
URLS_FILE="$URLS" GZIP=1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s benches/cycle.lua "http://127.0.0.1:$PORT" > /dev/null &
LOADER=$!
sleep 2
latency_load=$(python3 benches/live_latency.py "127.0.0.1:$PORT" "$KEY" 200)
wait "$LOADER"
fi
stop_server
latency_row() { awk -v n="$2" -v what="$3" '$1 == n {print "| " what " | " $2 " ms | " $3 " ms | " $4 " ms |"}' <<<"$1"; }

report=${REPORT:-$OUT/load-$(date -u +%Y%m%d-%H%M).md}
{
  echo "# Load benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; load generator (wrk -t2 -c$CONNECTIONS, $DURATION) on the same machine."
  echo "Data: metro N=$N, $features features; $tiles composite tiles (every layer) covering the data at z10-z16, cycled; no tile cache."
  echo "Start-up index build: ${index_ms} ms. Resident memory after the runs: $((rss_kb / 1024)) MiB. Ingest of the set (all layers, CLI): ${ingest_s} s."
  echo
  echo "| run | tiles/s | p50 | p99 |"
  echo "| --- | --- | --- | --- |"
  summarise "$plain" "identity ($bytes_plain/s)"
  summarise "$gzip" "Accept-Encoding: gzip ($bytes_gzip/s)"
  summarise "$browser" "browser header (Accept-Encoding: gzip, deflate, br, zstd) ($bytes_browser/s)"
  echo
  if [ -z "$TILES_ONLY" ]; then
  echo "Feature queries, one connection ($QUERY_DURATION each):"
  echo
  echo "| query | requests/s | p50 | p99 |"
  echo "| --- | --- | --- | --- |"
  summarise "$q_bbox" "items bbox (about 300 m), limit 100, buildings"
  summarise "$q_cql2" "items CQL2: S_INTERSECTS(bbox) AND severity = 'serious', accidents"
  summarise "$q_nearest" "nearest k=5 schools"
  summarise "$q_contain" "zoning containing a point"
  summarise "$q_aggregate" "accidents per zoning polygon, with sum (40k in 20k polygons)"
  echo
  fi
  echo "With the tile cache (256 MiB), on a copy of the store; resident memory $((cache_rss_kb / 1024)) MiB after the cached runs:"
  echo
  echo "| run | requests/s | p50 | p99 |"
  echo "| --- | --- | --- | --- |"
  summarise "$cached" "composite tiles, gzip, all cached (mean body $mean_gz bytes)"
  summarise "$ping_sized" "/ping?bytes=$mean_gz: a fixed answer of the same size"
  summarise "$ping" "/ping: a fixed 2-byte answer"
  [ -n "$TILES_ONLY" ] || summarise "$posts" "single-feature POST to schools, 4 connections (non-2xx: ${post_errors:-0})"
  [ -n "$TILES_ONLY" ] || summarise "$posts_clustered" "the same to urban_problems, clustered (each run of writes rebuilds its clusters)"
  echo
  echo "Cached gzip tiles run at **${ratio}%** of the requests/s of a fixed answer of their mean size, and at ${ratio_tiny}% of a 2-byte one (the difference is the kernel moving the bytes over loopback, for the server and for wrk on the same 2 cores)."
  echo
  if [ -z "$TILES_ONLY" ]; then
  echo "Latency after a PATCH is answered (200 rounds, one client):"
  echo
  echo "| measure | p50 | p99 | max |"
  echo "| --- | --- | --- | --- |"
  latency_row "$latency_idle" write_to_visible "write to changed composite tile, idle"
  latency_row "$latency_idle" change_event "change event on /changes, idle"
  latency_row "$latency_load" write_to_visible "write to changed composite tile, under the tile load"
  latency_row "$latency_load" change_event "change event on /changes, under the tile load"
  echo
  fi
  echo '```'
  echo "$plain"
  echo "$gzip"
  echo '```'
} > "$report"
head -45 "$report"
