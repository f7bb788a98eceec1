/** The -d dump reader the attack tests rely on: each counter name found where the dump prints it. */
import { describe, expect, it } from "vitest"
import { counter, drops, dumps, iperf2Tcp, iperf2Udp, pingResult } from "./index.js"

const DUMP = [
  "--- statistics at 1.0 s ---",
  "ipv4: in 1, out 0, delivered 0, drops 0, checksum errors 0",
  "tcp: connections 0, backlog drops 0, drops 0",
  "iperf: tcp sessions 0 (active 0), udp streams 0",
  // the interval block before each totals block (-d MS,totals): not part of any dump the reader returns
  "--- interval 1.0-1.5 s ---",
  "rates: in 2 frames/s 0.01 Mbit/s, out 0 frames/s 0.00 Mbit/s, drops 6/s; tcp segments in 2/s out 4/s, retransmits 0/s",
  "now: tcp connections 99 (established 98, half-open 97, time-wait 96), memory committed 0 B; queued: arp 0 frames, tcp accept 0",
  "drops: ipv4 MartianSource 4/s, tcp PerSourceLimit 18/s",
  "--- statistics at 1.5 s ---",
  "ipv4: in 1, out 0, delivered 0, drops 3 (MartianSource 2, FragmentOverlap 1), checksum errors 0, fragments in 64 out 0",
  "tcp: active opens 0, passive opens 3, established 0, connections 1, segments in 1 out 2, retransmits 0, resets in 0 out 4, " +
    "half-open 2, time-wait 3 (recycled 0), syn cookies sent 17 ok 5, table full 6, per-source refusals 7, memory pressure 0, " +
    "backlog drops 8, drops 9 (PerSourceLimit 9)",
  "iperf: tcp sessions 0 (active 0), bytes in 0 out 0, udp streams 4, udp bytes in 0, udp send streams 1, udp bytes out 10, errors 0",
  "--- statistics at 2.0 s ---",
  "ipv4: in 1" // incomplete: no tcp/iperf line yet
].join("\n")

describe("attack support: the -d dump reader", () => {
  it("reads complete dumps only, each counter and drop reason by name; absent counters are undefined, absent reasons 0", () => {
    const ds = dumps(DUMP)
    expect(ds.map((d) => d.uptimeS)).toEqual([1, 1.5])
    const d = ds[1]!
    expect(
      [
        counter(d, "tcpConnections"), counter(d, "synCookiesSent"), counter(d, "synCookiesOk"), counter(d, "tcpTableFull"),
        counter(d, "tcpPerSourceRefusals"), counter(d, "tcpHalfOpen"), counter(d, "tcpTimeWait"), counter(d, "tcpBacklogDrops"),
        counter(d, "tcpResetsOut"), counter(d, "udpStreams"), counter(d, "udpSendStreams"), counter(d, "ipv4FragmentsIn")
      ]
    ).toEqual([1, 17, 5, 6, 7, 2, 3, 8, 4, 4, 1, 64])
    expect([drops(d, "perSourceLimit"), drops(d, "martianSource"), drops(d, "fragmentOverlap"), drops(d, "badCookie")]).toEqual([9, 2, 1, 0])
    expect(counter(ds[0]!, "synCookiesSent")).toBeUndefined()
    expect(drops(ds[0]!, "martianSource")).toBe(0)
  })

  it("judges client output: iperf 2 -e connect time and rate, UDP Server Report, ping counts", () => {
    const tcp =
      "[  1] local 198.51.100.1%tap port 33070 connected with 198.51.100.2 port 5001 (sock=3) (icwnd/mss/irtt=14/1448/6393) (ct=7.23 ms) on 2026-12-06\n" +
      "[ ID] Interval            Transfer    Bandwidth       Write/Err  Rtry     Cwnd/RTT(var)        NetPwr\n" +
      "[  1] 0.0000-1.0146 sec   775 MBytes  6.41 Gbits/sec  6199/0          1     1094K/413(358) us  1939045\n"
    expect(iperf2Tcp(tcp)).toEqual({ connectMs: 7.23, mbits: 6410 })
    expect(iperf2Tcp("Client connecting to 198.51.100.2, TCP port 5001\n")).toEqual({ connectMs: undefined, mbits: undefined })
    const udp = "[  1] Server Report:\n[ ID] Interval       Transfer     Bandwidth        Jitter   Lost/Total Datagrams\n[  1] 0.0000-1.0203 sec   134 KBytes  1.07 Mbits/sec   0.956 ms 0/93 (0%)\n"
    expect(iperf2Udp(udp)).toEqual({ serverReport: true, lost: 0, total: 93 })
    expect(iperf2Udp("[  3] WARNING: did not receive ack of last datagram after 10 tries.\n").serverReport).toBe(false)
    expect(pingResult("3 packets transmitted, 2 received, 33.3333% packet loss, time 409ms")).toEqual({ transmitted: 3, received: 2 })
  })
})
