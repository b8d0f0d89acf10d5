#!/usr/bin/env bash
# Runs fuzz targets one after another for a bounded time each, niced, with the settings of
# the recorded runs (fuzz/README.md), and prints each run's figures.
#   fuzz/run.sh SECONDS TARGET...        e.g. fuzz/run.sh 420 wkt csv
# Needs: cargo install cargo-fuzz; a nightly toolchain. Logs go to fuzz/logs/ (not kept).
# NOBUILD=1 runs the binaries as they are (while another build holds the lock).
set -euo pipefail
cd "$(dirname "$0")"
secs=$1
shift
[ -n "${NOBUILD:-}" ] || cargo +nightly fuzz build -O -a -s none --codegen-units 8 > /dev/null
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs artifacts
for t in "$@"; do
  case $t in
    osm_pbf | shapefile | fgb) max_len=65536 ;;
    pmtiles | snapshot) max_len=16384 ;;
    geojson_write | geojsonseq) max_len=16384 ;;
    csv) max_len=8192 ;;
    *) max_len=4096 ;;
  esac
  dict=()
  [ -f "dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict")
  mkdir -p "artifacts/$t"
  # user and system CPU seconds, then wall seconds, on the log's last line.
  /usr/bin/time -f "cpu %U %S wall %e" -a -o "logs/$t.log" \
    nice -n 19 "$bin/$t" "corpus/$t" "${dict[@]}" -max_total_time="$secs" -rss_limit_mb=2048 \
    -timeout=10 -max_len=$max_len -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    > /dev/null 2>> "logs/$t.log" || echo "$t: stopped with a finding (see logs/$t.log)"
  echo "$t: $(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)"
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec)|^cpu ' "logs/$t.log" | tail -3
done
