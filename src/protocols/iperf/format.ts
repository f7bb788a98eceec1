/**
 * iperf 2 (2.1.8) console report lines, so our server prints what `iperf -s` prints (iperf-wire.md §A.7):
 *
 * ```
 * [ ID] Interval       Transfer     Bandwidth
 * [  1] 0.0000-2.0005 sec  6.29 GBytes  27.0 Gbits/sec
 * [ *2] 0.0000-2.0003 sec   100 KBytes  66.1 Mbits/sec          (a stream the server sends: -r/-d/-R)
 * [SUM] 0.0000-0.0014 sec   200 KBytes  1.15 Gbits/sec
 * [ ID] Interval       Transfer     Bandwidth        Jitter   Lost/Total Datagrams
 * [  1] 0.0000-0.3146 sec  43.1 KBytes  1.12 Mbits/sec   0.008 ms 0/30 (0%)
 * ```
 * Units as iperf's `byte_snprintf` with the default format 'a': transfer in adaptive Bytes/KBytes/MBytes/GBytes
 * (base 1024), bandwidth in adaptive bits/Kbits/Mbits/Gbits per second (base 1000); 4 significant places
 * ("%4.3f" below 0.9995, "%4.2f" below 9.995, "%4.1f" below 99.95, else "%4.0f"). Times print as "%4.4f"
 * (the Debian build has fast sampling). An interval ending before 0.1 ms reports 0 bandwidth, as iperf does.
 * Pure functions of numbers: the shell supplies byte counts and seconds.
 */

import { formatIp, type IpAddress } from "../ipAddress.js"

/**
 * iperf's `SMALLEST_INTERVAL_SEC` for fast-sampling builds (Debian's 2.1.8 is one: it printed
 * `0.0000-0.0001 sec   100 KBytes  0.000 bits/sec` but a rate for 0.0001 s and up); other builds use 0.005.
 */
export const SMALLEST_INTERVAL_S = 0.0001

/**
 * The one place a printed peer or local address is made, for every iperf 2 and iperf3 console line (and the CSV and
 * JSON results): IPv4 dotted, IPv6 in RFC 5952 form and bare, as the real servers print it in these lines (an
 * `address:port` log line brackets IPv6 through ipAddress.formatEndpoint instead).
 */
export const formatHost = (a: IpAddress): string => formatIp(a)

/** The rule iperf 2 draws around its banners: 60 dashes. */
export const RULE = "-".repeat(60)

export const BW_HEADER = "[ ID] Interval       Transfer     Bandwidth"
export const UDP_HEADER = "[ ID] Interval       Transfer     Bandwidth        Jitter   Lost/Total Datagrams"

/**
 * A size as iperf prints a window or buffer (adaptive, base 1024, no trailing "s"): `128 KByte`, `1.00 MByte`.
 */
export const formatSize = (bytes: number): string => formatBytes(bytes).slice(0, -1)

/**
 * iperf 2's listening banner, for one protocol:
 * ```
 * ------------------------------------------------------------
 * Server listening on TCP port 5001
 * TCP window size: 1.00 MByte (default)
 * ------------------------------------------------------------
 * ```
 */
export const listeningBanner = (proto: "TCP" | "UDP", port: number, bufferBytes?: number): ReadonlyArray<string> => [
  RULE,
  `Server listening on ${proto} port ${port}`,
  ...(bufferBytes === undefined ? [] : [`${proto === "TCP" ? "TCP window" : "UDP buffer"} size: ${formatSize(bufferBytes)} (default)`]),
  RULE
]

/** The block the real server prints before it connects back (`-r`, `-d`). */
export const clientConnecting = (host: string, proto: "TCP" | "UDP", port: number, bufferBytes: number): ReadonlyArray<string> => [
  RULE,
  `Client connecting to ${host}, ${proto} port ${port}`,
  `${proto === "TCP" ? "TCP window" : "UDP buffer"} size: ${formatSize(bufferBytes)} (default)`,
  RULE
]

/**
 * `[  1] local 198.51.100.1 port 5001 connected with 198.51.100.2 port 44756`, `[ *2] ... (reverse)`. The real
 * server adds the kernel's `(icwnd/mss/irtt=14/1448/25)` from TCP_INFO; our stack has no such record, so we leave it
 * out rather than print numbers that mean something else.
 */
export const connectedWith = (
  id: number,
  reverse: boolean,
  local: string,
  localPort: number,
  remote: string,
  remotePort: number,
  tags: ReadonlyArray<string> = []
): string =>
  `${transferId(id, reverse)}local ${local} port ${localPort} connected with ${remote} port ${remotePort}` +
  tags.map((t) => ` ${t}`).join("")

const BYTE_LABELS = ["Byte", "KByte", "MByte", "GByte", "TByte", "PByte"] as const
const BIT_LABELS = ["bit", "Kbit", "Mbit", "Gbit", "Tbit", "Pbit"] as const

/** printf("%W.Pf") for finite x (JS toFixed; padded to width W). */
const fixed = (x: number, prec: number, width: number): string => x.toFixed(prec).padStart(width, " ")

