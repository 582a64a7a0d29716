#!/usr/bin/env bash
# End-to-end benchmark of egress-guard against nginx as a forward proxy.
#
#   bash benches/e2e/run.sh           # full run: ~1.5 minutes of load, prints the table
#   bash benches/e2e/run.sh --smoke   # CI: correctness checks and 1 s runs, no table
#   bash benches/e2e/run.sh --callgrind  # instructions per request (valgrind), no wrk load
#
# One local HTTPS upstream (nginx, keep-alive, a throwaway CA made here), then,
# one after the other on that upstream:
#   (a) egress-guard: key injection, allow-list filtering of the WooCommerce
#       order (benches/fixtures/order.json), audit line to a log file;
#   (a') egress-guard, header only: the same destination's route without a
#       body policy (key injection and audit line), the stack without the job;
#   (a'') when redis-server is installed, (a) with its rate limit fleet-wide on
#       a local Redis (one GCRA script call per request);
#   (b) nginx as a forward proxy injecting the key only (one worker);
#   (c) wrk straight to the upstream.
# Load is wrk with post.lua (absolute-form request line through the proxies).
# Proxies run on core 0, wrk and the upstream on core 1. Everything listens on
# 127.0.0.1 only, lives in a temp dir (never /etc/nginx, never the system
# nginx service) and is stopped on exit, failure included.
# Environment, for working on this script: E2E_DURATION=2s (shorter runs),
# E2E_KEEP_TMP=1 (keep the temp dir after a passing --smoke; a full run and a
# failing run always keep it, results.md and logs included).
# Needs: nginx, wrk, openssl, curl, python3, taskset, cargo. As root with
# apt-get, missing Debian packages are installed (apt-get update first).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ORDER="$REPO/benches/fixtures/order.json"
COMMAND="bash benches/e2e/run.sh${*:+ $*}"

SMOKE=0
CALLGRIND=0
for arg in "$@"; do
    case "$arg" in
        --smoke) SMOKE=1 ;;
        --callgrind) CALLGRIND=1 ;;
        -h | --help)
            awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
            exit 0
            ;;
        *)
            echo "run.sh: unknown argument: $arg (use --smoke, --callgrind or nothing)" >&2
            exit 64
            ;;
    esac
done

if [ "$SMOKE" = 1 ]; then
    DURATION=1s WARMUP=""
else
    DURATION=10s WARMUP=2s
fi
# For working on this script only (the published numbers use the defaults).
if [ -n "${E2E_DURATION:-}" ]; then
    DURATION=$E2E_DURATION
    COMMAND="E2E_DURATION=$E2E_DURATION $COMMAND"
fi
HOST=api.shipper.example
ABS_URL="http://$HOST/v1/shipments"
HDR_URL="http://$HOST/v1/labels" # the route without a body policy
LEAK="jeanne.dupont@example.org" # billing.email: must never reach the shipper

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- processes
# Everything this script starts is a direct child of this shell (so its pid
# cannot be reused before we reap it), stopped in reverse order on exit; nginx
# masters stop their own workers, and a worker left behind by a master that had
# to be killed is killed by its pid.
STARTED=()
NGINX_MASTERS=()
WRK_PID=""
TMP=""
KEEP_TMP=1
stop_child() { # pid: TERM, bounded wait, KILL
    local pid=$1 deadline=$((SECONDS + 10))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] \
        && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# Stop one started process now (a proxy whose runs are done, so that it does
# not sit on core 0 during the next one) and forget its pid.
stop_now() { # pid -> sets STOP_RC
    local pid=$1 kept=() p
    kill -TERM "$pid" 2>/dev/null || true
    STOP_RC=0
    wait "$pid" || STOP_RC=$?
    for p in "${STARTED[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    STARTED=("${kept[@]}")
}
cleanup() {
    local rc=$? i pid w workers
    trap - EXIT INT TERM
    [ -n "$WRK_PID" ] && stop_child "$WRK_PID"
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        pid=${STARTED[i]}
        workers=""
        if [[ " ${NGINX_MASTERS[*]} " == *" $pid "* ]]; then workers=$(children "$pid"); fi
        stop_child "$pid"
        for w in $workers; do
            # Still an nginx process (orphaned, not yet gone)? Then it is ours.
            if [ "$(cat "/proc/$w/comm" 2>/dev/null)" = nginx ]; then kill -KILL "$w" 2>/dev/null || true; fi
        done
    done
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ "$rc" = 0 ] && [ "$KEEP_TMP" = 0 ]; then
            rm -rf "$TMP"
        else
            echo "run.sh: logs, configs and results are in $TMP" >&2
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "run.sh: FAIL: $*" >&2
    exit 1
}

# Poll a loopback port until it accepts, with a deadline; fail early if the
# process that should listen there has died.
wait_port() {
    local port=$1 pid=$2 what=$3 log=$4 deadline=$((SECONDS + 20))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            fail "$what exited before listening on 127.0.0.1:$port"
        fi
        [ "$SECONDS" -lt "$deadline" ] || fail "$what not listening on 127.0.0.1:$port after 20 s"
        sleep 0.05
    done
}

