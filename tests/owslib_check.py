#!/usr/bin/env python3
"""OWSLib's OGC API - Features client against a running urbantile: collections,
queryables and filtered items. Usage: owslib_check.py BASE_URL. Exits non-zero on failure."""
import sys

from owslib.ogcapi.features import Features

base = sys.argv[1].rstrip('/') + '/'
w = Features(base)
conformance = w.conformance()['conformsTo']
assert any(c.endswith('/conf/core') for c in conformance), conformance
ids = [c['id'] for c in w.collections()['collections']]
assert 'accidents' in ids and 'zoning' in ids, ids
assert 'accidents' in w.feature_collections()
q = w.collection_queryables('accidents')
assert q['properties']['vehicles']['type'] == 'integer', q  # declared in layers/accidents.toml
everything = w.collection_items('accidents', limit=10000)
serious = w.collection_items('accidents', limit=10000, filter="severity = 'serious' AND vehicles >= 2")
want = [f['id'] for f in everything['features']
        if f['properties']['severity'] == 'serious' and f['properties']['vehicles'] >= 2]
got = [f['id'] for f in serious['features']]
assert sorted(got) == sorted(want) and got, (len(got), len(want))
boxed = w.collection_items('schools', bbox=[24.94, 60.165, 24.955, 60.18])
assert boxed['numberReturned'] == len(boxed['features'])
one = w.collection_item('accidents', str(got[0]))
assert one['id'] == got[0]
print(f"ok - OWSLib: {len(ids)} collections, queryables, {len(got)} of {len(everything['features'])} accidents by filter")
