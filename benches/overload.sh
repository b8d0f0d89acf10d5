#!/usr/bin/env bash
# Overload benchmark: does the server keep answering cheap requests while expensive ones
# run? The release server on the metropolitan set (N=10), tile cache on, default compute
# pool (--workers one per core, --queue, --deadline-secs), all over 127.0.0.1:
#   1. cached composite tiles alone: wrk -t2 -c32 for DURATION (20 s), gzip, cycling the
#      z10-z16 tile list after one warm pass: the unloaded throughput;
#   2. EXPENSIVE (16) clients start, each looping over expensive requests
#      (benches/overload_clients.py: an items LIKE '%a%b%c%d%' with limit 10000, an
#      aggregate of accidents by zoning, a 60-term CQL2 OR chain, z11 composite tiles with a
#      filter never asked before); after 3 s, /health alone is timed for 10 s (one client,
#      sequential, one request per 10 ms);
#   3. with the expensive clients still running, the cached tiles again for DURATION, and
#      /health timed during it.
# Checks and prints: cached tiles keep at least half of their unloaded throughput; /health
# p99 under 100 ms; how many expensive requests were answered 200 and how many 503.
# Writes benches/results/overload-<date>.md.
#
#   benches/overload.sh
#   DURATION=10s EXPENSIVE=8 benches/overload.sh
#   BIN=/path/to/release benches/overload.sh   # prebuilt binaries, no cargo build
#
# Needs wrk (Debian package) and python3. Stops what it started by PID, on exit too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
DURATION=${DURATION:-20s}
EXPENSIVE=${EXPENSIVE:-16}
PORT=${PORT:-18789}
. benches/lib.sh

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
URL=http://127.0.0.1:$PORT
secs=${DURATION%s}

# Only reads: the store itself.
start_server "$DB" "$WORK/server.log" "$@"
pool=$(grep -o 'workers=[0-9]* queue=[0-9]* deadline_s=[0-9.]*' "$WORK/server.log" || echo '?')
tile_urls > "$WORK/tiles"
warm_cache "$WORK/tiles"
cached() {
  URLS_FILE="$WORK/tiles" GZIP=1 wrk -t2 -c32 -d"$DURATION" --latency -s benches/cycle.lua "$URL"
}
echo "1. cached tiles, unloaded"
unloaded=$(cached)

echo "2. $EXPENSIVE expensive clients; /health alone"
python3 benches/overload_clients.py expensive "127.0.0.1:$PORT" "$EXPENSIVE" "$((secs + 15))" \
  > "$WORK/expensive.json" &
PIDS+=($!)
EXPENSIVE_PID=$!
sleep 3
python3 benches/overload_clients.py health "127.0.0.1:$PORT" 10 > "$WORK/health-alone.json"

echo "3. cached tiles and /health, under the expensive clients"
python3 benches/overload_clients.py health "127.0.0.1:$PORT" "$secs" > "$WORK/health-loaded.json" &
PIDS+=($!)
HEALTH_PID=$!
loaded=$(cached)
wait "$HEALTH_PID"
wait "$EXPENSIVE_PID"
PIDS=()
alive=yes
curl -sf "$URL/health" > /dev/null || alive=no
stop_server

