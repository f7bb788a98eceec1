/**
 * A pure two-Tcb harness: two machines exchanging real encoded segments (emit -> bytes -> parse with
 * checksum) through a deterministic channel with virtual time: seeded loss, duplication, reordering
 * (extra delay), a bandwidth bottleneck with a drop-tail queue. No wall clock, no IO.
 */
import { createHash, type Hash } from "node:crypto"
import * as Cs from "../../../src/protocols/checksum.js"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import * as W from "../../../src/protocols/tcp/wire.js"

export const mulberry32 = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Deterministic content: byte i of a stream with a given seed. */
export const streamBytes = (seed: number, offset: number, len: number): Uint8Array => {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i++) {
    const x = offset + i
    b[i] = (Math.imul(x ^ seed, 2654435761) >>> 24) ^ (x & 0xff)
  }
  return b
}

export interface LinkOpts {
  lossRate: number
  dupRate: number
  reorderRate: number
  delayMs: number
  /** Extra delay of a reordered segment. */
  reorderDelayMs: number
  bytesPerMs: number
  queueBytes: number
  /** Flip one random byte (the receiver must drop it on the checksum). */
  corruptRate?: number
  /** Extra uniform random delay in [0, jitterMs) per segment: reorders by itself (like SimLink's jitter). */
  jitterMs?: number
  /**
   * IP MTU (default: the sender's cfg.mss + 40). A segment whose IP packet would be larger is dropped
   * and counted in `oversize`, as the IP layer does with DF set; a TSO segment is measured per wire
   * segment (header + tcb.sndMss, the gso_size the shell uses).
   */
  mtu?: number
}

export interface RunOpts {
  seed: number
  link: LinkOpts
  cfgA: Tcp.Config
  cfgB: Tcp.Config
  issA: number
  issB: number
  bytesAtoB: number
  bytesBtoA: number
  maxVirtualMs: number
  /** Drop segments matching this predicate (from A when dir = 0). */
  dropIf?: (dir: 0 | 1, r: W.TcpRepr) => boolean
  trace?: (line: string) => void
}

interface Packet {
  at: number
  order: number
  dir: 0 | 1
  bytes: Uint8Array
  corrupted?: boolean
}

const A_ADDR = 0xc6336401 // 198.51.100.1
const B_ADDR = 0xc6336402 // 198.51.100.2

class Side {
  tcb: Tcp.Tcb | undefined
  sent = 0
  recvd = 0
  readonly hash: Hash = createHash("sha256")
  closed = false
  gotFin = false
  readonly events: number[] = []
  constructor(
    readonly seed: number,
    readonly total: number
  ) {}
}

export interface RunResult {
  doneAtMs: number
  finished: boolean
  hashAtoB: string
  hashBtoA: string
  expectedAtoB: string
  expectedBtoA: string
  a: Tcp.Tcb
  b: Tcp.Tcb
  wireSegments: number
  dropped: number
  maxPayload: [number, number]
  corruptDropped: number
  /** Segments dropped for exceeding the MTU (see LinkOpts.mtu), per direction. */
  oversize: [number, number]
}

const sha = (seed: number, total: number): string => {
  const h = createHash("sha256")
  for (let o = 0; o < total; o += 65536) h.update(streamBytes(seed, o, Math.min(65536, total - o)))
  return h.digest("hex")
}

