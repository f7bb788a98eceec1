/**
 * `-J`/`--json` for iperf3 tests: one document per finished test in the layout `iperf3 -s -J` 3.12 prints
 * (test/fixtures/iperf-console/iperf3-*-J.server.txt): `start` (connected streams, version, timestamp, the accepted
 * control connection, cookie, test_start), `intervals` (per stream and `sum`), `end` (per stream sender/receiver or
 * `udp`, sum_sent/sum_received, `sum` for UDP, the `_bidir_reverse` sums for --bidir, cpu_utilization_percent, the
 * congestion control). A test that ended early gets the same document with an `error` string, as 3.12's does.
 *
 * Left out, because our stack keeps no such numbers: TCP_INFO's rtt/rttvar/snd_wnd/pmtu in interval streams and
 * max_snd_wnd/max_rtt/min_rtt/mean_rtt in end streams (max_snd_cwnd is ours). `socket` carries our stream id (the
 * real server's is its file descriptor). `sock_bufsize`, `sndbuf_actual`, `rcvbuf_actual` and `tcp_mss_default` are
 * ours: 0, our send buffer, our receive window, 0. Pure: the shell gives the wall-clock time and host facts.
 */
import type { IntervalStream, StreamState, Test } from "./session.js"

export interface DocumentInfo {
  /** Wall-clock ms when the test's streams started (`start.timestamp`). */
  readonly startedEpochMs: number
  readonly systemInfo: string
  readonly sendBufBytes: number
  readonly recvBufBytes: number
  /** The congestion control our TCP runs (`sender_tcp_congestion` / `receiver_tcp_congestion`). */
  readonly congestion: string
  /** Why the test ended early, if it did. */
  readonly error?: string
}

type Json = Record<string, unknown>

const rateOf = (bytes: number, seconds: number): number => (seconds > 0 ? (bytes * 8) / seconds : 0)
const pct = (lost: number, packets: number): number => (packets > 0 ? (100 * lost) / packets : 0)

/** `Mon, 07 Dec 2026 04:55:21 GMT`, as 3.12 prints `start.timestamp.time`. */
export const httpDate = (epochMs: number): string => new Date(epochMs).toUTCString()

const interval = (st: IntervalStream, startS: number, endS: number, udp: boolean): Json => {
  const seconds = endS - startS
  const base: Json = { socket: st.id, start: startS, end: endS, seconds, bytes: st.bytes, bits_per_second: rateOf(st.bytes, seconds) }
  if (!udp && st.sender) Object.assign(base, { retransmits: st.retransmits ?? 0, snd_cwnd: st.cwnd ?? 0 })
  if (udp && !st.sender) {
    Object.assign(base, {
      jitter_ms: (st.jitterS ?? 0) * 1000, lost_packets: st.lost ?? 0, packets: st.packets ?? 0, lost_percent: pct(st.lost ?? 0, st.packets ?? 0)
    })
  }
  if (udp && st.sender) Object.assign(base, { packets: st.packets ?? 0 })
  return { ...base, omitted: false, sender: st.sender }
}

const intervalSum = (ss: ReadonlyArray<IntervalStream>, startS: number, endS: number, udp: boolean, sender: boolean): Json => {
  const seconds = endS - startS
  let bytes = 0
  let retr = 0
  let lost = 0
  let packets = 0
  let jitter = 0
  for (const s of ss) {
    bytes += s.bytes
    retr += s.retransmits ?? 0
    lost += s.lost ?? 0
    packets += s.packets ?? 0
    jitter += s.jitterS ?? 0
  }
  const base: Json = { start: startS, end: endS, seconds, bytes, bits_per_second: rateOf(bytes, seconds) }
  if (!udp && sender) base["retransmits"] = retr
  if (udp) {
    Object.assign(base, {
      jitter_ms: ss.length > 0 ? (jitter / ss.length) * 1000 : 0, lost_packets: lost, packets, lost_percent: pct(lost, packets)
    })
  }
  return { ...base, omitted: false, sender }
}

