#!/usr/bin/env bash
# npm run bench: throughput, CPU, memory and latency of our server against the Linux kernel, in one run.
#
#   the real iperf 2.1.8 client -> our server (node dist/main.js) over a TAP, with offloads and with --no-offload
#   the real iperf 2.1.8 client -> the kernel's own `iperf -s` over a veth pair (the ceiling)
#   the anchors of ../shared/anchors (built into a temp dir), each over a TAP: lwIP 2.1.3 (MinIperf's stack in C), and
#   tap_pump in C as the limit of a TAP reader (c-sink: a TCP ACK sink with the virtio-net header and TSO, modes -c, -P 4
#   and -P 64) and of a TAP writer (c-push: it opens a connection to the kernel's `iperf -s` on the client side and
#   pushes with GSO for SECS seconds; our counterpart is -r's server-to-client half)
#
# Modes: -c (single stream), -P 4, -r (both directions, two cells). Each cell is the median of RUNS runs of
# SECS seconds; the runs of one mode are interleaved across the servers so background load hits all alike.
# Then a -P 64 run (our peak RSS, target <= 200 MB) and a ping RTT median (1000 pings) per server.
# Then the "under attack" part (scripts/bench-attack.sh): single-stream throughput and ping loss during a SYN flood
# beside the unflooded figure, for ours and the kernel; peak RSS of ours under the attacks of design.md §7.
# Before every run the script waits (bounded) for the box to be idle and records the background busy %.
#
# Network: only namespaces this script creates (mpx-bench-<pid>-*), only 198.51.100.0/24 (RFC 5737). The
# server side is 198.51.100.2, the client side 198.51.100.1. Everything is removed on exit, also on failure;
# only processes started here are signalled, by PID.
#
# Environment (all optional):
#   BENCH_QUICK=1          1 run x 3 s per cell (default: 3 runs x 5 s)
#   BENCH_RUNS, BENCH_SECS override the above
#   BENCH_MODES=c,p4,r     modes to run
#   BENCH_ROWS=kernel,ours,ours-nooff,ours-nopoll,lwip,c-sink,c-push   servers to measure (the anchors only if they
#                          build; ours-nopoll is ours with --busy-poll 0, measured in the ping part only unless listed)
#   BENCH_P64=1            the -P 64 runs (0 = skip): 5 runs each (1 with BENCH_QUICK) for the worst-of-5 target
#   BENCH_PINGS=1000       pings per server (0 = skip)
#   BENCH_IDLE_MAX=20      "idle" = box busy <= this % (200 = both cores busy) over 1 s
#   BENCH_QUIET_WAIT=30    wait at most this many seconds for idle before each run
#   BENCH_BUDGET_S=780     after this many seconds, stop waiting for idle (keeps the full run < 15 min)
#   BENCH_CC=cubic         the iperf client's TCP congestion control (`iperf -Z`): it shapes every figure (2026-12-07:
#                          one stream into ours 13.5-14.2 Gbit/s with bbr, 39.6-42.3 with cubic); default: the
#                          namespace's default, which new namespaces take from the host (the report names it)
#   BENCH_TXQLEN           txqueuelen of the TAP's kernel side (default: the kernel's, 1000, as in the anchors)
#   BENCH_ANCHORS=DIR      anchors directory (default: /work/shared/anchors or ../shared/anchors)
#   BENCH_NO_SAVE=1        do not write bench/results/<utc>.md
#   BENCH_NOTE="..."       free text put under the table (e.g. the commit being measured)
#   BENCH_PART=all         all | base (throughput, -P 64, ping) | attack (the under-attack part alone)
#   BENCH_ATTACKS=a,b,c    attacks of the under-attack part (besides the flood); needs hping3 and /usr/bin/python3
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

[ "$(id -u)" = 0 ] || { echo "bench: run as root (network namespaces, /dev/net/tun)" >&2; exit 1; }
for c in iperf ping ip node awk timeout; do
  command -v "$c" >/dev/null 2>&1 || { echo "bench: $c is missing (apt-get install iperf iputils-ping iproute2)" >&2; exit 1; }
done
[ -f dist/main.js ] || { echo "bench: dist/main.js missing: npm run build first (npm run bench does it)" >&2; exit 1; }

