#!/usr/bin/env python3
"""Independent check of urbantile's tiles.

Fetches every tile covering the data at the given zooms from a running server, decodes them
with mapbox-vector-tile (not urbantile's code), and compares them with a brute-force answer
computed with shapely (GEOS) from the source features that the caller exported:

- the features in a tile are exactly those that meet the tile plus its 64-unit buffer
  (features whose part inside is too small to survive quantisation may go either way);
- polygon areas and line lengths match the clipped source within the simplification and
  quantisation error; points are where the source says, to within rounding;
- lines do not stray from the source and nothing of the source inside the tile is missing
  from them. urbantile simplifies and rounds a feature before clipping it (see
  src/tiles/grid.rs), so where a line crosses the clip border at a shallow angle the cut
  may move along the border: near the border, "inside" is decided within the tolerance;
- exterior rings have positive and holes negative surveyor's area in tile coordinates, and
  every ring is MoveTo, LineTo, ClosePath (MVT 2.1 section 4.3.4.4);
- properties round-trip: each feature carries exactly the layer's non-null attributes.

Usage: check_tiles.py BASE_URL SOURCES_DIR ZOOM [ZOOM...]
SOURCES_DIR holds one <layer>.json per layer:
  {"layer", "minzoom", "maxzoom", "keys": [...], "feature_minzoom": null or
   {"property", "values": {value: zoom}, "default"}, "cluster_maxzoom": null or a zoom,
   "features": [{"id", "geometry", "properties"}]}
Exits 0 when every check passes; otherwise prints each failure and exits 1.
"""
import json
import math
import os
import sys
import urllib.request

import mapbox_vector_tile
from mapbox_vector_tile.Mapbox import vector_tile_pb2
import shapely
import numpy as np
from shapely.geometry import box, shape

EXTENT = 4096
BUFFER = 64
HALF_WORLD = math.pi * 6378137.0
SIMPLIFY_UNITS = 1.0  # urbantile's Douglas-Peucker tolerance below maxzoom (none from maxzoom on)
ROUND_UNITS = 0.5 * math.sqrt(2)  # largest move of a vertex when rounded to the grid

failures = []


def fail(msg):
    failures.append(msg)


def mercator(lon, lat):
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    return (math.radians(lon) * 6378137.0,
            math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0)


def to_mercator(coords):
    lon, lat = coords[:, 0], np.clip(coords[:, 1], -85.0511287798, 85.0511287798)
    return np.column_stack((np.radians(lon) * 6378137.0,
                            np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0))


def tile_frame(z, x, y):
    """Maps Web Mercator metres to tile units (y down) for tile z/x/y."""
    span = 2 * HALF_WORLD / (1 << z)
    min_x = -HALF_WORLD + x * span
    max_y = HALF_WORLD - y * span
    k = EXTENT / span
    return lambda c: np.column_stack(((c[:, 0] - min_x) * k, (max_y - c[:, 1]) * k))