const fourPlaces = (x: number, label: string): string => {
  const a = Math.abs(x)
  const s = a < 0.9995 ? fixed(x, 3, 4) : a < 9.995 ? fixed(x, 2, 4) : a < 99.95 ? fixed(x, 1, 4) : fixed(x, 0, 4)
  return `${s} ${label}`
}

/** Adaptive bytes, base 1024, with iperf's trailing "s": `1000 Bytes`, `43.1 KBytes`, `6.29 GBytes`. */
export const formatBytes = (bytes: number): string => {
  let v = Math.abs(bytes)
  let conv = 0
  while (v >= 1024 && conv < 5) {
    v /= 1024
    conv++
  }
  return fourPlaces(bytes / 1024 ** conv, BYTE_LABELS[conv]!) + "s"
}

/** Adaptive bit rate, base 1000, from bytes per second: `469 Kbits/sec`, `27.0 Gbits/sec`. */
export const formatBitsPerSec = (bytesPerSec: number): string => {
  const bits = Number.isFinite(bytesPerSec) ? bytesPerSec * 8 : 0
  let v = Math.abs(bits)
  let conv = 0
  while (v >= 1000 && conv < 5) {
    v /= 1000
    conv++
  }
  return fourPlaces(bits / 1000 ** conv, BIT_LABELS[conv]!) + "s/sec"
}

/** The id column without its trailing space, as in log lines: `[  1]`, `[ 12]`. */
export const idCol = (id: number): string => `[${String(id).padStart(3, " ")}]`

/** The id column: `[  1] `, `[ 12] `; a stream the server sends (`reverse`) prints `[ *1] ` (`[*12] ` from 10 on). */
export const transferId = (id: number, reverse = false): string => {
  if (!reverse) return `${idCol(id)} `
  return id < 10 ? `[ *${id}] ` : `[*${id}] `
}

/** Bandwidth as iperf computes it: bytes over the interval, 0 when the interval ends before 5 ms or is empty. */
const rate = (bytes: number, startS: number, endS: number): number =>
  endS < SMALLEST_INTERVAL_S || endS - startS <= 0 ? 0 : bytes / (endS - startS)

/** `[  1] 0.0000-2.0005 sec  6.29 GBytes  27.0 Gbits/sec` (no newline). */
export const formatInterval = (id: number, startS: number, endS: number, bytes: number, reverse = false): string =>
  `${transferId(id, reverse)}${startS.toFixed(4)}-${endS.toFixed(4)} sec  ${formatBytes(bytes)}  ${formatBitsPerSec(rate(bytes, startS, endS))}`

/** `[SUM] 0.0000-0.0014 sec   200 KBytes  1.15 Gbits/sec` */
export const formatSum = (startS: number, endS: number, bytes: number): string =>
  `[SUM] ${startS.toFixed(4)}-${endS.toFixed(4)} sec  ${formatBytes(bytes)}  ${formatBitsPerSec(rate(bytes, startS, endS))}`

/**
 * C's `%.Pg` for finite x (P ≥ 1): P significant digits, exponent form when the exponent is < -4 or ≥ P, trailing
 * zeros removed. iperf prints the loss percentage with `%.2g`: `0`, `3.3`, `50`, `1e+02`.
 */
export const formatG = (x: number, precision = 2): string => {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf"
  if (x === 0) return Object.is(x, -0) ? "-0" : "0"
  const p = Math.max(1, precision)
  const [mant, expStr] = x.toExponential(p - 1).split("e") as [string, string]
  const exp = Number(expStr)
  const strip = (s: string): string => (s.includes(".") ? s.replace(/\.?0+$/, "") : s)
  if (exp < -4 || exp >= p) {
    const e = Math.abs(exp)
    return `${strip(mant)}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`
  }
  return strip(x.toFixed(Math.max(0, p - 1 - exp)))
}

