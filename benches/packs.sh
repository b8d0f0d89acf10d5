#!/usr/bin/env bash
# Offline packs benchmark, on the metropolitan set (N=10 by default; N=4 is quicker):
#   1. `urbantile export` of every layer at z10-z16 over the whole set, as PMTiles (all
#      cores, then one thread) and as MBTiles: tiles/s, and the pack's size against the sum
#      of its tiles (what storing identical tiles once saved);
#   2. one district (the largest zoning polygon) at z10-z18 with --within, and a square
#      kilometre in the middle of the set at z10-z18;
#   3. the server with that pack in --packs: the pack's tiles read by HTTP range
#      (benches/ranges.lua, every tile's byte range in tile-id order) against the same
#      tiles from the tile cache (gzip, warmed), alternating A B A B with wrk over 127.0.0.1.
# Writes benches/results/packs-<date>.md.
#
#   benches/packs.sh
#   N=4 DURATION=10s BIN=/path/to/release benches/packs.sh
#
# Needs wrk (Debian package), python3 with the pmtiles and shapely packages
# (tests/requirements.txt). Stops the server it started by PID, on exit too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18791}
. benches/lib.sh

WORK=$(mktemp -d)
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
URL=http://127.0.0.1:$PORT
PACKS=$WORK/packs
mkdir -p "$PACKS"

# The export's summary line, and its figures as "tiles distinct cut secs rate tile_bytes stored file".
export_pack() {
  "$BIN/urbantile" --database "sqlite://$DB" export "$@" 2> "$WORK/export.log" | tail -1
}
figures() {
  python3 -c '
import re, sys
m = re.search(r": (\d+) tiles \((\d+) distinct\) of (\d+) cut .* in ([\d.]+) s \((\d+) tiles/s\); tiles (\d+) bytes, stored (\d+) bytes, file (\d+) bytes", sys.argv[1])
print(" ".join(m.groups()))' "$1"
}

echo "1. export z10-z16, every layer"
pm=$(export_pack "$PACKS/metro.pmtiles" --minzoom 10 --maxzoom 16)
echo "$pm"
pm1=$(export_pack "$WORK/metro-1.pmtiles" --minzoom 10 --maxzoom 16 --threads 1)
echo "$pm1"
mb=$(export_pack "$WORK/metro.mbtiles" --minzoom 10 --maxzoom 16)
echo "$mb"

