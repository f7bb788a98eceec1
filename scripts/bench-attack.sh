# shellcheck shell=bash
# The "under attack" part of `npm run bench` (sourced by scripts/bench.sh, which provides start_row, stop_row,
# wait_idle, hwm_kb, iperf_rates, stop_pid, say, SECS, SERVER_IP, CLIENT_NS, SRV_PID, LOGS, RAW, REPO).
# Alone: BENCH_PART=attack npm run bench. Design.md §7; the recipes are those of test/e2e/hostile.e2e.test.ts.
#
#   flood:  per row (kernel over veth, ours over the TAP), one fresh server: a single-stream `iperf -c -t SECS`
#           unflooded, then the same while `hping3 --flood -S -p 5001` runs (bounded by timeout -s KILL SECS+15, killed
#           by PID) with a `ping -i 0.02` beside it; peak RSS (VmHWM) of the server after the flood.
#   a, b, c: ours only, each on a fresh server: 1100 silent connections held (a), 1024 garbage iperf3 cookies (b),
#           300 SYNs from on-link sources that never answer ARP (c); then a real `iperf -c -e -t 1` (connect time as
#           the client measured it, `ct=`); peak RSS after the attack. Attackers use 198.51.100.3 (a second address
#           of the kernel side) or spoofed 198.51.100.100-249, all RFC 5737.
#
# Records (raw.tsv, 12th column: key=value extras): mode fl-base / fl (c2s = Gbit/s; extras ping_tx, ping_rx),
# atk-a / atk-b / atk-c (extras ct_ms, served, opened or sent, elapsed_s).

ATTACK_PY=$REPO/test/support/attack/attack.py
ATTACKER_IP=198.51.100.3
PY=/usr/bin/python3

record_x() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

BG_PID=""
bg_start() { # logfile cmd...: starts a command in the client namespace in the background; sets BG_PID (`ip netns exec`
  # execs the command, so it is the command's own PID); the EXIT trap stops it too
  local log=$1; shift
  ip netns exec "$CLIENT_NS" "$@" >"$log" 2>&1 &
  BG_PID=$!
  EXTRA_PIDS+=("$BG_PID")
}

ping_counts() { # ping log -> "tx rx"
  awk '/packets transmitted/{print $1, $4}' "$1" | head -1
}

run_flood() { # row
  local row=$1
  local slog=$LOGS/$row.flood.server.log note=""
  if ! start_row "$row" "$slog"; then record_x "$row" fl 1 "" "" "" "" "" "" "" "server did not start" ""; stop_row; return; fi
  local bg; bg=$(wait_idle)
  local blog=$LOGS/$row.fl-base.client.log flog=$LOGS/$row.fl.client.log plog=$LOGS/$row.fl.ping.log hlog=$LOGS/$row.fl.hping3.log
  timeout --foreground -s KILL $((SECS + 20)) ip netns exec "$CLIENT_NS" iperf -c "$SERVER_IP" -t "$SECS" -f m ${BENCH_CC:+-Z "$BENCH_CC"} >"$blog" 2>&1 || true
  local base; base=$(iperf_rates <"$blog" | awk '$1=="c2s"{printf "%.5f", $2/1000; exit}')
  record_x "$row" fl-base 1 "$base" "" "" "" "$bg" "$(hwm_kb "$SRV_PID")" "" "" ""
  local hp pp cp
  # the flooder is another host on the link (a second address of the client side: our SYN-ACKs reach its kernel,
  # which answers each with a RST, as a real host would); the stream is already running when the flood starts and
  # runs SECS + 1 s, the flood covers all but its first second
  local dev=$TAP; [ "$row" = kernel ] && dev=$VETH_C
  ip -n "$CLIENT_NS" addr add "$ATTACKER_IP/24" dev "$dev" 2>/dev/null || true
  timeout --foreground -s KILL $((SECS + 20)) ip netns exec "$CLIENT_NS" iperf -c "$SERVER_IP" -t $((SECS + 1)) -i 1 -f m ${BENCH_CC:+-Z "$BENCH_CC"} >"$flog" 2>&1 &
  cp=$!
  sleep 1
  bg_start "$hlog" timeout -s KILL $((SECS + 15)) hping3 --flood -q -S -a "$ATTACKER_IP" -p 5001 "$SERVER_IP"; hp=$BG_PID
  bg_start "$plog" ping -n -c $((SECS * 50 - 10)) -i 0.02 -W 1 "$SERVER_IP"; pp=$BG_PID
  wait "$cp" 2>/dev/null || true
  wait "$pp" 2>/dev/null || true
  kill -0 "$hp" 2>/dev/null || note="the flood ended before the client (hping3: $(tail -1 "$hlog"))"
  stop_pid "$hp"
  local hwm; hwm=$(hwm_kb "$SRV_PID")
  kill -0 "$SRV_PID" 2>/dev/null || note="${note:+$note; }server exited during the flood"
  stop_row
  # the stream's rate over the flooded seconds: interval lines 1.0-2.0 ... (the first second ran unflooded)
  local fl pc; fl=$(sed -n 's/.* \([0-9.]*\)-\([0-9.]*\) sec .* \([0-9.]*\) Mbits\/sec.*/\1 \2 \3/p' "$flog" |
    awk '{ d = $2 - $1 } d > 0.9 && d < 1.1 && $1 >= 1 { sum += $3 / 1000; k++ } END { if (k > 0) printf "%.5f", sum / k }')
  pc=$(ping_counts "$plog")
  [ -n "$fl" ] || note="${note:+$note; }no result line under flood"
  record_x "$row" fl 1 "$fl" "" "" "" "$bg" "$hwm" "" "$note" "ping_tx=${pc% *} ping_rx=${pc#* }"
  say "$(printf '%-10s flood: %s Gbit/s unflooded, %s Gbit/s during the SYN flood; ping %s; hwm %s MB%s' "$row" "${base:--}" "${fl:--}" \
    "${pc:-?}" "$(( ${hwm:-0} / 1024 ))" "${note:+  ($note)}")"
}

