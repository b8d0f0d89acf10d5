#!/usr/bin/env python3
"""Write-to-visible and change-event latency against a running urbantile.

  benches/live_latency.py HOST:PORT KEY [ROUNDS] [READ_HOST:PORT]

Follows GET /changes?layers=urban_problems on one connection. Each round PATCHes one
report (a new status, and a move inside its z16 tile), and from the moment the PATCH is
answered measures (1) until a GET of the composite z16 tile holding it returns bytes that
carry the new status, and (2) until its change event arrives on the feed. Prints
`name p50_ms p99_ms max_ms` lines. With READ_HOST:PORT (another replica on the same
database), the tile and the feed are read there: write-to-visible across replicas.
Standard library only.
"""
import http.client
import json
import math
import socket
import statistics
import sys
import threading
import time

host, key = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 200
addr, port = host.rsplit(":", 1)
read_addr, read_port = (sys.argv[4] if len(sys.argv) > 4 else host).rsplit(":", 1)
auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/geo+json"}

conn = http.client.HTTPConnection(addr, int(port), timeout=30)
reader = http.client.HTTPConnection(read_addr, int(read_port), timeout=30)


def call(method, path, body=None, headers=None, on=None):
    c = on or conn
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.getheader("ETag"), r.read()


status, _, body = call("GET", "/catalog")
layers = ",".join(l["id"] for l in json.loads(body)["layers"])
lon, lat = 24.9452, 60.1687
feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
           "properties": {"ticket_no": "LAT-0", "category": "lighting", "status": "s0",
                          "reported_at": "2026-11-22T12:00:00Z"}}
status, _, body = call("POST", "/collections/urban_problems/items", json.dumps(feature), auth)
assert status == 201, (status, body)
fid = json.loads(body)["id"]
k = 2 ** 16
x = int((lon + 180) / 360 * k)
y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k)
tile = f"/tiles/{layers}/16/{x}/{y}.mvt"

arrived = {}
lock = threading.Condition()


def follow():
    s = socket.create_connection((read_addr, int(read_port)))
    s.sendall(b"GET /changes?layers=urban_problems HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while True:
        data = s.recv(65536)
        if not data:
            return
        now = time.perf_counter()
        buf += data
        # Chunk framing lines carry no "data:" prefix; events are found by their data line.
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    with lock:
                        arrived.setdefault((event["id"], event["kind"]), []).append(now)
                        lock.notify_all()


threading.Thread(target=follow, daemon=True).start()
time.sleep(0.3)

visible, delivered = [], []
for i in range(1, rounds + 1):
    token = f"s{i}"
    patch = {"properties": {"status": token},
             "geometry": {"type": "Point", "coordinates": [lon + (i % 5) * 1e-5, lat]}}
    with lock:
        before = len(arrived.get((fid, "update"), []))
    status, _, body = call("PATCH", f"/collections/urban_problems/items/{fid}", json.dumps(patch), auth)
    answered = time.perf_counter()
    assert status == 200, (status, body)
    while True:
        status, _, body = call("GET", tile, on=reader)
        if token.encode() in body:
            visible.append(time.perf_counter() - answered)
            break
        assert time.perf_counter() - answered < 5, "the edit never reached the tile"
    with lock:
        while len(arrived.get((fid, "update"), [])) <= before:
            assert lock.wait(5), "no change event"
        delivered.append(arrived[(fid, "update")][before] - answered)


def line(name, xs):
    xs = sorted(v * 1000 for v in xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    print(f"{name} {statistics.median(xs):.2f} {p99:.2f} {xs[-1]:.2f}")


line("write_to_visible", visible)
line("change_event", delivered)
