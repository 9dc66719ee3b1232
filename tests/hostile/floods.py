#!/usr/bin/env python3
"""Connection floods (issue 16 items 1 and 2): bursts of dead uploads,
stalled and trickled requests, more connections than one address may hold.

/healthz is asserted on the admin listener (where deploy/ points probes);
the main port's figures are printed: its connections come from the same
kernel accept queue as the attackers', taken one per turn of
libmicrohttpd's loop, so a connect burst delays them (measured p99 9-220 ms
during the stalled floods, up to ~1 s during the 260-upload burst).

For each flood: /healthz answers within 100 ms (p99) while it runs, an
honest segmentation request from another address is served within its
normal time plus one queue slot, and once the attackers close, the daemon's
open fds and RSS are back to their baseline within 2 s. Run by run.sh
against a daemon with the default connection limits (max_connections 256,
connection_timeout_s 30) except header_timeout_s = 2, to keep it short.
Usage: H_PORT=.. H_PID=.. [H_ADMIN_PORT=..] floods.py
"""
import os, socket, struct, threading, time

from hlib import (GOOD, PORT, SLOW, Probe, case, check_honest, honest_segment, metric, nfds, normal_time,
                  parse_responses, rss_kb, run_all, wait_baseline)

HEADER_TIMEOUT_S = float(os.environ.get("H_HEADER_TIMEOUT_S", "2"))
PER_IP = int(os.environ.get("H_PER_IP", "64"))
HDR = b"POST /v1/segment?calibration=none&outputs=none HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"


def open_many(n, first_bytes, srcs=("127.0.0.1",), threads=32):
    """Opens n connections (round-robin over the source addresses), each
    sending first_bytes(i). Returns the sockets (None where it failed)."""
    socks = [None] * n

    def work(k):
        for i in range(k, n, threads):
            try:
                s = socket.socket()
                s.settimeout(10)
                s.bind((srcs[i % len(srcs)], 0))
                s.connect(("127.0.0.1", PORT))
                data = first_bytes(i)
                if data:
                    s.sendall(data)
                socks[i] = s
            except OSError:
                pass

    ths = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return socks


def close_all(socks, rst=False):
    for s in socks:
        if s is None:
            continue
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def answer_of(s, timeout):
    """What the daemon did to a held attacker connection within timeout:
    'status NNN', 'closed' or 'open'."""
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            buf += b
    except socket.timeout:
        return "open"
    except OSError:
        pass
    r = parse_responses(buf)
    return "status %d" % r[0][0] if r else "closed"


def tally(socks, timeout):
    out = {}
    for s in socks:
        if s is not None:
            a = answer_of(s, timeout)
            out[a] = out.get(a, 0) + 1
    return out


def metric_or_none(name):
    try:
        return metric(name)
    except Exception:  # noqa: BLE001 - older daemons lack the family
        return None


# After a burst, libmicrohttpd 0.9.75 takes the waiting connections from the
# kernel's accept queue one per turn of its loop, the honest one behind the
# dead ones; measured 0.3-1.5 s on this loaded 2-core machine (before: 30 s).
BURST_HONEST_S = 3.0