# a new real client after an attack: "ct_ms=... served=0|1 elapsed_s=..."
probe_client() { # log
  local log=$1 t0 t1
  t0=$(date +%s.%N)
  timeout --foreground -s KILL 15 ip netns exec "$CLIENT_NS" iperf -c "$SERVER_IP" -e -t 1 -f m >"$log" 2>&1 || true
  t1=$(date +%s.%N)
  local ct served=0
  ct=$(sed -n 's/.*(ct=\([0-9.]*\) ms).*/\1/p' "$log" | head -1)
  iperf_rates <"$log" | awk '$1=="c2s" && $2 > 0 {f=1} END{exit !f}' && served=1
  echo "ct_ms=${ct:--} served=$served elapsed_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
}

run_atk() { # a|b|c
  local k=$1 row=ours
  local slog=$LOGS/ours.atk-$k.server.log alog=$LOGS/ours.atk-$k.attack.log clog=$LOGS/ours.atk-$k.client.log note="" extra=""
  if ! start_row "$row" "$slog"; then record_x "$row" "atk-$k" 1 "" "" "" "" "" "" "" "server did not start" ""; stop_row; return; fi
  ip -n "$CLIENT_NS" addr add "$ATTACKER_IP/24" dev "$TAP"
  local bg ap=""; bg=$(wait_idle)
  case $k in
    a)
      bg_start "$alog" "$PY" "$ATTACK_PY" silent --src "$ATTACKER_IP" --count 1100 --window 128 --connect-timeout 2 --deadline 30 --hold 60
      ap=$BG_PID
      for _ in $(seq 400); do grep -q '^READY' "$alog" && break; kill -0 "$ap" 2>/dev/null || break; sleep 0.1; done
      extra="opened=$(sed -n 's/^READY opened=\([0-9]*\).*/\1/p' "$alog")"
      ;;
    b)
      timeout -s KILL 60 ip netns exec "$CLIENT_NS" "$PY" "$ATTACK_PY" cookies --src "$ATTACKER_IP" --count 1024 --deadline 40 >"$alog" 2>&1 || true
      extra="sent=$(sed -n 's/^RESULT sent=\([0-9]*\).*/\1/p' "$alog")"
      ;;
    c)
      timeout -s KILL 20 ip netns exec "$CLIENT_NS" "$PY" "$ATTACK_PY" synspoof --count 300 --src-range 100-249 --deadline 10 >"$alog" 2>&1 || true
      extra="sent=$(sed -n 's/^RESULT sent=\([0-9]*\).*/\1/p' "$alog")"
      sleep 0.2
      ;;
  esac
  extra="$extra $(probe_client "$clog")"
  [ -n "$ap" ] && stop_pid "$ap"
  local hwm; hwm=$(hwm_kb "$SRV_PID")
  kill -0 "$SRV_PID" 2>/dev/null || note="server exited during the attack"
  stop_row
  record_x "$row" "atk-$k" 1 "" "" "" "" "$bg" "$hwm" "" "$note" "$extra"
  say "$(printf 'ours attack %s: %s; hwm %s MB%s' "$k" "$extra" "$(( ${hwm:-0} / 1024 ))" "${note:+  ($note)}")"
}

run_attack_part() {
  command -v hping3 >/dev/null 2>&1 || { say "attack part skipped: hping3 missing (apt-get install hping3)"; return; }
  [ -x "$PY" ] || { say "attack part skipped: $PY missing"; return; }
  say "attack part: flood (kernel, ours), then attacks a, b, c on ours; $SECS s per client run"
  run_flood kernel
  run_flood ours
  local atks=${BENCH_ATTACKS:-a,b,c} k
  for k in ${atks//,/ }; do run_atk "$k"; done
}
