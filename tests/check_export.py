"""Checks the items of one query as FlatGeobuf and CSV against its GeoJSON answer.

    check_export.py BASE_URL LAYER QUERY WORKDIR

- FlatGeobuf: saved to a file and read by GDAL (ogr2ogr to GeoJSON, an independent reader),
  and read again by GDAL straight from the server over /vsicurl_streaming/;
- CSV: read with Python's csv module, geometry with shapely's WKT reader;
each must hold the JSON answer's features in its order: the same ids, the same properties
(numbers by value, date-times as instants) and the same geometry within 1e-9 degrees.
Prints the number of features checked; exits non-zero with the first difference."""
import csv
import datetime
import io
import json
import subprocess
import sys
import urllib.request

from shapely import wkt
from shapely.geometry import shape

base, layer, query, workdir = sys.argv[1:5]
url = f"{base}/collections/{layer}/items?{query}"
sep = "&" if query else ""


def fetch(u):
    with urllib.request.urlopen(u, timeout=120) as r:
        return r.status, r.headers, r.read()


status, _, body = fetch(f"{url}{sep}limit=10000")
assert status == 200, status
doc = json.loads(body)
want = doc["features"]
assert doc["numberMatched"] == len(want), "the query must fit one JSON page"
types = {}
status, _, queryables = fetch(f"{base}/collections/{layer}/queryables")
for name, schema in json.loads(queryables)["properties"].items():
    types[name] = schema.get("format") or schema.get("type")


def instant(text):
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t


def same_value(name, json_value, got):
    """Compares a JSON property with what a reader gave (typed, or text for CSV)."""
    if json_value is None:
        return got in (None, "")
    kind = types.get(name)
    if kind == "date-time":
        if len(json_value) == 10:  # a date alone: compare the dates
            return str(got)[:10].replace("/", "-") == json_value
        return instant(str(got)) == instant(json_value)
    if kind in ("integer", "number"):
        return float(got) == float(json_value)
    if kind == "boolean":
        return str(got).lower() == str(json_value).lower()
    return str(got) == str(json_value)


def same_geometry(a, b, where):
    ga, gb = shape(a) if isinstance(a, dict) else a, shape(b) if isinstance(b, dict) else b
    assert ga.geom_type == gb.geom_type, f"{where}: {ga.geom_type} != {gb.geom_type}"
    assert ga.equals_exact(gb, 1e-9), f"{where}: geometry differs: {ga.wkt[:200]} / {gb.wkt[:200]}"


def check_features(got, label):
    assert len(got) == len(want), f"{label}: {len(got)} features, JSON has {len(want)}"
    for w, (gid, gprops, ggeom) in zip(want, got):
        where = f"{label} feature {w['id']}"
        assert int(gid) == w["id"], f"{where}: id {gid}"
        for name, v in w["properties"].items():
            assert same_value(name, v, gprops.get(name)), f"{where}: {name} {gprops.get(name)!r} != {v!r}"
        extra = {k for k, v in gprops.items() if v not in (None, "")} - set(w["properties"])
        assert not extra, f"{where}: extra properties {extra}"
        same_geometry(w["geometry"], ggeom, where)


def gdal_features(source):
    out = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", source],
        check=True, capture_output=True, timeout=120,
    ).stdout
    feats = json.loads(out)["features"]
    got = []
    for f in feats:
        props = dict(f["properties"])
        gid = props.pop("id")
        got.append((gid, props, f["geometry"]))
    return got


status, headers, fgb = fetch(f"{url}{sep}f=fgb")
assert status == 200 and headers["Content-Type"] == "application/flatgeobuf", headers
assert int(headers["OGC-NumberMatched"]) == len(want)
path = f"{workdir}/{layer}.fgb"
with open(path, "wb") as f:
    f.write(fgb)
check_features(gdal_features(path), "FlatGeobuf file")
check_features(gdal_features(f"/vsicurl_streaming/{url}{sep}f=fgb"), "FlatGeobuf over HTTP")

status, headers, text = fetch(f"{url}{sep}f=csv")
assert status == 200 and headers["Content-Type"].startswith("text/csv"), headers
rows = list(csv.DictReader(io.StringIO(text.decode("utf-8"), newline="")))
got = []
for r in rows:
    gid = r.pop("id")
    geom = wkt.loads(r.pop("geometry"))
    got.append((gid, r, geom))
check_features(got, "CSV")
print(len(want))
