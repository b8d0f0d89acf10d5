#!/usr/bin/env bash
# A/B of benches/load.sh's composite tile runs between two builds, interleaved so that the
# shared machine's drift falls on both: A, B, A, B (ROUNDS rounds). Each run is load.sh with
# TILES_ONLY=1 (uncached identity, gzip and browser-header composite tiles, then cached gzip tiles and the
# fixed /ping answer; no feature queries, writes or latency) on the same store, each
# DURATION (20s) long. Writes benches/results/ab-<date>.md: every run's figures, the
# medians per build, and B/A.
#
#   benches/ab.sh A_DIR B_DIR            # folders holding each build's `urbantile`
#   A_NAME=e9bea1d B_NAME=main ROUNDS=2 benches/ab.sh /work/bin-base /work/bin-new
#
# The store (data/metro-N.db) must exist: run benches/load.sh once first. Needs wrk and
# python3; each load.sh run stops its own server.
set -euo pipefail
cd "$(dirname "$0")/.."
A_DIR=$(realpath "$1")
B_DIR=$(realpath "$2")
A_NAME=${A_NAME:-A}
B_NAME=${B_NAME:-B}
ROUNDS=${ROUNDS:-2}
export DURATION=${DURATION:-20s} N=${N:-10}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    dir=A_DIR
    [ "$side" = B ] && dir=B_DIR
    echo "round $round, $side"
    TILES_ONLY=1 BIN=${!dir} REPORT="$WORK/$round-$side.md" benches/load.sh > "$WORK/$round-$side.log" 2>&1 \
      || { cat "$WORK/$round-$side.log"; exit 1; }
    grep -E '^\| (identity|Accept|browser|composite|/ping:)' "$WORK/$round-$side.md"
  done
done

report="benches/results/ab-$(date -u +%Y%m%d-%H%M).md"
python3 - "$WORK" "$report" "$ROUNDS" "$A_NAME" "$B_NAME" "$DURATION" "$N" "$(nproc)" <<'PY'
import re, statistics, sys, time
work, report, rounds, a_name, b_name, duration, n, nproc = sys.argv[1:]
rounds = int(rounds)
runs = {"identity": "uncached, identity", "Accept-Encoding: gzip": "uncached, gzip",
        "browser header": "uncached, browser header (gzip, deflate, br, zstd)",
        "composite tiles, gzip, all cached": "cached, gzip", "/ping: a fixed 2-byte answer": "/ping (fixed answer)"}

def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)$", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

def parse(path):
    got = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for prefix, name in runs.items():
            if len(cells) == 4 and cells[0].startswith(prefix):
                got[name] = (float(cells[1]), ms(cells[2]), ms(cells[3]))
    return got

figures = {(r, s): parse(f"{work}/{r}-{s}.md") for r in range(1, rounds + 1) for s in "AB"}
out = []
p = out.append
p(f"# A/B of load.sh's composite tiles {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
p("")
p(f"A = {a_name}, B = {b_name}. Metro N={n}, the same store; {nproc} cores, shared with other "
  f"builds; wrk -t2 -c32, {duration} per run, on the same machine. Runs in the order "
  + ", ".join(f"{s}{r}" for r in range(1, rounds + 1) for s in "AB") + ".")
p("")
p("| run | " + " | ".join(f"{s}{r} /s" for r in range(1, rounds + 1) for s in "AB")
  + " | median A /s | median B /s | **B/A** | p99 A (median) | p99 B (median) |")
p("|" + " --- |" * (2 * rounds + 6))
for name in runs.values():
    cells = [f"{figures[(r, s)][name][0]:,.0f}" for r in range(1, rounds + 1) for s in "AB"]
    ma = statistics.median(figures[(r, "A")][name][0] for r in range(1, rounds + 1))
    mb = statistics.median(figures[(r, "B")][name][0] for r in range(1, rounds + 1))
    pa = statistics.median(figures[(r, "A")][name][2] for r in range(1, rounds + 1))
    pb = statistics.median(figures[(r, "B")][name][2] for r in range(1, rounds + 1))
    p(f"| {name} | " + " | ".join(cells) + f" | {ma:,.0f} | {mb:,.0f} | **{mb / ma:.3f}** | {pa:.2f} ms | {pb:.2f} ms |")
p("")
p("Spread of each build's own runs (max/min - 1), for the noise:")
p("")
for name in runs.values():
    spread = []
    for s in "AB":
        v = [figures[(r, s)][name][0] for r in range(1, rounds + 1)]
        spread.append(f"{s} {max(v) / min(v) - 1:.1%}")
    p(f"- {name}: " + ", ".join(spread))
open(report, "w").write("\n".join(out) + "\n")
print("\n".join(out))
print(f"wrote {report}")
PY