if [ "${BENCH_QUICK:-0}" = 1 ]; then RUNS=${BENCH_RUNS:-1} SECS=${BENCH_SECS:-3}; else RUNS=${BENCH_RUNS:-3} SECS=${BENCH_SECS:-5}; fi
MODES=${BENCH_MODES:-c,p4,r}
ROWS=${BENCH_ROWS:-kernel,ours,ours-nooff,lwip,c-sink,c-push}
P64=${BENCH_P64:-1}
if [ "${BENCH_QUICK:-0}" = 1 ]; then P64_RUNS=1; else P64_RUNS=5; fi
PINGS=${BENCH_PINGS:-1000}
IDLE_MAX=${BENCH_IDLE_MAX:-20}
QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
BUDGET_S=${BENCH_BUDGET_S:-780}
TXQLEN=${BENCH_TXQLEN:-}
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)

SERVER_IP=198.51.100.2 CLIENT_IP=198.51.100.1
TAG="mpx-bench-$$"
NS_T="$TAG-t" NS_C="$TAG-c" NS_S="$TAG-s"   # TAP runs: one namespace; veth runs: client + server namespaces
TAP="mpbt$$" VETH_C="mpbc$$" VETH_S="mpbs$$"
TAP=${TAP:0:15} VETH_C=${VETH_C:0:15} VETH_S=${VETH_S:0:15}

WORK=$(mktemp -d /tmp/mpx-bench.XXXXXX)
RAW=$WORK/raw.tsv
LOGS=$WORK/logs
mkdir -p "$LOGS"
START_S=$(date +%s)
START_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
SRV_PID="" NSES=() EXTRA_PIDS=()
PART=${BENCH_PART:-all}
case $PART in all | base | attack) ;; *) echo "bench: BENCH_PART=$PART (all, base, attack)" >&2; exit 2 ;; esac

say() { echo "[bench] $*" >&2; }

stop_pid() { # pid: TERM, wait up to 5 s, then KILL; only PIDs this script started
  local p=$1
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
}
ns_del_all() {
  local n
  for n in "${NSES[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  NSES=()
}
ns_add() { # name
  ip netns del "$1" 2>/dev/null || true
  ip netns add "$1"
  NSES+=("$1")
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}
cleanup() {
  local p
  for p in "${EXTRA_PIDS[@]}"; do stop_pid "$p"; done
  EXTRA_PIDS=()
  stop_pid "$SRV_PID"; SRV_PID=""
  ns_del_all
  ip link del "$TAP" 2>/dev/null || true
  ip link del "$VETH_C" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- CPU and idle -------------------------------------------------------------------------------------------
host_cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; } # busy total (ticks)
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo ""; }           # utime+stime
# CPU ticks used by every user-space process outside this script (not the script, not its children: the server under
# test and the client), children reaped meanwhile included through their parents' cutime/cstime: the difference over a
# run is what other sessions took from the cores while we measured. Kernel threads are left out (softirq work for our own
# traffic may run there).
others_ticks() {
  # (a process may exit between the glob and the read: cat then fails, which must not end the bench under pipefail)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v me=$$ '{
    pid = $1; rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
    if (pid == me || f[2] == me || int(f[7] / 2097152) % 2 == 1) next
    s += f[12] + f[13] + f[14] + f[15]
  } END { print s + 0 }'
}
pct_of() { awk -v a="$1" -v b="$2" -v w0="$3" -v w1="$4" -v hz="$HZ" 'BEGIN{ if (a == "" || b == "" || w1 <= w0) print ""; else printf "%.0f", (b - a) / hz / (w1 - w0) * 100 }'; }
busy_pct() { # busy % of the box (NCPU*100 scale) over 1 s
  local a b; a=$(host_cpu); sleep 1; b=$(host_cpu)
  echo "$a $b" | awk -v n="$NCPU" '{d=$4-$2; printf "%.0f", (d>0)?($3-$1)/d*100*n:0}'
}
wait_idle() { # echoes the busy % of the last 1 s sample before the run
  local waited=0 b limit=$QUIET_WAIT
  [ $(( $(date +%s) - START_S )) -ge "$BUDGET_S" ] && limit=0
  while :; do
    b=$(busy_pct)
    if [ "$b" -le "$IDLE_MAX" ] || [ "$waited" -ge "$limit" ]; then echo "$b"; return; fi
    sleep 1; waited=$((waited + 2))
  done
}

