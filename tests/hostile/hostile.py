#!/usr/bin/env python3
"""Hostile-input integration tests against a running instcald (run.sh starts it).

Each case is bounded in time (socket timeouts) and checked for memory (the
daemon's VmRSS may not grow by more than RSS_SLACK_MB over the case), and after
each case the daemon must still answer /v2/health/live and a good image.
Prints one line per case and 'N passed, N failed'. Standard library only.

Usage: hostile.py PORT PID   (daemon: pdl backend, max_connections=MAXCONN,
                              connection_timeout_s=TIMEOUT, see run.sh)
"""
import http.client, json, os, socket, struct, sys, time, zlib

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
MAXCONN = int(os.environ.get("HOSTILE_MAXCONN", "32"))
TIMEOUT = int(os.environ.get("HOSTILE_TIMEOUT_S", "3"))
RSS_SLACK_MB = int(os.environ.get("HOSTILE_RSS_SLACK_MB", "64"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMG = os.path.join(ROOT, "tests", "data", "images")


def rd(name):
    with open(os.path.join(IMG, name), "rb") as f:
        return f.read()


def png(w, h, claim=None, color_type=2, depth=8):
    ch = {0: 1, 2: 3, 6: 4}[color_type] * depth // 8
    rows = b"".join(b"\0" + bytes(w * ch) for _ in range(h))
    cw, chh = claim or (w, h)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", cw, chh, depth, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg_claim(data, w, h):
    b = bytearray(data)
    i = 2
    while i + 4 < len(b):
        marker, ln = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            b[i + 5:i + 9] = struct.pack(">HH", h, w)
            break
        i += 2 + ln
    return bytes(b)


def rss_kb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds():
    return len(os.listdir("/proc/%d/fd" % PID))


def request(method, path, body=None, headers=None, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data
    finally:
        c.close()


def raw(data, timeout=10, read=True):
    """Sends raw bytes; returns (status or None, seconds until EOF/answer)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    t0 = time.time()
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not read:
            return None, 0
        buf = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
        except (ConnectionResetError, socket.timeout):
            pass
        st = int(buf[9:12]) if buf.startswith(b"HTTP/1.") else None
        return st, time.time() - t0
    finally:
        s.close()


def multipart(parts, boundary="hb0undary"):
    bnd = b"--" + boundary.encode()
    out = [bnd + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"" + extra + b"\r\n\r\n" + value + b"\r\n"
           for name, value, extra in parts]
    return b"".join(out) + bnd + b"--\r\n", "multipart/form-data; boundary=" + boundary


def segment(body, ctype, query="?calibration=none&outputs=none", timeout=30):
    return request("POST", "/v1/segment" + query, body, {"Content-Type": ctype}, timeout=timeout)


GOOD = rd("grad.jpg")
results = []


def still_serving():
    st, _ = request("GET", "/v2/health/live", timeout=10)
    assert st == 200, "live answered %s" % st
    st, body = segment(GOOD, "image/jpeg")
    assert st == 200, "a good image then got %s %s" % (st, body[:200])


def case(name):
    def deco(fn):
        def run():
            r0, t0 = rss_kb(), time.time()
            try:
                detail = fn() or ""
                still_serving()
                grow = (rss_kb() - r0) / 1024
                assert grow < RSS_SLACK_MB, "RSS grew by %.1f MB" % grow
                results.append((name, True, "%s; %.2f s, RSS %+.1f MB" % (detail, time.time() - t0, grow)))
            except Exception as e:  # noqa: BLE001 - report every failure the same way
                results.append((name, False, "%s: %s" % (type(e).__name__, e)))
        run.__name__ = name
        CASES.append(run)
        return run
    return deco


CASES = []


def expect(st, want, body=b""):
    assert st in want, "status %s, expected %s: %s" % (st, want, body[:200])
    return "status %s" % st


@case("png_100000x100000")
def _():
    st, b = segment(png(2, 2, claim=(100000, 100000)), "image/png")
    return expect(st, (413,), b)


@case("jpeg_65535x65535")  # JPEG sizes are 16-bit: 65535 is the largest a header can claim
def _():
    st, b = segment(jpeg_claim(GOOD, 65535, 65535), "image/jpeg")
    return expect(st, (413,), b)


@case("png_0x0")
def _():
    st, b = segment(png(2, 2, claim=(0, 0)), "image/png")
    return expect(st, (400,), b)


@case("jpeg_0x0")
def _():
    st, b = segment(jpeg_claim(GOOD, 0, 0), "image/jpeg")
    return expect(st, (400,), b)


@case("png_16bit_rgb")
def _():
    st, b = segment(rd("rgb16.png"), "image/png")
    return expect(st, (200,), b)


@case("png_16bit_gray")
def _():
    st, b = segment(rd("gray16.png"), "image/png")
    return expect(st, (200,), b)


@case("jpeg_cmyk")
def _():
    st, b = segment(rd("cmyk.jpg"), "image/jpeg")
    return expect(st, (415,), b)


@case("label_png_100000x100000")
def _():
    body, ct = multipart([("image", GOOD, b'; filename="a.jpg"\r\nContent-Type: image/jpeg'),
                          ("label", png(2, 2, claim=(100000, 100000)), b'; filename="l.png"')])
    st, b = segment(body, ct)
    return expect(st, (413,), b)


@case("multipart_5000_unknown_parts")
def _():
    body, ct = multipart([("f%d" % i, b"x", b"") for i in range(5000)])
    st, b = segment(body, ct)
    return expect(st, (400,), b) + ", %d bytes" % len(body)


@case("multipart_5000_option_parts")
def _():
    body, ct = multipart([("image", GOOD, b'; filename="a.jpg"')] + [("calibration", b"none", b"")] * 5000)
    st, b = segment(body, ct)
    return expect(st, (400,), b)


@case("multipart_20000_image_parts")
def _():
    body, ct = multipart([("image", b"\xff", b"")] * 20000)
    st, b = segment(body, ct)
    return expect(st, (400,), b) + ", %d bytes" % len(body)


@case("multipart_huge_part_header")
def _():
    body, ct = multipart([("image", GOOD, b'; filename="' + b"a" * 300000 + b'.jpg"')])
    st, b = segment(body, ct)
    return expect(st, (200, 400, 413), b)


@case("multipart_bad_boundary")
def _():
    st, b = segment(b'--"\r\n\r\n', 'multipart/form-data; boundary="')
    return expect(st, (400,), b)


@case("http_huge_header")
def _():
    req = (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300000 + b"\r\n\r\n")
    st, dt = raw(req)
    assert st in (None, 413, 431, 400), "status %s" % st
    return "status %s after %.2f s" % (st, dt)


@case("http_10000_headers")
def _():
    req = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10000)) + b"\r\n"
    st, dt = raw(req)
    assert st in (None, 413, 431, 400), "status %s" % st
    return "status %s" % st


@case("content_length_over_limit")
def _():
    st, dt = raw(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: 99999999999\r\n\r\n", timeout=10)
    assert st == 413, "status %s" % st
    return "413 from headers in %.2f s" % dt


@case("chunked_over_limit")
def _():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"100000\r\n" + b"\xff" * 0x100000 + b"\r\n"
    sent, st = 0, None
    try:
        for _ in range(40):  # up to 40 MiB; the limit in run.sh is 4 MiB
            s.sendall(chunk)
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    buf = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    except OSError:
        pass
    s.close()
    st = int(buf[9:12]) if buf.startswith(b"HTTP/1.") else None
    assert st in (413, None), "status %s" % st
    assert sent < 40, "the daemon accepted 40 MiB of a 4 MiB limit"
    return "status %s after %d MiB sent" % (st, sent)


@case("slow_client_headers")
def _():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT + 10)
    s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    # Stall: the connection timeout must close us; meanwhile others are served.
    st, _ = request("GET", "/v2/health/live", timeout=5)
    assert st == 200
    try:
        got = s.recv(100)
    except socket.timeout:
        got = None
    dt = time.time() - t0
    s.close()
    assert got is not None and dt < TIMEOUT + 5, "not closed after %.1f s" % dt
    return "closed after %.1f s (timeout %d s)" % (dt, TIMEOUT)


@case("slow_client_body_trickle")
def _():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT + 10)
    s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(GOOD))
    # Trickle one byte a second for a few bytes (each within the timeout), then stall.
    for i in range(3):
        s.sendall(GOOD[i:i + 1])
        time.sleep(1)
    t0 = time.time()
    try:
        got = s.recv(100)
    except (socket.timeout, ConnectionResetError):
        got = None
    dt = time.time() - t0
    s.close()
    assert got is not None and dt < TIMEOUT + 5, "not closed after %.1f s of silence" % dt
    return "3 bytes trickled, closed %.1f s after the stall" % dt


@case("idle_connections_below_limit")
def _():
    socks = [socket.create_connection(("127.0.0.1", PORT), timeout=5) for _ in range(MAXCONN - 4)]
    try:
        time.sleep(0.3)
        t0 = time.time()
        st, b = segment(GOOD, "image/jpeg", timeout=5)
        assert st == 200, "status %s with %d idle connections" % (st, len(socks))
        return "%d idle, a request served in %.2f s" % (len(socks), time.time() - t0)
    finally:
        for s in socks:
            s.close()


@case("idle_connections_over_limit")
def _():
    fd0 = nfds()
    socks = []
    for _ in range(MAXCONN * 3):
        try:
            socks.append(socket.create_connection(("127.0.0.1", PORT), timeout=2))
        except OSError:
            break
    try:
        time.sleep(0.5)
        held = nfds() - fd0
        assert held <= MAXCONN + 2, "daemon holds %d sockets, limit %d" % (held, MAXCONN)
        # Once idle ones time out, a new client is served.
        t0 = time.time()
        st, b = request("GET", "/v2/health/live", timeout=TIMEOUT * 3 + 10)
        assert st == 200
        dt = time.time() - t0
        return "%d opened, daemon held %d (limit %d), new request served after %.1f s" % (len(socks), held, MAXCONN, dt)
    finally:
        for s in socks:
            s.close()


@case("cancel_mid_upload_x50")
def _():
    big = GOOD * 1000  # ~790 KB
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(big))
        s.sendall(big[: 100000 + i * 1000])
        if i % 2:  # abortive close (RST) half of the time
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(0.5)
    return "50 uploads cut off after 100-150 KB"


@case("cancel_multipart_mid_part_x50")
def _():
    body, ct = multipart([("image", GOOD * 200, b'; filename="a.jpg"')])
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: " + ct.encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
        s.close()
    time.sleep(0.5)
    return "50 multipart uploads cut in the middle of a part"


@case("cancel_after_full_upload_x20")
def _():
    req = (b"POST /v1/segment?calibration=tbn HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(GOOD)) + GOOD
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        s.sendall(req)
        s.close()  # gone while queued or running
    time.sleep(1.0)
    return "20 requests abandoned after upload"


@case("garbage_request_lines")
def _():
    seen = set()
    for req in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                b"POST /v1/segment HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\nContent-Type: image/png\r\n\r\n12345",
                b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: image/png\r\n\r\nzz\r\n"):
        st, _ = raw(req, timeout=TIMEOUT + 8)
        seen.add(st)
    return "statuses %s" % sorted(seen, key=str)


@case("multipart_part_without_name")
def _():
    # Last on purpose: before the fix this crashed the daemon.
    # A part whose Content-Disposition has no name= reaches the field
    # iterator with key == NULL (libmicrohttpd): it must be a 400, not a
    # crash. Regression for the fuzz_http finding (tests/fuzz/regressions/http).
    body = b"--hb0undary\r\nContent-Disposition: form-data\r\n\r\nxyz\r\n--hb0undary--\r\n"
    st, b = segment(body, "multipart/form-data; boundary=hb0undary")
    return expect(st, (400,), b)


def main():
    only = os.environ.get("HOSTILE_CASES", "")  # comma list of case names to run
    for c in CASES:
        if not only or c.__name__ in only.split(","):
            c()
    ok = 0
    for name, passed, detail in results:
        print("%-34s %s  %s" % (name, "ok  " if passed else "FAIL", detail))
        ok += passed
    if os.path.exists("/proc/%d" % PID):
        print("hostile: %d cases, daemon RSS now %.1f MB, open fds %d" % (len(results), rss_kb() / 1024, nfds()))
    else:
        print("hostile: %d cases, THE DAEMON DIED" % len(results))
    print("%d passed, %d failed" % (ok, len(results) - ok))
    sys.exit(0 if ok == len(results) else 1)


main()
