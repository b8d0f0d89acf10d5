# Shared by benches/soak.sh and benches/overload.sh (sourced, not run): the release binaries,
# the metropolitan data set (generated and ingested once, as benches/load.sh does, and reused),
# the server's start and stop by PID, and the list of composite tiles that cover the data.
#
# Before sourcing: N (grid size), PORT. Afterwards: BIN (folder of the binaries; set BIN to
# use prebuilt ones without building), DATA, DB, SERVER_PID, and the functions below.
# The caller's EXIT trap must call stop_server.

DATA=data/metro-$N
DB=data/metro-$N.db
mkdir -p data benches/results

if [ -z "${BIN:-}" ]; then
  cargo build --release --bins 2>&1 | tail -1
  BIN=${CARGO_TARGET_DIR:-target}/release
fi

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
  python3 -c "print(round($(date +%s.%N) - $start, 1))" > "$DB.complete"
fi

SERVER_PID=
# Starts the server on store $1, logging to $2, with extra flags; waits until it answers.
start_server() {
  local db=$1 log=$2
  shift 2
  "$BIN/urbantile" --database "sqlite://$db" serve --bind "127.0.0.1:$PORT" "$@" > "$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null || { cat "$log"; exit 1; }
}
# SIGTERM to the server started above, then waits for it (it drains for up to --drain-secs).
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
# Resident memory of the server, in KiB.
server_rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# Prints the path of every composite tile (all layers) covering the data at z10-z16, as
# benches/load.sh cycles them.
tile_urls() {
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
'
}

# One gzip pass over the paths in $1, so that every tile is in the cache.
warm_cache() {
  python3 - "$PORT" "$1" <<'PY'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
for path in open(sys.argv[2]):
    conn.request("GET", path.strip(), headers={"Accept-Encoding": "gzip"})
    conn.getresponse().read()
PY
}

# Field $2 of wrk's output $1: rps, p50, p99 (wrk --latency).
wrk_field() {
  case $2 in
    rps) grep 'Requests/sec' <<<"$1" | awk '{print $2}' ;;
    p50) grep -E '^ +50%' <<<"$1" | awk '{print $2}' ;;
    p90) grep -E '^ +90%' <<<"$1" | awk '{print $2}' ;;
    p99) grep -E '^ +99%' <<<"$1" | awk '{print $2}' ;;
  esac
}