# ---- servers ----------------------------------------------------------------------------------------------
ANCHORS_DIR="" LWIP_BIN="" LWIP_NOTE="" PUMP_BIN="" PUMP_NOTE=""
find_anchors() {
  local a=${BENCH_ANCHORS:-}
  if [ -z "$a" ]; then
    if [ -d /work/shared/anchors ]; then a=/work/shared/anchors; elif [ -d "$REPO/../shared/anchors" ]; then a=$REPO/../shared/anchors; fi
  fi
  if [ -n "$a" ] && [ -f "$a/Makefile" ] && [ -d "$a/src" ]; then
    ANCHORS_DIR=$a
    mkdir -p "$WORK/anchors"
    [ -f "$WORK/anchors/Makefile" ] || cp -r "$a/Makefile" "$a/src" "$WORK/anchors/"
  fi
}
build_lwip() {
  find_anchors
  if [ -z "$ANCHORS_DIR" ] || [ ! -f "$ANCHORS_DIR/src/lwip_iperf.c" ]; then LWIP_NOTE="lwIP row skipped: no anchors directory (../shared/anchors)"; return; fi
  if [ ! -f /usr/include/lwip/lwip/tcp.h ] && ! pkg-config --exists lwip 2>/dev/null; then
    LWIP_NOTE="lwIP row skipped: liblwip-dev not installed (apt-get install liblwip-dev)"; return
  fi
  if make -s -C "$WORK/anchors" build/lwip_iperf >"$LOGS/lwip-build.log" 2>&1; then
    LWIP_BIN=$WORK/anchors/build/lwip_iperf
  else
    LWIP_NOTE="lwIP row skipped: build failed (see $LOGS/lwip-build.log)"
  fi
}
build_pump() {
  [ -n "$PUMP_BIN" ] || [ -n "$PUMP_NOTE" ] && return 0
  find_anchors
  if [ -z "$ANCHORS_DIR" ] || [ ! -f "$ANCHORS_DIR/src/tap_pump.c" ]; then PUMP_NOTE="C anchor rows skipped: no anchors directory (../shared/anchors)"; return; fi
  if make -s -C "$WORK/anchors" build/tap_pump >"$LOGS/pump-build.log" 2>&1; then
    PUMP_BIN=$WORK/anchors/build/tap_pump
  else
    PUMP_NOTE="C anchor rows skipped: build failed (see $LOGS/pump-build.log)"
  fi
}

row_kind() { case $1 in kernel) echo veth ;; *) echo tap ;; esac; }
row_cmd() {
  case $1 in
    kernel) echo "iperf -s -p 5001" ;;
    ours) echo "node $REPO/dist/main.js --tap $TAP -i $SERVER_IP/24" ;;
    ours-nooff) echo "node $REPO/dist/main.js --tap $TAP -i $SERVER_IP/24 --no-offload" ;;
    ours-nopoll) echo "node $REPO/dist/main.js --tap $TAP -i $SERVER_IP/24 --busy-poll 0" ;;
    lwip) echo "$LWIP_BIN --quiet --tap $TAP -i $SERVER_IP/24" ;;
    c-sink) echo "$PUMP_BIN --quiet --ack --vnet --tap $TAP --ip $SERVER_IP" ;;
    c-push) echo "$PUMP_BIN --quiet --vnet --tx $CLIENT_IP:5001 --seconds $SECS --tap $TAP --ip $SERVER_IP" ;;
  esac
}

