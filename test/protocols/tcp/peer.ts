/**
 * Fixtures shared by the TCP machine tests: the two endpoints, their initial sequence numbers, an Output that records
 * what the machine sends (and copies each segment's payload, and what it delivers), and segments from the peer.
 */
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import { type SeqNum } from "../../../src/protocols/tcp/seq.js"
import * as W from "../../../src/protocols/tcp/wire.js"

export const A = 0xc6336401
export const B = 0xc6336402
/** Our side (the listener). */
export const L: Tcp.Endpoint = { addr: B, port: 80 }
/** The peer. */
export const P: Tcp.Endpoint = { addr: A, port: 49500 }
export const ISS = 1000
export const RISS = 5000
export const s = (n: number) => (n >>> 0) as SeqNum

export class Rec implements Tcp.Output {
  segs: W.TcpRepr[] = []
  payloads: Uint8Array[] = []
  delivered: number[] = []
  segment(t: Tcp.Tcb, r: W.TcpRepr): void {
    this.segs.push(r)
    const p = new Uint8Array(r.payloadLen)
    if (r.payloadLen > 0) Tcp.copyPayload(t, r.seq, r.payloadLen, p, 0)
    this.payloads.push(p)
  }
  deliver(_t: Tcp.Tcb, b: Uint8Array, start: number, end: number): void {
    for (let i = start; i < end; i++) this.delivered.push(b[i]!)
  }
  take(): W.TcpRepr[] {
    const x = this.segs
    this.segs = []
    return x
  }
}

/** A segment from the peer to us (ACK set, window 65535 unless overridden). */
export const peer = (p: Partial<W.TcpRepr>): W.TcpRepr =>
  W.make({ srcPort: P.port, dstPort: L.port, flags: W.ACK, window: 65535, ...p })

/** Feed a segment from the peer (its payload, or zeros of payloadLen) and return what the machine sent. */
export const input = (t: Tcp.Tcb, rec: Rec, now: number, r: W.TcpRepr, payload?: Uint8Array): W.TcpRepr[] => {
  const buf = payload ?? new Uint8Array(r.payloadLen)
  Tcp.input(t, { ...r, payloadLen: buf.length }, buf, 0, now, rec)
  return rec.take()
}

/** Poll the machine at `now` and return what it sent. */
export const poll = (t: Tcp.Tcb, rec: Rec, now: number): W.TcpRepr[] => {
  Tcp.poll(t, now, rec)
  return rec.take()
}

/** n bytes of a simple pattern. */
export const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)