report="benches/results/overload-$(date -u +%Y%m%d-%H%M).md"
python3 - "$WORK" "$report" "$N" "$EXPENSIVE" "$DURATION" "$pool" "$alive" "$(nproc)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  "$(wrk_field "$unloaded" rps)" "$(wrk_field "$unloaded" p50)" "$(wrk_field "$unloaded" p99)" \
  "$(wrk_field "$loaded" rps)" "$(wrk_field "$loaded" p50)" "$(wrk_field "$loaded" p99)" \
  "$( (grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$unloaded$loaded" || true) | awk '{s += $NF} END {print s + 0}')" \
  "$( (grep -o 'Socket errors.*' <<<"$unloaded$loaded" || true) | tr '\n' ';')" <<'PY'
import json, re, sys, time
(work, report, n, clients, duration, pool, alive, nproc, cpu, u_rps, u_p50, u_p99, l_rps, l_p50,
 l_p99, wrk_non2xx, wrk_sock) = sys.argv[1:]
exp = json.load(open(f"{work}/expensive.json"))
h_alone = json.load(open(f"{work}/health-alone.json"))
h_loaded = json.load(open(f"{work}/health-loaded.json"))
ratio = float(l_rps) / float(u_rps)
tiles_ok = ratio >= 0.5
health_p99 = max(h_alone["p99_ms"], h_loaded["p99_ms"])
health_ok = health_p99 < 100 and h_alone["non_200"] + h_alone["errors"] + h_loaded["non_200"] + h_loaded["errors"] == 0
total = {}
for k in exp["kinds"].values():
    for c, m in k["status"].items():
        total[c] = total.get(c, 0) + m
other = sum(m for c, m in total.items() if c not in ("200", "204", "503"))
sock = sum(k["errors"] for k in exp["kinds"].values())
log = open(f"{work}/server.log", errors="replace").read().splitlines()
panics = [l for l in log if "panicked" in l]
log_errors = [l for l in log if re.search(r"\bERROR\b", l)]
out = []
p = out.append
p(f"# Overload benchmark {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
p("")
p(f"Machine: {nproc} cores, {cpu}, shared with other builds; clients on the same machine. "
  f"Data: metro N={n}; tile cache on (256 MiB); compute pool: {pool}.")
p("")
p(f"- **Cached tiles under {clients} expensive clients: {ratio:.0%} of their unloaded throughput** "
  f"(required >= 50%): **{'held' if tiles_ok else 'FAILED'}**")
p(f"- **/health p99: {h_alone['p99_ms']} ms with only the expensive clients, {h_loaded['p99_ms']} ms "
  f"with the tile load too** (required < 100 ms, every answer 200): **{'held' if health_ok else 'FAILED'}**")
p(f"- Expensive requests: {total.get('200', 0) + total.get('204', 0)} answered 200/204, "
  f"{total.get('503', 0)} answered 503, {other} other statuses, {sock} socket errors. "
  f"wrk: {wrk_non2xx} non-2xx/3xx; {wrk_sock or 'no socket errors'}. Server alive at the end: {alive}; "
  f"log: {len(panics)} panics, {len(log_errors)} ERROR lines.")
p("")
p(f"| cached composite tiles, gzip (wrk -t2 -c32, {duration}) | tiles/s | p50 | p99 |")
p("| --- | --- | --- | --- |")
p(f"| unloaded | {float(u_rps):,.0f} | {u_p50} | {u_p99} |")
p(f"| with {clients} expensive clients | {float(l_rps):,.0f} | {l_p50} | {l_p99} |")
p("")
p("| /health, one client, sequential, every 10 ms | requests | p50 | p90 | p99 | max | non-200 | errors |")
p("| --- | --- | --- | --- | --- | --- | --- | --- |")
for name, h in [("expensive clients only (10 s)", h_alone), (f"expensive clients and the tile load ({duration})", h_loaded)]:
    p(f"| {name} | {h['requests']} | {h['p50_ms']} ms | {h['p90_ms']} ms | {h['p99_ms']} ms | {h['max_ms']} ms | {h['non_200']} | {h['errors']} |")
p("")
p(f"| expensive request ({clients} clients in all, round robin) | answers by status | socket errors | p50 | p99 |")
p("| --- | --- | --- | --- | --- |")
for name, k in exp["kinds"].items():
    codes = ", ".join(f"{c}: {m}" for c, m in k["status"].items())
    p(f"| {name} | {codes} | {k['errors']} | {k['p50_ms']} ms | {k['p99_ms']} ms |")
if exp["first_bad"]:
    p("")
    p("First answer of each unexpected kind, with its request:")
    p("")
    for what, path in exp["first_bad"].items():
        p(f"- `{what}` for `{path}`")
if panics or log_errors:
    p("")
    p("```")
    out.extend((panics + log_errors)[:20])
    p("```")
open(report, "w").write("\n".join(out) + "\n")
print("\n".join(out))
print(f"wrote {report}")
sys.exit(0 if tiles_ok and health_ok else 1)
PY
