/**
 * iperf3 (3.12) UDP streams (iperf-wire.md §C.4, row 17): the 4-byte connect handshake, the datagram header, the
 * receiver's accounting (as 3.12's iperf_udp_recv) and the sender's pacing. Pure code: no Effect, no IO, no clock.
 *
 * Datagram: 0..3 send seconds, 4..7 microseconds, 8..11 sequence (32-bit, from 1), or 8..15 with `udp_counters_64bit`;
 * then filler up to the block size. All big-endian.
 */
import { setU32, u32 } from "../bytes.js"

/** The client's "9876" (0x36373839 stored little-endian) and our "6789" reply. */
export const CONNECT_LEN = 4
export const CONNECT_REPLY = Uint8Array.of(0x36, 0x37, 0x38, 0x39)

export const headerLen = (counters64: boolean): number => (counters64 ? 16 : 12)

/**
 * A connect datagram: 4 bytes. The 3.12 server does not look at them; we take any 4-byte datagram from a new peer
 * while streams are awaited (data datagrams are at least 12 bytes, so they cannot be mistaken for one).
 */
export const isConnect = (payload: Uint8Array): boolean => payload.length === CONNECT_LEN

export interface UdpRecv {
  bytes: number
  /** Highest sequence seen (iperf3's packet_count). */
  packets: number
  /** Lost datagrams (cnt_error), lowered again by late arrivals. */
  errors: number
  outOfOrder: number
  /** Seconds (RFC 1889 estimator). */
  jitterS: number
  prevTransitS: number
  first: boolean
  /** Datagrams too short to carry the header. */
  runts: number
}

export const makeRecv = (): UdpRecv => ({ bytes: 0, packets: 0, errors: 0, outOfOrder: 0, jitterS: 0, prevTransitS: 0, first: true, runts: 0 })

/** Account one datagram that arrived at wall-clock `arrivalUs`. Never throws: a runt is counted and ignored. */
export const onDatagram = (r: UdpRecv, b: Uint8Array, arrivalUs: number, counters64: boolean): void => {
  if (b.length < headerLen(counters64)) {
    r.runts++
    return
  }
  r.bytes += b.length
  const sec = u32(b, 0)
  const usec = u32(b, 4)
  const seq = counters64 ? u32(b, 8) * 4294967296 + u32(b, 12) : u32(b, 8)
  if (seq >= r.packets + 1) {
    if (seq > r.packets + 1) r.errors += seq - 1 - r.packets
    r.packets = seq
  } else {
    r.outOfOrder++
    if (r.errors > 0) r.errors--
  }
  const transit = (arrivalUs - (sec * 1e6 + usec)) / 1e6
  if (r.first) {
    r.prevTransitS = transit
    r.first = false
  }
  const d = Math.abs(transit - r.prevTransitS)
  r.prevTransitS = transit
  r.jitterS += (d - r.jitterS) / 16
}

/** Write the header of datagram `seq` into `b` (the rest of `b` is left as it is). */
export const stamp = (b: Uint8Array, seq: number, wallUs: number, counters64: boolean): void => {
  const sec = Math.floor(wallUs / 1e6)
  setU32(b, 0, sec >>> 0)
  setU32(b, 4, Math.floor(wallUs - sec * 1e6) >>> 0)
  if (counters64) {
    setU32(b, 8, Math.floor(seq / 4294967296) >>> 0)
    setU32(b, 12, seq >>> 0)
  } else setU32(b, 8, seq >>> 0)
}

/** At most this many datagrams per wake-up, so a late wake-up cannot turn into an unbounded burst. */
export const MAX_BURST = 64

/**
 * Datagrams of `len` bytes due by `nowMs` for a stream paced to `rateBps` since `startMs`, `sent` already sent;
 * capped at MAX_BURST (a sender that falls behind catches up over several wake-ups, never in one burst).
 */
export const due = (rateBps: number, len: number, startMs: number, nowMs: number, sent: number): number => {
  if (rateBps <= 0) return MAX_BURST
  const allowed = Math.floor((rateBps * Math.max(0, nowMs - startMs)) / 1000 / (8 * len)) + 1
  return Math.max(0, Math.min(MAX_BURST, allowed - sent))
}

/** Milliseconds until the next datagram is due (at least 1: the shell's sleep granularity). */
export const sleepMs = (rateBps: number, len: number, startMs: number, nowMs: number, sent: number): number => {
  if (rateBps <= 0) return 1
  const nextAt = startMs + (sent * 8 * len * 1000) / rateBps
  return Math.max(1, Math.ceil(nextAt - nowMs))
}