export const run = (o: RunOpts): RunResult => {
  const rnd = mulberry32(o.seed)
  const q: Packet[] = []
  let order = 0
  let now = 0
  let wireSegments = 0
  let dropped = 0
  let corruptDropped = 0
  const maxPayload: [number, number] = [0, 0]
  const oversize: [number, number] = [0, 0]
  const linkFree = [0, 0] // time at which each direction's bottleneck is free
  const a = new Side(0x1111, o.bytesAtoB)
  const b = new Side(0x2222, o.bytesBtoA)
  const push = (p: Packet) => {
    let lo = 0
    let hi = q.length
    while (lo < hi) {
      const m = (lo + hi) >>> 1
      const x = q[m]!
      if (x.at < p.at || (x.at === p.at && x.order < p.order)) lo = m + 1
      else hi = m
    }
    q.splice(lo, 0, p)
  }
  const mkOut = (dir: 0 | 1, side: Side): Tcp.Output => ({
    segment(tcb, r) {
      if (o.dropIf?.(dir, r)) {
        dropped++
        return
      }
      const hl = W.headerLen(r)
      const mtu = o.link.mtu ?? (dir === 0 ? o.cfgA : o.cfgB).mss + 40
      if (20 + hl + Math.min(r.payloadLen, tcb.sndMss) > mtu) {
        oversize[dir]++
        dropped++
        return
      }
      const bytes = new Uint8Array(hl + r.payloadLen)
      if (r.payloadLen > 0) Tcp.copyPayload(tcb, r.seq, r.payloadLen, bytes, hl)
      const src = dir === 0 ? A_ADDR : B_ADDR
      const dst = dir === 0 ? B_ADDR : A_ADDR
      W.emit(r, bytes, Cs.pseudoV4(src, dst, 6, bytes.length), true)
      wireSegments++
      if (r.payloadLen > maxPayload[dir]!) maxPayload[dir] = r.payloadLen
      // bottleneck: serialize, drop tail when the queue is too long
      const start = Math.max(now, linkFree[dir]!)
      if ((start - now) * o.link.bytesPerMs > o.link.queueBytes) {
        dropped++
        return
      }
      linkFree[dir] = start + bytes.length / o.link.bytesPerMs
      if (rnd() < o.link.lossRate) {
        dropped++
        return
      }
      let at = linkFree[dir]! + o.link.delayMs
      if (o.link.jitterMs !== undefined && o.link.jitterMs > 0) at += rnd() * o.link.jitterMs
      if (o.link.corruptRate !== undefined && rnd() < o.link.corruptRate) {
        const c = bytes.slice()
        const i = Math.floor(rnd() * c.length)
        c[i] = c[i]! ^ (1 + Math.floor(rnd() * 255))
        push({ at, order: order++, dir, bytes: c, corrupted: true })
        return
      }
      if (rnd() < o.link.reorderRate) at += o.link.reorderDelayMs * rnd()
      push({ at, order: order++, dir, bytes })
      if (rnd() < o.link.dupRate) push({ at: at + rnd() * 3, order: order++, dir, bytes })
    },
    deliver(_tcb, buf, start, end) {
      side.hash.update(buf.subarray(start, end))
      side.recvd += end - start
    }
  })
  const outA = mkOut(0, a)
  const outB = mkOut(1, b)
  const readBuf = new Uint8Array(256 * 1024)
  const app = (s: Side, out: Tcp.Output) => {
    const t = s.tcb
    if (t === undefined) return
    const ev = Tcp.takeEvents(t)
    if (ev !== 0) s.events.push(ev)
    if (ev & Tcp.EV_PEER_FIN) s.gotFin = true
    if (ev & Tcp.EV_CLOSED) s.closed = true
    let n: number
    while ((n = Tcp.recv(t, readBuf)) > 0) {
      s.hash.update(readBuf.subarray(0, n))
      s.recvd += n
    }
    while (s.sent < s.total && Tcp.maySend(t)) {
      const len = Math.min(65536, s.total - s.sent, Tcp.sendFree(t))
      if (len <= 0) break
      const k = Tcp.send(t, streamBytes(s.seed, s.sent, len))
      s.sent += k
      if (k < len) break
    }
    if (s.sent === s.total && !t.closeRequested && (t.state === "Established" || t.state === "CloseWait")) Tcp.close(t)
    const at = Tcp.pollAt(t)
    if (at !== undefined && at <= now) Tcp.poll(t, now, out)
  }
  a.tcb = Tcp.connect(o.cfgA, { addr: A_ADDR, port: 40000 }, { addr: B_ADDR, port: 5001 }, o.issA, now, outA)
  const done = () =>
    a.recvd === o.bytesBtoA && b.recvd === o.bytesAtoB && a.gotFin && b.gotFin &&
    (a.closed || a.tcb!.state === "TimeWait") && (b.closed || b.tcb?.state === "TimeWait")
  let guard = 0
  while (now <= o.maxVirtualMs && !done() && guard++ < 5_000_000) {
    // next event
    let next = q.length > 0 ? q[0]!.at : Number.POSITIVE_INFINITY
    for (const s of [a, b]) {
      const t = s.tcb
      if (t === undefined) continue
      const at = Tcp.pollAt(t)
      if (at !== undefined && at < next) next = at
    }
    if (next === Number.POSITIVE_INFINITY) break
    now = Math.max(now, next)
    while (q.length > 0 && q[0]!.at <= now) {
      const p = q.shift()!
      const to = p.dir === 0 ? b : a
      const out = p.dir === 0 ? outB : outA
      const src = p.dir === 0 ? A_ADDR : B_ADDR
      const dst = p.dir === 0 ? B_ADDR : A_ADDR
      const r = W.parse(p.bytes, Cs.pseudoV4(src, dst, 6, p.bytes.length), true)
      if (W.isDrop(r)) {
        if (p.corrupted !== true) throw new Error(`harness: bad segment ${r}`)
        corruptDropped++
        continue
      }
      o.trace?.(`${now.toFixed(1)} ${p.dir === 0 ? "A>B" : "B>A"} ${fmt(r)}`)
      if (to.tcb === undefined) {
        if ((r.flags & (W.SYN | W.ACK | W.RST)) === W.SYN) {
          to.tcb = Tcp.acceptSyn(o.cfgB, r, { addr: B_ADDR, port: 5001 }, { addr: A_ADDR, port: 40000 }, o.issB, now, outB)
        }
      } else Tcp.input(to.tcb, r, p.bytes, r.headerLen, now, out)
      app(to, out)
    }
    for (const [s, out] of [[a, outA], [b, outB]] as const) {
      const t = s.tcb
      if (t === undefined) continue
      const at = Tcp.pollAt(t)
      if (at !== undefined && at <= now) Tcp.poll(t, now, out)
      app(s, out)
    }
  }
  return {
    doneAtMs: now,
    finished: done(),
    hashAtoB: b.hash.digest("hex"),
    hashBtoA: a.hash.digest("hex"),
    expectedAtoB: sha(a.seed, o.bytesAtoB),
    expectedBtoA: sha(b.seed, o.bytesBtoA),
    a: a.tcb!,
    b: b.tcb!,
    wireSegments,
    dropped,
    maxPayload,
    corruptDropped,
    oversize
  }
}

export const fmt = (r: W.TcpRepr): string => {
  const f = r.flags
  const fl = `${f & W.SYN ? "S" : ""}${f & W.FIN ? "F" : ""}${f & W.RST ? "R" : ""}${f & W.PSH ? "P" : ""}${f & W.ACK ? "." : ""}`
  const sack = r.sack.length > 0 ? ` sack ${r.sack.join(",")}` : ""
  return `[${fl}] seq ${r.seq} ack ${r.ack} win ${r.window} len ${r.payloadLen} ts ${r.tsVal}/${r.tsEcr}${sack}`
}
