#!/usr/bin/env bash
# urbantile side by side with Martin on the same content (issues 12 and 13; not a CI test),
# release builds, everything on this machine over 127.0.0.1:
#   - the five peer layers of the metropolitan set (buildings, roads, parks, zoning, bike
#     lanes; N=10 by default), ingested by urbantile into a PostGIS database, then copied into
#     one table per layer with the layer's declared properties as typed columns, which Martin
#     serves (its tile cache off, each table over the layer's zooms);
#   - urbantile on the same five layers and zooms (roads without their per-feature zooms, which
#     a Martin table source cannot express; tile size budgets off, so both serve every
#     feature), from the SQLite store and from the PostGIS one, its tile cache off;
#   - uncached composite tiles of the five layers, the z10-z16 tiles over the data in turn,
#     wrk -c32, with the header Chrome sends (Accept-Encoding: gzip, deflate, br, zstd), then
#     gzip only, then none; ROUNDS rounds, servers in turn, medians;
#   - one tile of each server decoded (mapbox-vector-tile) to check both hold the same features;
#   - MBTiles exports of the same layers: `martin-cp` and `urbantile export` from PostGIS (and
#     urbantile's from SQLite), the box at z10-z16 and its middle quarter at z10-z18; tiles/s
#     over the whole run and after each exporter's start (timed by a one-tile export); and
#     urbantile's from PostGIS again with --snapshots, the layers' indexes read back from the
#     snapshots the run before wrote (tiles checked byte-identical).
# Writes benches/results/martin-<date>.md.
#
#   benches/martin.sh                          # MARTIN=/work/martin-bin/bin (martin, martin-cp)
#   N=3 DURATION=5s ROUNDS=1 benches/martin.sh
#   ROUNDS=0 benches/martin.sh                 # the exports only
#
# Martin 1.14: cargo install martin --version 1.14.0 --locked --root /work/martin-bin
# (about 45 minutes on 2 cores). Needs wrk, psql, python3 with mapbox-vector-tile, and a
# PostgreSQL with PostGIS (URBANTILE_TEST_PG, or tests/pg_setup.sh's). Drops and creates the
# database urbantile_peers. Stops what it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18811}
CONNECTIONS=${CONNECTIONS:-32}
MARTIN=${MARTIN:-/work/martin-bin/bin}
. benches/lib.sh
ADMIN=${URBANTILE_TEST_PG:-$(tests/pg_setup.sh)}
PG=${ADMIN%/*}/urbantile_peers
PEERS=buildings,roads,parks,zoning,bike_lanes
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
U_PORT=$PORT
P_PORT=$((PORT + 1))
M_PORT=$((PORT + 2))

# The five layer files, with roads' per-feature zooms and the sources left out.
mkdir "$WORK/layers"
python3 - "$WORK/layers" "$PEERS" <<'PY'
import re, sys
out, peers = sys.argv[1], sys.argv[2].split(",")
for layer in peers:
    text = open(f"layers/{layer}.toml").read()
    for table in ("feature_minzoom", "source"):
        text = re.sub(r"(?ms)^\[%s\].*?(?=^\[|\Z)" % table, "", text)
    open(f"{out}/{layer}.toml", "w").write(text)
PY

# PostGIS: urbantile's store of the five layers, and Martin's tables.
psql -qX "$ADMIN" -c 'DROP DATABASE IF EXISTS urbantile_peers' -c 'CREATE DATABASE urbantile_peers' > /dev/null
for layer in ${PEERS//,/ }; do
  "$BIN/urbantile" --layers "$WORK/layers" --database "$PG" ingest "$layer" "$DATA/$layer.geojsonseq" > /dev/null 2>&1
done
python3 - "$WORK" "$PEERS" "$PG" "$M_PORT" <<'PY'
import sys, tomllib
work, peers, pg, port = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
sql_type = {"string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean", "datetime": "text"}
sql, conf = [], [f"listen_addresses: '127.0.0.1:{port}'", "cache_size_mb: 0", "postgres:",
                 f"  connection_string: '{pg}'", "  pool_size: 20", "  auto_publish: false", "  tables:"]
for layer in peers:
    d = tomllib.load(open(f"{work}/layers/{layer}.toml", "rb"))
    props = d.get("properties", {})
    cols = ", ".join(
        f"(properties->>'{p}')::{sql_type[t]} AS \"{p}\"" for p, t in props.items())
    sql.append(f'DROP TABLE IF EXISTS "m_{layer}";')
    sql.append(f'CREATE TABLE "m_{layer}" AS SELECT id, geom, {cols} FROM features WHERE layer = \'{layer}\';')
    sql.append(f'CREATE INDEX ON "m_{layer}" USING gist (geom);')
    sql.append(f'ANALYZE "m_{layer}";')
    conf += [f"    {layer}:", "      schema: public", f"      table: m_{layer}", "      srid: 4326",
             "      geometry_column: geom", "      id_column: id",
             f"      minzoom: {d.get('minzoom', 0)}", f"      maxzoom: {d.get('maxzoom', 16)}",
             "      geometry_type: GEOMETRY", "      properties:"]
    conf += [f"        \"{p}\": {sql_type[t]}" for p, t in props.items()]
open(f"{work}/tables.sql", "w").write("\n".join(sql) + "\n")
open(f"{work}/martin.yaml", "w").write("\n".join(conf) + "\n")
PY
psql -qX -v ON_ERROR_STOP=1 "$PG" -f "$WORK/tables.sql" > /dev/null

# The servers: urbantile on SQLite and on PostGIS, and Martin.
serve() {
  local port=$1 db=$2
  "$BIN/urbantile" --layers "$WORK/layers" --database "$db" serve --bind "127.0.0.1:$port" \
    --cache-mb 0 --tile-budget-kb 0 > "$WORK/serve-$port.log" 2>&1 &
  PIDS+=($!)
}
serve "$U_PORT" "sqlite://$DB"
serve "$P_PORT" "$PG"
"$MARTIN/martin" --config "$WORK/martin.yaml" > "$WORK/martin.log" 2>&1 &
PIDS+=($!)
for url in "http://127.0.0.1:$U_PORT/health" "http://127.0.0.1:$P_PORT/health" "http://127.0.0.1:$M_PORT/health"; do
  for _ in $(seq 1 1200); do curl -sf "$url" > /dev/null && break; sleep 0.1; done
  curl -sf "$url" > /dev/null || { cat "$WORK"/*.log; exit 1; }
done

# The tiles: z10-z16 over the five layers' data, one list per server.
curl -sf "http://127.0.0.1:$U_PORT/catalog" | python3 -c '
import json, math, sys
cat = json.load(sys.stdin)["layers"]
bs = [l["bounds"] for l in cat if l["bounds"]]
w, s = min(b[0] for b in bs), min(b[1] for b in bs)
e, n = max(b[2] for b in bs), max(b[3] for b in bs)
print(w, s, e, n)
' > "$WORK/bbox"
read -r W S E NN < "$WORK/bbox"
python3 - "$W" "$S" "$E" "$NN" "$PEERS" "$WORK" <<'PY'
import math, sys
w, s, e, n = map(float, sys.argv[1:5])
peers, work = sys.argv[5], sys.argv[6]
def tile(lon, lat, z):
    k = 2 ** z
    return int((lon + 180) / 360 * k), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k)
u, m = open(f"{work}/u.urls", "w"), open(f"{work}/m.urls", "w")
for z in range(10, 17):
    x0, y0 = tile(w, n, z)
    x1, y1 = tile(e, s, z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            print(f"/tiles/{peers}/{z}/{x}/{y}.mvt", file=u)
            print(f"/{peers}/{z}/{x}/{y}", file=m)
PY
tiles=$(wc -l < "$WORK/u.urls")

# The same features in both: one z14 tile at the centre, decoded.
python3 - "$W" "$S" "$E" "$NN" "$U_PORT" "$M_PORT" "$PEERS" > "$WORK/same.txt" <<'PY'
import gzip, math, sys, urllib.request
import mapbox_vector_tile
w, s, e, n = map(float, sys.argv[1:5])
u_port, m_port, peers = sys.argv[5], sys.argv[6], sys.argv[7]
z = 14
lon, lat = (w + e) / 2, (s + n) / 2
k = 2 ** z
x = int((lon + 180) / 360 * k)
y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k)
def get(url):
    r = urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}))
    body = r.read()
    if r.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return {k: len(v["features"]) for k, v in mapbox_vector_tile.decode(body).items()}
a = get(f"http://127.0.0.1:{u_port}/tiles/{peers}/{z}/{x}/{y}.mvt")
b = get(f"http://127.0.0.1:{m_port}/{peers}/{z}/{x}/{y}")
print(f"tile {z}/{x}/{y}: urbantile {a}, Martin {b}")
PY

run() { # port, urls, accept-encoding
  URLS_FILE="$WORK/$2" GZIP=0 ACCEPT_ENCODING="$3" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" \
    --latency -s benches/cycle.lua "http://127.0.0.1:$1"
}
declare -A rates
rows=""
for r in $(seq 1 "$ROUNDS"); do
  for enc in browser gzip identity; do
    case $enc in
      browser) accept="gzip, deflate, br, zstd" ;;
      gzip) accept="gzip" ;;
      identity) accept="identity" ;;
    esac
    for server in urbantile urbantile-pg martin; do
      case $server in
        urbantile) out=$(run "$U_PORT" u.urls "$accept") ;;
        urbantile-pg) out=$(run "$P_PORT" u.urls "$accept") ;;
        martin) out=$(run "$M_PORT" m.urls "$accept") ;;
      esac
      bad=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' <<< "$out" || true)
      rates[$server-$enc]+="$(wrk_field "$out" rps) "
      rows+="| $r | $enc | $server | $(wrk_field "$out" rps) | $(wrk_field "$out" p50) | $(wrk_field "$out" p99) | $(grep -o 'Transfer/sec: *[0-9.]*[KMG]*B' <<< "$out" | awk '{print $2}') | ${bad:-} |"$'\n'
    done
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
summary=""
[ "$ROUNDS" -gt 0 ] && for enc in browser gzip identity; do
  # shellcheck disable=SC2086
  u=$(median ${rates[urbantile-$enc]})
  # shellcheck disable=SC2086
  p=$(median ${rates[urbantile-pg-$enc]})
  # shellcheck disable=SC2086
  m=$(median ${rates[martin-$enc]})
  summary+="| $enc | $u | $p | $m | **$(python3 -c "print(round($u / $m, 1))")x** | $(python3 -c "print(round($p / $m, 1))")x |"$'\n'
done

# Exports to MBTiles of the same layers from the same PostGIS (and urbantile's from SQLite
# too), tile size budgets off: the whole box at z10-z16, and its middle quarter (a district)
# at z10-z18. Each exporter's fixed start (connecting; urbantile reads the layers into
# memory) is told apart from the rate at which it cuts tiles: martin-cp's by exporting the
# one z16 tile at the centre, urbantile's from the cutting time its export reports.
timed() { # command...; prints the seconds it took
  local t0
  t0=$(date +%s.%N)
  "$@" > "$WORK/export.log" 2>&1 || { grep -v "^ *at \|^ *[0-9]*: " "$WORK/export.log" | head -20 >&2; return 1; }
  python3 -c "print(round($(date +%s.%N) - $t0, 2))"
}
export_with() { # exporter, out file, minzoom, maxzoom, w,s,e,n
  rm -f "$2"
  case $1 in
    martin-cp) timed "$MARTIN/martin-cp" --config "$WORK/martin.yaml" --source "$PEERS" --output-file "$2" \
      --min-zoom "$3" --max-zoom "$4" --bbox "$5" --concurrency "$(nproc)" ;;
    urbantile-pg) timed "$BIN/urbantile" --layers "$WORK/layers" --database "$PG" export "$2" \
      --layer "$PEERS" --minzoom "$3" --maxzoom "$4" --bbox "$5" --tile-budget-kb 0 ;;
    urbantile) timed "$BIN/urbantile" --layers "$WORK/layers" --database "sqlite://$DB" export "$2" \
      --layer "$PEERS" --minzoom "$3" --maxzoom "$4" --bbox "$5" --tile-budget-kb 0 ;;
    # With index snapshots: the run before (not timed) wrote them; this one reads them back.
    urbantile-pg-snapshots) timed "$BIN/urbantile" --layers "$WORK/layers" --database "$PG" \
      --snapshots "$WORK/snapshots" export "$2" \
      --layer "$PEERS" --minzoom "$3" --maxzoom "$4" --bbox "$5" --tile-budget-kb 0 ;;
  esac
}
count_tiles() {
  python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from tiles').fetchone()[0])" "$1"
}
read -r CX CY QW QS QE QN <<< "$(python3 -c "
w, s, e, n = $W, $S, $E, $NN
cx, cy = (w + e) / 2, (s + n) / 2
print(cx, cy, cx - (e - w) / 4, cy - (n - s) / 4, cx + (e - w) / 4, cy + (n - s) / 4)")"
# A box a metre across: one z16 tile (an empty box is refused by some exporters).
ONE=$(python3 -c "print(f'{$CX - 5e-6},{$CY - 5e-6},{$CX + 5e-6},{$CY + 5e-6}')")
export_rows=""
exporters="urbantile-pg urbantile-pg-snapshots urbantile"
[ -x "$MARTIN/martin-cp" ] && exporters="martin-cp $exporters"
declare -A rate
snapshot_same=""
for ex in $exporters; do
  # martin-cp's start is timed by a one-tile export; urbantile's export reports the time
  # it spent cutting and writing, after reading the layers into memory.
  [ "$ex" = martin-cp ] && start=$(export_with "$ex" "$WORK/one.mbtiles" 16 16 "$ONE")
  for job in "whole box|10|16|$W,$S,$E,$NN" "district (middle quarter)|10|18|$QW,$QS,$QE,$QN"; do
    IFS='|' read -r area z0 z1 box <<< "$job"
    [ "$ex" = urbantile-pg-snapshots ] && export_with "$ex" "$WORK/$ex.mbtiles" "$z0" "$z1" "$box" > /dev/null
    t=$(export_with "$ex" "$WORK/$ex.mbtiles" "$z0" "$z1" "$box")
    n=$(count_tiles "$WORK/$ex.mbtiles")
    if [ "$ex" = urbantile-pg-snapshots ]; then
      grep -q "read from its index snapshot" "$WORK/export.log" || { echo "no snapshot was read" >&2; exit 1; }
      same=$(python3 -c "
import sqlite3, sys
t = lambda p: dict(((z, x, y), d) for z, x, y, d in sqlite3.connect(p).execute('select zoom_level, tile_column, tile_row, tile_data from tiles'))
print(t(sys.argv[1]) == t(sys.argv[2]))" "$WORK/urbantile-pg-$z1.mbtiles" "$WORK/$ex.mbtiles")
      snapshot_same+="z10-z$z1: $same; "
    fi
    [ "$ex" = urbantile-pg ] && cp "$WORK/$ex.mbtiles" "$WORK/urbantile-pg-$z1.mbtiles"
    if [ "$ex" != martin-cp ]; then
      cutting=$(sed -nE 's/.* in ([0-9.]+) s \([0-9]+ tiles\/s\).*/\1/p' "$WORK/export.log" | tail -1)
      start=$(python3 -c "print(round($t - $cutting, 2))")
    fi
    rate[$ex-$z1]=$(python3 -c "print(round($n / $t))")
    cut=$(python3 -c "print(round($n / max($t - $start, 0.01)))")
    rate[$ex-$z1-cut]=$cut
    export_rows+="| $ex | $area | $z0-$z1 | $n | $t s | ${rate[$ex-$z1]} | $start s | $cut |"$'\n'
  done
done
export_summary=""
if [ -n "${rate[martin-cp-16]:-}" ]; then
  for z1 in 16 18; do
    export_summary+="| z10-z$z1 | $(python3 -c "print(round(${rate[urbantile-pg-$z1]} / ${rate[martin-cp-$z1]}, 1))")x | $(python3 -c "print(round(${rate[urbantile-pg-snapshots-$z1]} / ${rate[martin-cp-$z1]}, 1))")x | $(python3 -c "print(round(${rate[urbantile-pg-$z1-cut]} / ${rate[martin-cp-$z1-cut]}, 1))")x |"$'\n'
  done
fi

report=${REPORT:-benches/results/martin-$(date -u +%Y%m%d-%H%M).md}
{
  echo "# urbantile and Martin, side by side $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); PostgreSQL $(psql -qXAt "$PG" -c 'show server_version') with PostGIS on the same machine; wrk -t2 -c$CONNECTIONS, $DURATION per run; $("$MARTIN/martin" --version 2> /dev/null || echo martin). Data: metro N=$N, layers $PEERS, $tiles composite tiles z10-z16 cycled, every tile cache off, urbantile's tile size budgets off."
  echo
  cat "$WORK/same.txt"
  echo
  echo "| encoding | urbantile (SQLite) tiles/s | urbantile (PostGIS) tiles/s | Martin tiles/s | urbantile / Martin | urbantile on PostGIS / Martin |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s' "$summary"
  echo
  echo "browser: Accept-Encoding: gzip, deflate, br, zstd (as Chrome and Firefox send it). Every run:"
  echo
  echo "| round | encoding | server | tiles/s | p50 | p99 | transfer/s | errors |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s' "$rows"
  echo
  echo "Exports to MBTiles of the same layers, tile size budgets off. Start: for martin-cp, exporting the one z16 tile at the centre; for urbantile, the run's time less the cutting and writing it reports (connecting, reading the five layers into memory and indexing them). After start: the tiles over the time past it. Whole box $W,$S,$E,$NN; district $QW,$QS,$QE,$QN."
  echo
  echo "| exporter | area | zooms | tiles | time | tiles/s | start | tiles/s after start |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s' "$export_rows"
  echo
  echo "urbantile-pg-snapshots: the same export with \`--snapshots\`, timed on the run after the one that wrote them (the layers' indexes read back from their snapshots, not from the store); its tiles byte-identical to urbantile-pg's: $snapshot_same"
  if [ -n "$export_summary" ]; then
    echo
    echo "urbantile export from PostGIS against martin-cp from PostGIS:"
    echo
    echo "| zooms | tiles/s, whole run | whole run, index snapshots read | tiles/s after start |"
    echo "| --- | --- | --- | --- |"
    printf '%s' "$export_summary"
  fi
} > "$report"
cat "$report"