# Children of a pid (nginx workers of a master).
children() { cat "/proc/$1/task/$1/children" 2>/dev/null || true; }
# nginx may listen before it has forked its workers: poll for them.
wait_workers() { # master-pid what
    local deadline=$((SECONDS + 20)) w
    while w=$(children "$1") && [ -z "${w// /}" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$2 has no worker after 20 s"
        sleep 0.05
    done
    echo "$w"
}

# utime+stime in clock ticks, summed over the given pids (each /proc/<pid>/stat
# already covers all threads of that process).
cpu_ticks() {
    local pid total=0 t
    for pid in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
        total=$((total + t))
    done
    echo "$total"
}

vm_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- tools
missing=()
for tool in nginx wrk openssl curl python3 taskset getconf; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        pkgs=()
        for tool in "${missing[@]}"; do
            case "$tool" in
                taskset) pkgs+=(util-linux) ;;
                getconf) pkgs+=(libc-bin) ;;
                *) pkgs+=("$tool") ;;
            esac
        done
        log "installing ${pkgs[*]} (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${pkgs[@]}" >/dev/null
    else
        fail "missing ${missing[*]}: install them (Debian: apt-get install -y nginx wrk openssl curl python3), or run as root"
    fi
fi

# Core 0 for the proxy, core 1 for wrk and the upstream.
if taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null; then
    PROXY_CPU=(taskset -c 0)
    LOAD_CPU=(taskset -c 1)
    PINNING="proxy on core 0; wrk and upstream nginx on core 1"
elif [ "$SMOKE" = 1 ]; then
    PROXY_CPU=()
    LOAD_CPU=()
    PINNING="not pinned (cores 0 and 1 are not both available)"
    log "warning: cores 0 and 1 not both available, running unpinned (smoke only)"
else
    fail "needs cores 0 and 1 (taskset -c 0 / -c 1); only --smoke runs unpinned"
fi

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- build
log "cargo build --release"
(cd "$REPO" && cargo build --release)
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/egress-guard"
[ -x "$BIN" ] || fail "no binary at $BIN"

# ---------------------------------------------------------------- temp dir
TMP=$(mktemp -d "${TMPDIR:-/tmp}/egress-guard-e2e.XXXXXX")
# nginx workers run as nobody when started as root; they must traverse it.
chmod 0711 "$TMP"
[ "$SMOKE" = 1 ] && [ "${E2E_KEEP_TMP:-0}" = 0 ] && KEEP_TMP=0
# egress-guard watches its policy's directory for edits: keep the policy and
# key in a directory of their own so that log writes elsewhere in $TMP are not
# file events it has to look at.
mkdir -p "$TMP/pki" "$TMP/egress-guard" "$TMP/logs" "$TMP/wrk"
chmod 0700 "$TMP/egress-guard"

log "throwaway CA and server certificate for $HOST in $TMP/pki"
(
    cd "$TMP/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.crt \
        -subj "/CN=egress-guard e2e throwaway CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj "/CN=$HOST" 2>/dev/null
    printf '%s\n' \
        "subjectAltName=DNS:$HOST" \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAserial ca.srl -CAcreateserial \
        -days 2 -extfile server.ext -out server.crt 2>/dev/null
    openssl verify -CAfile ca.crt server.crt >/dev/null
) || fail "making the throwaway CA"
# The nginx master (root) reads the key before dropping privileges.
cp "$TMP/pki/ca.crt" "$TMP/ca.crt"
cp "$TMP/pki/server.crt" "$TMP/server.crt"
cp "$TMP/pki/server.key" "$TMP/server.key"
chmod 0600 "$TMP/server.key"

API_KEY="bench-$(openssl rand -hex 16)"
printf '%s\n' "$API_KEY" >"$TMP/egress-guard/shipper.key"
chmod 0600 "$TMP/egress-guard/shipper.key"

# Four free loopback ports (released again; nothing else binds them meanwhile
# in practice).
read -r UPSTREAM_PORT SINK_PORT EG_PORT FORWARD_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

template() {
    sed -e "s|@TMP@|$TMP|g" \
        -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
        -e "s|@SINK_PORT@|$SINK_PORT|g" \
        -e "s|@EG_PORT@|$EG_PORT|g" \
        -e "s|@FORWARD_PORT@|$FORWARD_PORT|g" \
        -e "s|@API_KEY@|$API_KEY|g" \
        "$1" >"$2"
    if grep -n '@[A-Z_]*@' "$2" >&2; then fail "unreplaced placeholder in $2"; fi
}
template "$HERE/upstream.nginx.conf.in" "$TMP/upstream.nginx.conf"
template "$HERE/forward.nginx.conf.in" "$TMP/forward.nginx.conf"
template "$HERE/policy.yaml.in" "$TMP/egress-guard/policy.yaml"

