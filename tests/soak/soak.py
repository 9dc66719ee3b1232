#!/usr/bin/env python3
"""Bounded soak: N mixed good and bad requests from C client threads against a
running instcald, with the daemon's resident memory sampled throughout.

Passes when every request got an expected status (no 500, no dropped
connection except for the deliberately cancelled uploads), the daemon's
request counters account for every request, and RSS is flat: after the
warm-up (the first WARMUP fraction of requests) RSS may not grow by more than
RSS_SLACK_MB and the second half's mean may not exceed the first half's by
more than RSS_SLACK_MB / 2. Prints the samples, then 'N passed, N failed'.

Usage: soak.py PORT PID [REQUESTS] [CLIENTS]      (run.sh starts the daemon)
"""
import http.client, os, random, re, socket, struct, sys, threading, time, zlib

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
N = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
C = int(sys.argv[4]) if len(sys.argv) > 4 else 4
WARMUP = 0.2
RSS_SLACK_MB = float(os.environ.get("SOAK_RSS_SLACK_MB", "8"))
# Under valgrind freed blocks sit in its quarantine, so RSS says nothing.
IGNORE_RSS = os.environ.get("SOAK_VALGRIND", "0") == "1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMG = os.path.join(ROOT, "tests", "data", "images")


def rd(n):
    with open(os.path.join(IMG, n), "rb") as f:
        return f.read()


def png_claim(w, h):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 7)) + chunk(b"IEND", b""))


def mp(parts, bnd="soakbnd"):
    out = [b"--%s\r\nContent-Disposition: form-data; name=\"%s\"%s\r\n\r\n%s\r\n" % (bnd.encode(), n.encode(), x, v) for n, v, x in parts]
    return b"".join(out) + b"--%s--\r\n" % bnd.encode(), "multipart/form-data; boundary=" + bnd


JPG, PNG, GRAY16, CMYK, PAL = rd("grad.jpg"), rd("rgb8.png"), rd("gray16.png"), rd("cmyk.jpg"), rd("pal.png")
LABEL = rd("gray8.png")  # class ids 0..255: may be refused as bad_label, which is fine
CAL = ["none", "tbn", "instcal-u", "instcal-c", "manual&m=0.4"]

# (name, weight, function returning (method, path, body, headers) or "cancel", allowed statuses)
KINDS = [
    ("jpeg_ok", 30, lambda r: ("POST", "/v1/segment?outputs=none&calibration=" + r.choice(CAL), JPG, {"Content-Type": "image/jpeg"}), {200, 503}),
    ("png_ok_outputs", 10, lambda r: ("POST", "/v1/segment?outputs=panoptic,semantic,confidence&rle=1&calibration=none", PNG, {"Content-Type": "image/png"}), {200, 503}),
    ("multipart_ok", 10, lambda r: ("POST", "/v1/segment", *mp_req([("image", JPG, b'; filename="a.jpg"'), ("calibration", b"tbn", b""), ("outputs", b"semantic", b"")])), {200, 503}),
    ("multipart_label", 5, lambda r: ("POST", "/v1/segment", *mp_req([("image", PNG, b'; filename="a.png"'), ("label", LABEL, b'; filename="l.png"'), ("calibration", b"none", b"")])), {200, 400, 503}),
    ("png16", 4, lambda r: ("POST", "/v1/segment?outputs=none", GRAY16, {"Content-Type": "image/png"}), {200, 503}),
    ("bomb", 5, lambda r: ("POST", "/v1/segment", png_claim(100000, 100000), {"Content-Type": "image/png"}), {413, 503}),
    ("cmyk", 3, lambda r: ("POST", "/v1/segment", CMYK, {"Content-Type": "image/jpeg"}), {415, 503}),
    ("garbage_image", 5, lambda r: ("POST", "/v1/segment", bytes(r.getrandbits(8) for _ in range(300)), {"Content-Type": "image/jpeg"}), {400, 503}),
    ("truncated_jpeg", 4, lambda r: ("POST", "/v1/segment", JPG[: r.randint(10, len(JPG) - 1)], {"Content-Type": "image/jpeg"}), {200, 400, 503}),
    ("bad_param", 4, lambda r: ("POST", "/v1/segment?calibration=manual&m=7", JPG, {"Content-Type": "image/jpeg"}), {400, 503}),
    ("unknown_field", 3, lambda r: ("POST", "/v1/segment", *mp_req([("colour", b"x", b"")])), {400, 503}),
    ("wrong_type", 2, lambda r: ("POST", "/v1/segment", b"{}", {"Content-Type": "application/json"}), {415}),
    ("too_large", 2, lambda r: "too_large", {413}),
    ("get_health", 5, lambda r: ("GET", r.choice(["/v2/health/live", "/v2/health/ready", "/healthz", "/v1/models", "/v2"]), None, {}), {200, 503}),
    ("get_metrics", 2, lambda r: ("GET", "/metrics", None, {}), {200}),
    ("not_found", 2, lambda r: ("GET", "/nope/%d" % r.randint(0, 9), None, {}), {404}),
    ("cancelled_upload", 4, lambda r: "cancel", None),
]