CLIENT_NS=""
start_row() { # row logfile [noping] -> sets SRV_PID and CLIENT_NS; returns 1 if the server did not come up
  local row=$1 slog=$2 noping=${3:-} kind cmd
  kind=$(row_kind "$row"); cmd=$(row_cmd "$row")
  if [ "$kind" = veth ]; then
    ns_add "$NS_C"; ns_add "$NS_S"
    ip link add "$VETH_C" type veth peer name "$VETH_S"
    ip link set "$VETH_C" netns "$NS_C"
    ip link set "$VETH_S" netns "$NS_S"
    ip -n "$NS_C" addr add "$CLIENT_IP/24" dev "$VETH_C"
    ip -n "$NS_S" addr add "$SERVER_IP/24" dev "$VETH_S"
    ip -n "$NS_C" link set "$VETH_C" mtu 1500 up
    ip -n "$NS_S" link set "$VETH_S" mtu 1500 up
    # `ip netns exec` execs the command, so $! is the server's own PID
    # shellcheck disable=SC2086
    ip netns exec "$NS_S" $cmd >"$slog" 2>&1 &
    SRV_PID=$!
    CLIENT_NS=$NS_C
    for _ in $(seq 50); do ip netns exec "$NS_S" ss -Hltn 'sport = :5001' | grep -q . && break; sleep 0.1; done
  else
    ns_add "$NS_T"
    # shellcheck disable=SC2086
    ip netns exec "$NS_T" $cmd >"$slog" 2>&1 &
    SRV_PID=$!
    CLIENT_NS=$NS_T
    local up=0
    for _ in $(seq 100); do
      if ip -n "$NS_T" link show "$TAP" >/dev/null 2>&1; then up=1; break; fi
      kill -0 "$SRV_PID" 2>/dev/null || break
      sleep 0.1
    done
    [ "$up" = 1 ] || { say "$row: server did not create $TAP: $(tail -3 "$slog" | tr '\n' ' ')"; return 1; }
    [ -n "$TXQLEN" ] && ip -n "$NS_T" link set "$TAP" txqueuelen "$TXQLEN"
    ip -n "$NS_T" addr add "$CLIENT_IP/24" dev "$TAP"
    ip -n "$NS_T" link set "$TAP" mtu 1500 up
  fi
  # readiness: ARP + ICMP through the link, 5 s at most (not for the C pusher: it answers neither, and starts at once)
  if [ -n "$noping" ]; then return 0; fi
  local ok=0
  for _ in 1 2 3 4 5; do
    if ip netns exec "$CLIENT_NS" ping -c 1 -W 1 -q "$SERVER_IP" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$SRV_PID" 2>/dev/null || break
  done
  kill -0 "$SRV_PID" 2>/dev/null || { say "$row: server exited at start: $(tail -3 "$slog" | tr '\n' ' ')"; return 1; }
  [ "$ok" = 1 ] || say "$row: no ping reply from $SERVER_IP (continuing)"
  return 0
}
stop_row() { stop_pid "$SRV_PID"; SRV_PID=""; ns_del_all; }

hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }

# ---- iperf output -------------------------------------------------------------------------------------------
# Prints "c2s <Mbit/s>", "s2c <Mbit/s>" (one line per stream report) and "sum <Mbit/s>" from an iperf 2 client
# log run with -f m. A stream whose local port is 5001 was accepted by the client: the server sent it (-r, -d).
iperf_rates() {
  awk '
    function sid(s) { s = substr(s, index(s, "[") + 1); s = substr(s, 1, index(s, "]") - 1); gsub(/ /, "", s); return s }
    / connected with / && / local / {
      n = split($0, w, " "); for (i = 1; i < n; i++) if (w[i] == "port") { lp = w[i + 1]; break }
      dir[sid($0)] = (lp == "5001") ? "s2c" : "c2s"
    }
    /Mbits\/sec/ && /sec / {
      id = sid($0); n = split($0, w, " ")
      for (i = 2; i <= n; i++) if (w[i] == "Mbits/sec") { rate[id] = w[i - 1] }
    }
    END { for (id in rate) print (id == "SUM" ? "sum" : (id in dir ? dir[id] : "c2s")), rate[id] }'
}

# ---- one run ------------------------------------------------------------------------------------------------
# raw.tsv columns: row mode run c2s_gbps s2c_gbps srv_cpu_pct host_pct bg_pct hwm_kb others_pct note
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

