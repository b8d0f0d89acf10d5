#!/usr/bin/env bash
# Soak benchmark (not a CI test): the release server on the metropolitan set (N=10), with
# the tile cache on, under a mixed load for DURATION seconds (600 by default), all over
# 127.0.0.1 and all at once:
#   - cached composite tiles: wrk cycling the z10-z16 tile list (as benches/load.sh builds
#     it, warmed by one pass first), gzip;
#   - uncached composite tiles: wrk over the same list, each request with a filter never
#     asked before (benches/bust.lua), so each is cut afresh and churns the cache;
#   - item queries (bbox; CQL2 spatial AND property filters) and nearest/containing, at
#     random places (benches/soak_clients.py queries);
#   - single-feature writes at WRITE_RATE (300/s, a tenth of load.sh's POST peak) on a
#     fixed schedule: POST a report, then DELETE it, so the data set keeps its size;
#   - SSE_SUBSCRIBERS (4) clients reading GET /changes continuously.
# The server's resident memory (VmRSS) is sampled every 10 s. Every wrk stream counts its
# answers by status (benches/counted.lua), so 503s are counted apart from other errors.
# Checks and prints: RSS growth from the 1-minute mark to the end under 5%; no errors (any
# answer but 2xx/304, or a socket error, from any load generator; 503s reported apart).
# The writes go to a copy of the store. Writes benches/results/soak-<date>.md.
#
#   benches/soak.sh                      # 10 minutes
#   DURATION=60 benches/soak.sh          # a short try
#   BIN=/path/to/release benches/soak.sh # prebuilt binaries, no cargo build
#   CACHE_MB=256 benches/soak.sh         # the default cache size (fills after ~4 minutes)
#   STREAMS=writes,sse DURATION=240 benches/soak.sh   # some streams only, to find what grows
#
# Needs wrk (Debian package) and python3. Stops what it started (server, load generators,
# sampler) by PID, on exit too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
DURATION=${DURATION:-600}
PORT=${PORT:-18788}
# The tile cache is limited so that it is full, and churning, before the 1-minute mark:
# the cycle's cached tiles take about 67 MiB, the never-cached ones fill the rest within
# seconds. With the default 256 MiB it fills only after minutes of this load, and RSS
# grows with it.
CACHE_MB=${CACHE_MB:-96}
WRITE_RATE=${WRITE_RATE:-300}
WRITE_THREADS=${WRITE_THREADS:-3}
SSE_SUBSCRIBERS=${SSE_SUBSCRIBERS:-4}
STREAMS=${STREAMS:-cached,uncached,items,planner,writes,sse}
on() { [[ ",$STREAMS," == *",$1,"* ]]; }
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

# The writes must not change the data set: a copy of the store, with a key for them.
python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')" "$DB"
cp "$DB" "$WORK/store.db"
KEY=$("$BIN/urbantile" --database "sqlite://$WORK/store.db" keys add soak --write urban_problems | tail -1)
start_server "$WORK/store.db" "$WORK/server.log" --cache-mb "$CACHE_MB"
features=$(grep -o 'index built.*' "$WORK/server.log" | grep -o 'features=[0-9]*' | cut -d= -f2 || true)
tile_urls > "$WORK/tiles"
python3 benches/soak_clients.py queries "127.0.0.1:$PORT" > "$WORK/queries"
awk '$1 == "items" {print $2}' "$WORK/queries" > "$WORK/items"
awk '$1 == "planner" {print $2}' "$WORK/queries" > "$WORK/planner"
echo "N=$N: ${features:-?} features, $(wc -l < "$WORK/tiles") tiles; soak of ${DURATION} s"

# For scale: a fixed answer's rate on this machine now, before the load.
echo /ping > "$WORK/ping"
ping=$(URLS_FILE="$WORK/ping" GZIP=0 wrk -t2 -c32 -d10s --latency -s benches/cycle.lua "$URL")
if on cached; then warm_cache "$WORK/tiles"; fi

# Every load generator runs DURATION seconds and stops by itself.
stream() { # name, connections, then env assignments for the wrk script
  local name=$1 conns=$2
  shift 2
  on "$name" || return 0
  env "$@" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 15s --latency -s benches/counted.lua "$URL" \
    > "$WORK/$name.out" 2>&1 &
  PIDS+=($!)
}
stream cached 8 SCRIPT=benches/cycle.lua URLS_FILE="$WORK/tiles" GZIP=1
stream uncached 4 SCRIPT=benches/bust.lua URLS_FILE="$WORK/tiles" GZIP=1
stream items 2 SCRIPT=benches/cycle.lua URLS_FILE="$WORK/items" GZIP=0
stream planner 2 SCRIPT=benches/cycle.lua URLS_FILE="$WORK/planner" GZIP=0
if on writes; then
  python3 benches/soak_clients.py writes "127.0.0.1:$PORT" "$KEY" "$WRITE_RATE" "$DURATION" "$WRITE_THREADS" \
    > "$WORK/writes.json" 2> "$WORK/writes.err" &
  PIDS+=($!)
