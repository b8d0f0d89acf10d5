#!/usr/bin/env bash
# Tile archives served as layers, against cached live tiles, on the metropolitan set (N=4 by
# default): a pack of buildings, parks and zoning at z12-z16 over the whole set is exported
# as PMTiles and as MBTiles, and served as archive layers beside the live layers. Over
# 127.0.0.1 with wrk, RUNS rounds of DURATION each, alternating, of:
#   live      /tiles/buildings,parks,zoning/z/x/y.mvt from the tile cache (gzip, warmed):
#             the very bytes the archives hold;
#   pmtiles   the same tiles from the PMTiles archive layer (gzip, slices of the map);
#   mbtiles   the same from the MBTiles archive layer (gzip, slices of its buffer);
#   inflated  the PMTiles layer's tiles to a client without gzip (inflated per request);
#   composite /tiles/roads,<pmtiles layer>/z/x/y.mvt: a live layer and the archive in one
#             tile, from the tile cache (gzip, warmed).
# Archive tiles have no tile cache: every request is the same path (the map is the cache).
# Writes benches/results/archive-<date>.md with the median of each.
#
#   benches/archive.sh
#   N=2 DURATION=10s RUNS=3 BIN=/path/to/release benches/archive.sh
#
# Needs wrk (Debian package), python3 with the pmtiles package (tests/requirements.txt).
# Stops the server it started by PID, on exit too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-4}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
PORT=${PORT:-18793}
. benches/lib.sh

WORK=$(mktemp -d)
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
URL=http://127.0.0.1:$PORT
PACK_LAYERS=buildings,parks,zoning

for f in base.pmtiles base.mbtiles; do
  "$BIN/urbantile" --database "sqlite://$DB" export "$WORK/$f" --layers "$PACK_LAYERS" \
    --minzoom 12 --maxzoom 16 2> "$WORK/export.log" | tail -1
done
mkdir "$WORK/layers"
cp layers/*.toml "$WORK/layers/"
printf 'title = "Base map (PMTiles)"\n[archive]\npath = "../base.pmtiles"\n' > "$WORK/layers/base_pm.toml"
printf 'title = "Base map (MBTiles)"\n[archive]\npath = "../base.mbtiles"\n' > "$WORK/layers/base_mb.toml"
start_server "$DB" "$WORK/server.log" --layers "$WORK/layers"
rss=$(server_rss_kb)

# Every tile of the pack, in its order.
python3 - "$WORK/base.pmtiles" > "$WORK/tiles" <<'PY'
import sys
from pmtiles.reader import MmapSource, all_tiles
with open(sys.argv[1], "rb") as f:
    for (z, x, y), _ in all_tiles(MmapSource(f)):
        print(f"{z}/{x}/{y}")
PY
sed "s|^|/tiles/$PACK_LAYERS/|; s|$|.mvt|" "$WORK/tiles" > "$WORK/live"
sed "s|^|/tiles/base_pm/|; s|$|.mvt|" "$WORK/tiles" > "$WORK/pmtiles"
sed "s|^|/tiles/base_mb/|; s|$|.mvt|" "$WORK/tiles" > "$WORK/mbtiles"
sed "s|^|/tiles/roads,base_pm/|; s|$|.mvt|" "$WORK/tiles" > "$WORK/composite"
# The archive answers the bytes the live layers do (spot check), then the caches are warmed.
python3 - "$PORT" "$WORK/tiles" "$PACK_LAYERS" <<'PY'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
tiles = [t.strip() for t in open(sys.argv[2])]
for t in tiles[:: max(1, len(tiles) // 200)]:
    got = []
    for layers in (sys.argv[3], "base_pm", "base_mb"):
        conn.request("GET", f"/tiles/{layers}/{t}.mvt", headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        got.append(r.read())
    assert got[0] == got[1] == got[2], t
PY
warm_cache "$WORK/live"
warm_cache "$WORK/composite"

run() {
  local paths=$1 gzip=$2
  URLS_FILE="$WORK/$paths" GZIP=$gzip wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/cycle.lua "$URL"
}
declare -A RPS P50 P99
KINDS="live pmtiles mbtiles inflated composite"
for r in $(seq 1 "$RUNS"); do
  for kind in $KINDS; do
    case $kind in
      inflated) out=$(run pmtiles 0) ;;
      *) out=$(run "$kind" 1) ;;
    esac
    RPS[$kind]+="$(wrk_field "$out" rps) "
    P50[$kind]+="$(wrk_field "$out" p50) "
    P99[$kind]+="$(wrk_field "$out" p99) "
    echo "run $r $kind: $(wrk_field "$out" rps) req/s"
  done
done
stop_server

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Latencies come as 1.23ms / 456.00us: the median run by requests/s gives its own latencies.
pick() {
  local rps_list=$1 lat_list=$2 m
  m=$(median "$rps_list")
  paste <(tr ' ' '\n' <<<"$rps_list") <(tr ' ' '\n' <<<"$lat_list") | awk -v m="$m" '$1 == m {print $2; exit}'
}
live=$(median "${RPS[live]}")
out=benches/results/archive-$(date -u +%Y%m%d-%H%M).md
{
  echo "# Tile archives as layers, N=$N ($(date -u +%Y-%m-%d))"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; wrk -t2 -c$CONNECTIONS, $DURATION per run, $RUNS runs each, alternating, on the same machine; the median run."
  echo "Binaries: $BIN (target/release unless said otherwise)."
  echo "Pack: $PACK_LAYERS at z12-z16 over the set, $(wc -l < "$WORK/tiles") tiles; PMTiles $(stat -c %s "$WORK/base.pmtiles") bytes, MBTiles $(stat -c %s "$WORK/base.mbtiles") bytes. Server resident memory with both archives open, before the runs: $((rss / 1024)) MiB."
  echo
  echo "| tiles | requests/s (median) | of the cached live rate | p50 | p99 | every run, requests/s |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for kind in $KINDS; do
    m=$(median "${RPS[$kind]}")
    case $kind in
      live) name="live layers $PACK_LAYERS, tile cache, gzip" ;;
      pmtiles) name="PMTiles archive layer, gzip as stored" ;;
      mbtiles) name="MBTiles archive layer, gzip as stored" ;;
      inflated) name="PMTiles archive layer, inflated (no Accept-Encoding)" ;;
      composite) name="roads + PMTiles archive, one tile, tile cache, gzip" ;;
    esac
    pct=$(python3 -c "print(round(100 * $m / $live))")
    echo "| $name | $m | $pct% | $(pick "${RPS[$kind]}" "${P50[$kind]}") | $(pick "${RPS[$kind]}" "${P99[$kind]}") | ${RPS[$kind]}|"
  done
} > "$out"
cat "$out"
