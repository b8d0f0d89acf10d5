#!/usr/bin/env bash
# The peer set: the Helsinki extract's buildings and parks as GDAL exports them (the OSM
# driver's `multipolygons` layer, GeoJSONSeq), tiled N x N (N=10 by default) by shifting
# copies by the export's own extent, then ingested into a throwaway store twice per layer:
#   1. as urbantile does by default: invalid geometry repaired, bad records skipped;
#   2. with --strict: the first bad record stops the run with nothing written.
# Before repair existed every invalid geometry was skipped, so the old skip count is
# `repaired + skipped` of run 1. Last, the untiled export is ingested once more and each
# repaired geometry is compared with shapely's make_valid(method="structure"), an
# independent implementation (GEOS) of the same rule, if shapely is installed.
#
#   benches/peer_set.sh                  # N=10, release build
#   N=1 BIN=target/debug/urbantile benches/peer_set.sh
#
# Needs gdal-bin (ogr2ogr) and python3. Writes only under data/peer-N (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
OUT=data/peer-$N
PBF=fixtures/helsinki.osm.pbf
if [ -z "${BIN:-}" ]; then
    cargo build --release --bin urbantile 2>&1 | tail -1
    BIN=target/release/urbantile
fi
mkdir -p "$OUT"

export_layer() { # name, OGR SQL where clause
    rm -f "$OUT/$1-1.geojsonseq"
    # GDAL warns of each way the extract cuts open; the ingest reports those records.
    ogr2ogr -q -f GeoJSONSeq "$OUT/$1-1.geojsonseq" "$PBF" multipolygons -where "$2" \
        2> >(grep -v "Non closed ring" >&2)
}
export_layer buildings "building IS NOT NULL"
export_layer parks "leisure='park'"

python3 - "$OUT" "$N" <<'EOF'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])

def coords(g):
    c = g["coordinates"]
    depth = {"Polygon": 1, "MultiPolygon": 2}[g["type"]]
    stack = [(c, depth)]
    while stack:
        c, d = stack.pop()
        if d == 0:
            for p in c:
                yield p
        else:
            stack.extend((x, d - 1) for x in c)

def shifted(c, dx, dy, d):
    return [[p[0] + dx, p[1] + dy] for p in c] if d == 0 else [shifted(x, dx, dy, d - 1) for x in c]

layers = {}
for name in ("buildings", "parks"):
    with open(f"{out}/{name}-1.geojsonseq") as f:
        layers[name] = [json.loads(l.lstrip("\x1e")) for l in f if l.strip()]
xs, ys = [], []
for fs in layers.values():
    for f in fs:
        for p in coords(f["geometry"]):
            xs.append(p[0]); ys.append(p[1])
dx, dy = max(xs) - min(xs), max(ys) - min(ys)
for name, fs in layers.items():
    with open(f"{out}/{name}.geojsonseq", "w") as w:
        for i in range(n):
            for j in range(n):
                for f in fs:
                    g = f["geometry"]
                    d = {"Polygon": 1, "MultiPolygon": 2}[g["type"]]
                    copy = dict(f, geometry={"type": g["type"], "coordinates": shifted(g["coordinates"], dx * i, dy * j, d)})
                    w.write(json.dumps(copy) + "\n")
EOF

for layer in buildings parks; do
    file="$OUT/$layer.geojsonseq"
    db="$OUT/$layer.db"
    rm -f "$db" "$db"-*
    echo "== $layer: $(wc -l < "$file") records (N=$N)"
    RUST_LOG=warn "$BIN" --database "sqlite://$db" ingest "$layer" "$file" | sed -n 1p
    rm -f "$db" "$db"-*
    RUST_LOG=warn "$BIN" --database "sqlite://$db" ingest "$layer" "$file" --strict 2>&1 | grep -m1 -E "^Error|written" || true
    rm -f "$db" "$db"-*
done

if python3 -c "import shapely" 2>/dev/null; then
    for layer in buildings parks; do
        file="$OUT/$layer-1.geojsonseq"
        db="$OUT/$layer-check.db"
        rm -f "$db" "$db"-*
        RUST_LOG=warn "$BIN" --database "sqlite://$db" ingest "$layer" "$file" > "$OUT/$layer-check.txt"
        python3 - "$file" "$db" "$OUT/$layer-check.txt" "$layer" <<'EOF'
import json, re, sqlite3, sys
from shapely import make_valid, wkb
from shapely.geometry import shape
path, db, report, layer = sys.argv[1:]
skipped = {int(n) for n in re.findall(r"^  skipped line (\d+)", open(report).read(), re.M)}
inputs = [json.loads(l.lstrip("\x1e")) for l in open(path) if l.strip()]
kept = [f for i, f in enumerate(inputs, 1) if i not in skipped]
rows = sqlite3.connect(db).execute("SELECT geom FROM features ORDER BY id").fetchall()
assert len(kept) == len(rows), (len(kept), len(rows))
worst, n = 0.0, 0
for f, (blob,) in zip(kept, rows):
    g = shape(f["geometry"])
    if g.is_valid:
        continue
    ours, ref = wkb.loads(bytes(blob)), make_valid(g, method="structure", keep_collapsed=False)
    assert ours.is_valid
    worst = max(worst, ours.symmetric_difference(ref).area / max(ref.area, 1e-300))
    n += 1
print(f"== {layer}: {n} repaired geometries against shapely: largest symmetric difference {worst:.1e} of the area")
EOF
        rm -f "$db" "$db"-*
    done
fi