# ---------------------------------------------------------------- start
start_nginx() { # name cpu-prefix... ; sets NGINX_PID
    local name=$1
    shift
    nginx -t -q -e "$TMP/logs/$name.stderr.log" -c "$TMP/$name.nginx.conf" -p "$TMP/" \
        || fail "nginx -t on $TMP/$name.nginx.conf"
    "$@" nginx -e "$TMP/logs/$name.stderr.log" -c "$TMP/$name.nginx.conf" -p "$TMP/" \
        >"$TMP/logs/$name.out.log" 2>&1 &
    NGINX_PID=$!
    STARTED+=("$NGINX_PID")
    NGINX_MASTERS+=("$NGINX_PID")
}

log "upstream nginx on 127.0.0.1:$UPSTREAM_PORT (HTTPS, keep-alive)"
start_nginx upstream "${LOAD_CPU[@]}"
UP_PID=$NGINX_PID
wait_port "$UPSTREAM_PORT" "$UP_PID" "upstream nginx" "$TMP/logs/upstream.error.log"
UP_WORKERS=$(wait_workers "$UP_PID" "upstream nginx")

log "egress-guard on 127.0.0.1:$EG_PORT"
"${PROXY_CPU[@]}" "$BIN" run --policy "$TMP/egress-guard/policy.yaml" \
    2>"$TMP/logs/egress-guard.log" &
EG_PID=$!
STARTED+=("$EG_PID")
wait_port "$EG_PORT" "$EG_PID" "egress-guard" "$TMP/logs/egress-guard.log"

log "nginx forward proxy on 127.0.0.1:$FORWARD_PORT (one worker)"
start_nginx forward "${PROXY_CPU[@]}"
FWD_PID=$NGINX_PID
wait_port "$FORWARD_PORT" "$FWD_PID" "nginx forward proxy" "$TMP/logs/forward.error.log"
FWD_WORKERS=$(wait_workers "$FWD_PID" "nginx forward proxy")
[ "$(wc -w <<<"$FWD_WORKERS")" = 1 ] || fail "the forward nginx should have exactly one worker, has: $FWD_WORKERS"

