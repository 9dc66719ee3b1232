"""Shared helpers of the hostile suites framing.py and floods.py (hostile.py
keeps its own): raw HTTP exchanges with parsed answers, a /healthz prober
that runs in its own process (so the attackers' threads cannot delay it),
an honest segmentation client, the daemon's resources, and the case runner.

The daemon is named by the environment that run.sh sets: H_PORT, H_PID and
H_ADMIN_PORT (the admin listener; empty when the daemon has none, then the
prober asks the main port). Attackers connect from 127.0.0.1 (or other
127.0.x.y addresses); the honest client and the main-port prober connect
from 127.0.0.2, so a per-address connection cap on the attackers leaves them
room, as it would for a real client on another host. Standard library only.
"""
import http.client, json, os, socket, subprocess, sys, threading, time

PORT = int(os.environ["H_PORT"])
PID = int(os.environ["H_PID"])
ADMIN_PORT = int(os.environ["H_ADMIN_PORT"]) if os.environ.get("H_ADMIN_PORT") else None
# Latency bounds are multiplied by this (ASan/UBSan builds are slower).
SLOW = float(os.environ.get("HOSTILE_SLOWDOWN", "1"))
HEALTH_P99_S = 0.100 * SLOW
HONEST = "127.0.0.2"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "tests", "data", "images", "grad.jpg"), "rb") as f:
    GOOD = f.read()
SEG = b"/v1/segment?calibration=none&outputs=none"


# ---- raw exchanges --------------------------------------------------------------

def parse_responses(buf):
    """Splits buf into HTTP responses: [(status, headers dict, body)]; 1xx
    interim responses are skipped, as a client must (RFC 9110 15.2)."""
    out = []
    while buf.startswith(b"HTTP/1."):
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            break
        head = buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0][9:12])
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        body = buf[end + 4:end + 4 + n]
        buf = buf[end + 4 + n:]
        if 100 <= status < 200:
            continue
        out.append((status, hdrs, body))
    return out


