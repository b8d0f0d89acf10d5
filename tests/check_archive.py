#!/usr/bin/env python3
"""Independent check that an archive layer serves its archive's tiles, byte for byte.

Reads the archive with readers that share no code with urbantile: the PyPI `pmtiles`
package for .pmtiles, Python's sqlite3 for .mbtiles (MBTiles 1.3, TMS rows). For every
tile it holds, asks the server for `/tiles/LAYER/z/x/y.EXT` twice and checks that:

- with `Accept-Encoding: gzip` the body is the stored bytes (gzip ones with
  `Content-Encoding: gzip`, others with none);
- without it, the body is the stored bytes gunzipped (for gzip tiles), else the same;
- the tile after the archive's last one on the same row, if absent from the archive, is a 204.

Usage: check_archive.py BASE_URL LAYER ARCHIVE EXT
Prints a summary line and exits 0 when every check passes; else prints the failures, exits 1.
"""
import gzip
import sqlite3
import sys
import urllib.request

failures = []


def fetch(url, gzip_ok):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip_ok else {})
    with urllib.request.urlopen(req) as r:
        return r.status, r.headers.get("Content-Encoding"), r.read()


def read_tiles(path):
    if path.endswith(".pmtiles"):
        from pmtiles.reader import MmapSource, all_tiles

        with open(path, "r+b") as f:
            return {(z, x, y): bytes(d) for (z, x, y), d in all_tiles(MmapSource(f))}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = {}
    for z, x, row, data in db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles"):
        out[(z, x, (1 << z) - 1 - row)] = bytes(data)
    return out


def main():
    base, layer, path, ext = sys.argv[1:5]
    tiles = read_tiles(path)
    if not tiles:
        failures.append("the archive holds no tiles")
    gzipped = 0
    for (z, x, y), stored in sorted(tiles.items()):
        url = f"{base}/tiles/{layer}/{z}/{x}/{y}.{ext}"
        is_gzip = stored[:2] == b"\x1f\x8b"
        gzipped += is_gzip
        status, coding, body = fetch(url, True)
        if status != 200 or body != stored:
            failures.append(f"{url} (gzip accepted): {status}, {len(body)} bytes, not the stored {len(stored)}")
        if coding != ("gzip" if is_gzip else None):
            failures.append(f"{url}: Content-Encoding {coding!r}")
        status, coding, body = fetch(url, False)
        plain = gzip.decompress(stored) if is_gzip else stored
        if status != 200 or coding is not None or body != plain:
            failures.append(f"{url} (identity): {status} {coding!r}, not the stored bytes inflated")
    absent = 0
    for (z, x, y) in sorted(tiles)[:20]:
        nxt = (z, x + 1, y)
        if nxt in tiles or x + 1 >= (1 << z):
            continue
        status, _, body = fetch(f"{base}/tiles/{layer}/{z}/{x + 1}/{y}.{ext}", True)
        absent += 1
        if status != 204 or body:
            failures.append(f"{z}/{x + 1}/{y}: absent from the archive, answered {status}")
    for f in failures[:30]:
        print("FAIL", f)
    print(f"{layer}: {len(tiles)} tiles ({gzipped} gzip) served as stored, {absent} absent ones 204; "
          f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


main()