def tiles_covering(bounds, z):
    w, s, e, n = bounds
    n_tiles = 1 << z
    span = 2 * HALF_WORLD / n_tiles
    (x0, y1), (x1, y0) = mercator(w, s), mercator(e, n)
    tx0, tx1 = int((x0 + HALF_WORLD) // span), int((x1 + HALF_WORLD) // span)
    ty0, ty1 = int((HALF_WORLD - y0) // span), int((HALF_WORLD - y1) // span)
    return [(z, tx, ty) for tx in range(tx0, tx1 + 1) for ty in range(ty0, ty1 + 1)]


def fetch(url):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


def ring_area2(ring):
    # Surveyor's formula on a closed ring in tile coordinates (y down).
    return sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(len(ring) - 1))


def check_commands(raw, where):
    """Every polygon ring is MoveTo(1) LineTo(n>=2) ClosePath(1); lines MoveTo(1) LineTo(n>=1)."""
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(raw)
    for layer in tile.layers:
        if layer.version != 2 or layer.extent != EXTENT:
            fail(f"{where} {layer.name}: version {layer.version} extent {layer.extent}")
        if len(set(layer.keys)) != len(layer.keys):
            fail(f"{where} {layer.name}: duplicate keys")
        values = [v.SerializeToString() for v in layer.values]
        if len(set(values)) != len(values):
            fail(f"{where} {layer.name}: duplicate values")
        for f in layer.features:
            if not f.HasField("id"):
                fail(f"{where} {layer.name}: a feature without id")
            g = list(f.geometry)
            i = 0
            seq = []
            while i < len(g):
                cmd, count = g[i] & 7, g[i] >> 3
                seq.append((cmd, count))
                i += 1 + (2 * count if cmd in (1, 2) else 0)
            if f.type == 3:
                for j in range(0, len(seq), 3):
                    part = seq[j:j + 3]
                    if len(part) != 3 or part[0] != (1, 1) or part[1][0] != 2 or part[1][1] < 2 or part[2] != (7, 1):
                        fail(f"{where} {layer.name} feature {f.id}: ring commands {part}")
                        break
            elif f.type == 2:
                for j in range(0, len(seq), 2):
                    part = seq[j:j + 2]
                    if len(part) != 2 or part[0] != (1, 1) or part[1][0] != 2 or part[1][1] < 1:
                        fail(f"{where} {layer.name} feature {f.id}: line commands {part}")
                        break
            elif f.type == 1:
                if len(seq) != 1 or seq[0][0] != 1:
                    fail(f"{where} {layer.name} feature {f.id}: point commands {seq}")


def same_value(a, b):
    if isinstance(b, bool) or isinstance(a, bool):
        return a == b
    if isinstance(b, (int, float)) and isinstance(a, (int, float)):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return a == b


def max_distance(a, b):
    """Greatest distance from a point of `a` (sampled every half unit) to `b`."""
    if a.is_empty:
        return 0.0
    pts = shapely.points(shapely.get_coordinates(shapely.segmentize(a, 0.5)))
    return float(np.max(shapely.distance(pts, b)))


def check_tile(layers, z, x, y, base, stats):
    where = f"{z}/{x}/{y}"
    names = ",".join(l["layer"] for l in layers)
    status, raw = fetch(f"{base}/tiles/{names}/{z}/{x}/{y}.mvt")
    decoded = {}
    if status == 200:
        check_commands(raw, where)
        decoded = mapbox_vector_tile.decode(raw, default_options={"y_coord_down": True})
    elif status != 204:
        fail(f"{where}: status {status}")
        return
    to_tile = tile_frame(z, x, y)
    clip = box(-BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    inner = box(-BUFFER + 0.5, -BUFFER + 0.5, EXTENT + BUFFER - 0.5, EXTENT + BUFFER - 0.5)
    for layer in layers:
        name = layer["layer"]
        got = {f["id"]: f for f in decoded.get(name, {}).get("features", [])}
        if z < layer["minzoom"]:
            if got:
                fail(f"{where} {name}: {len(got)} features below minzoom {layer['minzoom']}")
            continue
        tol = (SIMPLIFY_UNITS if z < layer["maxzoom"] else 0.0) + ROUND_UNITS
        # Within the tolerance of the border, simplification and rounding before the clip
        # may put a line's part on either side of it.
        clip_in = box(-BUFFER + tol, -BUFFER + tol, EXTENT + BUFFER - tol, EXTENT + BUFFER - tol)
        clip_out = box(-BUFFER - tol, -BUFFER - tol, EXTENT + BUFFER + tol, EXTENT + BUFFER + tol)
        must, may = set(), set()
        rule = layer.get("feature_minzoom")
        for f in layer["features"]:
            if rule:
                v = f["properties"].get(rule["property"])
                key = v if isinstance(v, str) else json.dumps(v)
                if z < rule["values"].get(key, rule["default"]):
                    continue  # not drawn at this zoom: must be absent
            g = shapely.transform(f["_merc"], to_tile)
            kind = g.geom_type
            if not g.intersects(clip_out if "LineString" in kind else clip):
                continue
            part = g.intersection(clip)
            if "Polygon" in kind:
                sure = part.area >= 4 * tol * tol + tol * part.length
            elif "LineString" in kind:
                sure = g.intersection(clip_in).length >= 4 * tol
            else:
                sure = g.intersects(inner)
            (must if sure else may).add(f["id"])
            f["_part"] = part
            f["_tile"] = g
        known = must | may
        clustered = layer.get("cluster_maxzoom") is not None and z <= layer["cluster_maxzoom"]
        if clustered:
            # Up to its cluster zoom a clustered layer groups points (tests/clusters.rs checks
            # the groups against supercluster): each cluster is a point with its count, and
            # the points left alone are checked below like any feature.
            for fid, f in list(got.items()):
                if f["properties"].get("cluster") is True:
                    if f["geometry"]["type"] != "Point" or f["properties"].get("point_count", 0) < 2:
                        fail(f"{where} {name}: cluster {fid} is not a point with a count: {f}")
                    del got[fid]
        ids = set(got)
        for fid in sorted(must - ids):
            if not clustered:
                fail(f"{where} {name}: feature {fid} meets the tile but is missing")
        for fid in sorted(ids - known):
            fail(f"{where} {name}: feature {fid} is in the tile but does not meet it")
        by_id = {f["id"]: f for f in layer["features"]}
        for fid in sorted(ids & known):
            src, dec = by_id[fid], got[fid]
            stats["features"] += 1
            want_props = {k: v for k, v in src["properties"].items() if k in layer["keys"] and v is not None}
            if set(dec["properties"]) != set(want_props) or not all(
                    same_value(dec["properties"][k], want_props[k]) for k in want_props):
                fail(f"{where} {name} {fid}: properties {dec['properties']} != {want_props}")
            geom = dec["geometry"]
            part = src["_part"]
            if geom["type"] in ("Polygon", "MultiPolygon"):
                polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
                for rings in polys:
                    for k, ring in enumerate(rings):
                        if ring[0] != ring[-1]:
                            fail(f"{where} {name} {fid}: ring not closed")
                        a = ring_area2(ring)
                        if (k == 0 and a <= 0) or (k > 0 and a >= 0):
                            fail(f"{where} {name} {fid}: ring {k} has area {a / 2} (wrong winding)")
                shp = shape(geom)
                err = abs(shp.area - part.area)
                bound = tol * part.length + 4 * tol * tol
                stats["area_err_ratio"] = max(stats["area_err_ratio"], err / bound if bound else 0)
                if err > bound:
                    fail(f"{where} {name} {fid}: area {shp.area:.1f} vs clipped source {part.area:.1f} (allowed {bound:.1f})")
            elif geom["type"] in ("LineString", "MultiLineString"):
                shp = shape(geom)
                whole = src["_tile"]
                # Simplification only shortens a line; rounding moves each end point. The
                # bounds are the source cut a tolerance inside and outside the clip border.
                n_parts = len(geom["coordinates"]) if geom["type"] == "MultiLineString" else 1
                low = whole.intersection(clip_in).length * 0.97 - 2 * tol * n_parts - 2
                high = (whole.intersection(clip_out).length
                        + 2 * ROUND_UNITS * (len(shapely.get_coordinates(shp))))
                if not (low <= shp.length <= high):
                    fail(f"{where} {name} {fid}: length {shp.length:.1f} vs clipped source {part.length:.1f}")
                # Every drawn point is near the source, and every point of the source well
                # inside the clip is near what is drawn.
                strays = max_distance(shp, whole)
                if strays > 2 * tol + 1:
                    fail(f"{where} {name} {fid}: line strays {strays:.1f} units from the source")
                missing = max_distance(whole.intersection(clip_in), shp)
                if missing > 2 * tol + 1:
                    fail(f"{where} {name} {fid}: source {missing:.1f} units from the drawn line")
            else:
                pts = [geom["coordinates"]] if geom["type"] == "Point" else geom["coordinates"]
                for p in pts:
                    if shapely.Point(p).distance(part) > ROUND_UNITS + 1e-9:
                        fail(f"{where} {name} {fid}: point {p} is not where the source is")


def main():
    base, src_dir, zooms = sys.argv[1], sys.argv[2], [int(z) for z in sys.argv[3:]]
    layers = []
    for fn in sorted(os.listdir(src_dir)):
        with open(os.path.join(src_dir, fn)) as fh:
            layer = json.load(fh)
        for f in layer["features"]:
            f["_shape"] = shape(f["geometry"])
            f["_merc"] = shapely.transform(f["_shape"], to_mercator)
        layers.append(layer)
    bounds = [180, 90, -180, -90]
    for l in layers:
        for f in l["features"]:
            b = f["_shape"].bounds
            bounds = [min(bounds[0], b[0]), min(bounds[1], b[1]), max(bounds[2], b[2]), max(bounds[3], b[3])]
    stats = {"tiles": 0, "features": 0, "area_err_ratio": 0.0}
    for z in zooms:
        for (tz, tx, ty) in tiles_covering(bounds, z):
            check_tile(layers, tz, tx, ty, base, stats)
            stats["tiles"] += 1
    print(f"checked {stats['tiles']} tiles, {stats['features']} features; "
          f"worst polygon area error {stats['area_err_ratio']:.2f} of its bound")
    if stats["features"] == 0:
        fail("no features were checked")
    for f in failures[:60]:
        print("FAIL", f)
    if len(failures) > 60:
        print(f"... and {len(failures) - 60} more")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