def connect(src=None, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", PORT))
    return s


def exchange(data, timeout=10, shut_wr=False, src=None, want=1):
    """Sends data (then a half-close if shut_wr) and reads until EOF, until
    `want` complete responses arrived, or timeout. Returns (responses,
    seconds until the last wanted response or EOF, closed_by_server)."""
    s = connect(src, timeout)
    t0 = time.time()
    buf, closed = b"", False
    try:
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while len(parse_responses(buf)) < want:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                closed = True
                break
            buf += b
        return parse_responses(buf), time.time() - t0, closed
    finally:
        s.close()


def status_of(resps):
    return resps[0][0] if resps else None


def error_code(resp):
    try:
        return json.loads(resp[2])["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# ---- the health prober -------------------------------------------------------------

PROBE_CODE = r"""
import http.client, sys, time
port, src, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while True:
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(src, 0))
        c.request("GET", path)
        st = c.getresponse().status
        c.close()
    except Exception:
        st = 0
    print("%.4f %.5f %d" % (t0, time.time() - t0, st), flush=True)
    time.sleep(0.02)
"""


class Probe:
    """GET /healthz every 20 ms from another process while the block runs;
    .stats() gives (n, p50, p99, max, failures) in seconds."""

    def __init__(self, port=None, src=HONEST, path="/healthz"):
        self.port = port or ADMIN_PORT or PORT
        self.src, self.path = src, path

    def __enter__(self):
        self.p = subprocess.Popen([sys.executable, "-c", PROBE_CODE, str(self.port), self.src, self.path],
                                  stdout=subprocess.PIPE, text=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        t0 = time.time()  # the first probe is answered before the attack starts
        while not self.lines and time.time() - t0 < 5:
            time.sleep(0.01)
        return self

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.split())

    def __exit__(self, *exc):
        t0 = time.time()  # short cases: still 3 probes, the last ones just after
        while len(self.lines) < 3 and time.time() - t0 < 5:
            time.sleep(0.01)
        self.p.kill()
        self.p.wait()
        self.t.join(2)
        return False

    def stats(self):
        lat = sorted(float(l[1]) for l in self.lines)
        fails = sum(1 for l in self.lines if l[2] != "200")
        if not lat:
            return 0, 9.9, 9.9, 9.9, 0
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        return len(lat), p(0.5), p(0.99), lat[-1], fails

    def summary(self):
        """The stats as text, asserting nothing (the main port: its accept
        queue is shared with the attackers, see floods.py)."""
        n, p50, p99, mx, fails = self.stats()
        where = "admin" if self.port == ADMIN_PORT else "main"
        return "healthz[%s] p50 %.1f p99 %.1f max %.1f ms, %d failed (n=%d)" % (
            where, p50 * 1e3, p99 * 1e3, mx * 1e3, fails, n)

    def check(self):
        n, p50, p99, mx, fails = self.stats()
        where = "admin" if self.port == ADMIN_PORT else "main"
        assert n >= 3, "the prober made only %d probes" % n
        assert fails == 0, "/healthz (%s port) failed %d of %d times" % (where, fails, n)
        assert p99 <= HEALTH_P99_S, "/healthz (%s port) p99 %.0f ms > %.0f ms (max %.0f ms, n=%d)" % (
            where, p99 * 1e3, HEALTH_P99_S * 1e3, mx * 1e3, n)
        return "healthz[%s] p50 %.1f p99 %.1f max %.1f ms (n=%d)" % (where, p50 * 1e3, p99 * 1e3, mx * 1e3, n)


# ---- an honest client ------------------------------------------------------------------

def honest_segment(timeout=30):
    """A good segmentation request from the honest address: (status, seconds)."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout, source_address=(HONEST, 0))
        c.request("POST", SEG.decode(), body=GOOD, headers={"Content-Type": "image/jpeg"})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.time() - t0
    except Exception as e:  # noqa: BLE001 - any failure is a failed honest request
        return type(e).__name__, time.time() - t0


NORMAL_S = [None]


def normal_time():
    """Median time of an honest request on the idle daemon (measured once)."""
    if NORMAL_S[0] is None:
        ts = []
        for _ in range(5):
            st, dt = honest_segment()
            assert st == 200, "honest request on the idle daemon: %s" % st
            ts.append(dt)
        NORMAL_S[0] = sorted(ts)[2]
    return NORMAL_S[0]


def check_honest():
    """An honest request must be served within its normal time plus one
    queue slot (one more request's time) plus 300 ms of scheduling noise
    (the tiny model's normal time is a few ms; on a loaded 2-core CI box
    one request in a few dozen waited 120 ms for the CPU)."""
    bound = (2 * normal_time() + 0.3) * SLOW
    st, dt = honest_segment(timeout=bound + 5)
    assert st == 200, "honest request got %s after %.2f s" % (st, dt)
    assert dt <= bound, "honest request took %.0f ms > %.0f ms" % (dt * 1e3, bound * 1e3)
    return "honest 200 in %.0f ms (bound %.0f)" % (dt * 1e3, bound * 1e3)


# ---- the daemon's resources --------------------------------------------------------------

def rss_kb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds():
    return len(os.listdir("/proc/%d/fd" % PID))


# HOSTILE_RSS_SLACK_MB: ASan's quarantine keeps freed memory resident.
RSS_SLACK_MB = int(os.environ.get("HOSTILE_RSS_SLACK_MB", "16"))


def wait_baseline(fd0, rss0, within=2.0, rss_slack_mb=None):
    """After the attackers closed: open fds back to fd0 and RSS within
    rss_slack_mb of rss0, both within `within` seconds. Returns the time."""
    rss_slack_mb = RSS_SLACK_MB if rss_slack_mb is None else rss_slack_mb
    t0 = time.time()
    while True:
        fds, rss = nfds(), rss_kb()
        if fds <= fd0 and rss - rss0 <= rss_slack_mb * 1024:
            return time.time() - t0
        if time.time() - t0 > within * SLOW:
            raise AssertionError("%.1f s after the attackers closed: %d fds (baseline %d), RSS %+.1f MB"
                                 % (time.time() - t0, fds, fd0, (rss - rss0) / 1024))
        time.sleep(0.05)


def metric(name):
    """Sum of every sample of a metric family (labels included in name
    match by prefix) from the admin port if there is one, else the main one."""
    c = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT or PORT, timeout=5, source_address=(HONEST, 0))
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))


# ---- cases ----------------------------------------------------------------------------------

CASES, RESULTS = [], []


def case(fn):
    CASES.append(fn)
    return fn


def run_all(title):
    only = [c for c in os.environ.get("HOSTILE_CASES", "").split(",") if c]
    for fn in CASES:
        if only and fn.__name__ not in only:
            continue
        t0 = time.time()
        try:
            detail = fn() or ""
            # Whatever the case did, the daemon still serves a good request.
            st, _ = honest_segment()
            assert st == 200, "afterwards a good image got %s" % st
            RESULTS.append((fn.__name__, True, "%s; %.1f s" % (detail, time.time() - t0)))
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            RESULTS.append((fn.__name__, False, "%s: %s" % (type(e).__name__, e)))
        print("%-34s %s  %s" % (RESULTS[-1][0], "ok  " if RESULTS[-1][1] else "FAIL", RESULTS[-1][2]), flush=True)
    ok = sum(1 for r in RESULTS if r[1])
    alive = os.path.exists("/proc/%d" % PID)
    print("%s: %d cases%s" % (title, len(RESULTS), "" if alive else ", THE DAEMON DIED"))
    print("%d passed, %d failed" % (ok, len(RESULTS) - ok))
    sys.exit(0 if ok == len(RESULTS) and alive else 1)