@case
def half_upload_burst_260():
    """260 clients from 10 addresses send the headers and half of a 1 MB
    body, then all close at once (the burst of issue 16)."""
    normal_time()
    fd0, rss0 = nfds(), rss_kb()
    L = 1 << 20
    srcs = tuple("127.0.1.%d" % i for i in range(1, 11))
    with Probe() as pr, Probe(port=PORT) as pm:
        socks = open_many(260, lambda i: HDR + b"Content-Length: %d\r\n\r\n" % L + b"\xff" * (L // 2), srcs)
        close_all(socks)
        st, dt = honest_segment(timeout=10)
        back = wait_baseline(fd0, rss0)
        time.sleep(0.3)
    assert st == 200 and dt <= BURST_HONEST_S * SLOW, "honest request after the burst: %s in %.2f s" % (st, dt)
    opened = sum(s is not None for s in socks)
    n, p50, p99, mx, fails = pm.stats()
    return ("%d sent half a body and closed; honest 200 %.0f ms after; fds/RSS at baseline %.2f s after; %s; "
            "main port p50 %.0f p99 %.0f ms, %d failed" % (opened, dt * 1e3, back, pr.check(), p50 * 1e3, p99 * 1e3, fails))


def stalled(first, label, counter, expect_close_by):
    """300 connections from one address send `first` and stall."""
    normal_time()
    fd0, rss0 = nfds(), rss_kb()
    c0 = metric_or_none(counter) if counter else None
    with Probe() as pr, Probe(port=PORT) as pm:
        socks = open_many(300, lambda i: first)
        held = nfds() - fd0
        honest = check_honest()
        fate = tally([s for s in socks if s is not None][:PER_IP + 8], expect_close_by)
        close_all(socks)
        back = wait_baseline(fd0, rss0)
    c1 = metric_or_none(counter) if counter else None
    assert fate.get("open", 0) == 0, "%s: %d connections still open after %.1f s (%s)" % (
        label, fate.get("open", 0), expect_close_by, fate)
    if counter:
        assert c1 is not None and c1 - (c0 or 0) >= 1, "%s did not count (%s -> %s)" % (counter, c0, c1)
    return "300 %s, daemon held %d; %s; attackers got %s; baseline %.2f s after; %s; %s" % (
        label, held, honest, fate, back, pr.check(), pm.summary())


@case
def stalled_request_lines_300():
    return stalled(b"POST /v1/segment HT", "half request lines", 'instcald_connections_dropped_total{reason="header_timeout"}',
                   HEADER_TIMEOUT_S + 1.5)


@case
def stalled_headers_300():
    return stalled(HDR, "unfinished headers", 'instcald_connections_dropped_total{reason="header_timeout"}',
                   HEADER_TIMEOUT_S + 1.5)


@case
def stalled_bodies_300():
    # Headers complete, a Content-Length, then nothing: the body-rate rule
    # (after the body's first second, each 2 s must bring 2 x min_body_rate).
    return stalled(HDR + b"Content-Length: 100000\r\n\r\n" + b"\xff" * 100, "stalled bodies",
                   'instcald_connections_dropped_total{reason="slow_body"}', 3.5)


@case
def slowloris_header_trickle_50():
    """Headers trickled one line per 0.5 s: each line resets the idle
    timeout, only a header deadline ends them."""
    normal_time()
    fd0, rss0 = nfds(), rss_kb()
    socks = open_many(50, lambda i: b"GET /healthz HTTP/1.1\r\n")
    stop = threading.Event()

    def trickle():
        k = 0
        while not stop.is_set():
            for s in socks:
                if s is not None:
                    try:
                        s.sendall(b"X-Slow-%d: 1\r\n" % k)
                    except OSError:
                        pass
            k += 1
            stop.wait(0.5)

    with Probe() as pr, Probe(port=PORT) as pm:
        th = threading.Thread(target=trickle, daemon=True)
        th.start()
        honest = check_honest()
        t0 = time.time()
        fate = tally(socks, HEADER_TIMEOUT_S + 2)
        dt = time.time() - t0
        stop.set()
        th.join()
        close_all(socks)
        back = wait_baseline(fd0, rss0)
    assert fate.get("open", 0) == 0, "trickled headers still open after %.1f s: %s" % (dt, fate)
    return "50 trickling headers; %s; attackers got %s; baseline %.2f s after; %s; %s" % (
        honest, fate, back, pr.check(), pm.summary())


@case
def slow_body_trickle_50():
    """A body trickled at 40 bytes/s (each send resets the idle timeout)."""
    normal_time()
    fd0, rss0 = nfds(), rss_kb()
    c0 = metric_or_none('instcald_connections_dropped_total{reason="slow_body"}')
    socks = open_many(50, lambda i: HDR + b"Content-Length: 100000\r\n\r\n")
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for s in socks:
                if s is not None:
                    try:
                        s.sendall(b"\xff" * 10)
                    except OSError:
                        pass
            stop.wait(0.25)

    with Probe() as pr, Probe(port=PORT) as pm:
        th = threading.Thread(target=trickle, daemon=True)
        th.start()
        honest = check_honest()
        fate = tally(socks, 4.5)
        stop.set()
        th.join()
        close_all(socks)
        back = wait_baseline(fd0, rss0)
    c1 = metric_or_none('instcald_connections_dropped_total{reason="slow_body"}')
    assert fate.get("open", 0) == 0, "trickled bodies still open: %s" % fate
    assert c1 is not None and c1 - (c0 or 0) >= 40, "slow_body counted %s -> %s" % (c0, c1)
    return "50 bodies at 40 B/s; %s; attackers got %s; baseline %.2f s after; %s; %s" % (
        honest, fate, back, pr.check(), pm.summary())


@case
def per_address_cap():
    """More idle connections from one address than it may hold."""
    normal_time()
    fd0, rss0 = nfds(), rss_kb()
    c0 = metric_or_none('instcald_connections_dropped_total{reason="per_ip_limit"}')
    with Probe() as pr, Probe(port=PORT) as pm:
        socks = open_many(PER_IP + 40, lambda i: b"")
        time.sleep(0.3)
        # the two probes' own connections come and go every 20 ms (each once
        # counted 1 over the cap): the least of a few samples leaves them out
        samples = []
        for _ in range(5):
            samples.append(nfds())
            time.sleep(0.01)
        held = min(samples) - fd0
        honest = check_honest()
        close_all(socks)
        back = wait_baseline(fd0, rss0)
    c1 = metric_or_none('instcald_connections_dropped_total{reason="per_ip_limit"}')
    assert held <= PER_IP + 1, "one address holds %d connections (cap %d)" % (held, PER_IP)
    assert c1 is not None and c1 - (c0 or 0) >= 39, "per_ip_limit counted %s -> %s" % (c0, c1)
    return "%d from one address, daemon held %d; %s; baseline %.2f s after; %s; %s" % (
        PER_IP + 40, held, honest, back, pr.check(), pm.summary())


@case
def accepted_requests_not_lost():
    """Honest requests sent during a burst of dead uploads all get 200."""
    L = 1 << 20
    srcs = tuple("127.0.2.%d" % i for i in range(1, 11))
    res = []

    def honest_loop():
        for _ in range(6):
            res.append(honest_segment(timeout=20))

    th = threading.Thread(target=honest_loop)
    th.start()
    for _ in range(3):
        close_all(open_many(100, lambda i: HDR + b"Content-Length: %d\r\n\r\n" % L + b"\xff" * (L // 4), srcs))
    th.join()
    bad = [r for r in res if r[0] != 200 or r[1] > BURST_HONEST_S * SLOW]
    assert not bad, "honest requests lost or late: %s" % bad
    return "%d honest requests during 3 bursts, all 200 (slowest %.0f ms)" % (len(res), max(r[1] for r in res) * 1e3)


if __name__ == "__main__":
    run_all("floods")
