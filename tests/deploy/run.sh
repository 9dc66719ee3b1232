#!/usr/bin/env bash
# Deployment checks: the systemd unit, the Kubernetes manifests, the nginx
# config, the monitoring kit (alert rules, Grafana dashboard), and a loopback scale-out test (3 instcald behind Debian's nginx, one
# SIGKILLed mid-run). Installs what is missing: nginx (Debian), the npm
# packages of tests/deploy/package.json (kubernetes-models bundles the
# Kubernetes OpenAPI schemas, so validation is offline).
# Usage: tests/deploy/run.sh [path/to/instcald] [REQUESTS]     (~15 s with 3000)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$(realpath "${1:-$ROOT/build/server/instcald}")
N=${2:-3000}
MODEL=$ROOT/tests/golden/fixtures/model_tiny_weights.safetensors
T=$(mktemp -d)
PIDS=()
NGINX_PID=
cleanup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT
pass=0 fail=0
result() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "ok   $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
need nginx nginx-light
need systemd-analyze systemd
need node nodejs
need promtool prometheus

# 1. systemd unit: verify a copy whose ExecStart is the binary under test
# (verify checks that the executable exists).
sed "s#/usr/bin/instcald#$BIN#" "$ROOT/deploy/instcald.service" >"$T/instcald.service"
if out=$(systemd-analyze verify "$T/instcald.service" 2>&1) && [ -z "$out" ]; then result 0 "systemd-analyze verify deploy/instcald.service"
else echo "$out"; result 1 "systemd-analyze verify deploy/instcald.service"; fi
for key in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes MemoryMax= Restart=on-failure TimeoutStopSec=; do
    grep -q "^$key" "$ROOT/deploy/instcald.service"; result $? "unit sets $key"
done

# 2. Kubernetes manifests, offline schema + project rules.
if [ ! -d "$ROOT/tests/deploy/node_modules/kubernetes-models" ]; then
    (cd "$ROOT/tests/deploy" && npm install --no-audit --no-fund --ignore-scripts --silent >/dev/null 2>&1)
fi
node "$ROOT/tests/deploy/k8s_validate.mjs" "$ROOT/deploy/k8s" >"$T/k8s.out" 2>&1; rc=$?
sed 's/^/     k8s: /' "$T/k8s.out" | grep -v ' passed, '
result $rc "deploy/k8s: schema and probe/drain rules"

# 3. Container file: structure (no engine runs here).
CF=$ROOT/deploy/Containerfile
{ grep -q '^FROM debian:12 AS build' "$CF" && grep -q '^FROM debian:12-slim' "$CF" && grep -q '^USER 10001' "$CF" &&
 grep -q '^HEALTHCHECK' "$CF" &&
  grep -q 'CMD curl .*/v2/health/live' "$CF"; }; result $? "Containerfile: Debian 12 multi-stage, non-root, HEALTHCHECK"

# 4. nginx: the deploy config with loopback ports, inside a minimal main config.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_instance() {  # sets INST=PID:PORT; the daemon is a child of this shell
    "$BIN" --port 0 --backend pdl --model "$MODEL" --workers 1 --queue_length 8 --tent off --static_dir "" \
        --log_level info >"$T/inst$1.log" 2>&1 &
    local pid=$! port=
    PIDS+=("$pid")
    for _ in $(seq 200); do
        port=$(grep -o 'event=listening.* port=[0-9]*' "$T/inst$1.log" | grep -o 'port=[0-9]*' | cut -d= -f2 || true)
        [ -n "$port" ] && break
        sleep 0.05
    done
    INST="$pid:$port"
}
start_instance 1; I1=$INST; start_instance 2; I2=$INST; start_instance 3; I3=$INST
P1=${I1##*:} P2=${I2##*:} P3=${I3##*:} NP=$(free_port)
sed -e "s/127.0.0.1:8081/127.0.0.1:$P1/; s/127.0.0.1:8082/127.0.0.1:$P2/; s/127.0.0.1:8083/127.0.0.1:$P3/" \
    -e "s/listen 80;/listen 127.0.0.1:$NP;/; /listen \[::\]:80;/d" "$ROOT/deploy/nginx.conf" >"$T/instcald.conf"
mkdir -p "$T/ngx"
cat >"$T/nginx.conf" <<NGX
user root;
worker_processes 1;
daemon off;
pid $T/nginx.pid;
error_log $T/nginx_error.log warn;
events { worker_connections 256; }
http {
    log_format up '\$request \$status up=\$upstream_addr ust=\$upstream_status';
    access_log $T/access.log up;
    client_body_temp_path $T/ngx/body;
    proxy_temp_path $T/ngx/proxy;
    fastcgi_temp_path $T/ngx/fcgi;
    uwsgi_temp_path $T/ngx/uwsgi;
    scgi_temp_path $T/ngx/scgi;
    include $T/instcald.conf;
}
NGX
nginx -t -q -p "$T" -c "$T/nginx.conf" 2>"$T/nginx_t.err"; rc=$?
[ $rc = 0 ] || cat "$T/nginx_t.err"
result $rc "nginx -t with deploy/nginx.conf"

# 5. Monitoring kit: the alert rules lint clean and their unit tests pass
# (each alert fires on a synthetic breach, not on a healthy instance); every
# metric the rules and the Grafana dashboard query is one a live daemon
# exports (instance 2, before any traffic: families are declared up front).
out=$(promtool check rules "$ROOT/deploy/prometheus/instcald.rules.yml" 2>&1); rc=$?
[ $rc = 0 ] || echo "$out"
result $rc "promtool check rules deploy/prometheus/instcald.rules.yml"
out=$(cd "$ROOT/deploy/prometheus" && promtool test rules instcald.rules.test.yml 2>&1); rc=$?
[ $rc = 0 ] || echo "$out"
result $rc "promtool test rules: every alert fires on its breach only"
curl -s "http://127.0.0.1:$P2/metrics" >"$T/metrics.txt"
python3 "$ROOT/tests/deploy/check_dashboard.py" "$ROOT/deploy/grafana/instcald.json" \
    "$ROOT/deploy/prometheus/instcald.rules.yml" "$T/metrics.txt" 2>&1 | sed 's/^/     /'; rc=${PIPESTATUS[0]}
result "$rc" "Grafana dashboard and rules query only exported metrics"

# 6. Scale-out on loopback.
nginx -p "$T" -c "$T/nginx.conf" 2>>"$T/nginx_error.log" &
NGINX_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NP/v2/health/live" && break; sleep 0.05; done
python3 "$ROOT/tests/deploy/scaleout.py" "$NP" "$T/access.log" "$I1" "$P2" "$P3" --requests "$N" --clients 6 \
    2>&1 | sed 's/^/     /'; rc=${PIPESTATUS[0]}
result "$rc" "scale-out: 3 instances behind nginx, one SIGKILLed mid-run, no client error"
wait "${PIDS[0]}" 2>/dev/null || true
# Survivors drain and exit 0 on SIGTERM.
for p in "${PIDS[@]:1}"; do kill -TERM "$p"; done
st=0
for p in "${PIDS[@]:1}"; do wait "$p" || st=$?; done
result $st "survivors exit 0 on SIGTERM"
PIDS=()
kill -QUIT "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
echo "deploy: $pass passed, $fail failed"
[ $fail = 0 ]
