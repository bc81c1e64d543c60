#!/usr/bin/env bash
# bench/run.sh: drover against nginx, side by side, on this machine, in one run.
#
# Usage: bench/run.sh [BUILD_DIR]
#   The drover binary is $DROVER, else BUILD_DIR/src/drover (BUILD_DIR defaults
#   to the current directory). Nothing is built. nginx, wrk and curl are
#   installed with apt-get only if `command -v` cannot find them.
#
# Environment (all optional):
#   DROVER          path of the drover binary
#   BENCH_WORKERS   worker processes for BOTH servers (default 2)
#   BENCH_THREADS   wrk threads      (default 2)
#   BENCH_CONNS     wrk connections  (default 64)
#   BENCH_DURATION  seconds per measured wrk run (default 10)
#   BENCH_WARMUP    seconds of unmeasured wrk before each run (default 1; 0 = none)
#   BENCH_ROUNDS    rounds over all cases; the server order flips every round
#                   (default 2: drover first, then nginx first)
#   BENCH_CASES     space-separated subset of: 1k 64k 1m 1k-close (default all)
#   BENCH_OUT       file to write the results to (default: results.md in the temp dir)
#   BENCH_KEEP      1 = keep the temp dir (configs, logs, raw wrk output) even on success
#
# All traffic is to 127.0.0.1. Both servers and wrk share the same CPUs, so
# absolute numbers are low and only the ratios mean anything.
set -eu   # no pipefail: "seq | head -c" ends seq with SIGPIPE on purpose

BUILD_DIR=${1:-.}
DROVER=${DROVER:-$BUILD_DIR/src/drover}
WORKERS=${BENCH_WORKERS:-2}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-2}
CASES=${BENCH_CASES:-"1k 64k 1m 1k-close"}

die() { echo "bench: $*" >&2; exit 1; }

for v in WORKERS THREADS CONNS DURATION WARMUP ROUNDS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_$v must be a whole number (got '${!v}')"
done
(( DURATION > 0 && ROUNDS > 0 && WORKERS > 0 && THREADS > 0 && CONNS >= THREADS )) \
    || die "need DURATION, ROUNDS, WORKERS, THREADS > 0 and CONNS >= THREADS"
for c in $CASES; do
    case $c in 1k|64k|1m|1k-close) ;; *) die "unknown case '$c' (1k 64k 1m 1k-close)";; esac
done
[[ -x $DROVER ]] || die "no drover binary at '$DROVER' (set DROVER or pass the build dir)"
DROVER=$(cd "$(dirname "$DROVER")" && pwd)/$(basename "$DROVER")