run_iperf() { # row mode run
  local row=$1 mode=$2 run=$3
  local -a args=(-c "$SERVER_IP" -t "$SECS" -f m ${BENCH_CC:+-Z "$BENCH_CC"})
  local lim=$((SECS + 20))
  case $mode in
    c) ;;
    p4) args+=(-P 4) ;;
    p64) args+=(-P 64) ;;
    r) args+=(-r); lim=$((2 * SECS + 25)) ;;
  esac
  local slog=$LOGS/$row.$mode.$run.server.log clog=$LOGS/$row.$mode.$run.client.log note=""
  if ! start_row "$row" "$slog"; then
    record "$row" "$mode" "$run" "" "" "" "" "" "" "" "server did not start"; stop_row; return
  fi
  local bg t0 t1 h0 h1 o0 o1 w0 w1 rc=0
  bg=$(wait_idle)
  o0=$(others_ticks); t0=$(proc_ticks "$SRV_PID"); h0=$(host_cpu); w0=$(date +%s.%N)
  timeout --foreground -s KILL "$lim" ip netns exec "$CLIENT_NS" iperf "${args[@]}" >"$clog" 2>&1 || rc=$?
  t1=$(proc_ticks "$SRV_PID"); h1=$(host_cpu); w1=$(date +%s.%N); o1=$(others_ticks)
  [ "$rc" = 0 ] || note="iperf exit $rc"
  local hwm; hwm=$(hwm_kb "$SRV_PID")
  kill -0 "$SRV_PID" 2>/dev/null || note="${note:+$note; }server exited during the run"
  stop_row
  local cpu host others rates c2s s2c
  cpu=$(pct_of "$t0" "$t1" "$w0" "$w1")
  others=$(pct_of "$o0" "$o1" "$w0" "$w1")
  host=$(echo "$h0 $h1" | awk -v n="$NCPU" '{d=$4-$2; printf "%.0f", (d>0)?($3-$1)/d*100*n:0}')
  rates=$(iperf_rates <"$clog")
  if [ "$mode" = p4 ] || [ "$mode" = p64 ]; then
    c2s=$(echo "$rates" | awk '$1=="sum"{printf "%.3f", $2/1000; exit}')
  else
    c2s=$(echo "$rates" | awk '$1=="c2s"{printf "%.3f", $2/1000; exit}')
  fi
  s2c=$(echo "$rates" | awk '$1=="s2c"{printf "%.3f", $2/1000; exit}')
  [ "$mode" = r ] || s2c=""
  [ -n "$c2s" ] || note="${note:+$note; }no result line"
  record "$row" "$mode" "$run" "$c2s" "$s2c" "$cpu" "$host" "$bg" "$hwm" "$others" "$note"
  say "$(printf '%-10s %-4s run %s: %6s Gbit/s%s  cpu %s%%  hwm %s MB  host %s%%  bg %s%%  others %s%%%s' "$row" "$mode" "$run" "${c2s:--}" \
    "${s2c:+ / s2c $s2c}" "${cpu:--}" "$(( ${hwm:-0} / 1024 ))" "$host" "$bg" "${others:--}" "${note:+  ($note)}")"
}

