/**
 * Console lines of our iperf3 server, in the real 3.12 server's formats (iperf_locale.c), with units as iperf's
 * (adaptive bytes base 1024, bits base 1000, four places: the same rules as iperf 2, so `../iperf/format.ts` is reused):
 *
 * ```
 * Accepted connection from 198.51.100.1, port 41234
 * [  1] local 198.51.100.2 port 5201 connected to 198.51.100.1 port 41236
 * [ ID] Interval           Transfer     Bitrate         Retr
 * [  1]   0.00-2.00   sec  2.62 GBytes  11.2 Gbits/sec                  receiver
 * [  3]   0.00-2.00   sec  2.62 GBytes  11.2 Gbits/sec    0             sender
 * [SUM]   0.00-2.00   sec  5.24 GBytes  22.5 Gbits/sec                  receiver
 * ```
 * With `--bidir` the id column carries the role, `[  1][RX-S]` / `[  3][TX-S]`. Pure functions of numbers.
 */
import { formatBitsPerSec, formatBytes, formatG } from "../iperf/format.js"

export const HEADER = "[ ID] Interval           Transfer     Bitrate"
export const HEADER_RETR = "[ ID] Interval           Transfer     Bitrate         Retr"
export const HEADER_BIDIR = "[ ID][Role] Interval           Transfer     Bitrate"
export const HEADER_RETR_BIDIR = "[ ID][Role] Interval           Transfer     Bitrate         Retr"
export const HEADER_UDP = "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams"
export const HEADER_UDP_BIDIR = "[ ID][Role] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams"
export const SEPARATOR = "- - - - - - - - - - - - - - - - - - - - - - - - -"
/** Interval lines of a stream the server sends on (TCP): the congestion window after the retransmits. */
export const HEADER_RETR_CWND = "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"
export const HEADER_RETR_CWND_BIDIR = "[ ID][Role] Interval           Transfer     Bitrate         Retr  Cwnd"
/** Interval lines of a UDP stream the server sends on. */
export const HEADER_UDP_SENDER = "[ ID] Interval           Transfer     Bitrate         Total Datagrams"
/** The rule around `Server listening on 5201 (test #1)`: 59 dashes. */
export const RULE = "-".repeat(59)

/** The block `iperf3 -s` prints at start and after every test. */
export const listening = (port: number, nextTest: number): ReadonlyArray<string> => [
  RULE,
  `Server listening on ${port} (test #${nextTest})`,
  RULE
]

export const accepted = (remote: string, port: number): string => `Accepted connection from ${remote}, port ${port}`

export const connected = (id: number, local: string, localPort: number, remote: string, remotePort: number): string =>
  `[${String(id).padStart(3)}] local ${local} port ${localPort} connected to ${remote} port ${remotePort}`

/** `%6.2f-%-6.2f sec`. */
const interval = (startS: number, endS: number): string => `${startS.toFixed(2).padStart(6)}-${endS.toFixed(2).padEnd(6)} sec`

const rate = (bytes: number, seconds: number): number => (seconds > 0 ? bytes / seconds : 0)

export interface SummaryLine {
  /** Stream id, or "SUM". */
  readonly id: number | "SUM"
  /** `--bidir` role column: "RX-S" or "TX-S"; absent otherwise. */
  readonly role?: "RX-S" | "TX-S"
  readonly startS: number
  readonly endS: number
  readonly bytes: number
  /** Shown for streams the server sent on (undefined hides the column). */
  readonly retransmits?: number
  /** An interval line leaves the side empty (the real lines end in the blanks before it). */
  readonly side: "sender" | "receiver" | ""
}

/** One summary line, as `report_bw_format` / `report_bw_retrans_format` / `report_sum_bw_format` print it. */
export const summary = (l: SummaryLine): string => {
  const id = l.id === "SUM" ? "[SUM]" : `[${String(l.id).padStart(3)}]`
  const role = l.role === undefined ? "" : `[${l.role}]`
  const head = `${id}${role} ${interval(l.startS, l.endS)}  ${formatBytes(l.bytes)}  ${formatBitsPerSec(rate(l.bytes, l.endS - l.startS))}`
  const tail = l.retransmits === undefined ? " ".repeat(18) : `  ${String(l.retransmits).padStart(3)}${" ".repeat(13)}`
  return `${head}${tail}${l.side}`
}

export interface UdpSummaryLine {
  readonly id: number | "SUM"
  readonly role?: "RX-S" | "TX-S"
  readonly startS: number
  readonly endS: number
  readonly bytes: number
  readonly jitterS: number
  readonly lost: number
  readonly packets: number
  readonly side: "sender" | "receiver" | ""
}

/** `report_bw_udp_format`: `[  1]   0.00-2.00   sec   256 KBytes  1.05 Mbits/sec  0.012 ms  0/181 (0%)  receiver`. */
export const udpSummary = (l: UdpSummaryLine): string => {
  const id = l.id === "SUM" ? "[SUM]" : `[${String(l.id).padStart(3)}]`
  const role = l.role === undefined ? "" : `[${l.role}]`
  const pct = l.packets > 0 ? (100 * l.lost) / l.packets : 0
  return (
    `${id}${role} ${interval(l.startS, l.endS)}  ${formatBytes(l.bytes)}  ${formatBitsPerSec(rate(l.bytes, l.endS - l.startS))}  ` +
    `${(l.jitterS * 1000).toFixed(3).padStart(5)} ms  ${l.lost}/${l.packets} (${formatG(pct, 2)}%)  ${l.side}`
  )
}

export interface CwndIntervalLine {
  readonly id: number
  readonly role?: "RX-S" | "TX-S"
  readonly startS: number
  readonly endS: number
  readonly bytes: number
  readonly retransmits: number
  readonly cwndBytes: number
}

/**
 * `report_bw_retrans_cwnd_format`, an interval line of a TCP stream the server sends on:
 * `[  5]   0.00-1.00   sec  1.34 GBytes  11.5 Gbits/sec    2    837 KBytes       ` (trailing blanks as printed).
 */
export const cwndInterval = (l: CwndIntervalLine): string => {
  const role = l.role === undefined ? "" : `[${l.role}]`
  return (
    `[${String(l.id).padStart(3)}]${role} ${interval(l.startS, l.endS)}  ${formatBytes(l.bytes)}  ` +
    `${formatBitsPerSec(rate(l.bytes, l.endS - l.startS))}  ${String(l.retransmits).padStart(3)}   ${formatBytes(l.cwndBytes)}       `
  )
}

/** An interval line of a UDP stream the server sends on: the datagrams of the interval. */
export const udpSenderInterval = (id: number | "SUM", startS: number, endS: number, bytes: number, packets: number, role?: "RX-S" | "TX-S"): string => {
  const head = id === "SUM" ? "[SUM]" : `[${String(id).padStart(3)}]`
  return (
    `${head}${role === undefined ? "" : `[${role}]`} ${interval(startS, endS)}  ${formatBytes(bytes)}  ` +
    `${formatBitsPerSec(rate(bytes, endS - startS))}  ${packets}  `
  )
}