# --- tools: install only what is missing -----------------------------------
need=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v wrk   >/dev/null 2>&1 || need+=(wrk)
command -v curl  >/dev/null 2>&1 || need+=(curl)
if (( ${#need[@]} )); then
    echo "bench: installing ${need[*]}" >&2
    SUDO=; (( EUID == 0 )) || SUDO=sudo
    $SUDO apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"; then
        # newer Debian releases dropped nginx-light; plain nginx is the same server
        need=("${need[@]/nginx-light/nginx}")
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
    fi
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# --- temp dir, cleanup ------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench.XXXXXX")
OUT=${BENCH_OUT:-$TMP/results.md}
DROVER_PID='' NGINX_PID='' WRK_PID='' ok=0

stop_pid() {   # stop_pid PID SIGNAL: signal, wait up to 10 s, then SIGKILL
    local pid=$1 sig=$2 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: pid $pid ignored SIG$sig for 10 s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $WRK_PID ]]; then kill "$WRK_PID" 2>/dev/null; wait "$WRK_PID" 2>/dev/null; fi
    stop_pid "$DROVER_PID" TERM    # graceful stop: drains and reaps its workers
    stop_pid "$NGINX_PID" QUIT     # graceful stop of the nginx master
    rm -rf "$TMP/site" "$TMP/nginx-tmp"
    if (( ok )) && [[ ${BENCH_KEEP:-0} != 1 && -n ${BENCH_OUT:-} ]]; then
        rm -rf "$TMP"
    else
        echo "bench: configs, logs and raw wrk output are in $TMP" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        return
    fi
    local p used
    used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
    while :; do
        p=$((20000 + RANDOM % 12000))
        grep -qx "$p" <<<"$used" || { echo "$p"; return; }
    done
}

# --- the site: deterministic content, every line numbered --------------------
mkdir -p "$TMP/site" "$TMP/nginx-tmp"
mkfile() { seq -f '%015g drover bench line' 1 $(( $2 / 16 + 1 )) | head -c "$2" > "$TMP/site/$1"; }
mkfile 1k.bin 1024
mkfile 64k.bin 65536
mkfile 1m.bin 1048576

# --- configs -----------------------------------------------------------------
DPORT=$(free_port)
NPORT=$(free_port)
[[ $DPORT != "$NPORT" ]] || NPORT=$(free_port)

cat > "$TMP/drover.ini" <<EOF
[server]
workers = $WORKERS
control_socket = off

[listener web]
address = 127.0.0.1:$DPORT
protocol = http

[http]
root = $TMP/site
access_log = off
keepalive_requests = 10000
EOF

nginx_user=
(( EUID == 0 )) && nginx_user="user root;"   # as root nginx would switch to nobody, who may not read $TMP
nginx_types="default_type application/octet-stream;"
[[ -r /etc/nginx/mime.types ]] && nginx_types="include /etc/nginx/mime.types; $nginx_types"
cat > "$TMP/nginx.conf" <<EOF
$nginx_user
worker_processes $WORKERS;
daemon off;
master_process on;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
    $nginx_types
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    client_body_temp_path $TMP/nginx-tmp/body;
    proxy_temp_path $TMP/nginx-tmp/proxy;
    fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
    scgi_temp_path $TMP/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        root $TMP/site;
    }
}
EOF

# --- start both ----------------------------------------------------------------
"$DROVER" -t -c "$TMP/drover.ini" >/dev/null 2>"$TMP/drover-t.log" \
    || { cat "$TMP/drover-t.log" >&2; die "drover rejected $TMP/drover.ini"; }
"$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" 2>"$TMP/nginx-t.log" \
    || { cat "$TMP/nginx-t.log" >&2; die "nginx rejected $TMP/nginx.conf"; }

"$DROVER" -c "$TMP/drover.ini" >"$TMP/drover.log" 2>&1 &
DROVER_PID=$!
"$NGINX" -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" >"$TMP/nginx.log" 2>&1 &
NGINX_PID=$!

wait_up() {   # wait_up NAME PID PORT
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$2" 2>/dev/null || { cat "$TMP/$1"*.log >&2; die "$1 exited at start"; }
        curl -fs -o /dev/null "http://127.0.0.1:$3/1k.bin" && return 0
        sleep 0.1
    done
    die "$1 did not answer on 127.0.0.1:$3 within 10 s"
}
wait_up drover "$DROVER_PID" "$DPORT"
wait_up nginx "$NGINX_PID" "$NPORT"

# --- both must serve identical bytes ------------------------------------------
for f in 1k.bin 64k.bin 1m.bin; do
    curl -fsS -o "$TMP/got-drover-$f" "http://127.0.0.1:$DPORT/$f"
    curl -fsS -o "$TMP/got-nginx-$f"  "http://127.0.0.1:$NPORT/$f"
    cmp "$TMP/got-drover-$f" "$TMP/site/$f" || die "drover served different bytes for /$f"
    cmp "$TMP/got-nginx-$f"  "$TMP/site/$f" || die "nginx served different bytes for /$f"
    cmp "$TMP/got-drover-$f" "$TMP/got-nginx-$f"
    rm -f "$TMP/got-drover-$f" "$TMP/got-nginx-$f"
done

# --- measure -------------------------------------------------------------------
ncases=$(wc -w <<<"$CASES")
est=$(( ncases * 2 * ROUNDS * (DURATION + WARMUP) ))
drover_ver=$("$DROVER" --version 2>&1 | head -1)
nginx_ver=$("$NGINX" -v 2>&1 | head -1)
{
    echo "# drover vs nginx, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), kernel $(uname -r)"
    echo "- $drover_ver ($DROVER), $nginx_ver, $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "- $WORKERS workers each; wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up, $ROUNDS round(s), order flipped each round"
    echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
    echo "- wrk runs on the same $(nproc) CPUs as the server under test: absolute numbers are"
    echo "  depressed by that competition, only the ratios are meant to be read."
    echo
} | tee "$OUT"
echo "bench: about $est s of load to go" >&2

