"""Label glyphs checked by an independent decoder, against the names the server labels.

    python3 tests/check_glyphs.py BASE_URL

Reads /style.json for its glyph URL and its symbol layers (which layer, which property,
which fonts), collects every value of those properties through OGC API - Features
(/collections/{id}/items, paged by its `next` links), plus the characters cluster counts
use, and fetches every glyph range those characters fall in. Each range is decoded with the
small protobuf reader below (the `glyphs.proto` schema MapLibre reads; no code shared with
the server), and each character must have a glyph whose SDF bitmap is
(width + 6) * (height + 6) bytes: the 3 px border MapLibre's glyph atlas expects.
Prints one line per check; exits non-zero on the first failure.
"""

import json
import sys
import urllib.parse
import urllib.request


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


# --- a minimal protobuf reader: varints and length-delimited fields are all glyphs use ---
def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value): an int for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            length, i = varint(buf, i)
            value = bytes(buf[i : i + length])
            i += length
            assert len(value) == length, "truncated field"
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        yield number, wire, value


def zigzag(n):
    return (n >> 1) ^ -(n & 1)


def decode_glyphs(buf):
    """glyphs { repeated fontstack stacks = 1 }; fontstack { name = 1, range = 2,
    repeated glyph glyphs = 3 }; glyph { id = 1, bitmap = 2, width = 3, height = 4,
    sint32 left = 5, sint32 top = 6, advance = 7 }."""
    stacks = []
    for n, _, stack_bytes in fields(buf):
        assert n == 1, f"glyphs has field {n}"
        stack = {"glyphs": {}}
        for m, _, v in fields(stack_bytes):
            if m == 1:
                stack["name"] = v.decode()
            elif m == 2:
                stack["range"] = v.decode()
            elif m == 3:
                g = {"bitmap": None}
                for k, _, gv in fields(v):
                    name = {1: "id", 2: "bitmap", 3: "width", 4: "height", 5: "left", 6: "top", 7: "advance"}[k]
                    g[name] = zigzag(gv) if k in (5, 6) else gv
                stack["glyphs"][g["id"]] = g
        stacks.append(stack)
    return stacks


def main():
    base = sys.argv[1].rstrip("/")
    _, _, body = fetch(base + "/style.json")
    style = json.loads(body)
    template = style["glyphs"]
    assert template == base + "/fonts/{fontstack}/{range}.pbf", template

    # What each symbol layer writes, and with which fonts.
    wanted = {}  # fontstack -> set of code points
    labelled = {}  # layer id -> properties
    for layer in style["layers"]:
        if layer["type"] != "symbol":
            continue
        layout = layer["layout"]
        assert "text-allow-overlap" not in layout, layer["id"]
        stack = ",".join(layout["text-font"])
        field = layout["text-field"]
        assert field[0] == "get", field
        wanted.setdefault(stack, set())
        if field[1] == "point_count_abbreviated":
            # supercluster's abbreviation: 1234 -> "1.2k", 12345 -> "12k".
            wanted[stack] |= {ord(c) for c in "0123456789.k"}
        else:
            labelled.setdefault(layer["source-layer"], set()).add(field[1])
            labelled[layer["source-layer"]].add(("font", stack))
    assert {"roads", "schools", "parks", "public_events"} <= set(labelled), labelled

    names = {}
    for layer, props in labelled.items():
        stacks = [p[1] for p in props if isinstance(p, tuple)]
        props = [p for p in props if not isinstance(p, tuple)]
        url = f"{base}/collections/{layer}/items?limit=1000"
        count = 0
        while url:
            _, _, body = fetch(url)
            page = json.loads(body)
            for f in page["features"]:
                for p in props:
                    v = f["properties"].get(p)
                    if isinstance(v, str) and v:
                        count += 1
                        names.setdefault(layer, set()).add(v)
                        for s in stacks:
                            wanted[s] |= {ord(c) for c in v}
            url = next((l["href"] for l in page.get("links", []) if l.get("rel") == "next"), None)
        print(f"ok - {layer}: {count} labels, {len(names.get(layer, ()))} distinct")
    every = "".join(sorted({c for vs in names.values() for v in vs for c in v}))
    for letter in "äö":
        assert letter in every, f"no {letter!r} in the bundled names: {every!r}"
    # Finnish and Swedish letters the fixture's names lack today but a city's data has
    # (name:sv, edits): the label font must have them too.
    for stack in {",".join(l["layout"]["text-font"]) for l in style["layers"] if l["type"] == "symbol"}:
        wanted[stack] |= {ord(c) for c in "åäöÅÄÖ"}
    print(f"ok - the names use {len(every)} characters, among them {''.join(c for c in every if ord(c) > 127)!r}")

    for stack, code_points in wanted.items():
        by_range = {}
        for cp in code_points:
            assert cp <= 0xFFFF, f"code point {cp:#x} is outside the glyph protocol's ranges"
            by_range.setdefault(cp // 256 * 256, set()).add(cp)
        for start, cps in sorted(by_range.items()):
            rng = f"{start}-{start + 255}"
            url = template.replace("{fontstack}", urllib.parse.quote(stack)).replace("{range}", rng)
            status, ctype, body = fetch(url)
            assert status == 200 and ctype == "application/x-protobuf", (url, status, ctype)
            stacks = decode_glyphs(body)
            assert len(stacks) == 1 and stacks[0]["range"] == rng, [(s.get("name"), s.get("range")) for s in stacks]
            glyphs = stacks[0]["glyphs"]
            assert all(start <= g <= start + 255 for g in glyphs), f"{rng} holds glyphs outside it"
            for cp in sorted(cps):
                g = glyphs.get(cp)
                assert g is not None, f"{stack} {rng}: no glyph for {chr(cp)!r} (U+{cp:04X})"
                assert g.get("advance", 0) > 0, f"{chr(cp)!r} has no advance"
                w, h = g.get("width", 0), g.get("height", 0)
                bitmap = g["bitmap"]
                if w and h:
                    assert bitmap is not None, f"{chr(cp)!r} has no bitmap"
                else:
                    # Blank glyphs (a space) need no bitmap; MapLibre reads one, if sent,
                    # as a (0 + 6) x (0 + 6) image and refuses any other size.
                    assert chr(cp).isspace(), f"{chr(cp)!r} is blank"
                if bitmap is not None:
                    want = (w + 6) * (h + 6)
                    assert len(bitmap) == want, f"{chr(cp)!r}: bitmap of {len(bitmap)} bytes, not ({w}+6)*({h}+6)={want}"
            print(f"ok - {stack} {rng}: {len(glyphs)} glyphs, all {len(cps)} wanted characters with {len(body)} bytes")
    print("ok - every labelled character has an SDF glyph of the size MapLibre expects")


if __name__ == "__main__":
    main()
