#!/bin/bash
# What ONE spoofed iperf 2 UDP request datagram makes a server send (design.md §7): ours (dist/main.js on a TAP)
# and the real `iperf -s` 2.1.8 (kernel, veth). Run as root from the repository. Namespaces are private, RFC 5737
# addresses only, removed on exit. The forged source 198.51.100.50 is a host that silently drops (a static
# neighbour entry points at a MAC nobody answers for), so nothing verifies the path and no ICMP comes back.
# Usage: scripts/reflection-measure.sh [seconds to watch, default 12]
set -u
WATCH=${1:-12}
PY=/usr/bin/python3
TAG=$$
NS_OURS=mpx-refl-$TAG-o; NS_SRV=mpx-refl-$TAG-s; NS_ATK=mpx-refl-$TAG-a
TAP=trefl$TAG; VS=vrs$TAG; VA=vra$TAG
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.3; for n in $NS_OURS $NS_SRV $NS_ATK; do ip netns del $n 2>/dev/null; done; }
trap cleanup EXIT
OUT=$(mktemp -d)

# one datagram as the 2.1.8 client builds it: 16-byte prefix (seq 1), 60-byte header, zeros, digits; -t 4 -b 20M
craft() { # $1 = flags, $2 = upper flags
  $PY - "$1" "$2" <<'PYEOF'
import struct, sys
flags = int(sys.argv[1], 16); upper = int(sys.argv[2], 16)
pre = struct.pack(">IIII", 1, 0, 0, 0)
hdr = struct.pack(">IiIIIi", flags, 1, 5001, 0, 0, -400) + struct.pack(">IIHHIIHHII", 0, 0, upper, 0, 0x00020001, 0x00080003, 0, 0, 20971520, 0) + b"\0"*4
body = pre + hdr
body += b"\0" * (160 - len(body))
body += bytes(0x30 + (i % 10) for i in range(160, 1470))
sys.stdout.buffer.write(body)
PYEOF
}
send() { # $1 netns $2 iface $3 dst mac $4 payload file
  ip netns exec "$1" $PY - "$2" "$3" "$4" <<'PYEOF' >/dev/null 2>&1
import sys
from scapy.all import Ether, IP, UDP, Raw, sendp
iface, mac, f = sys.argv[1], sys.argv[2], sys.argv[3]
sendp(Ether(dst=mac)/IP(src="198.51.100.50", dst="198.51.100.2")/UDP(sport=40000, dport=5001)/Raw(open(f, "rb").read()), iface=iface, verbose=False)
PYEOF
}
count() { # pcap -> "datagrams bytes" sent to the forged host
  tshark -r "$1" -Y "ip.src==198.51.100.2 && ip.dst==198.51.100.50 && udp" -T fields -e udp.length 2>/dev/null | awk '{n++; b+=$1-8} END {printf "%d %d\n", n, b}'
}

for mode in d r R; do
  case $mode in d) F=C8010099; U=0;; r) F=C8010098; U=0;; R) F=6C010098; U=0400;; esac
  craft $F $U > $OUT/$mode.bin
done

# --- ours --------------------------------------------------------------------------------------------
for mode in d r R; do
  ip netns add $NS_OURS; ip -n $NS_OURS link set lo up
  ip netns exec $NS_OURS node dist/main.js --tap $TAP -i 198.51.100.2/24 --mac 02:00:00:00:00:02 -a 02:00:00:00:00:50/198.51.100.50 > $OUT/ours-$mode.log 2>&1 &
  SP=$!; PIDS+=($SP)
  for i in $(seq 50); do ip -n $NS_OURS link show $TAP >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n $NS_OURS addr add 198.51.100.1/24 dev $TAP; ip -n $NS_OURS link set $TAP up
  sleep 1.5
  ip netns exec $NS_OURS tcpdump -i $TAP -s 64 -w $OUT/ours-$mode.pcap udp >/dev/null 2>&1 & TP=$!; PIDS+=($TP)
  sleep 1
  send $NS_OURS $TAP 02:00:00:00:00:02 $OUT/$mode.bin
  sleep $WATCH
  kill $TP; sleep 0.5; kill $SP; wait $SP 2>/dev/null
  echo "ours -u -$mode: $(count $OUT/ours-$mode.pcap)"
  ip netns del $NS_OURS
done

# --- the real iperf -s 2.1.8 ---------------------------------------------------------------------------
for mode in d r R; do
  ip netns add $NS_SRV; ip netns add $NS_ATK
  ip -n $NS_SRV link set lo up; ip -n $NS_ATK link set lo up
  ip link add $VS netns $NS_SRV type veth peer name $VA netns $NS_ATK
  ip -n $NS_SRV addr add 198.51.100.2/24 dev $VS; ip -n $NS_SRV link set $VS up
  ip -n $NS_ATK addr add 198.51.100.1/24 dev $VA; ip -n $NS_ATK link set $VA up
  ip -n $NS_SRV neigh add 198.51.100.50 lladdr 02:00:00:00:00:50 dev $VS nud permanent
  MAC=$(ip -n $NS_SRV -o link show $VS | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  ip netns exec $NS_SRV iperf -s -u > $OUT/real-$mode.log 2>&1 & SP=$!; PIDS+=($SP)
  sleep 1
  ip netns exec $NS_ATK tcpdump -i $VA -s 64 -w $OUT/real-$mode.pcap udp >/dev/null 2>&1 & TP=$!; PIDS+=($TP)
  sleep 1
  send $NS_ATK $VA $MAC $OUT/$mode.bin
  sleep $WATCH
  kill $TP; sleep 0.5; kill $SP; wait $SP 2>/dev/null
  echo "real iperf -s -u -$mode: $(count $OUT/real-$mode.pcap)"
  ip netns del $NS_SRV; ip netns del $NS_ATK
done
echo "logs and captures in $OUT"
