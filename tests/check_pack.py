#!/usr/bin/env python3
"""Independent check of an urbantile offline pack against the running server.

Reads the pack with readers that share no code with urbantile: the PyPI `pmtiles` package
for .pmtiles, Python's sqlite3 for .mbtiles (MBTiles 1.3, TMS rows). Computes the pack's
tiles on its own (the tiles of the zooms that meet the box, or the polygon, in Web
Mercator, with shapely), asks the server for each of them (`/tiles/{layers}/z/x/y.mvt`,
uncompressed), and checks that:

- the pack holds exactly the tiles the server answers 200 for in the area, and nothing
  outside it (tiles the server answers 204 for are absent);
- every tile's bytes, once gunzipped, are the server's bytes, and decode as MVT
  (mapbox-vector-tile) into the pack's layers;
- the metadata has TileJSON vector_layers (the layers, in order), bounds, center, zooms,
  attribution and urbantile's record (area, layers, change-log position);
- PMTiles: the header says v3, MVT, gzip tiles, clustered; identical tiles stored once.

Usage: check_pack.py BASE_URL PACK SPEC_JSON
SPEC_JSON: {"layers": [...], "minzoom", "maxzoom", "position", "query" (e.g. "datetime=..."),
            "bbox": [w,s,e,n]  or  "polygon": GeoJSON geometry (lon/lat),
            "least_outside": N (polygon: at least N tiles of its box must be outside it)}
Prints a summary line and exits 0 when every check passes; otherwise prints each failure
and exits 1.
"""
import gzip
import json
import math
import sqlite3
import sys
import urllib.request

import mapbox_vector_tile
import numpy as np
import shapely
from shapely.geometry import box, shape

R = 6378137.0
HALF_WORLD = math.pi * R

failures = []


def fail(msg):
    failures.append(msg)


def mercator(lon, lat, z=None):
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    return (math.radians(lon) * R, math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * R)


def tile_box(z, x, y):
    span = 2 * HALF_WORLD / (1 << z)
    min_x = -HALF_WORLD + x * span
    max_y = HALF_WORLD - y * span
    return box(min_x, max_y - span, min_x + span, max_y)


def covering(min_x, min_y, max_x, max_y, z):
    n = 1 << z
    span = 2 * HALF_WORLD / n
    clamp = lambda v: min(max(int(math.floor(v)), 0), n - 1)
    return (range(clamp((min_x + HALF_WORLD) / span), clamp((max_x + HALF_WORLD) / span) + 1),
            range(clamp((HALF_WORLD - max_y) / span), clamp((HALF_WORLD - min_y) / span) + 1))


def area_tiles(spec):
    """The tiles of the area: (sure, unsure, how many of the box are outside); unsure ones
    only touch the area's edge (within a millimetre), where float rounding may decide
    either way."""
    sure, unsure, outside = set(), set(), 0
    if "bbox" in spec:
        w, s, e, n = spec["bbox"]
        region = box(*mercator(w, s), *mercator(e, n))
    else:
        region = shapely.transform(shape(spec["polygon"]), lambda c: np.array(
            [mercator(lon, lat) for lon, lat in c]).reshape(-1, 2))
    for z in range(spec["minzoom"], spec["maxzoom"] + 1):
        xs, ys = covering(*region.bounds, z)
        for x in xs:
            for y in ys:
                t = tile_box(z, x, y)
                d = region.distance(t)
                if d > 1e-3:
                    outside += 1
                    continue
                if region.intersection(t).area < 1e-3:
                    unsure.add((z, x, y))
                else:
                    sure.add((z, x, y))
    return sure, unsure, outside


def fetch(base, layers, z, x, y, query=""):
    url = f"{base}/tiles/{','.join(layers)}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=60) as r:
        if r.status == 204:
            return None
        if r.headers.get("Content-Encoding"):
            fail(f"{url}: answered with Content-Encoding {r.headers['Content-Encoding']}")
        return r.read()


def read_pmtiles(path):
    from pmtiles.reader import MmapSource, Reader, all_tiles
    from pmtiles.tile import Compression, TileType
    with open(path, "rb") as f:
        get = MmapSource(f)
        reader = Reader(get)
        header = reader.header()
        meta = reader.metadata()
        tiles = {}
        stored = {}
        for (z, x, y), data in all_tiles(get):
            if (z, x, y) in tiles:
                fail(f"tile {z}/{x}/{y} is in the directory twice")
            tiles[(z, x, y)] = gzip.decompress(data)
            stored.setdefault(bytes(data), 0)
        if header["version"] != 3:
            fail(f"PMTiles version {header['version']}")
        if header["tile_type"] != TileType.MVT:
            fail(f"tile type {header['tile_type']}")
        if header["tile_compression"] != Compression.GZIP:
            fail(f"tile compression {header['tile_compression']}")
        if not header["clustered"]:
            fail("the archive is not clustered")
        if header["addressed_tiles_count"] != len(tiles):
            fail(f"header counts {header['addressed_tiles_count']} tiles, directories {len(tiles)}")
        if header["tile_contents_count"] != len(stored):
            fail(f"header counts {header['tile_contents_count']} contents, found {len(stored)} distinct")
        for k, v in [("min_zoom", "minzoom"), ("max_zoom", "maxzoom")]:
            if header[k] != meta.get(v):
                fail(f"header {k} {header[k]} != metadata {v} {meta.get(v)}")
        bounds = [header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7,
                  header["max_lon_e7"] / 1e7, header["max_lat_e7"] / 1e7]
        if any(abs(a - b) > 1e-6 for a, b in zip(bounds, meta["bounds"])):
            fail(f"header bounds {bounds} != metadata bounds {meta['bounds']}")
        return tiles, meta, len(stored)


