#!/usr/bin/env bash
# Scale benchmark (issue 11's replica target; not a CI test): how long a server takes to
# start on the metropolitan set (N x N copies of the city, N=30 by default: 4.5 million
# features) and how much it holds resident once it answers, from the SQLite store (made as
# benches/lib.sh makes it, and reused). Each run is measured from the start of the process
# to its first /health answer, over 127.0.0.1:
#   - start: wall seconds, and CPU seconds the process used (user + system; steadier than
#     wall time on a shared machine);
#   - resident memory (VmRSS) one second after /health answers, and its peak (VmHWM).
# Writes benches/results/scale-<date>.md.
#
#   benches/scale.sh                          # N=30, one run
#   N=10 RUNS=3 benches/scale.sh
#   BIN=/path/to/release benches/scale.sh     # prebuilt binaries (a folder), no cargo build
#   BEFORE=/path/to/old/urbantile benches/scale.sh   # also measure another build, in turns
#
# Needs python3 and curl. Stops the servers it started, by PID, on exit too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-30}
RUNS=${RUNS:-1}
PORT=${PORT:-18797}
. benches/lib.sh
trap stop_server EXIT

TICKS=$(getconf CLK_TCK)
# One start of binary $1: prints "wall_s cpu_s rss_mib hwm_mib".
measure() {
  local bin=$1 log t0 t1
  log=$(mktemp)
  t0=$(date +%s.%N)
  "$bin" --database "sqlite://$DB" serve --bind "127.0.0.1:$PORT" > "$log" 2>&1 &
  SERVER_PID=$!
  until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do
    kill -0 "$SERVER_PID" 2> /dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  local cpu
  cpu=$(awk -v t="$TICKS" '{print ($14 + $15) / t}' "/proc/$SERVER_PID/stat")
  sleep 1
  local rss hwm
  rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status")
  hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status")
  stop_server
  rm -f "$log"
  python3 -c "print(round($t1 - $t0, 1), round($cpu, 1), $rss, $hwm)"
}

builds=("$BIN/urbantile")
[ -n "${BEFORE:-}" ] && builds=("$BEFORE" "${builds[@]}")
results=()
for run in $(seq 1 "$RUNS"); do
  for b in "${builds[@]}"; do
    r=$(measure "$b")
    echo "run $run, $b: $r"
    results+=("$b $r")
  done
done

features=$(cat "$DATA"/*.geojsonseq | wc -l)
OUT=benches/results/scale-$(date -u +%Y%m%d-%H%M).md
{
  echo "# Scale benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, shared, $(free -g | awk '/Mem:/ {print $2}') GiB. Data: metro N=$N, $features features, SQLite store (ingested in $(cat "$DB.complete") s)."
  echo "Start: from the process's start to its first /health answer. Resident: VmRSS 1 s after that; peak: VmHWM."
  echo
  echo "| build | start s | start CPU s | resident MiB | peak MiB |"
  echo "| --- | --- | --- | --- | --- |"
  for r in "${results[@]}"; do
    read -r b wall cpu rss hwm <<< "$r"
    echo "| $b | $wall | $cpu | $rss | $hwm |"
  done
  echo
  echo "Issue 11's target at N=30: start under 60 s, under 4 GiB (4096 MiB) resident."
} > "$OUT"
cat "$OUT"