/** The document of test `t` (its streams stopped: after TEST_END, or ended early). */
export const testDocument = (t: Test, info: DocumentInfo): Json => {
  const p = t.params
  const udp = p?.protocol === "udp"
  const bidir = p?.bidirectional === true
  const from = t.omitDone ? t.omitEndMs : t.startMs
  const seconds = Math.max(0, t.endMs - from) / 1000
  const start: Json = {
    connected: t.streams.map((st) => ({
      socket: st.id, local_host: st.peer.local, local_port: st.peer.localPort, remote_host: st.peer.remote, remote_port: st.peer.remotePort
    })),
    version: "iperf 3.12 (miniperf)",
    system_info: info.systemInfo,
    sock_bufsize: 0,
    sndbuf_actual: info.sendBufBytes,
    rcvbuf_actual: info.recvBufBytes,
    timestamp: { time: httpDate(info.startedEpochMs), timesecs: Math.floor(info.startedEpochMs / 1000) },
    accepted_connection: { host: t.peer.remote, port: t.peer.remotePort },
    cookie: t.cookie,
    ...(udp ? {} : { tcp_mss_default: 0 }),
    target_bitrate: p?.bandwidth ?? 0,
    ...(p === undefined
      ? {}
      : {
          test_start: {
            protocol: udp ? "UDP" : "TCP", num_streams: p.parallel, blksize: p.len, omit: p.omitS, duration: p.timeS, bytes: p.bytes,
            blocks: p.blocks, reverse: p.reverse ? 1 : 0, tos: 0, target_bitrate: p.bandwidth
          }
        })
  }
  const intervals = t.intervals.map((r) => {
    const fwd = r.streams.filter((s) => (bidir ? !s.sender : true))
    const rev = r.streams.filter((s) => s.sender)
    const fwdSender = bidir ? false : r.streams.some((s) => s.sender)
    return {
      streams: r.streams.map((s) => interval(s, r.startS, r.endS, udp)),
      sum: intervalSum(fwd, r.startS, r.endS, udp, fwdSender),
      ...(bidir ? { sum_bidir_reverse: intervalSum(rev, r.startS, r.endS, udp, true) } : {})
    }
  })
  if (p === undefined || t.endMs === 0) {
    return { start, intervals, end: {}, ...(info.error !== undefined ? { error: info.error } : {}) }
  }
  const counted = (st: StreamState): number => st.bytes - (t.omitDone ? st.omitBytes : 0)
  const retrOf = (st: StreamState): number => st.retransmits - (t.omitDone ? st.omitRetransmits : 0)
  const side = (st: StreamState, measured: boolean): Json => {
    const bytes = measured ? counted(st) : 0
    const j: Json = { socket: st.id, start: 0, end: seconds, seconds, bytes, bits_per_second: rateOf(bytes, seconds) }
    if (measured && st.sender) Object.assign(j, { retransmits: retrOf(st), max_snd_cwnd: t.maxCwnd.get(st.id) ?? st.cwnd })
    return { ...j, sender: st.sender }
  }
  const udpOf = (st: StreamState): Json => {
    const u = st.udp
    const packets = u?.packets ?? st.packetsSent
    const lost = u?.errors ?? 0
    const bytes = st.sender ? counted(st) : 0
    return {
      socket: st.id, start: 0, end: seconds, seconds, bytes, bits_per_second: rateOf(bytes, seconds), jitter_ms: (u?.jitterS ?? 0) * 1000,
      lost_packets: lost, packets, lost_percent: pct(lost, packets), out_of_order: u?.outOfOrder ?? 0, sender: st.sender
    }
  }
  /** sum_sent / sum_received of `ss`: the sending side's bytes are what a sender stream took, the receiving side's what arrived. */
  const sums = (ss: ReadonlyArray<StreamState>, sender: boolean): { sent: Json; received: Json } => {
    let sent = 0
    let received = 0
    let retr = 0
    let lost = 0
    let packets = 0
    let jitter = 0
    for (const st of ss) {
      if (st.sender) {
        sent += counted(st)
        retr += retrOf(st)
      } else received += counted(st)
      lost += st.udp?.errors ?? 0
      packets += st.udp?.packets ?? 0
      jitter += st.udp?.jitterS ?? 0
    }
    const one = (bytes: number, withRetr: boolean, u: boolean): Json => ({
      start: 0, end: seconds, seconds, bytes, bits_per_second: rateOf(bytes, seconds),
      ...(withRetr && !udp ? { retransmits: retr } : {}),
      ...(udp
        ? u
          ? { jitter_ms: ss.length > 0 ? (jitter / ss.length) * 1000 : 0, lost_packets: lost, packets, lost_percent: pct(lost, packets) }
          : { jitter_ms: 0, lost_packets: 0, packets: 0, lost_percent: 0 }
        : {}),
      sender
    })
    return { sent: one(sent, sender, false), received: one(received, false, !sender) }
  }
  const fwd = t.streams.filter((st) => (bidir ? !st.sender : true))
  const rev = t.streams.filter((st) => st.sender)
  const fwdSender = bidir ? false : t.streams.some((st) => st.sender)
  const f = sums(fwd, fwdSender)
  const end: Json = {
    streams: t.streams.map((st) => (udp ? { udp: udpOf(st) } : { sender: side(st, st.sender), receiver: side(st, !st.sender) })),
    ...(udp ? { sum: f.received["bytes"] !== 0 || !fwdSender ? f.received : f.sent } : {}),
    sum_sent: f.sent,
    sum_received: f.received,
    ...(bidir
      ? (() => {
          const r = sums(rev, true)
          return { sum_sent_bidir_reverse: r.sent, sum_received_bidir_reverse: r.received }
        })()
      : {}),
    cpu_utilization_percent: {
      host_total: t.cpu[0], host_user: t.cpu[1], host_system: t.cpu[2],
      // 3.12's server leaves the client's numbers at 0 in its own document (the captures show it)
      remote_total: 0, remote_user: 0, remote_system: 0
    },
    ...(udp ? {} : t.streams.some((st) => st.sender) ? { sender_tcp_congestion: info.congestion } : { receiver_tcp_congestion: info.congestion })
  }
  return { start, intervals, end, ...(info.error !== undefined ? { error: info.error } : {}) }
}
