#!/usr/bin/env bash
# Operations benchmark (issue 14), on the release server and the metropolitan set (N=10
# by default, as benches/load.sh makes it):
#   1. what request metrics cost on the cached-tile path: two servers on one store, one as
#      it runs by default and one with --no-request-metrics, both caches warmed, driven by
#      wrk with cached gzip composite tiles in turn (A B A B ..., ROUNDS rounds); the
#      ratio of the median rates;
#   2. files of 100,000 features: f=fgb and f=csv of the largest layer, limit=100000,
#      fetched whole with curl (3 times each; medians), the FlatGeobuf one then counted
#      by GDAL's ogrinfo.
# Writes benches/results/ops-<date>.md.
#
#   benches/ops.sh                      # N=10, 10 s per wrk run, 3 rounds
#   BIN=/path/to/release N=5 DURATION=5s ROUNDS=2 benches/ops.sh
#
# Needs wrk (Debian package), curl, python3 and gdal-bin. Stops the servers it started,
# by their PIDs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
PORT=${PORT:-18791}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
# shellcheck source=benches/lib.sh
source benches/lib.sh

WORK=$(mktemp -d)
PID_A=
PID_B=
trap 'for p in $PID_A $PID_B; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

PORT_A=$PORT
PORT_B=$((PORT + 1))
PORT=$PORT_A
PORT_M=$((PORT + 2))
start_server "$DB" "$WORK/a.log" --metrics-bind "127.0.0.1:$PORT_M"
PID_A=$SERVER_PID
PORT=$PORT_B
start_server "$DB" "$WORK/b.log" --no-request-metrics
PID_B=$SERVER_PID
SERVER_PID=

PORT=$PORT_A
tile_urls > "$WORK/urls"
tiles=$(wc -l < "$WORK/urls")
for p in $PORT_A $PORT_B; do
  PORT=$p
  warm_cache "$WORK/urls"
done

cached() {
  URLS_FILE="$WORK/urls" GZIP=1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s benches/cycle.lua "http://127.0.0.1:$1"
}
rates_a=()
rates_b=()
rows=""
for r in $(seq 1 "$ROUNDS"); do
  a=$(cached "$PORT_A")
  b=$(cached "$PORT_B")
  rates_a+=("$(wrk_field "$a" rps)")
  rates_b+=("$(wrk_field "$b" rps)")
  rows+="| $r | $(wrk_field "$a" rps) (p50 $(wrk_field "$a" p50), p99 $(wrk_field "$a" p99)) | $(wrk_field "$b" rps) (p50 $(wrk_field "$b" p50), p99 $(wrk_field "$b" p99)) |"$'\n'
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
med_a=$(median "${rates_a[@]}")
med_b=$(median "${rates_b[@]}")
ratio=$(python3 -c "print(round(100 * $med_a / $med_b, 1))")
scrape() { curl -sf -o "$WORK/metrics.txt" -w '%{time_total}\n' "http://127.0.0.1:$PORT_M/metrics"; }
scrape > /dev/null
scrape_s=$(median "$(scrape)" "$(scrape)" "$(scrape)")
metric_lines=$(grep -vc '^#' "$WORK/metrics.txt")

# 2. Files of 100,000 features, from the largest layer.
layer=$(curl -sf "http://127.0.0.1:$PORT_A/catalog" | python3 -c '
import json, sys
print(max(json.load(sys.stdin)["layers"], key=lambda l: l["count"])["id"])')
matched=$(curl -sf "http://127.0.0.1:$PORT_A/collections/$layer/items?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["numberMatched"])')
fetch() {
  curl -sf -o "$WORK/out.$1" -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
    "http://127.0.0.1:$PORT_A/collections/$layer/items?f=$1&limit=100000"
}
declare -A first total size
for f in fgb csv; do
  firsts=()
  totals=()
  for _ in 1 2 3; do
    read -r t0 t1 bytes < <(fetch "$f")
    firsts+=("$t0")
    totals+=("$t1")
    size[$f]=$bytes
  done
  first[$f]=$(median "${firsts[@]}")
  total[$f]=$(median "${totals[@]}")
done
fgb_count=$(ogrinfo -ro -al -so "$WORK/out.fgb" | awk -F': ' '/Feature Count/ {print $2}')
csv_rows=$(($(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))))' "$WORK/out.csv") - 1))
rss_a=$(awk '/VmRSS/ {print $2}' "/proc/$PID_A/status")

report=${REPORT:-benches/results/ops-$(date -u +%Y%m%d-%H%M).md}
{
  echo "# Operations benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; wrk -t2 -c$CONNECTIONS, $DURATION per run, on the same machine. Data: metro N=$N."
  echo
  echo "## Request metrics on the cached-tile path"
  echo
  echo "Two release servers on one store, caches warmed with all $tiles composite tiles (z10-z16, gzip); wrk runs alternate between them."
  echo
  echo "| round | with request metrics (tiles/s) | --no-request-metrics (tiles/s) |"
  echo "| --- | --- | --- |"
  printf '%s' "$rows"
  echo
  echo "Medians: $med_a/s with, $med_b/s without: **$ratio%**."
  echo
  echo "A scrape of /metrics (--metrics-bind listener) after the runs: $metric_lines samples in ${scrape_s} s (median of 3)."
  echo
  echo "## Files of 100,000 features"
  echo
  echo "Layer $layer ($matched features), \`limit=100000\`, curl over 127.0.0.1, median of 3; resident memory of the server afterwards $((rss_a / 1024)) MiB."
  echo
  echo "| format | first byte | whole answer | size | features read back |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| FlatGeobuf | ${first[fgb]} s | **${total[fgb]} s** | $((size[fgb] / 1024)) KiB | $fgb_count (ogrinfo) |"
  echo "| CSV (WKT) | ${first[csv]} s | **${total[csv]} s** | $((size[csv] / 1024)) KiB | $csv_rows (python csv) |"
} > "$report"
cat "$report"
