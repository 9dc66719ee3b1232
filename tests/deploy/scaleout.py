#!/usr/bin/env python3
"""Loopback scale-out test: a bounded load through nginx onto several instcald
instances, one instance SIGKILLed mid-run.

Checks: every client request succeeds (nginx's retries, proxy_next_upstream
with non_idempotent, absorb the killed instance's in-flight and refused
requests); the survivors' /metrics plus the killed instance's last scrape
account for the load; nginx's log shows the retries. Prints 'N passed, N failed'.

Usage: scaleout.py NGINX_PORT ACCESS_LOG KILL_PID:PORT SURVIVOR_PORT... [--requests N --clients C]
"""
import argparse, http.client, os, signal, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("nginx_port", type=int)
ap.add_argument("access_log")
ap.add_argument("victim")  # PID:PORT
ap.add_argument("survivors", nargs="+", type=int)
ap.add_argument("--requests", type=int, default=600)
ap.add_argument("--clients", type=int, default=6)
a = ap.parse_args()
victim_pid, victim_port = map(int, a.victim.split(":"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "tests", "data", "images", "grad.jpg"), "rb") as f:
    JPG = f.read()


def seg_200(port):
    """instcald_http_requests_total{route="segment",status="200"} summed over calibrations."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith('instcald_http_requests_total{route="segment",status="200"'))


base = {p: seg_200(p) for p in a.survivors + [victim_port]}
lock = threading.Lock()
next_i = [0]
statuses, errors = {}, []
victim_last = [None]
killed_at = [None]
KILL_AT = a.requests // 3


def client(seed):
    conn = http.client.HTTPConnection("127.0.0.1", a.nginx_port, timeout=60)
    while True:
        with lock:
            if next_i[0] >= a.requests:
                break
            next_i[0] += 1
            i = next_i[0]
            do_kill = i == KILL_AT
        if do_kill:
            victim_last[0] = seg_200(victim_port) - base[victim_port]
            os.kill(victim_pid, signal.SIGKILL)
            killed_at[0] = time.time()
        try:
            conn.request("POST", "/v1/segment?calibration=none&outputs=semantic", body=JPG,
                         headers={"Content-Type": "image/jpeg"})
            r = conn.getresponse()
            r.read()
            st = r.status
        except Exception as e:  # noqa: BLE001
            st = "error"
            errors.append("%s: %s" % (type(e).__name__, e))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", a.nginx_port, timeout=60)
        with lock:
            statuses[st] = statuses.get(st, 0) + 1
    conn.close()


t0 = time.time()
ths = [threading.Thread(target=client, args=(s,)) for s in range(a.clients)]
for t in ths:
    t.start()
for t in ths:
    t.join()
dt = time.time() - t0
time.sleep(0.3)
surv = {p: seg_200(p) - base[p] for p in a.survivors}
ok200 = statuses.get(200, 0)
# nginx access log: "$status $upstream_addr $upstream_status"; a retried
# request lists several upstreams separated by ", ".
with open(a.access_log) as f:
    lines = [l for l in f if "/v1/segment" in l]
retried = sum(1 for l in lines if l.rstrip().split(" up=")[-1].count(",") > 0)
print("scale-out: %d requests, %d clients, %.1f s (%.0f/s); victim SIGKILLed after request %d"
      % (a.requests, a.clients, dt, a.requests / dt, KILL_AT))
print("client statuses: %s" % statuses)
print("victim served %d before its last scrape; survivors served %s (sum %d)"
      % (victim_last[0] or 0, {p: int(v) for p, v in surv.items()}, sum(surv.values())))
print("nginx: %d segment requests logged, %d needed more than one upstream" % (len(lines), retried))
accounted = sum(surv.values()) + (victim_last[0] or 0)
checks = [
    ("every client request succeeded", ok200 == a.requests and not errors, "statuses %s, errors %s" % (statuses, errors[:3])),
    ("victim was killed mid-run", killed_at[0] is not None, ""),
    ("survivors took load after the kill", all(v > 0 for v in surv.values()), str(surv)),
    # The victim may have answered up to one request per client between its
    # last scrape and the SIGKILL; nothing else is unaccounted for.
    ("metrics account for the load", accounted <= ok200 <= accounted + a.clients,
     "survivors %d + victim %d vs %d answered" % (sum(surv.values()), victim_last[0] or 0, ok200)),
    ("nginx logged every request", len(lines) == a.requests, "%d lines" % len(lines)),
]
ok = 0
for name, passed, detail in checks:
    print("%-40s %s  %s" % (name, "ok" if passed else "FAIL", "" if passed else detail))
    ok += bool(passed)
print("%d passed, %d failed" % (ok, len(checks) - ok))
sys.exit(0 if ok == len(checks) else 1)
