#!/usr/bin/env python3
"""Clients of benches/overload.sh. Standard library only.

  overload_clients.py expensive HOST:PORT CLIENTS SECONDS
      CLIENTS concurrent clients, each looping for SECONDS over the expensive requests
      below (a new tile filter every time, so the cache never answers); prints one JSON
      object: answers by request kind and status, socket errors, latency percentiles (ms).
  overload_clients.py health HOST:PORT SECONDS [INTERVAL_MS]
      Sequential GET /health on one keep-alive connection, one every INTERVAL_MS (10)
      for SECONDS; prints a JSON object with the count, non-200 answers, errors and
      latency percentiles (ms).
"""
import http.client
import json
import math
import sys
import threading
import time
import urllib.parse

q = urllib.parse.quote


def expensive_requests(layers, tiles):
    """The request kinds, each a function of a counter returning a path."""
    or_chain = " OR ".join(f"name = 'no street {i}'" for i in range(60))
    return {
        "items LIKE '%a%b%c%d%' buildings, limit 10000": lambda n: (
            "/collections/buildings/items?limit=10000&filter=" + q("name LIKE '%a%b%c%d%'")),
        "aggregate accidents by zoning, sum": lambda n: (
            "/collections/accidents/aggregate?by=zoning&sum=vehicles"),
        "items roads, 60-term OR chain, limit 10000": lambda n: (
            "/collections/roads/items?limit=10000&filter=" + q(or_chain)),
        "composite tile z11, new filter each": lambda n: (
            f"/tiles/{layers}/11/{tiles[n % len(tiles)]}.mvt?filter="
            + q(f"S_INTERSECTS(geometry,BBOX(-179.{n:09d},-85,179,85))")),
    }


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)


def expensive(host, clients, seconds):
    addr, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(addr, int(port), timeout=60)
    conn.request("GET", "/catalog")
    cat = json.loads(conn.getresponse().read())["layers"]
    layers = ",".join(l["id"] for l in cat)
    bs = [l["bounds"] for l in cat if l["bounds"]]
    k = 2 ** 11

    def tile(lon, lat):
        return (int((lon + 180) / 360 * k),
                int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k))

    x0, y0 = tile(min(b[0] for b in bs), max(b[3] for b in bs))
    x1, y1 = tile(max(b[2] for b in bs), min(b[1] for b in bs))
    tiles = [f"{x}/{y}" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    kinds = expensive_requests(layers, tiles)
    names = list(kinds)
    lock = threading.Lock()
    stats = {k: {"status": {}, "errors": 0, "ms": []} for k in names}
    end = time.monotonic() + seconds
    counter = [0]
    first_bad = {}

    def client(c):
        conn = http.client.HTTPConnection(addr, int(port), timeout=60)
        i = c
        while time.monotonic() < end:
            name = names[i % len(names)]
            i += 1
            with lock:
                counter[0] += 1
                n = counter[0]
            path = kinds[name](n)
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
                r = conn.getresponse()
                body = r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    stats[name]["errors"] += 1
                    first_bad.setdefault(f"socket error {e!r}", path)
                conn.close()
                conn = http.client.HTTPConnection(addr, int(port), timeout=60)
                continue
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                s = stats[name]
                s["status"][status] = s["status"].get(status, 0) + 1
                s["ms"].append(ms)
                if status not in (200, 204, 503):
                    first_bad.setdefault(f"{status}: {body[:300].decode(errors='replace')}", path)
            if status == 503:
                # A client told to retry later waits a little, as Retry-After asks.
                time.sleep(min(float(r.getheader("Retry-After") or 1), 1.0) / 10)

    ts = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out = {}
    for name, s in stats.items():
        out[name] = {"status": {str(k): v for k, v in sorted(s["status"].items())},
                     "errors": s["errors"], "p50_ms": percentile(s["ms"], 50),
                     "p99_ms": percentile(s["ms"], 99)}
    print(json.dumps({"kinds": out, "first_bad": first_bad}))


def health(host, seconds, interval_ms=10.0):
    addr, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(addr, int(port), timeout=30)
    end = time.monotonic() + seconds
    ms, bad, errors = [], 0, 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/health")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                bad += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(addr, int(port), timeout=30)
            continue
        took = (time.perf_counter() - t0) * 1000
        ms.append(took)
        time.sleep(max(0.0, interval_ms - took) / 1000)
    print(json.dumps({"requests": len(ms), "non_200": bad, "errors": errors,
                      "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
                      "p99_ms": percentile(ms, 99), "max_ms": round(max(ms), 2) if ms else None}))


if __name__ == "__main__":
    if sys.argv[1] == "expensive":
        expensive(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "health":
        health(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 10.0)
    else:
        sys.exit(__doc__)