def mp_req(parts):
    body, ct = mp(parts)
    return body, {"Content-Type": ct}


def rss_kb():
    with open("/proc/%d/status" % PID) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def cancel(r):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    big = JPG * 200
    s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(big) + big[: r.randint(1000, len(big) - 1)])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def too_large():
    """A 5 MiB upload over the 4 MiB limit: 413 from the headers alone (the
    daemon answers and closes without reading the body)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (5 << 20))
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            b = s.recv(4096)
            if not b:
                break
            buf += b
    finally:
        s.close()
    return int(buf[9:12]) if buf.startswith(b"HTTP/1.") else None


lock = threading.Lock()
counter = [0]
counts, bad, samples = {}, [], []
weights = [k[1] for k in KINDS]


def worker(seed):
    r = random.Random(seed)
    conn = None
    while True:
        with lock:
            if counter[0] >= N:
                break
            counter[0] += 1
            i = counter[0]
        name, _, make, allowed = r.choices(KINDS, weights)[0]
        try:
            req = make(r)
            if req == "cancel":
                cancel(r)
                st = "cancel"
            elif req == "too_large":
                st = too_large()
                if st not in allowed:
                    with lock:
                        bad.append((name, st))
            else:
                method, path, body, hdrs = req
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
                conn.request(method, path, body=body, headers=hdrs)
                resp = conn.getresponse()
                resp.read()
                st = resp.status
                if resp.getheader("Connection", "").lower() == "close" or st == 413:
                    conn.close()
                    conn = None
                if st not in allowed:
                    with lock:
                        bad.append((name, st))
        except Exception as e:  # noqa: BLE001
            st = "error"
            with lock:
                bad.append((name, "%s: %s" % (type(e).__name__, e)))
            if conn:
                conn.close()
            conn = None
        with lock:
            counts[(name, st)] = counts.get((name, st), 0) + 1
            if i % max(1, N // 40) == 0:
                samples.append((i, rss_kb()))
    if conn:
        conn.close()


def metrics_total():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    total = 0
    for line in text.splitlines():
        if line.startswith("instcald_http_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    t0 = time.time()
    rss0 = rss_kb()
    m0 = metrics_total()
    threads = [threading.Thread(target=worker, args=(s,)) for s in range(C)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    time.sleep(0.5)
    rss_end = rss_kb()
    m1 = metrics_total()
    samples.sort()
    print("soak: %d requests from %d clients in %.1f s (%.0f/s)" % (N, C, dt, N / dt))
    print("status counts:")
    for (name, st), n in sorted(counts.items(), key=lambda x: (x[0][0], str(x[0][1]))):
        print("  %-18s %-7s %d" % (name, st, n))
    print("RSS samples (request #, MB): " + " ".join("%d:%.1f" % (i, kb / 1024) for i, kb in samples))
    warm = [kb for i, kb in samples if i > N * WARMUP]
    half = len(warm) // 2
    first, second = warm[:half], warm[half:]
    mean = lambda v: sum(v) / len(v) / 1024 if v else 0
    print("RSS: start %.1f MB, after warm-up %.1f MB, end %.1f MB, max %.1f MB; mean first half %.1f MB, second half %.1f MB"
          % (rss0 / 1024, (warm[0] if warm else rss0) / 1024, rss_end / 1024, max(kb for _, kb in samples) / 1024,
             mean(first), mean(second)))
    cancelled = sum(n for (name, st), n in counts.items() if st == "cancel")
    # Cancelled uploads may or may not reach the access handler; the metrics
    # count every other request (plus the two /metrics reads of this script).
    served = N - cancelled
    seen = m1 - m0 - 1
    checks = [
        ("every status expected", not bad, "%d unexpected: %s" % (len(bad), bad[:10])),
        ("RSS growth after warm-up < %.0f MB" % RSS_SLACK_MB, IGNORE_RSS or not warm or (rss_end - warm[0]) / 1024 < RSS_SLACK_MB,
         "grew %.1f MB" % ((rss_end - (warm[0] if warm else rss0)) / 1024)),
        ("RSS second half vs first half < %.0f MB" % (RSS_SLACK_MB / 2), IGNORE_RSS or mean(second) - mean(first) < RSS_SLACK_MB / 2,
         "%.1f MB" % (mean(second) - mean(first))),
        ("metrics account for every request", served <= seen <= served + cancelled,
         "instcald_http_requests_total grew by %d, expected %d..%d" % (seen, served, served + cancelled)),
    ]
    ok = 0
    for name, passed, detail in checks:
        print("%-45s %s  %s" % (name, "ok" if passed else "FAIL", "" if passed else detail))
        ok += bool(passed)
    print("%d passed, %d failed" % (ok, len(checks) - ok))
    sys.exit(0 if ok == len(checks) else 1)


main()