# ---------------------------------------------------------------- correctness
# One request per path, to ?bench_check=1 (same route; the upstream reads and
# logs the body and the key there), then the upstream's log line is checked.
CHECK_LOG="$TMP/logs/upstream.check.log"
check_through() { # name expect(filtered|full) upstream-path curl-args...
    local name=$1 expect=$2 path=$3 status line lines_before
    shift 3
    lines_before=$(wc -l 2>/dev/null <"$CHECK_LOG" || echo 0)
    status=$(curl -sS -o "$TMP/logs/check-$name.answer" -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/json' --data-binary "@$ORDER" "$@") \
        || fail "$name: curl failed"
    [ "$status" = 200 ] || {
        cat "$TMP/logs/check-$name.answer" >&2
        fail "$name: answer $status, expected 200"
    }
    grep -q '"shipment_id"' "$TMP/logs/check-$name.answer" || fail "$name: not the upstream's answer"
    # nginx writes the access log line after the answer; poll briefly.
    local deadline=$((SECONDS + 5))
    while [ "$(wc -l 2>/dev/null <"$CHECK_LOG" || echo 0)" -le "$lines_before" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$name: the request never reached the upstream's check log"
        sleep 0.05
    done
    line=$(tail -n 1 "$CHECK_LOG")
    python3 - "$name" "$expect" "$API_KEY" "$HOST" "$LEAK" "$ORDER" "$line" "$path" <<'EOF' || fail "$name: upstream saw the wrong request: ${line:0:300}..."
import json, sys
name, expect, key, host, leak, order_file, line, path = sys.argv[1:9]
seen = json.loads(line)
errors = []
if seen["x_api_key"] != key:
    errors.append(f"X-API-KEY {seen['x_api_key']!r}, expected the bench key")
if seen["host"] != host:
    errors.append(f"Host {seen['host']!r}")
if not seen["request"].startswith(f"POST {path}?bench_check=1 "):
    errors.append(f"request line {seen['request']!r}")
body = seen["body"]
try:
    doc = json.loads(body)
except ValueError:
    errors.append(f"body is not JSON: {body[:200]!r}")
    doc = {}
if "order_id" not in body or doc.get("order_id") != 48213:
    errors.append("order_id missing")
with open(order_file, "rb") as f:
    original = json.loads(f.read())
if expect == "filtered":
    if leak in body or "billing" in doc:
        errors.append("billing.email reached the upstream")
    want = {
        "order_id": 48213,
        "shipping": {k: original["shipping"][k] for k in
                     ("first_name", "last_name", "address_1", "city", "postcode", "country")},
        "line_items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in original["line_items"]],
    }
    if doc != want:
        errors.append(f"filtered body differs from the allow-list's: {body[:300]!r}")
else:
    if doc != original:
        errors.append("the full order did not arrive unchanged")
for e in errors:
    print(f"{name}: {e}", file=sys.stderr)
if not errors:
    print(f"{name}: upstream got X-API-KEY and the {expect} body ({len(body.encode())} bytes)", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
}

log "correctness: a request through each path reaches the upstream with the key"
check_through egress-guard filtered /v1/shipments -x "http://127.0.0.1:$EG_PORT" "$ABS_URL?bench_check=1"
check_through egress-guard-headers full /v1/labels -x "http://127.0.0.1:$EG_PORT" "$HDR_URL?bench_check=1"
check_through nginx-forward full /v1/shipments -x "http://127.0.0.1:$FORWARD_PORT" "$ABS_URL?bench_check=1"
check_through direct full /v1/shipments --cacert "$TMP/ca.crt" --resolve "$HOST:$UPSTREAM_PORT:127.0.0.1" \
    -H "Host: $HOST" -H "X-API-KEY: $API_KEY" "https://$HOST:$UPSTREAM_PORT/v1/shipments?bench_check=1"
grep -q '"egress_guard::audit"' "$TMP/logs/egress-guard.log" \
    || fail "egress-guard wrote no audit line to $TMP/logs/egress-guard.log"
# Nothing egress-guard logs may hold the key or a personal value.
if grep -qF -e "$API_KEY" -e "$LEAK" "$TMP/logs/egress-guard.log"; then
    fail "egress-guard's log holds the key or billing.email"
fi

# ---------------------------------------------------------------- load
# wrk_run NAME CONNECTIONS DURATION URL ARGS-FOR-post.lua...; sets REQS, RPS,
# P50, P99 (ms) from its output and fails on any non-2xx answer or socket error.
wrk_run() {
    local name=$1 conns=$2 dur=$3 url=$4 out rc
    shift 4
    out="$TMP/wrk/$name.txt"
    # In the background and waited for, so that a TERM to this script stops it too.
    "${LOAD_CPU[@]}" wrk -t1 -c"$conns" -d"$dur" --latency -s "$HERE/post.lua" "$url" -- "$@" \
        >"$out" 2>&1 &
    WRK_PID=$!
    rc=0
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    [ "$rc" = 0 ] || {
        cat "$out" >&2
        fail "wrk $name exited $rc"
    }
    REQS=$(awk '/requests in/ { print $1 }' "$out")
    RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    P50=$(awk '$1 == "50%" { print $2 }' "$out")
    P99=$(awk '$1 == "99%" { print $2 }' "$out")
    local non2xx sockerr
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$out")
    sockerr=$(awk '/Socket errors:/ { print }' "$out")
    printf '   %-28s %8s requests, %10s req/s, p50 %s, p99 %s\n' "$name" "$REQS" "$RPS" "$P50" "$P99" >&2
    if [ -z "$REQS" ] || [ "$REQS" -eq 0 ]; then
        cat "$out" >&2
        fail "wrk $name: no request completed"
    fi
    [ -z "$non2xx" ] || {
        cat "$out" >&2
        fail "wrk $name: $non2xx non-2xx answers"
    }
    [ -z "$sockerr" ] || {
        cat "$out" >&2
        fail "wrk $name: $sockerr"
    }
}

# to_ms "512.00us" -> "0.512"
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

CLK_TCK=$(getconf CLK_TCK)
declare -A ROW_RPS ROW_P50 ROW_P99 ROW_CPU ROW_RSS UP_CPU

TOTAL_REQS=0 # completed requests of the last bench, all its wrk runs
# bench NAME URL PROXY-PIDS(space-separated, empty for direct) post.lua-args...
bench() {
    local name=$1 url=$2 pids=$3 before after up_before up_after
    shift 3
    log "load: $name"
    TOTAL_REQS=0
    if [ -n "$WARMUP" ]; then
        wrk_run "$name-warmup-c64" 64 "$WARMUP" "$url" "$@"
        TOTAL_REQS=$((TOTAL_REQS + REQS))
    fi
    wrk_run "$name-c1" 1 "$DURATION" "$url" "$@"
    TOTAL_REQS=$((TOTAL_REQS + REQS))
    ROW_P50[$name]=$(to_ms "$P50")
    ROW_P99[$name]=$(to_ms "$P99")
    # shellcheck disable=SC2086 # pids is a list
    before=$( [ -n "$pids" ] && cpu_ticks $pids || echo 0)
    # shellcheck disable=SC2086 # a list of pids
    up_before=$(cpu_ticks "$UP_PID" $UP_WORKERS)
    wrk_run "$name-c64" 64 "$DURATION" "$url" "$@"
    TOTAL_REQS=$((TOTAL_REQS + REQS))
    # shellcheck disable=SC2086
    after=$( [ -n "$pids" ] && cpu_ticks $pids || echo 0)
    # shellcheck disable=SC2086
    up_after=$(cpu_ticks "$UP_PID" $UP_WORKERS)
    ROW_RPS[$name]=$(printf '%.0f' "$RPS")
    if [ -n "$pids" ]; then
        ROW_CPU[$name]=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$REQS" \
            'BEGIN { printf "%.2f", d / hz / n * 10000 }')
    else
        ROW_CPU[$name]="—"
    fi
    UP_CPU[$name]=$(awk -v d=$((up_after - up_before)) -v hz="$CLK_TCK" -v n="$REQS" \
        'BEGIN { printf "%.2f", d / hz / n * 10000 }')
}

# ---------------------------------------------------------------- callgrind
# Instructions per request, repeatable where wall time is not: egress-guard
# under valgrind's callgrind, counters zeroed after a warm-up, then N requests
# of each route on one keep-alive connection, a dump after each. Everything the
# process executes is counted (tokio, hyper, rustls, the filter, the log thread).
CG_REQUESTS=${E2E_CALLGRIND_REQUESTS:-500}
send_requests() { # port count request-target
    python3 - "$1" "$ORDER" "$2" "$3" "$HOST" <<'EOF'
import http.client, sys
port, order, count, target, host = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
body = open(order, "rb").read()
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
for _ in range(count):
    conn.request("POST", target, body, {"Host": host, "Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"answer {answer.status} for {target}")
conn.close()
EOF
}
callgrind_total() { # dump file -> Ir
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(/,/, "", $1); print $1; exit }'
}
# cg_measure PID PORT OUT-PREFIX TARGET...: after a warm-up of 50 requests per
# target, one zeroed-then-dumped run of CG_REQUESTS requests per target; prints
# sets CG_RESULT to the instructions per request of each, in order.
CG_RESULT=()
cg_measure() {
    local pid=$1 port=$2 out=$3 target i=0
    shift 3
    for target in "$@"; do send_requests "$port" 50 "$target" || fail "warm-up requests to $port"; done
    for target in "$@"; do
        i=$((i + 1))
        callgrind_control -z "$pid" >/dev/null 2>&1
        send_requests "$port" "$CG_REQUESTS" "$target" || fail "requests to $port ($target)"
        callgrind_control -d "run$i" "$pid" >/dev/null 2>&1
    done
    stop_now "$pid"
    CG_RESULT=()
    for ((i = 1; i <= $#; i++)); do
        # callgrind numbers its dumps in order: .1, .2, ...
        [ -s "$out.$i" ] || fail "callgrind wrote no dump $out.$i"
        CG_RESULT+=($(($(callgrind_total "$out.$i") / CG_REQUESTS)))
    done
}
callgrind_counts() {
    command -v valgrind >/dev/null && command -v callgrind_control >/dev/null \
        || fail "--callgrind needs valgrind (Debian: apt-get install -y valgrind)"
    mkdir -p "$TMP/callgrind"
    log "egress-guard under callgrind on 127.0.0.1:$EG_PORT ($CG_REQUESTS requests per route)"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind/egress-guard.out" \
        "$BIN" run --policy "$TMP/egress-guard/policy.yaml" 2>"$TMP/logs/egress-guard-callgrind.log" &
    local pid=$! eg
    STARTED+=("$pid")
    wait_port "$EG_PORT" "$pid" "egress-guard (callgrind)" "$TMP/logs/egress-guard-callgrind.log"
    cg_measure "$pid" "$EG_PORT" "$TMP/callgrind/egress-guard.out" "$ABS_URL" "$HDR_URL"
    eg=("${CG_RESULT[@]}")
    # nginx in one process (no master) so that callgrind sees the worker's work.
    log "nginx forward proxy under callgrind on 127.0.0.1:$FORWARD_PORT"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind/nginx.out" \
        nginx -g 'master_process off;' -e "$TMP/logs/forward.stderr.log" -c "$TMP/forward.nginx.conf" -p "$TMP/" \
        >"$TMP/logs/forward-callgrind.log" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    wait_port "$FORWARD_PORT" "$pid" "nginx (callgrind)" "$TMP/logs/forward-callgrind.log"
    local ng
    cg_measure "$pid" "$FORWARD_PORT" "$TMP/callgrind/nginx.out" "$ABS_URL"
    ng=${CG_RESULT[0]}
    {
        echo "# instructions per request (callgrind)"
        echo
        echo "- command: \`$COMMAND\`; egress-guard $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown);" \
            "$(nginx -v 2>&1 | sed 's|nginx version: ||'); $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- $CG_REQUESTS POSTs of the order per row on one keep-alive connection, after 50 warm-up requests" \
            "per route; every thread of the process counted (egress-guard's log writer included)"
        echo
        echo "| proxy, route | instructions per request | vs nginx |"
        echo "| --- | ---: | ---: |"
        awk -v f="${eg[0]}" -v h="${eg[1]}" -v n="$ng" 'BEGIN {
            printf "| egress-guard, full job (inject + allow-list + audit) | %d | %.2fx |\n", f, f / n
            printf "| egress-guard, header only (inject + audit) | %d | %.2fx |\n", h, h / n
            printf "| egress-guard, the job alone (difference) | %d | |\n", f - h
            printf "| nginx forward proxy (inject only) | %d | 1.00x |\n", n }'
    } >"$TMP/callgrind.md"
    echo
    cat "$TMP/callgrind.md"
    echo "(written to $TMP/callgrind.md; dumps in $TMP/callgrind, read them with callgrind_annotate)"
}

if [ "$CALLGRIND" = 1 ]; then
    stop_now "$EG_PID"
    stop_now "$FWD_PID"
    callgrind_counts
    exit 0
fi

# (a) egress-guard
bench egress-guard "http://127.0.0.1:$EG_PORT/" "$EG_PID" "$ORDER" "$ABS_URL"
EG_REQS=$TOTAL_REQS
EG_HWM=$(vm_kb "$EG_PID" VmHWM)
# (a') the same process, the route without a body policy
bench egress-guard-headers "http://127.0.0.1:$EG_PORT/" "$EG_PID" "$ORDER" "$HDR_URL"
ROW_RSS[egress-guard]="$(awk -v k="$EG_HWM" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
if [ "$SMOKE" = 0 ]; then
    log "egress-guard RSS with 256 idle keep-alive connections"
    "${LOAD_CPU[@]}" python3 "$HERE/idle_conns.py" "$EG_PID" 127.0.0.1 "$EG_PORT" "$ORDER" 256 \
        >"$TMP/logs/idle-egress-guard.txt" || {
        cat "$TMP/logs/idle-egress-guard.txt" >&2
        fail "idle connections test (egress-guard)"
    }
fi
# SIGTERM: egress-guard drains and exits 0 (README, "Stop"); its log
# is complete (flushed) once it has exited.
stop_now "$EG_PID"
[ "$STOP_RC" = 0 ] || fail "egress-guard exited $STOP_RC on SIGTERM"

# Under load too, every request was allowed with the allow-list applied.
EG_FILTERED=$(grep '"egress_guard::audit"' "$TMP/logs/egress-guard.log" \
    | grep '"decision":"allow"' | grep '"complete":true' | grep -c '"removed_fields":"[^"]*billing' || true)
[ "$EG_FILTERED" -ge "$EG_REQS" ] \
    || fail "egress-guard: $EG_FILTERED filtered, allowed and complete audit lines for $EG_REQS requests wrk counted"
EG_AUDIT_LINES=$(grep -c '"egress_guard::audit"' "$TMP/logs/egress-guard.log" || true)
EG_REFUSE_LINES=$(grep '"egress_guard::audit"' "$TMP/logs/egress-guard.log" | grep -c '"decision":"refuse"' || true)
EG_WARN_LINES=$(grep -c '"level":"\(WARN\|ERROR\)"' "$TMP/logs/egress-guard.log" || true)
EG_WARN_KINDS=$(grep '"level":"\(WARN\|ERROR\)"' "$TMP/logs/egress-guard.log" \
    | sed -n 's/.*"message":"\([^"]*\)".*"kind":"\([^"]*\)".*/\1 \2/p; t; s/.*"message":"\([^"]*\)".*/\1/p' \
    | sort | uniq -c | awk '{ n = $1; $1 = ""; printf "%s%s x%d", sep, substr($0, 2), n; sep = ", " }' || true)

# (a2) egress-guard again, its rate limit fleet-wide on a local Redis (when
# redis-server is installed; skipped otherwise): what the one Redis round trip
# per request costs. The limit is too high to refuse anything; on_unavailable
# is local, so a slow Redis answer shows in the error counter, not as a 429.
FLEET_ROW=""
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    read -r REDIS_PORT EGF_PORT EGF_ADMIN < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
    log "redis-server on 127.0.0.1:$REDIS_PORT (no persistence), with wrk and the upstream"
    "${LOAD_CPU[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP/logs" >"$TMP/logs/redis.log" 2>&1 &
    REDIS_PID=$!
    STARTED+=("$REDIS_PID")
    wait_port "$REDIS_PORT" "$REDIS_PID" "redis-server" "$TMP/logs/redis.log"
    mkdir -p "$TMP/egress-guard-fleet"
    chmod 0700 "$TMP/egress-guard-fleet"
    sed -e "s|^  listen: 127.0.0.1:$EG_PORT\$|  listen: 127.0.0.1:$EGF_PORT\n  admin: 127.0.0.1:$EGF_ADMIN\n  shared_limits: {redis: \"redis://127.0.0.1:$REDIS_PORT/0\", key_prefix: \"bench:\", on_unavailable: local}|" \
        -e "s|^    connect_to: |    rate_limit: {per_second: 1000000, burst: 1000000, scope: fleet}\n    connect_to: |" \
        "$TMP/egress-guard/policy.yaml" >"$TMP/egress-guard-fleet/policy.yaml"
    grep -q 'scope: fleet' "$TMP/egress-guard-fleet/policy.yaml" || fail "the fleet policy was not made"
    log "egress-guard (fleet limit) on 127.0.0.1:$EGF_PORT"
    "${PROXY_CPU[@]}" "$BIN" run --policy "$TMP/egress-guard-fleet/policy.yaml" \
        2>"$TMP/logs/egress-guard-fleet.log" &
    EGF_PID=$!
    STARTED+=("$EGF_PID")
    wait_port "$EGF_PORT" "$EGF_PID" "egress-guard (fleet)" "$TMP/logs/egress-guard-fleet.log"
    deadline=$((SECONDS + 20))
    until grep -q 'fleet store connected' "$TMP/logs/egress-guard-fleet.log"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "egress-guard (fleet) did not connect to redis-server"
        sleep 0.05
    done
    check_through egress-guard-fleet filtered /v1/shipments -x "http://127.0.0.1:$EGF_PORT" "$ABS_URL?bench_check=1"
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    REDIS_TICKS_BEFORE=$(cpu_ticks "$REDIS_PID")
    bench egress-guard-fleet "http://127.0.0.1:$EGF_PORT/" "$EGF_PID" "$ORDER" "$ABS_URL"
    EGF_REQS=$TOTAL_REQS
    REDIS_TICKS=$(($(cpu_ticks "$REDIS_PID") - REDIS_TICKS_BEFORE))
    ROW_RSS[egress-guard-fleet]="$(awk -v k="$(vm_kb "$EGF_PID" VmHWM)" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
    EVALSHA=$(redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' \
        | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
    SHARED_ERRORS=$(curl -sS --max-time 5 "http://127.0.0.1:$EGF_ADMIN/metrics" \
        | awk '$1 == "egress_guard_shared_limit_errors_total" { print $2 }')
    [ -n "$SHARED_ERRORS" ] || fail "no egress_guard_shared_limit_errors_total on /metrics"
    # Every request asked Redis once (EVALSHA) or fell back (counted as an error);
    # wrk's count misses the requests cut off at the end of a run, hence -ge.
    [ $((${EVALSHA:-0} + SHARED_ERRORS)) -ge "$EGF_REQS" ] \
        || fail "redis saw ${EVALSHA:-no} EVALSHA and $SHARED_ERRORS checks fell back, for $EGF_REQS requests"
    REDIS_CPU=$(awk -v d="$REDIS_TICKS" -v hz="$(getconf CLK_TCK)" -v n="$EGF_REQS" \
        'BEGIN { printf "%.2f", d / hz / n * 10000 }')
    log "fleet: $EVALSHA EVALSHA for $EGF_REQS requests, $SHARED_ERRORS shared-limit errors"
    stop_now "$EGF_PID"
    [ "$STOP_RC" = 0 ] || fail "egress-guard (fleet) exited $STOP_RC on SIGTERM"
    stop_now "$REDIS_PID"
    FLEET_ROW=egress-guard-fleet
else
    log "redis-server not installed: no fleet-limit row (Debian: apt-get install redis-server)"
fi

# (b) nginx forward proxy: master and its one worker
# shellcheck disable=SC2086
bench nginx-forward "http://127.0.0.1:$FORWARD_PORT/" "$FWD_PID $FWD_WORKERS" "$ORDER" "$ABS_URL"
FWD_HWM=0
for w in $FWD_WORKERS; do FWD_HWM=$((FWD_HWM + $(vm_kb "$w" VmHWM))); done
FWD_MASTER_HWM=$(vm_kb "$FWD_PID" VmHWM)
# wrk really wrote the absolute-form request line (what PHP's cURL sends).
grep -q '"POST http://api.shipper.example/v1/shipments HTTP/1.1" 200 ' "$TMP/logs/forward.access.log" \
    || fail "wrk did not send the absolute-form request line (see $TMP/logs/forward.access.log)"
FWD_499=$(grep -c '" 499 ' "$TMP/logs/forward.access.log" || true)
if [ "$SMOKE" = 0 ]; then
    # For comparison only (not asked of nginx): the same idle test on its worker.
    # shellcheck disable=SC2086
    "${LOAD_CPU[@]}" python3 "$HERE/idle_conns.py" $FWD_WORKERS 127.0.0.1 "$FORWARD_PORT" "$ORDER" 256 \
        >"$TMP/logs/idle-nginx-forward.txt" || {
        cat "$TMP/logs/idle-nginx-forward.txt" >&2
        fail "idle connections test (nginx forward)"
    }
fi
ROW_RSS[nginx-forward]="$(awk -v k="$FWD_HWM" 'BEGIN { printf "%.1f MiB", k / 1024 }')"

stop_now "$FWD_PID"

# (c) straight to the upstream (the key sent by wrk itself)
bench direct "https://127.0.0.1:$UPSTREAM_PORT/" "" "$ORDER" "/v1/shipments" "$API_KEY"
ROW_RSS[direct]="—"
ROW_RSS[egress-guard-headers]="(same process)"

if [ "$SMOKE" = 1 ]; then
    log "smoke OK: correctness checks passed, no non-2xx answer, no socket error"
    exit 0
fi

# ---------------------------------------------------------------- results
idle() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }
IDLE_BEFORE=$(idle "$TMP/logs/idle-egress-guard.txt" rss_before_kb)
IDLE_AFTER=$(idle "$TMP/logs/idle-egress-guard.txt" rss_with_idle_kb)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] || DIRTY=" (+ uncommitted changes)"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

{
    echo "# egress-guard end-to-end benchmark"
    echo
    echo "- command: \`$COMMAND\`"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- nproc: $(nproc); CPU: ${CPU_MODEL:-unknown}; $PINNING; load average at start: $LOADAVG_START"
    echo "- egress-guard $COMMIT$DIRTY ($(rustc --version 2>/dev/null || echo rustc ?), cargo build --release);" \
        "$(nginx -v 2>&1 | sed 's|nginx version: ||'); wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
    echo "- load: wrk -t1, POST of benches/fixtures/order.json ($(wc -c <"$ORDER") bytes, application/json)," \
        "absolute-form request line through the proxies; c=1 for $DURATION (--latency), c=64 for $DURATION" \
        "(req/s, CPU), after a $WARMUP c=64 warm-up; upstream: nginx, HTTPS keep-alive, \`return 200\`"
    echo
    echo "| proxy | req/s c=64 | p50 c=1 | p99 c=1 | CPU s per 10k req | peak RSS |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for name in egress-guard egress-guard-headers $FLEET_ROW nginx-forward direct; do
        case "$name" in
            egress-guard) label="egress-guard (inject + allow-list + audit)" ;;
            egress-guard-headers) label="egress-guard, header only (inject + audit)" ;;
            egress-guard-fleet) label="egress-guard, same + fleet rate limit on a local Redis" ;;
            nginx-forward) label="nginx forward proxy (inject only, 1 worker)" ;;
            direct) label="direct to upstream (no proxy)" ;;
        esac
        printf '| %s | %s | %s ms | %s ms | %s | %s |\n' "$label" "${ROW_RPS[$name]}" \
            "${ROW_P50[$name]}" "${ROW_P99[$name]}" "${ROW_CPU[$name]}" "${ROW_RSS[$name]}"
    done
    echo
    echo "egress-guard with 256 idle keep-alive client connections (one request each): VmRSS" \
        "$(mib "$IDLE_AFTER") (before opening them: $(mib "$IDLE_BEFORE"))."
    echo
    echo "Notes:"
    echo "- CPU s per 10k req: utime+stime from /proc/<pid>/stat across the c=64 run, per request completed" \
        "(CLK_TCK $CLK_TCK); nginx: master + worker. Upstream nginx per 10k req over the same runs:" \
        "egress-guard ${UP_CPU[egress-guard]}, nginx ${UP_CPU[nginx-forward]}, direct ${UP_CPU[direct]} (core 1, shared with wrk)."
    echo "- peak RSS: VmHWM; egress-guard: the process, read after its c=64 run (before the idle test);" \
        "nginx: the sum of its worker's VmHWM (one worker; master: $(mib "$FWD_MASTER_HWM"))."
    echo "- egress-guard wrote $EG_AUDIT_LINES audit lines (JSON, to a file); $EG_REFUSE_LINES of them say" \
        "\"refuse\" (status 0): requests still in flight when wrk closed its connections at the end of a run" \
        "(nginx logs those as 499: $FWD_499). WARN/ERROR lines: $EG_WARN_LINES${EG_WARN_KINDS:+ ($EG_WARN_KINDS)}."
    echo "- nginx forward worker with 256 idle keep-alive client connections (same test, for comparison):" \
        "VmRSS $(mib "$(idle "$TMP/logs/idle-nginx-forward.txt" rss_with_idle_kb)")" \
        "(before: $(mib "$(idle "$TMP/logs/idle-nginx-forward.txt" rss_before_kb)"))."
    if [ -n "$FLEET_ROW" ]; then
        echo "- fleet rate limit: the same egress-guard with \`scope: fleet\` on a redis-server (no persistence," \
            "on core 1 with wrk and the upstream); one EVALSHA per request ($EVALSHA for the $EGF_REQS requests" \
            "wrk completed); Redis CPU $REDIS_CPU s per 10k req; shared-limit errors (checks that fell back): $SHARED_ERRORS."
    fi
    echo "- direct: wrk itself does the TLS to the upstream and sends X-API-KEY; wrk and the upstream share core 1."
} >"$TMP/results.md"

echo
cat "$TMP/results.md"
echo
echo "(written to $TMP/results.md)"