fi
# The subscribers go on 3 s longer, to receive the last writes' events.
if on sse; then
  python3 benches/soak_clients.py sse "127.0.0.1:$PORT" "$SSE_SUBSCRIBERS" "$((DURATION + 3))" \
    > "$WORK/sse.json" 2> "$WORK/sse.err" &
  PIDS+=($!)
fi

# RSS every 10 s, from the start of the load to its end.
start=$(date +%s)
: > "$WORK/rss"
for ((t = 0; t <= DURATION; t += 10)); do
  sleep $((start + t - $(date +%s) > 0 ? start + t - $(date +%s) : 0))
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server died at ${t} s" | tee -a "$WORK/died"; break; }
  echo "$t $(server_rss_kb)" >> "$WORK/rss"
done
for p in "${PIDS[@]}"; do wait "$p" || true; done
PIDS=()
alive=yes
if [ -f "$WORK/died" ] || ! curl -sf "$URL/health" > /dev/null; then alive=no; fi
rss_after_kb=$(server_rss_kb 2>/dev/null || echo 0)
sleep 10
rss_idle_kb=$(server_rss_kb 2>/dev/null || echo 0)
stop_t0=$(date +%s.%N)
stop_server
stop_s=$(python3 -c "print(round($(date +%s.%N) - $stop_t0, 2))")

report=${REPORT:-benches/results/soak-$(date -u +%Y%m%d-%H%M).md}
python3 - "$WORK" "$report" "$DURATION" "$N" "${features:-?}" "$alive" "$rss_after_kb" "$rss_idle_kb" "$stop_s" \
  "$CACHE_MB" "$WRITE_RATE" "$SSE_SUBSCRIBERS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  "$(wrk_field "$ping" rps)" "$STREAMS" "$WRITE_THREADS" <<'PY'
import json, re, sys, time
(work, report, duration, n, features, alive, rss_after, rss_idle, stop_s, cache_mb, write_rate,
 subscribers, nproc, cpu, ping, enabled, write_threads) = sys.argv[1:]
enabled = enabled.split(",")
duration = int(duration)

def wrk(name):
    text = open(f"{work}/{name}.out").read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M))
    status = {int(c): int(k) for c, k in re.findall(r"^status (\d+) (\d+)", text, re.M)}
    sock = re.search(r"socket_errors connect (\d+) read (\d+) write (\d+) timeout (\d+)", text)
    sock = sum(map(int, sock.groups())) if sock else None
    return {"rps": float(rps.group(1)) if rps else None, "p50": lat.get("50"), "p90": lat.get("90"),
            "p99": lat.get("99"), "status": status, "socket": sock, "text": text}

streams = {k: wrk(k) for k in ["cached", "uncached", "items", "planner"] if k in enabled}
writes = (json.load(open(f"{work}/writes.json")) if "writes" in enabled else
          {"by_status": {}, "socket_errors": 0, "rate": 0, "p50_ms": None, "p99_ms": None, "max_ms": None})
sse = json.load(open(f"{work}/sse.json"))["subscribers"] if "sse" in enabled else []
rss = [tuple(map(int, l.split())) for l in open(f"{work}/rss")]

def good(code):
    return 200 <= code < 300 or code == 304

errors = 0; shed = 0
rows = []
for name, s in streams.items():
    bad = sum(k for c, k in s["status"].items() if not good(c) and c != 503)
    s503 = s["status"].get(503, 0)
    errors += bad + (s["socket"] or 0) + (0 if s["socket"] is not None else 1)
    shed += s503
    codes = ", ".join(f"{c}: {k}" for c, k in sorted(s["status"].items()))
    rows.append((name, s, bad, s503, codes))
w_status = {int(c): k for c, k in writes["by_status"].items()}
w_bad = sum(k for c, k in w_status.items() if not good(c) and c != 503)
w_503 = w_status.get(503, 0)
errors += w_bad + writes["socket_errors"]
shed += w_503
sse_bad = sum(s["bad_status"] for s in sse)
sse_reconnects = sum(s["reconnects"] for s in sse)
errors += sse_bad + sse_reconnects
writes_ok = sum(k for c, k in w_status.items() if 200 <= c < 300)

at60 = next((r for t, r in rss if t >= 60), None)
end = rss[-1][1] if rss else None
growth = (end - at60) / at60 * 100 if at60 and end else None
rss_ok = growth is not None and growth < 5 and rss[-1][0] >= duration - 10
err_ok = errors == 0 and alive == "yes"
log = open(f"{work}/server.log", errors="replace").read().splitlines()
panics = [l for l in log if "panicked" in l]
log_errors = [l for l in log if re.search(r"\bERROR\b", l)]
log_warns = [l for l in log if re.search(r"\bWARN\b", l)]