# c-push: the kernel's `iperf -s` on the client side, the pusher connects to it and sends for SECS seconds; the figure
# is what that iperf server measured (its report line), the CPU % the pusher's own over its run
run_push() { # row run
  local row=$1 run=$2 slog=$LOGS/$1.push.$2.server.log clog=$LOGS/$1.push.$2.client.log note=""
  local bg; bg=$(wait_idle)
  local o0 h0 w0 t0 t1 w1 h1 o1
  if ! start_row "$row" "$slog" noping; then record "$row" push "$run" "" "" "" "" "" "" "" "server did not start"; stop_row; return; fi
  ip netns exec "$CLIENT_NS" iperf -s -f m -p 5001 >"$clog" 2>&1 &
  local ipf=$!
  EXTRA_PIDS+=("$ipf")
  o0=$(others_ticks); h0=$(host_cpu); w0=$(date +%s.%N)
  t0=$(proc_ticks "$SRV_PID"); t1=$t0
  # the pusher exits after SECS seconds; sample its CPU until then (bounded)
  for _ in $(seq $(( (SECS + 20) * 10 ))); do
    local v; v=$(awk '$3!="Z"{print $14+$15}' "/proc/$SRV_PID/stat" 2>/dev/null || true)
    [ -n "$v" ] || break
    t1=$v
    sleep 0.1
  done
  w1=$(date +%s.%N); h1=$(host_cpu); o1=$(others_ticks)
  kill -0 "$SRV_PID" 2>/dev/null && note="pusher still running after $((SECS + 20)) s"
  local hwm; hwm=$(hwm_kb "$SRV_PID")
  sleep 1
  stop_pid "$ipf"
  stop_row
  local g cpu host others
  g=$(iperf_rates <"$clog" | awk '{printf "%.3f", $2/1000; exit}')
  cpu=$(pct_of "$t0" "$t1" "$w0" "$w1")
  host=$(echo "$h0 $h1" | awk -v n="$NCPU" '{d=$4-$2; printf "%.0f", (d>0)?($3-$1)/d*100*n:0}')
  others=$(pct_of "$o0" "$o1" "$w0" "$w1")
  [ -n "$g" ] || note="${note:+$note; }no result line from iperf -s"
  record "$row" push "$run" "$g" "" "$cpu" "$host" "$bg" "$hwm" "$others" "$note"
  say "$(printf '%-10s push run %s: %6s Gbit/s  cpu %s%%  host %s%%  bg %s%%%s' "$row" "$run" "${g:--}" "${cpu:--}" "$host" "$bg" "${note:+  ($note)}")"
}

run_ping() { # row
  local row=$1 slog=$LOGS/$row.ping.server.log plog=$LOGS/$row.ping.log note=""
  if ! start_row "$row" "$slog"; then record "$row" ping 1 "" "" "" "" "" "" "" "server did not start"; stop_row; return; fi
  local bg o0 o1 w0 w1; bg=$(wait_idle)
  o0=$(others_ticks); w0=$(date +%s.%N)
  timeout -s KILL $((PINGS / 100 + 20)) ip netns exec "$CLIENT_NS" ping -n -c "$PINGS" -i 0.002 -W 1 "$SERVER_IP" >"$plog" 2>&1 || note="ping exit $?"
  w1=$(date +%s.%N); o1=$(others_ticks)
  local hwm; hwm=$(hwm_kb "$SRV_PID")
  stop_row
  # median of the per-reply times, in microseconds; loss from the summary
  local med loss
  med=$(awk -F'time=' 'NF>1{split($2,a," "); print a[1]*1000}' "$plog" | sort -g | awk '{v[NR]=$1} END{if(NR) printf "%.0f", (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2}')
  loss=$(grep -o '[0-9.]*% packet loss' "$plog" | cut -d'%' -f1 || true)
  [ "${loss:-0}" = 0 ] || note="${note:+$note; }${loss}% loss"
  # ping cells: c2s column = RTT median in microseconds
  local others; others=$(pct_of "$o0" "$o1" "$w0" "$w1")
  record "$row" ping 1 "$med" "" "" "" "$bg" "$hwm" "$others" "$note"
  say "$(printf '%-10s ping: median %s us%s  bg %s%%  others %s%%' "$row" "${med:--}" "${note:+ ($note)}" "$bg" "${others:--}")"
}

# ---- main ---------------------------------------------------------------------------------------------------
SEL=()
for r in ${ROWS//,/ }; do
  case $r in
    kernel | ours | ours-nooff | ours-nopoll) SEL+=("$r") ;;
    lwip) build_lwip; if [ -n "$LWIP_BIN" ]; then SEL+=(lwip); else say "$LWIP_NOTE"; fi ;;
    c-sink | c-push) build_pump; if [ -n "$PUMP_BIN" ]; then SEL+=("$r"); else say "$PUMP_NOTE"; fi ;;
    *) say "unknown row $r (kernel, ours, ours-nooff, ours-nopoll, lwip, c-sink, c-push)"; exit 2 ;;
  esac