start_server "$DB" "$WORK/server.log" --packs "$PACKS"
district=$(curl -sf "$URL/collections/zoning/items?limit=10000&properties=landuse" | python3 -c '
import json, sys
from shapely.geometry import shape
fs = json.load(sys.stdin)["features"]
print(max(fs, key=lambda f: shape(f["geometry"]).area)["id"])')
echo "2. export of district zoning:$district at z10-z18"
dz=$(export_pack "$WORK/district.pmtiles" --minzoom 10 --maxzoom 18 --within "zoning:$district")
echo "$dz"
# A square kilometre in the middle of the set (about a district of the real city) at z10-z18.
box=$(curl -sf "$URL/catalog" | python3 -c '
import json, sys
bs = [l["bounds"] for l in json.load(sys.stdin)["layers"] if l["bounds"]]
cx = (min(b[0] for b in bs) + max(b[2] for b in bs)) / 2
cy = (min(b[1] for b in bs) + max(b[3] for b in bs)) / 2
print(f"{cx - 0.009},{cy - 0.0045},{cx + 0.009},{cy + 0.0045}")')
echo "   and of the square kilometre $box at z10-z18"
dk=$(export_pack "$WORK/km.pmtiles" --minzoom 10 --maxzoom 18 --bbox "$box")
echo "$dk"

echo "3. pack tiles by range against cached tiles"
python3 - "$PACKS/metro.pmtiles" "$WORK/ranges" "$WORK/tiles" <<'PY'
import sys
from pmtiles.reader import MmapSource, all_tiles
from pmtiles.tile import deserialize_header
path, ranges, tiles = sys.argv[1:4]
with open(path, "rb") as f:
    get = MmapSource(f)
    header = deserialize_header(get(0, 127))
    ids = None
    with open(ranges, "w") as r, open(tiles, "w") as t:
        # every tile, in the archive's order, with its byte range in the file
        from pmtiles.tile import deserialize_directory
        def walk(offset, length):
            for e in deserialize_directory(get(offset, length)):
                if e.run_length == 0:
                    yield from walk(header["leaf_directory_offset"] + e.offset, e.length)
                else:
                    for k in range(e.run_length):
                        yield e.tile_id + k, header["tile_data_offset"] + e.offset, e.length
        from pmtiles.tile import tileid_to_zxy
        import json
        layers = None
        for tid, start, length in walk(header["root_offset"], header["root_length"]):
            r.write(f"{start} {start + length - 1}\n")
            z, x, y = tileid_to_zxy(tid)
            t.write(f"{z}/{x}/{y}\n")
PY
layers=$(curl -sf "$URL/catalog" | python3 -c 'import json,sys; print(",".join(l["id"] for l in json.load(sys.stdin)["layers"]))')
sed "s|^|/tiles/$layers/|; s|$|.mvt|" "$WORK/tiles" > "$WORK/tile_paths"
warm_cache "$WORK/tile_paths"
cached() { URLS_FILE="$WORK/tile_paths" GZIP=1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/cycle.lua "$URL"; }
ranged() { RANGES_FILE="$WORK/ranges" PACK_PATH=/packs/metro.pmtiles wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/ranges.lua "$URL"; }
c1=$(cached); r1=$(ranged); c2=$(cached); r2=$(ranged)
stop_server

out=benches/results/packs-$(date -u +%Y%m%d-%H%M).md
read -r t d c s rate tb sb fb <<< "$(figures "$pm")"
read -r t1 d1 c1n s1 rate1 tb1 sb1 fb1 <<< "$(figures "$pm1")"
read -r mt md mc ms mrate mtb msb mfb <<< "$(figures "$mb")"
read -r dt dd dc ds drate dtb dsb dfb <<< "$(figures "$dz")"
read -r kt kd kc ks krate ktb ksb kfb <<< "$(figures "$dk")"
{
  echo "# Offline packs, N=$N ($(date -u +%Y-%m-%d))"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; wrk -t2 -c$CONNECTIONS, $DURATION per run, on the same machine."
  echo
  echo "| export | tiles cut | tiles in pack (distinct) | seconds | tiles/s | sum of tiles | stored tiles | file |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  echo "| PMTiles z10-16, all layers, $(nproc) threads | $c | $t ($d) | $s | $rate | $tb | $sb | $fb |"
  echo "| PMTiles z10-16, all layers, 1 thread | $c1n | $t1 ($d1) | $s1 | $rate1 | $tb1 | $sb1 | $fb1 |"
  echo "| MBTiles z10-16, all layers | $mc | $mt ($md) | $ms | $mrate | $mtb | $msb | $mfb |"
  echo "| PMTiles z10-18, --within zoning:$district (the largest zoning polygon) | $dc | $dt ($dd) | $ds | $drate | $dtb | $dsb | $dfb |"
  echo "| PMTiles z10-18, --bbox $box (1 km x 1 km) | $kc | $kt ($kd) | $ks | $krate | $ktb | $ksb | $kfb |"
  echo
  echo "| serving the z10-16 pack's $(wc -l < "$WORK/ranges") tiles | requests/s | p50 | p99 |"
  echo "| --- | --- | --- | --- |"
  for run in "cached gzip tiles, run 1:$c1" "pack tiles by range, run 1:$r1" "cached gzip tiles, run 2:$c2" "pack tiles by range, run 2:$r2"; do
    name=${run%%:*}; text=${run#*:}
    echo "| $name | $(wrk_field "$text" rps) | $(wrk_field "$text" p50) | $(wrk_field "$text" p99) |"
  done
} > "$out"
cat "$out"