url_of() { case $1 in drover) echo "http://127.0.0.1:$DPORT";; nginx) echo "http://127.0.0.1:$NPORT";; esac; }
path_of() { case $1 in 1k|1k-close) echo /1k.bin;; 64k) echo /64k.bin;; 1m) echo /1m.bin;; esac; }

# to_ms VALUE: wrk prints 812.00us, 1.23ms, 1.02s, 2.00m
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

declare -A RPS P99 ERR
run_wrk() {   # run_wrk SERVER CASE ROUND
    local srv=$1 c=$2 r=$3 hdr=() raw rps p99 err
    [[ $c == *-close ]] && hdr=(-H 'Connection: close')
    raw="$TMP/wrk-$c-$srv-r$r.txt"
    # wrk runs in the background and is waited for, so that a signal to this
    # script runs the cleanup at once instead of after wrk's duration
    if (( WARMUP > 0 )); then
        wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${hdr[@]}" "$(url_of "$srv")$(path_of "$c")" >/dev/null 2>&1 &
        WRK_PID=$!
        wait "$WRK_PID" || true
    fi
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" \
        "$(url_of "$srv")$(path_of "$c")" > "$raw" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed against $srv ($c): $(cat "$raw")"
    WRK_PID=
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
    p99=$(awk '$1 == "99%" {print $2}' "$raw")
    [[ -n $rps && -n $p99 ]] || die "cannot parse wrk output $raw"
    err=$(awk '/Socket errors:/ {gsub(/,/, ""); s += $4 + $6 + $8 + $10}
               /Non-2xx or 3xx/ {s += $NF} END {print s + 0}' "$raw")
    kill -0 "$DROVER_PID" 2>/dev/null || die "drover died during the run (see $TMP/drover.log)"
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died during the run (see $TMP/nginx-error.log)"
    RPS[$srv,$c]+="$rps "
    P99[$srv,$c]+="$(to_ms "$p99") "
    ERR[$srv,$c]=$(( ${ERR[$srv,$c]:-0} + err ))
    printf 'bench: round %d %-8s %-6s %12s req/s  p99 %s  errors %s\n' "$r" "$c" "$srv" "$rps" "$p99" "$err" >&2
}

for ((r = 1; r <= ROUNDS; r++)); do
    order=(drover nginx)
    (( r % 2 == 0 )) && order=(nginx drover)
    for c in $CASES; do
        for s in "${order[@]}"; do run_wrk "$s" "$c" "$r"; done
    done
done

# --- table -------------------------------------------------------------------
mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }' <<<"$1"; }
meanf() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF }' <<<"$1"; }
each() { awk '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? ", " : ""), $i }' <<<"$1"; }
{
    echo "| case | drover req/s | nginx req/s | drover/nginx | drover p99 ms | nginx p99 ms | errors d/n |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in $CASES; do
        d=$(mean "${RPS[drover,$c]}"); n=$(mean "${RPS[nginx,$c]}")
        ratio=$(awk -v d="$d" -v n="$n" 'BEGIN { printf "%.2f", (n > 0 ? d / n : 0) }')
        label=$c
        case $c in 1k) label="1 KiB keep-alive";; 64k) label="64 KiB keep-alive";;
                   1m) label="1 MiB keep-alive";; 1k-close) label="1 KiB Connection: close";; esac
        printf '| %s | %s | %s | **%s** | %s | %s | %s/%s |\n' "$label" "$d" "$n" "$ratio" \
            "$(meanf "${P99[drover,$c]}")" "$(meanf "${P99[nginx,$c]}")" "${ERR[drover,$c]}" "${ERR[nginx,$c]}"
    done
    echo
    echo "req/s and p99 are means over $ROUNDS round(s); load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "req/s of each round, in order:"
    echo
    for c in $CASES; do
        echo "- $c: drover $(each "${RPS[drover,$c]}"); nginx $(each "${RPS[nginx,$c]}")"
    done
} | tee -a "$OUT"
echo >&2
echo "bench: results written to $OUT" >&2
ok=1