done
[ ${#SEL[@]} -gt 0 ] || { say "no rows to run"; exit 2; }

if [ "$PART" = attack ]; then MODES="" P64=0 PINGS=0; fi
say "part: $PART; rows: ${SEL[*]}; modes: ${MODES:-none}; $RUNS run(s) x $SECS s; logs in $LOGS; load average at start: $LOAD_START"
for mode in ${MODES//,/ }; do
  case $mode in c | p4 | r) ;; *) say "unknown mode $mode (c, p4, r)"; exit 2 ;; esac
  for i in $(seq "$RUNS"); do
    for row in "${SEL[@]}"; do
      # the C sink cannot connect back (-r), the C pusher only pushes (below)
      case $row:$mode in c-sink:r | c-push:*) continue ;; esac
      run_iperf "$row" "$mode" "$i"
    done
  done
  # the C pusher beside -r (ours s2c), interleaved the same way
  if [ "$mode" = r ]; then
    case " ${SEL[*]} " in *" c-push "*) for i in $(seq "$RUNS"); do run_push c-push "$i"; done ;; esac
  fi
done
if [ "$P64" = 1 ]; then
  for i in $(seq "$P64_RUNS"); do
    for row in "${SEL[@]}"; do
      case $row in c-push) continue ;; esac
      run_iperf "$row" p64 "$i"
    done
  done
fi
if [ "$PINGS" -gt 0 ]; then
  PING_ROWS=()
  for row in "${SEL[@]}"; do case $row in c-sink | c-push) ;; *) PING_ROWS+=("$row") ;; esac; done
  # the ping latency with and without busy polling, side by side, whenever ours is measured
  case " ${SEL[*]} " in *" ours "*) case " ${SEL[*]} " in *" ours-nopoll "*) ;; *) PING_ROWS+=(ours-nopoll) ;; esac ;; esac
  for row in "${PING_ROWS[@]}"; do run_ping "$row"; done
fi

if [ "$PART" != base ]; then
  # shellcheck source=scripts/bench-attack.sh
  . "$REPO/scripts/bench-attack.sh"
  run_attack_part
fi

END_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
export BENCH_META_START="$START_UTC" BENCH_META_END="$END_UTC" BENCH_META_LOAD_START="$LOAD_START" BENCH_META_LOAD_END="$LOAD_END"
export BENCH_META_RUNS="$RUNS" BENCH_META_SECS="$SECS" BENCH_META_PINGS="$PINGS" BENCH_META_IDLE_MAX="$IDLE_MAX"
export BENCH_META_MACHINE="$NCPU cpu ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
export BENCH_META_VERSIONS="node $(node -v), $(iperf -v 2>&1 | head -1 | cut -d'(' -f1 | sed 's/ *$//'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src native 2>/dev/null)" ] || echo ' + uncommitted or untracked files under src/ or native/ (dist/ was built from the working tree)')"
export BENCH_META_TXQLEN="${TXQLEN:-default (1000)}" BENCH_META_LWIP_NOTE="$LWIP_NOTE" BENCH_META_NOTE="${BENCH_NOTE:-}"
# the congestion control the client ran with: -Z, or what a new namespace gets (a throwaway one shows it)
if [ -n "${BENCH_CC:-}" ]; then
  BENCH_META_CC="$BENCH_CC (iperf -Z)"
else
  ns_add "$TAG-cc"
  BENCH_META_CC="$(ip netns exec "$TAG-cc" sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo "?") (the namespace default)"
  ns_del_all
fi
export BENCH_META_CC
export BENCH_META_PUMP_NOTE="$PUMP_NOTE" BENCH_META_P64_RUNS="$P64_RUNS"
export BENCH_META_QUICK="${BENCH_QUICK:-0}"
OUT_MD=""
if [ "${BENCH_NO_SAVE:-0}" != 1 ]; then
  mkdir -p bench/results
  OUT_MD=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
  if [ "${BENCH_QUICK:-0}" = 1 ]; then OUT_MD=$OUT_MD-quick.md; else OUT_MD=$OUT_MD.md; fi
fi
node bench/report.mjs "$RAW" ${OUT_MD:+"$OUT_MD"}
if [ -n "$OUT_MD" ]; then say "written to $OUT_MD"; fi
if [ -n "$OUT_MD" ] && [ -f "${OUT_MD%.md}.svg" ]; then say "chart: ${OUT_MD%.md}.svg"; fi
say "raw per-run data and logs: $WORK (elapsed $(( $(date +%s) - START_S )) s)"