mib = lambda kb: f"{kb / 1024:.0f}"
out = []
p = out.append
p(f"# Soak benchmark {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
p("")
p(f"Machine: {nproc} cores, {cpu}, shared with other builds; load generators on the same machine. "
  f"A fixed answer (`/ping`, wrk -t2 -c32, 10 s, before the load): {float(ping):,.0f}/s, for scale.")
p(f"Data: metro N={n}, {features} features, on a copy of the store; tile cache {cache_mb} MiB. "
  f"Mixed load for {duration} s, every stream at once, over 127.0.0.1"
  + (f"; streams: {', '.join(enabled)}." if len(enabled) < 6 else "."))
p("")
p(f"- **RSS growth from the 1-minute mark to the end: {growth:+.2f}%** "
  f"({mib(at60)} -> {mib(end)} MiB; required < 5%): **{'held' if rss_ok else 'FAILED'}**"
  if growth is not None else "- RSS growth: no samples (the server died?): **FAILED**")
p(f"- **Errors (answers other than 2xx/304, socket errors, dropped SSE streams, from every "
  f"client): {errors}**; required 0: **{'held' if err_ok else 'FAILED'}**. "
  f"503s (load shed, counted apart): {shed}. Server alive and answering /health at the end: {alive}.")
half = next((r for t, r in rss if t >= duration // 2), None)
if half and end:
    p(f"- RSS growth over the second half ({duration // 2} s to the end): {(end - half) / half * 100:+.2f}%; "
      f"largest sample {mib(max(r for _, r in rss))} MiB.")
p(f"- Server log: {len(panics)} panics, {len(log_errors)} ERROR lines, {len(log_warns)} WARN lines. "
  f"RSS 10 s after the load: {mib(int(rss_idle))} MiB. SIGTERM to exit: {stop_s} s.")
p("")
p("| stream | clients | requests/s | p50 | p90 | p99 | answers by status | other errors | 503 | socket errors |")
p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
conns = {"cached": "wrk -c8", "uncached": "wrk -c4", "items": "wrk -c2", "planner": "wrk -c2"}
what = {"cached": "composite tiles, cached, gzip",
        "uncached": "composite tiles, a new filter each (never cached), gzip",
        "items": "items: bbox; CQL2 S_INTERSECTS AND property",
        "planner": "nearest k=5 / containing"}
for name, s, bad, s503, codes in rows:
    p(f"| {what[name]} | {conns[name]} | {s['rps']:,.1f} | {s['p50']} | {s['p90']} | {s['p99']} | {codes} | {bad} | {s503} | {s['socket']} |")
codes = ", ".join(f"{c}: {k}" for c, k in sorted(w_status.items()))
if "writes" in enabled: p(f"| single-feature writes (POST, then DELETE it), paced at {write_rate}/s | python, {write_threads} | {writes['rate']:,.1f} | "
  f"{writes['p50_ms']} ms | | {writes['p99_ms']} ms (max {writes['max_ms']}) | {codes} | {w_bad} | {w_503} | {writes['socket_errors']} |")
p("")
p(f"Change feed: {subscribers} subscribers on `/changes`; {writes_ok} writes answered 2xx. "
  "Per subscriber: change events received, gaps in the event ids, resets, reconnects, bad status, bytes:")
p("")
for i, s in enumerate(sse):
    p(f"- subscriber {i}: {s['changes']} changes, {s['gaps']} gaps, {s['resets']} resets, "
      f"{s['reconnects']} reconnects, {s['bad_status']} bad status, {s['bytes']:,} bytes")
p("")
all_seen = all(s["changes"] == writes_ok for s in sse)
p(f"Every subscriber received exactly one change event per answered write: {'yes' if all_seen else 'NO'}.")
p("")
p("Resident memory (VmRSS) of the server, every 10 s from the start of the load:")
p("")
p("| s | " + " | ".join(str(t) for t, _ in rss) + " |")
p("| --- | " + " | ".join("---" for _ in rss) + " |")
p("| MiB | " + " | ".join(mib(r) for _, r in rss) + " |")
if panics or log_errors:
    p("")
    p("Server log, panics and errors (first 20):")
    p("")
    p("```")
    out.extend((panics + log_errors)[:20])
    p("```")
p("")
p("<details><summary>wrk output</summary>")
p("")
p("```")
for name, s in streams.items():
    p(f"== {name}")
    out.extend(s["text"].rstrip().splitlines())
p("```")
p("</details>")
open(report, "w").write("\n".join(out) + "\n")
print("\n".join(out[:14 + len(rows) + len(sse)]))
print(f"wrote {report}")
sys.exit(0 if rss_ok and err_ok else 1)
PY
