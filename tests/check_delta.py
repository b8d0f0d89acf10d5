#!/usr/bin/env python3
"""Independent check of a pack's delta (`GET /packs/{name}/changes?since=`): reads the old
pack, the delta and a new pack cut after the writes with the readers of check_pack.py (PyPI
`pmtiles`, sqlite3), and checks that the delta holds exactly the tiles whose bytes changed
between the two packs, lists exactly the tiles that left, and that applying it to the old
pack gives the new pack's tiles.

Usage: check_delta.py OLD DELTA NEW
Prints a summary and exits 0, or prints each failure and exits 1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_pack  # noqa: E402


def read(path):
    if path.endswith(".pmtiles"):
        return check_pack.read_pmtiles(path)[:2]
    return check_pack.read_mbtiles(path)[:2]


def main():
    old_path, delta_path, new_path = sys.argv[1:4]
    old, old_meta = read(old_path)
    delta, meta = read(delta_path)
    new, new_meta = read(new_path)
    fail = check_pack.fail
    own = meta.get("urbantile", {})
    removed = {tuple(t) for t in own.get("removed", [])}
    changed = {t: b for t, b in new.items() if old.get(t) != b}
    gone = set(old) - set(new)
    if set(delta) != set(changed):
        fail(f"delta tiles {sorted(set(delta) ^ set(changed))[:10]} differ from the changed tiles")
    for t, b in delta.items():
        if changed.get(t) != b:
            fail(f"tile {t}: the delta's bytes are not the new pack's")
    if removed != gone:
        fail(f"removed {sorted(removed ^ gone)[:10]} differ from the tiles that left")
    applied = dict(old)
    applied.update(delta)
    for t in removed:
        applied.pop(t, None)
    if applied != new:
        fail("the old pack with the delta applied is not the new pack")
    if own.get("position") != new_meta["urbantile"]["position"]:
        fail(f"delta position {own.get('position')} != new pack's {new_meta['urbantile']['position']}")
    if own.get("since") != old_meta["urbantile"]["position"]:
        fail(f"delta since {own.get('since')} != old pack's position")
    if not changed or len(changed) == len(new):
        fail(f"{len(changed)} of {len(new)} tiles changed: the test cannot tell")
    if check_pack.failures:
        for f in check_pack.failures[:50]:
            print("FAIL", f)
        sys.exit(1)
    print(f"ok: {len(delta)} tiles in the delta, {len(removed)} removed, of {len(new)} in the "
          f"new pack; old pack + delta = new pack")


if __name__ == "__main__":
    main()
