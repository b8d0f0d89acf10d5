#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpora (fuzz/corpus/<target>/seed-*) from the
repository's real inputs: fixture lines, README requests and filters, the filter tests'
CQL2, and tiny OSM PBF files encoded here (protobuf by hand, no dependency).

Run from the repository root: python3 fuzz/make_seeds.py. Deterministic. The fuzzers then
grow the corpora and `cargo fuzz cmin` keeps what adds coverage; the seeds are a start.
"""
import json
import os
import random
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def fixture_lines(layer, n, max_len=2000):
    path = os.path.join(ROOT, "fixtures", "generated", layer + ".geojsonseq")
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if len(l) <= max_len]
    return lines[:n]


LAYERS = ["accidents", "construction_permits", "designed_buildings", "dog_parks",
          "public_events", "roads", "toll_zones", "traffic_jams", "urban_problems"]

# --- GeoJSON: sequences and write bodies -------------------------------------------------
for layer in LAYERS:
    lines = fixture_lines(layer, 3)
    write("geojsonseq", layer, "\n".join(lines) + "\n")
    write("geojson_write", layer, lines[0])
write("geojsonseq", "mixed",
      fixture_lines("accidents", 1)[0] + "\n\n\x1e" + fixture_lines("dog_parks", 1)[0]
      + "\r\ngarbage\n{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[1]}}\n")
write("geojsonseq", "null-geometry",
      '{"type":"Feature","geometry":null,"properties":{"a":1}}\n'
      '{"type":"Feature","geometry":{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[24.9,60.1]}]},"properties":null}\n')

write("geojson_write", "collection", json.dumps({
    "type": "FeatureCollection",
    "features": [json.loads(fixture_lines("accidents", 1)[0]), json.loads(fixture_lines("traffic_jams", 1)[0])],
}))
write("geojson_write", "unclosed", '{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}}')
write("geojson_write", "bowtie", '{"type":"Feature","properties":{"from":"2026-01-01"},"geometry":{"type":"Polygon","coordinates":[[[24.9,60.1],[24.91,60.11],[24.91,60.1],[24.9,60.11],[24.9,60.1]]]}}')
write("geojson_write", "hole", '{"type":"Feature","properties":{"name":"x","n":3,"open":true,"from":"2026-01-01T00:00:00Z","to":"2026-02-01T00:00:00+01:00"},"geometry":{"type":"MultiPolygon","coordinates":[[[[24.9,60.1],[24.92,60.1],[24.92,60.12],[24.9,60.12],[24.9,60.1]],[[24.905,60.105],[24.905,60.11],[24.91,60.11],[24.905,60.105]]]]}}')
write("geojson_write", "times", '{"type":"Feature","properties":{"from":"2026-03-01","to":"2026-02-01"},"geometry":{"type":"MultiPoint","coordinates":[[24.9,60.1],[180,90],[-180.0,-90.0]]}}')
write("geojson_write", "line", '{"type":"Feature","id":5,"properties":{"status":null},"geometry":{"type":"MultiLineString","coordinates":[[[24.9,60.1],[24.9,60.1]],[[24.9,60.1,3],[24.95,60.15]]]}}')

# --- CSV -----------------------------------------------------------------------------------
write("csv", "lonlat", "name,lon,lat,seats,open,code\nCafe,24.95,60.17,12,true,007\nBar,24.951,60.171,,false,1.5\n")
write("csv", "wkt", 'id,wkt,status\n1,"POLYGON((24.9 60.1,24.91 60.1,24.91 60.11,24.9 60.1))",open\n'
      '2,"LINESTRING(24.9 60.1, 24.95 60.15)",closed\n3,"POINT(24.9 60.1)",\n4,"POLYGON((0 0,1 0,1 1))",x\n')
write("csv", "bad-rows", "x,y,a\n24.9,60.1,1\n24.9,sixty,2\n1,2\n\"unterminated,3,4\n")
write("csv", "geometry-column", "geometry;name\nMULTIPOINT((24.9 60.1),(24.91 60.11));a\n")
write("csv", "longitude", "Longitude, Latitude ,note\n-180,90,\"multi\nline\"\n180.5,-91,\xe2\x82\xac\n")

# --- WKT -------------------------------------------------------------------------------------
for i, w in enumerate([
    "POINT(24.9 60.1)",
    "POINT EMPTY",
    "MULTIPOINT((24.9 60.1),(25 60.2))",
    "LINESTRING(24.9 60.1, 24.95 60.15, 25 60.1)",
    "MULTILINESTRING((24.9 60.1, 24.95 60.15),(25 60, 25.1 60.1))",
    "POLYGON((24.905 60.0, 24.935 60.0, 24.935 60.2, 24.905 60.2, 24.905 60.0))",
    "POLYGON((24.9 60.1,24.92 60.1,24.92 60.12,24.9 60.12,24.9 60.1),(24.905 60.105,24.905 60.11,24.91 60.11,24.905 60.105))",
    "MULTIPOLYGON(((24.915 60.05, 24.925 60.05, 24.925 60.15, 24.915 60.15, 24.915 60.05)))",
    "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(1 2,3 4))",
    "POINT Z(1 2 3)",
    "LINESTRING M(1 2 3, 4 5 6)",
    "POLYGON((1 2, 3 4))",
    "POLYGON((0 0,1 1,1 0,0 1,0 0))",
    "POINT(1e308 -1e308)",
]):
    write("wkt", str(i), w)

# --- CQL2 ------------------------------------------------------------------------------------
for i, t in enumerate([
    "n > 6",
    "n >= 2 AND n < 4 OR name = 'Spot 9'",
    "NOT (n <> 5)",
    "n BETWEEN 3 AND 5",
    "n NOT BETWEEN 1 AND 8",
    "n IN (1, 4, 11)",
    "status IS NULL",
    "status IS NOT NULL AND status = 'open'",
    "name LIKE 'Spot _' AND name NOT LIKE '%7'",
    "S_INTERSECTS(geometry, BBOX(24.905, 60.0, 24.935, 60.2))",
    "S_WITHIN(geometry, POLYGON((24.905 60.0, 24.935 60.0, 24.935 60.2, 24.905 60.2, 24.905 60.0)))",
    "S_DISJOINT(geometry, BBOX(24.905, 60.0, 24.995, 60.2))",
    "S_INTERSECTS(geometry, MULTIPOLYGON(((24.915 60.05, 24.925 60.05, 24.925 60.15, 24.915 60.15, 24.915 60.05))))",
    "S_CONTAINS(geometry, POINT(24.9 60.1))",
    "T_BEFORE(from, TIMESTAMP('2026-02-10T00:00:00Z'))",
    "T_INTERSECTS(INTERVAL(from, to), DATE('2026-03-05'))",
    "T_DURING(from, INTERVAL('2026-01-20', '2026-04-30'))",
    "T_AFTER(to, TIMESTAMP('2026-08-20T00:00:00Z'))",
    "open = true AND (n * 1 > 0 OR name = 'it''s')",
    "n > 1 AND S_INTERSECTS(geometry, BBOX(24.9, 60, 25, 61))",
    "name = 'unterminated",
    "T_INTERSECTS(from, INTERVAL('..', '2026-05-01T00:00:00.5+02:00'))",
]):
    write("cql2_text", str(i), t)

for i, j in enumerate([
    {"op": "and", "args": [{"op": ">", "args": [{"property": "n"}, 2]},
                           {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [24.905, 60.0, 24.955, 60.2]}]},
                           {"op": "in", "args": [{"property": "status"}, ["open", "closed"]]}]},
    {"op": "not", "args": [{"op": "like", "args": [{"property": "name"}, "Spot%"]}]},
    {"op": "or", "args": [{"op": "isNull", "args": [{"property": "status"}]},
                          {"op": "between", "args": [{"property": "n"}, 1, 5]}]},
    {"op": "s_within", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": [[[24.9, 60.0], [25.0, 60.0], [25.0, 60.2], [24.9, 60.0]]]}]},
    {"op": "t_intersects", "args": [{"property": "from"}, {"interval": ["2026-01-01", ".."]}]},
    {"op": "t_before", "args": [{"interval": [{"property": "from"}, {"property": "to"}]}, {"timestamp": "2026-05-01T00:00:00Z"}]},
    {"op": "=", "args": [{"property": "open"}, True]},
    {"op": "<>", "args": [{"property": "from"}, {"date": "2026-01-01"}]},
    {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [24.9, 60.1]}]},
]):
    write("cql2_json", str(i), json.dumps(j))

# --- Requests (first line: target; then headers) ---------------------------------------------
for i, r in enumerate([
    "/ping",
    "/health",
    "/catalog",
    "/tiles/accidents/14/9326/4741.mvt",
    "/tiles/accidents,traffic_jams,toll_zones/13/4663/2370.mvt\nAccept-Encoding: gzip",
    "/tiles/toll_zones/10/582/296.mvt?datetime=2026-03-01/2026-05-31",
    "/tiles/dog_parks/16/37305/18965.mvt\nAuthorization: Bearer $KEY",
    "/tiles/accidents/20/596864/303456.mvt",
    "/tiles/accidents/14/9326/4741.mvt?filter=severity%3D%27serious%27",
    "/tiles/accidents,construction_permits.json",
    "/style.json",
    "/",
    "/conformance",
    "/api",
    "/collections",
    "/collections/accidents",
    "/collections/accidents/items?limit=5&offset=3&sortby=-occurred_at,+severity&properties=severity,road",
    "/collections/accidents/items?filter=severity='serious' AND S_INTERSECTS(geometry,BBOX(24.938,60.169,24.946,60.173))".replace(" ", "%20").replace("'", "%27"),
    "/collections/accidents/items?filter-lang=cql2-json&filter=%7B%22op%22%3A%22%3E%22%2C%22args%22%3A%5B%7B%22property%22%3A%22vehicles%22%7D%2C1%5D%7D",
    "/collections/construction_permits/items?bbox=24.94,60.16,24.96,60.18&datetime=2026-01-01T00:00:00Z/..",
    "/collections/construction_permits/items?status=completed&f=json",
    "/collections/accidents/items/1",
    "/collections/traffic_jams/queryables",
    "/collections/accidents/nearest?point=24.94,60.17&k=5&max_distance=500",
    "/collections/toll_zones/containing?point=24.94,60.17",
    "/collections/accidents/aggregate?by=toll_zones&sum=vehicles",
    "/changes?layers=accidents",
    "/map",
    "HEAD /tiles/traffic_jams/15/18652/9483.mvt\nIf-None-Match: \"abc\"",
    "/collections/dog_parks/items?f=html\nAccept: text/html",
    "/collections/accidents/items?f=fgb&filter=severity%3D%27serious%27&limit=50",
    "/collections/accidents/items?f=csv&properties=severity,road&offset=3&sortby=-vehicles",
    "/collections/construction_permits/items?f=fgb&bbox=24.94,60.16,24.96,60.18&datetime=2026-01-01T00:00:00Z/..",
    "/collections/accidents/items?f=shp",
    "/metrics",
    "/metrics\nAuthorization: Bearer $KEY",
]):
    write("request", str(i), r)


# --- OSM PBF ---------------------------------------------------------------------------------
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zz(v):
    return (v << 1) ^ (v >> 63)


def key(field, wire):
    return varint((field << 3) | wire)


def f_varint(field, v):
    return key(field, 0) + varint(v & 0xFFFFFFFFFFFFFFFF)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return key(field, 2) + varint(len(b)) + b


def packed(field, values, signed=False):
    body = b"".join(varint(zz(v) if signed else v) for v in values)
    return f_bytes(field, body)


def deltas(values):
    out, last = [], 0
    for v in values:
        out.append(v - last)
        last = v
    return out


def blob(kind, payload, compress):
    if compress:
        b = f_varint(2, len(payload)) + f_bytes(3, zlib.compress(payload))
    else:
        b = f_bytes(1, payload)
    header = f_bytes(1, kind) + f_varint(3, len(b))
    return struct.pack(">I", len(header)) + header + b


def header_block():
    bbox = f_varint(1, zz(24_930_000_000)) + f_varint(2, zz(24_960_000_000)) \
        + f_varint(3, zz(60_180_000_000)) + f_varint(4, zz(60_160_000_000))
    return f_bytes(1, bbox) + f_bytes(4, "OsmSchema-V0.6") + f_bytes(4, "DenseNodes") \
        + f_bytes(16, "urbantile make_seeds")


def osm_file(compress, dense):
    strings = ["", "building", "yes", "highway", "cycleway", "name", "Esplanadi",
               "amenity", "cafe", "type", "multipolygon", "landuse", "grass", "outer", "inner",
               "leisure", "park"]
    s = {t: i for i, t in enumerate(strings)}
    table = f_bytes(1, b"".join(f_bytes(1, t) for t in strings))
    # Nodes 1..12: a square of 4 (building), a line of 3, a cafe, and an outer and inner ring.
    nodes = [
        (1, 60.1650, 24.9400), (2, 60.1650, 24.9410), (3, 60.1655, 24.9410), (4, 60.1655, 24.9400),
        (5, 60.1660, 24.9420), (6, 60.1662, 24.9430), (7, 60.1664, 24.9440),
        (8, 60.1670, 24.9450),
        (9, 60.1680, 24.9460), (10, 60.1680, 24.9480), (11, 60.1690, 24.9470),
        (12, 60.1683, 24.9466), (13, 60.1683, 24.9470), (14, 60.1686, 24.9468),
    ]
    cafe_tags = [(s["amenity"], s["cafe"]), (s["name"], s["Esplanadi"])]
    if dense:
        ids = [n[0] for n in nodes]
        lats = [round(n[1] * 1e7) for n in nodes]
        lons = [round(n[2] * 1e7) for n in nodes]
        kv = []
        for n in nodes:
            if n[0] == 8:
                for k, v in cafe_tags:
                    kv += [k, v]
            kv.append(0)
        dense_msg = packed(1, deltas(ids), True) + packed(8, deltas(lats), True) \
            + packed(9, deltas(lons), True) + packed(10, kv)
        group_nodes = f_bytes(2, dense_msg)
    else:
        group_nodes = b""
        for n in nodes:
            msg = f_varint(1, zz(n[0]))
            if n[0] == 8:
                msg += packed(2, [k for k, _ in cafe_tags]) + packed(3, [v for _, v in cafe_tags])
            msg += f_varint(8, zz(round(n[1] * 1e7))) + f_varint(9, zz(round(n[2] * 1e7)))
            group_nodes += f_bytes(1, msg)

    def way(wid, tags, refs):
        return f_bytes(3, f_varint(1, wid) + packed(2, [k for k, _ in tags])
                       + packed(3, [v for _, v in tags]) + packed(8, deltas(refs), True))

    ways = way(100, [(s["building"], s["yes"])], [1, 2, 3, 4, 1]) \
        + way(101, [(s["highway"], s["cycleway"]), (s["name"], s["Esplanadi"])], [5, 6, 7]) \
        + way(102, [], [9, 10, 11]) + way(103, [], [11, 9]) \
        + way(104, [], [12, 13, 14, 12])
    relation = f_bytes(4, f_varint(1, 200)
                       + packed(2, [s["type"], s["landuse"]]) + packed(3, [s["multipolygon"], s["grass"]])
                       + packed(8, [s["outer"], s["outer"], s["inner"]])
                       + packed(9, deltas([102, 103, 104]), True) + packed(10, [1, 1, 1]))
    block = table + f_bytes(2, group_nodes) + f_bytes(2, ways) + f_bytes(2, relation)
    return blob("OSMHeader", header_block(), compress) + blob("OSMData", block, compress)


write("osm_pbf", "dense-zlib", osm_file(True, True))
write("osm_pbf", "dense-raw", osm_file(False, True))
write("osm_pbf", "nodes-zlib", osm_file(True, False))
write("osm_pbf", "header-only", blob("OSMHeader", header_block(), False))
with open(os.path.join(ROOT, "fixtures", "helsinki.osm.pbf"), "rb") as f:
    real = f.read()
(hlen,) = struct.unpack(">I", real[:4])
write("osm_pbf", "helsinki-header", real[:4 + hlen + 200])

# --- MVT round trip: byte strings read by fuzz/bodies/mod.rs ----------------------------------
rng = random.Random(2026)
for i in range(24):
    kind = i % 3
    head = bytes([kind, 14 + i % 3, i % 3, i % 5]) + rng.randbytes(8) + bytes([i % 4, i % 4])
    body = bytearray()
    for part in range(1 + i % 4):
        n = 3 + rng.randrange(12)
        body += bytes([part % 2 if kind == 2 else rng.randrange(2), n])
        for _ in range(n):
            body += bytes([1 + rng.randrange(7)]) + struct.pack("<hh", rng.randrange(-3000, 3000), rng.randrange(-3000, 3000))
    write("mvt_roundtrip", str(i), head + bytes(body) + bytes([i]))

# --- Planners' formats: GeoPackage geometry blobs, CRS WKT, zipped shapefiles, FlatGeobuf --
# Written by GDAL's ogr2ogr from the fixtures in fixtures/formats/ (skipped without GDAL).
import shutil
import sqlite3
import subprocess
import tempfile

if shutil.which("ogr2ogr"):
    with tempfile.TemporaryDirectory() as tmp:
        def ogr(out, src, *args):
            path = os.path.join(tmp, out)
            subprocess.run(["ogr2ogr", "-q", *args, path, src, "-oo", "DATE_AS_STRING=YES"],
                           check=True, stderr=subprocess.DEVNULL)
            return path

        for kind in ["points", "lines", "polygons"]:
            src = os.path.join(ROOT, "fixtures", "formats", kind + ".geojson")
            gpkg = ogr(kind + ".gpkg", src, "-f", "GPKG", "-nln", kind, "-limit", "3")
            db = sqlite3.connect(gpkg)
            for i, (blob,) in enumerate(db.execute("SELECT geom FROM %s" % kind)):
                write("gpkg_geometry", "%s-%d" % (kind, i), bytes(blob))
            for i, (d,) in enumerate(db.execute("SELECT definition FROM gpkg_spatial_ref_sys")):
                write("crs_wkt", "gpkg-%s-%d" % (kind, i), d)
            db.close()
            for srs in ["EPSG:4326", "EPSG:3067"]:
                tag = srs.split(":")[1]
                shp = ogr("%s-%s.shp.zip" % (kind, tag), src, "-f", "ESRI Shapefile", "-nln", kind,
                          "-limit", "3", "-t_srs", srs)
                write("shapefile", "%s-%s" % (kind, tag), open(shp, "rb").read())
                fgb = ogr("%s-%s.fgb" % (kind, tag), src, "-f", "FlatGeobuf", "-limit", "3",
                          "-t_srs", srs, "-lco", "SPATIAL_INDEX=" + ("YES" if tag == "4326" else "NO"))
                write("fgb", "%s-%s" % (kind, tag), open(fgb, "rb").read())
        for code in ["4326", "3067", "3346", "3857", "2393", "3879", "32635"]:
            shp = ogr("crs-%s.shp" % code, os.path.join(ROOT, "fixtures", "formats", "points.geojson"),
                      "-f", "ESRI Shapefile", "-limit", "1", "-t_srs", "EPSG:" + code)
            write("crs_wkt", "prj-" + code, open(shp[:-4] + ".prj").read())
            wkt2 = subprocess.run(["gdalsrsinfo", "-o", "wkt2", "EPSG:" + code], check=True,
                                  capture_output=True, text=True).stdout.strip()
            write("crs_wkt", "wkt2-" + code, wkt2)
else:
    print("ogr2ogr not found: no seeds for gpkg_geometry, crs_wkt, shapefile, fgb")
