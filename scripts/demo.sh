#!/usr/bin/env bash
# Quick start: install what is missing, build, then run our server on a TAP in a private network
# namespace and point the real ping, iperf 2 and iperf3 clients at it. Needs root (namespaces, /dev/net/tun).
# Addresses are RFC 5737 documentation addresses; nothing leaves the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates a network namespace and a TAP device)" >&2; exit 1; }

missing=0
for c in iperf iperf3 ping ip make g++; do command -v "$c" >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 1 ]; then
  echo "== installing iperf, iperf3, ping, iproute2 and a compiler (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf iperf3 iputils-ping iproute2 make g++ python3 >/dev/null
fi
if [ ! -f build/Release/tap.node ] || [ ! -d node_modules/effect ]; then
  echo "== npm ci (builds the TAP addon)"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "== building"
npx tsc -p tsconfig.build.json

NS="mpdemo$$"
TAP="mpdt$$"
TAP=${TAP:0:15}
SRV=""
LOG=""
cleanup() {
  if [ -n "$SRV" ] && kill -0 "$SRV" 2>/dev/null; then kill -TERM "$SRV"; wait "$SRV" 2>/dev/null || true; fi
  ip netns del "$NS" 2>/dev/null || true
  [ -n "$LOG" ] && rm -f "$LOG"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

echo "== starting: miniperf --tap $TAP -i 198.51.100.2/24 --ip6 2001:db8::2/64 (inside namespace $NS)"
LOG=$(mktemp)
ip netns exec "$NS" node dist/main.js --tap "$TAP" -i 198.51.100.2/24 --ip6 2001:db8::2/64 "$@" > >(tee "$LOG") 2>&1 &
SRV=$!
for _ in $(seq 100); do ip -n "$NS" link show "$TAP" >/dev/null 2>&1 && break; sleep 0.05; done
ip -n "$NS" addr add 198.51.100.1/24 dev "$TAP"
# IPv6 on the TAP only (RFC 3849 documentation prefix; nodad: the kernel side need not wait for its own DAD)
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=0"
ip -n "$NS" -6 addr add 2001:db8::1/64 dev "$TAP" nodad
ip -n "$NS" link set "$TAP" up
for _ in $(seq 100); do grep -q "Entering main event loop" "$LOG" && break; sleep 0.05; done

echo "== ping -c 3 198.51.100.2"
ip netns exec "$NS" ping -c 3 -i 0.2 198.51.100.2
echo "== iperf -c 198.51.100.2 -t 3 -i 1"
ip netns exec "$NS" timeout -s KILL 20 iperf -c 198.51.100.2 -t 3 -i 1
echo "== iperf -c 198.51.100.2 -t 2 -r"
ip netns exec "$NS" timeout -s KILL 20 iperf -c 198.51.100.2 -t 2 -r
echo "== iperf -c 198.51.100.2 -u -t 2"
ip netns exec "$NS" timeout -s KILL 20 iperf -c 198.51.100.2 -u -t 2
echo "== iperf3 -c 198.51.100.2 -t 2"
ip netns exec "$NS" timeout -s KILL 20 iperf3 -c 198.51.100.2 -t 2
for _ in $(seq 100); do grep -q "IPv6 address 2001:db8::2/64 assigned" "$LOG" && break; sleep 0.05; done
echo "== ping -6 -c 3 2001:db8::2"
ip netns exec "$NS" ping -6 -c 3 -i 0.2 2001:db8::2
echo "== iperf -V -c 2001:db8::2 -t 2"
ip netns exec "$NS" timeout -s KILL 20 iperf -V -c 2001:db8::2 -t 2
echo "== stopping the server"