/** `[  1] 0.0000-0.3146 sec  43.1 KBytes  1.12 Mbits/sec   0.008 ms 0/30 (0%)` */
export const formatUdpInterval = (
  id: number,
  startS: number,
  endS: number,
  bytes: number,
  jitterS: number,
  lost: number,
  datagrams: number,
  reverse = false
): string => {
  const pct = datagrams === 0 ? Number.NaN : (100 * lost) / datagrams
  return (
    `${transferId(id, reverse)}${startS.toFixed(4)}-${endS.toFixed(4)} sec  ${formatBytes(bytes)}  ` +
    `${formatBitsPerSec(rate(bytes, startS, endS))}  ${fixed(jitterS * 1e3, 3, 6)} ms ${lost}/${datagrams} (${formatG(pct, 2)}%)`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// Machine-readable reports: `-y C` (CSV, as `iperf -s -y C` 2.1.8 prints it) and the JSON layout with the same fields
// ---------------------------------------------------------------------------------------------------------------

/** One report of one stream, an interval or the whole test: what the console, CSV and JSON lines are made from. */
export interface StreamReport {
  readonly id: number
  /** We send this stream (`[ *n]` on the console). */
  readonly sent: boolean
  readonly startS: number
  readonly endS: number
  readonly bytes: number
  /** Our end and the client's end of the stream (addresses already through formatHost). */
  readonly local: string
  readonly localPort: number
  readonly remote: string
  readonly remotePort: number
  /** The whole-test report of the stream (its last); otherwise an interval. */
  readonly total?: boolean
  /** A received UDP stream: its jitter (seconds), losses, datagrams and out-of-order count. */
  readonly udp?: { readonly jitterS: number; readonly lost: number; readonly datagrams: number; readonly outOfOrder: number }
}

/** The CSV timestamp, local time as `YYYYMMDDHHMMSS`. */
export const csvTimestamp = (epochMs: number): string => {
  const d = new Date(epochMs)
  const two = (n: number): string => String(n).padStart(2, "0")
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`
}

/** Bits per second as the CSV prints them: a whole number (truncated), 0 for an empty interval. */
export const csvBitsPerSec = (bytes: number, seconds: number): number => (seconds > 0 ? Math.trunc((bytes * 8) / seconds) : 0)

/** The column names of the CSV lines (and the keys of the JSON reports), in order; UDP lines have five more. */
export const CSV_FIELDS = [
  "timestamp", "source_address", "source_port", "destination_address", "destination_port", "transfer_id", "interval",
  "transferred_bytes", "bits_per_second"
] as const
export const CSV_UDP_FIELDS = ["jitter_ms", "lost_datagrams", "total_datagrams", "lost_percent", "out_of_order_datagrams"] as const

/** The sender's end first, as 2.1.8 prints it: the client for a stream we receive, we for a stream we send. */
const csvEnds = (r: StreamReport): readonly [string, number, string, number] =>
  r.sent ? [r.local, r.localPort, r.remote, r.remotePort] : [r.remote, r.remotePort, r.local, r.localPort]

/** The CSV values of a report, in CSV_FIELDS (+ CSV_UDP_FIELDS) order. */
export const csvValues = (epochMs: number, r: StreamReport): ReadonlyArray<string | number> => {
  const [sa, sp, da, dp] = csvEnds(r)
  const base = [
    csvTimestamp(epochMs), sa, sp, da, dp, r.id, `${r.startS.toFixed(1)}-${r.endS.toFixed(1)}`, r.bytes, csvBitsPerSec(r.bytes, r.endS - r.startS)
  ]
  if (r.udp === undefined) return base
  const u = r.udp
  return [...base, (u.jitterS * 1000).toFixed(3), u.lost, u.datagrams, (u.datagrams > 0 ? (100 * u.lost) / u.datagrams : 0).toFixed(3), u.outOfOrder]
}

/**
 * `-y C`: `20261207045512,198.51.100.2,33938,198.51.100.1,5001,1,0.0-1.0,581220252,4649762016` (TCP), with
 * `,jitter_ms,lost,total,lost_percent,out_of_order` after it for a received UDP stream
 * (`...,0.0-2.0,267540,1059901,0.007,0,182,0.000,0`).
 */
export const csvLine = (epochMs: number, r: StreamReport): string => csvValues(epochMs, r).join(",")

/** The CSV fields of a report as a JSON object (same names as CSV_FIELDS; numbers stay numbers). */
export const jsonFields = (epochMs: number, r: StreamReport): Record<string, string | number> => {
  const v = csvValues(epochMs, r)
  const names: ReadonlyArray<string> = r.udp === undefined ? CSV_FIELDS : [...CSV_FIELDS, ...CSV_UDP_FIELDS]
  const o: Record<string, string | number> = {}
  names.forEach((n, i) => {
    const x = v[i]!
    o[n] = n === "timestamp" || n === "source_address" || n === "destination_address" || n === "interval" ? String(x) : Number(x)
  })
  return o
}

/**
 * `-J` for an iperf 2 stream: one document when the stream ends, its fields named as the `-y C` columns:
 * `{"protocol":"TCP","transfer_id":1,"source_address":...,"intervals":[{...},...],"total":{...}}`, where every interval
 * and the total carry `timestamp`, `interval`, `transferred_bytes`, `bits_per_second` (and the five UDP columns
 * for a received UDP stream). Documented in the README.
 */
export const jsonDocument = (
  total: { readonly epochMs: number; readonly r: StreamReport },
  intervals: ReadonlyArray<{ readonly epochMs: number; readonly r: StreamReport }>
): Record<string, unknown> => {
  const per = (x: { readonly epochMs: number; readonly r: StreamReport }) => {
    const { source_address: _a, source_port: _b, destination_address: _c, destination_port: _d, transfer_id: _e, ...rest } = jsonFields(x.epochMs, x.r)
    return rest
  }
  const head = jsonFields(total.epochMs, total.r)
  return {
    protocol: total.r.udp === undefined && !intervals.some((i) => i.r.udp !== undefined) ? "TCP" : "UDP",
    transfer_id: head["transfer_id"],
    source_address: head["source_address"],
    source_port: head["source_port"],
    destination_address: head["destination_address"],
    destination_port: head["destination_port"],
    intervals: intervals.map(per),
    total: per(total)
  }
}