def read_mbtiles(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = dict(db.execute("SELECT name, value FROM metadata"))
    meta = json.loads(names.get("json", "{}"))
    for k in ["name", "format", "bounds", "center", "minzoom", "maxzoom", "attribution"]:
        if k not in names:
            fail(f"MBTiles metadata lacks {k}")
    if names.get("format") != "pbf":
        fail(f"MBTiles format {names.get('format')}")
    meta["minzoom"] = int(names["minzoom"])
    meta["maxzoom"] = int(names["maxzoom"])
    meta["bounds"] = [float(v) for v in names["bounds"].split(",")]
    meta["center"] = [float(v) for v in names["center"].split(",")]
    meta["attribution"] = names.get("attribution")
    tiles = {}
    for z, col, row, data in db.execute(
            "SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles"):
        y = (1 << z) - 1 - row  # TMS rows count from the south
        tiles[(z, col, y)] = gzip.decompress(data)
    stored = db.execute("SELECT count(*) FROM images").fetchone()[0]
    return tiles, meta, stored


def main():
    base, path, spec_path = sys.argv[1:4]
    spec = json.load(open(spec_path))
    layers = spec["layers"]
    tiles, meta, stored = read_pmtiles(path) if path.endswith(".pmtiles") else read_mbtiles(path)

    # Metadata.
    ids = [l["id"] for l in meta.get("vector_layers", [])]
    if ids != layers:
        fail(f"vector_layers {ids} != {layers}")
    if (meta.get("minzoom"), meta.get("maxzoom")) != (spec["minzoom"], spec["maxzoom"]):
        fail(f"zooms {meta.get('minzoom')}-{meta.get('maxzoom')} != {spec['minzoom']}-{spec['maxzoom']}")
    if not meta.get("attribution") or "OpenStreetMap" not in meta["attribution"]:
        fail(f"attribution {meta.get('attribution')!r}")
    w, s, e, n = meta["bounds"]
    cx, cy = meta["center"][:2]
    if not (w <= cx <= e and s <= cy <= n):
        fail(f"center {meta['center']} outside bounds {meta['bounds']}")
    if "bbox" in spec and any(abs(a - b) > 1e-9 for a, b in zip(meta["bounds"], spec["bbox"])):
        fail(f"bounds {meta['bounds']} != bbox {spec['bbox']}")
    own = meta.get("urbantile", {})
    if own.get("position") != spec["position"]:
        fail(f"position {own.get('position')} != {spec['position']}")
    if own.get("layers") != layers:
        fail(f"urbantile.layers {own.get('layers')}")

    # Tiles.
    sure, unsure, outside = area_tiles(spec)
    if outside < spec.get("least_outside", 0):
        fail(f"only {outside} tiles of the box are outside the area: the test cannot tell")
    for t in sorted(set(tiles) - sure - unsure):
        fail(f"tile {t} is in the pack but outside the area")
    served = 0
    for t in sorted(sure | unsure):
        body = fetch(base, layers, *t, query=spec.get("query", ""))
        if body is None:
            if t in tiles:
                fail(f"tile {t}: in the pack, but the server answers 204")
            continue
        served += 1
        if t not in tiles:
            if t in sure:
                fail(f"tile {t}: the server has it ({len(body)} bytes), the pack does not")
            continue
        if tiles[t] != body:
            fail(f"tile {t}: {len(tiles[t])} bytes in the pack differ from the server's {len(body)}")
            continue
        decoded = mapbox_vector_tile.decode(tiles[t])
        if not set(decoded) <= set(layers) or not decoded:
            fail(f"tile {t}: layers {sorted(decoded)}")
    distinct = len(set(tiles.values()))
    if stored != distinct:
        fail(f"{stored} contents stored for {distinct} distinct tiles")
    if failures:
        for f in failures[:50]:
            print("FAIL", f)
        print(f"{len(failures)} failures")
        sys.exit(1)
    print(f"ok: {len(tiles)} tiles in the pack = the server's {served} tiles in the area "
          f"({len(sure) + len(unsure)} tiles checked, {len(unsure)} on the edge, "
          f"{outside} of the box outside); {stored} stored contents")


if __name__ == "__main__":
    main()
