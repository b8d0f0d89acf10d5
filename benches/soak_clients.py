#!/usr/bin/env python3
"""Clients of benches/soak.sh that wrk cannot play. Standard library only.

  soak_clients.py writes HOST:PORT KEY RATE SECONDS [THREADS]
      Single-feature writes to urban_problems at RATE requests/s in all (paced on a fixed
      schedule, THREADS connections, 3 by default) for SECONDS: a POST of a new report,
      then a DELETE of it, so the data set keeps its size however long the soak runs.
      Each report has its own ticket_no (a value no feature had before), unless
      SOAK_SAME_TICKET=1 gives them all one.
  soak_clients.py sse HOST:PORT SUBSCRIBERS SECONDS
      SUBSCRIBERS clients on GET /changes (every layer), each reading continuously for
      SECONDS; one that is cut off reconnects with Last-Event-ID and is counted.
  soak_clients.py queries HOST:PORT > paths
      Item queries (bbox, CQL2) and nearest/containing at random places of the data set
      (fixed seed), as `items PATH` and `planner PATH` lines.

writes and sse print one JSON object: answers by status, socket errors, latency
percentiles in ms (writes), events seen, gaps in the event ids and reconnects (sse).
"""
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)


def writes(host, key, rate, seconds, threads=3):
    addr, port = host.rsplit(":", 1)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/geo+json"}
    lock = threading.Lock()
    by_status, errors, latencies = {}, [0], []
    behind = [0.0]
    start = time.monotonic()
    end = start + seconds
    same_ticket = os.environ.get("SOAK_SAME_TICKET") == "1"

    def worker(w):
        rng = random.Random(w)
        conn = http.client.HTTPConnection(addr, int(port), timeout=30)
        step = threads / rate
        next_at = start + w * step / threads
        pending, n, mine = None, 0, []
        while True:
            now = time.monotonic()
            if next_at >= end or now >= end:
                break
            if next_at > now:
                time.sleep(next_at - now)
            else:
                behind[0] = max(behind[0], now - next_at)
            next_at += step
            if pending is None:
                n += 1
                lon, lat = 24.93 + rng.random() * 0.02, 60.165 + rng.random() * 0.01
                body = json.dumps({
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                    "properties": {"ticket_no": "SOAK" if same_ticket else f"SOAK-{w}-{n}", "category": "litter",
                                   "status": "new", "reported_at": "2026-12-01T12:00:00Z"}})
                method, path = "POST", "/collections/urban_problems/items"
            else:
                method, path, body = "DELETE", f"/collections/urban_problems/items/{pending}", None
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=auth)
                r = conn.getresponse()
                data = r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(addr, int(port), timeout=30)
                continue
            mine.append((time.perf_counter() - t0) * 1000)
            with lock:
                by_status[status] = by_status.get(status, 0) + 1
            if method == "POST" and status == 201:
                pending = json.loads(data)["id"]
            elif method == "DELETE":
                pending = None
        # Leave nothing behind.
        if pending is not None:
            try:
                conn.request("DELETE", f"/collections/urban_problems/items/{pending}", headers=auth)
                r = conn.getresponse()
                r.read()
                with lock:
                    by_status[r.status] = by_status.get(r.status, 0) + 1
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - start
    total = sum(by_status.values())
    print(json.dumps({
        "requests": total, "rate": round(total / elapsed, 1),
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "socket_errors": errors[0], "most_behind_s": round(behind[0], 3),
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 2) if latencies else None,
    }))


def sse(host, subscribers, seconds):
    addr, port = host.rsplit(":", 1)
    end = time.monotonic() + seconds
    results = [None] * subscribers

    def follow(k):
        seen = {"events": 0, "changes": 0, "resets": 0, "gaps": 0, "reconnects": 0,
                "bad_status": 0, "bytes": 0}
        last_id = None
        while time.monotonic() < end:
            try:
                s = socket.create_connection((addr, int(port)), timeout=5)
            except OSError:
                seen["reconnects"] += 1
                time.sleep(0.5)
                continue
            s.settimeout(1.0)
            head = f"GET /changes HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            if last_id is not None:
                head += f"Last-Event-ID: {last_id}\r\n"
            s.sendall((head + "\r\n").encode())
            buf, headers_done = b"", False
            while time.monotonic() < end:
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    data = b""
                if not data:
                    seen["reconnects"] += 1
                    break
                seen["bytes"] += len(data)
                buf += data
                if not headers_done:
                    if b"\r\n\r\n" not in buf:
                        continue
                    head_bytes, buf = buf.split(b"\r\n\r\n", 1)
                    headers_done = True
                    if not head_bytes.startswith(b"HTTP/1.1 200"):
                        seen["bad_status"] += 1
                        break
                    chunked = b"chunked" in head_bytes.lower()
                # Events end in a blank line; chunk-size lines of a chunked body are
                # neither `id:` nor `event:` lines, so they are ignored.
                *events, buf = buf.split(b"\n\n")
                for ev in events:
                    lines = ev.replace(b"\r", b"").split(b"\n")
                    kind = next((l[6:].strip() for l in lines if l.startswith(b"event:")), None)
                    eid = next((l[3:].strip() for l in lines if l.startswith(b"id:")), None)
                    if kind is None and eid is None:
                        continue
                    seen["events"] += 1
                    if kind == b"change":
                        seen["changes"] += 1
                    elif kind == b"reset":
                        seen["resets"] += 1
                    if eid:
                        eid = int(eid)
                        if last_id is not None and eid != last_id + 1 and kind == b"change":
                            seen["gaps"] += 1
                        last_id = eid
            s.close()
        results[k] = seen

    ts = [threading.Thread(target=follow, args=(k,)) for k in range(subscribers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps({"subscribers": results}))


def queries(host):
    addr, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(addr, int(port), timeout=30)
    conn.request("GET", "/catalog")
    cat = json.loads(conn.getresponse().read())["layers"]
    bounds = {l["id"]: l["bounds"] for l in cat if l["bounds"]}
    rng = random.Random(10)
    q = urllib.parse.quote

    def place(layer):
        w, s, e, n = bounds[layer]
        return rng.uniform(w, e), rng.uniform(s, n)

    for i in range(600):
        lon, lat = place("buildings")
        box = f"{lon - 0.0025:.5f},{lat - 0.0015:.5f},{lon + 0.0025:.5f},{lat + 0.0015:.5f}"
        kind = i % 3
        if kind == 0:
            print(f"items /collections/buildings/items?bbox={box}&limit=100")
        elif kind == 1:
            f = f"S_INTERSECTS(geometry,BBOX({box})) AND severity='serious'"
            print(f"items /collections/accidents/items?limit=100&filter={q(f)}")
        else:
            f = f"S_INTERSECTS(geometry,BBOX({box})) AND highway IN ('residential','primary')"
            print(f"items /collections/roads/items?limit=100&filter={q(f)}")
        lon, lat = place("zoning")
        if i % 2 == 0:
            print(f"planner /collections/schools/nearest?point={lon:.5f},{lat:.5f}&k=5")
        else:
            print(f"planner /collections/zoning/containing?point={lon:.5f},{lat:.5f}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "writes":
        writes(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]),
               int(sys.argv[6]) if len(sys.argv) > 6 else 3)
    elif mode == "sse":
        sse(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "queries":
        queries(sys.argv[2])
    else:
        sys.exit(__doc__)
