/**
 * The TCP shell: demux, listeners with a bounded SYN backlog and accept queue, active opens, the
 * connection table, frame building with checksum offload and TSO, one timer fiber for all connections,
 * and the application side of each connection as Effects.
 *
 * Resource model (like Linux's; every peer may be hostile and spoof any on-link source):
 * - live connections (everything not in TIME-WAIT) are bounded in all (`maxConnections`) and per source
 *   address (`perSourceConnections`); past a bound a new SYN is dropped and counted;
 * - half-open (SYN-RECEIVED) entries are bounded per listener (backlog), in all (`maxHalfOpen`) and per
 *   source (`perSourceHalfOpen`); past any of these the SYN is answered with a SYN cookie (RFC 4987 §3.6,
 *   protocols/tcp/cookie.ts) and nothing is kept, so spoofed SYNs or a flood never refuse a real client;
 * - TIME-WAIT has its own bound (`maxTimeWait`) with the oldest entry recycled first, never refusing a
 *   new connection, and a new SYN may reopen a TIME-WAIT 4-tuple (RFC 6191);
 * - buffer memory: each connection commits its send and receive ring sizes; past `memoryBytes` committed,
 *   new connections get small rings (like tcp_mem pressure), so memory stays bounded by the tables.
 *
 * Ownership (design.md §3): the pure machine (protocols/tcp/machine.ts) holds each connection's state.
 * Segments are processed inline in the receive burst, because a mailbox hop per segment costs more than
 * the processing itself (toolchain-probe.md §4); application calls and timers run in fibers. All of them
 * run on the one JavaScript thread and touch a Tcb only in synchronous sections, so nothing changes a
 * connection's state while another piece of code is in the middle of using it. Each connection has a
 * supervising fiber in the layer's FiberMap: it ends when the connection is closed and, when the layer
 * closes first, aborts the connection (RST) so the peer is not left waiting.
 */
import { randomBytes } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Ipv4Address } from "../protocols/address.js"
import { formatIpv4 } from "../protocols/address.js"
import * as Cs from "../protocols/checksum.js"
import * as Cookie from "../protocols/tcp/cookie.js"
import { DEFAULT_SYN_LIMIT, SynLimiter, type SynLimitConfig } from "../protocols/tcp/synLimit.js"
import * as Ip from "../protocols/ipv4/wire.js"
import * as M from "../protocols/tcp/machine.js"
import * as W from "../protocols/tcp/wire.js"
import { PLAIN, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, type VnetMeta } from "../nic/Frame.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Ethernet } from "./Ethernet.js"
import { Interface } from "./Interface.js"
import { Ipv4, L4_OFFSET } from "./Ipv4.js"
import { Signal } from "./Signal.js"
import { Conn, ConnTable, connKey, type Listener, type SinkHandler } from "./tcp/Table.js"
import { sleepMillis } from "./Sleep.js"

// ---------------------------------------------------------------------------------------------
// Errors, options, public shapes
// ---------------------------------------------------------------------------------------------

export class TcpError extends Data.TaggedError("TcpError")<{
  readonly reason:
    | "Refused"
    | "Reset"
    | "TimedOut"
    | "NoRoute"
    | "AddressInUse"
    | "TableFull"
    | "Closed"
    | "Aborted"
    /** A port or address that cannot be used at all (out of range, not an IPv4 address). */
    | "InvalidArgument"
  readonly detail?: string
}> {
  override get message(): string {
    return `TCP ${this.reason}${this.detail !== undefined ? `: ${this.detail}` : ""}`
  }
}

export interface TcpStats {
  segmentsIn: number
  segmentsOut: number
  activeOpens: number
  passiveOpens: number
  /** Connections in the table now. */
  connections: number
  /** Connections that reached Established, now. */
  established: number
  resetsOut: number
  resetsIn: number
  retransmits: number
  synBacklogDrops: number
  acceptQueueDrops: number
  tableFullDrops: number
  /** Half-open (SYN-RECEIVED) entries now. */
  halfOpen: number
  /** Connections in TIME-WAIT now. */
  timeWait: number
  /** TIME-WAIT entries ended early to make room (oldest first). */
  timeWaitRecycled: number
  synCookiesSent: number
  /** SYNs dropped unanswered by the cookie rate limits (per source, in all). */
  synRateLimited: number
  /** Connections opened from a valid cookie. */
  synCookiesOk: number
  /** SYNs or cookie ACKs refused by a per-source cap. */
  perSourceRefusals: number
  /** Connections given small buffers because committed buffer memory was over the bound. */
  memoryPressure: number
  /** Ring bytes committed by the connections in the table now. */
  memoryCommitted: number
  readonly drops: DropCounts
}

export interface ListenOptions {
  /** Bound on connections in SYN-RECEIVED plus those waiting to be accepted (default 128). */
  readonly backlog?: number
  /** "sink": received payload is handed to the connection's sink without a copy (see `TcpConnection.sink`). */
  readonly recvMode?: "buffer" | "sink"
  readonly nagle?: boolean
  /** Send buffer per connection (default the layer's, 256 KiB). */
  readonly sendBufBytes?: number
  /** Receive buffer per connection: the window (in sink mode, the out-of-order bound). Default 256 KiB. */
  readonly recvBufBytes?: number
}

export interface ConnectOptions {
  readonly localPort?: number
  readonly recvMode?: "buffer" | "sink"
  readonly nagle?: boolean
  readonly sendBufBytes?: number
  readonly recvBufBytes?: number
}

export type { SinkHandler }

export interface ConnectionInfo {
  readonly id: number
  readonly localAddress: Ipv4Address
  readonly localPort: number
  readonly remoteAddress: Ipv4Address
  readonly remotePort: number
}

export interface TcpConnection extends ConnectionInfo {
  readonly state: () => M.State
  readonly counters: () => M.Counters
  /** Payload bytes received in order so far (both modes). */
  readonly bytesReceived: () => number
  /** Buffer mode: next chunk of received bytes (a copy), or None at the peer's FIN. */
  readonly read: (maxBytes?: number) => Effect.Effect<Option.Option<Uint8Array>, TcpError>
  /**
   * Sink mode: install the handler. Bytes that arrived before it (at most `earlyLimit`) are replayed to it
   * first; bytes past that limit were counted only.
   */
  readonly sink: (handler: SinkHandler) => void
  /** Wait until the peer's FIN (sink mode and buffer mode alike), or fail on reset. */
  readonly awaitPeerFin: Effect.Effect<void, TcpError>
  /** Queue bytes; suspends while the send buffer is full. Completes once all are in the buffer. */
  readonly write: (data: Uint8Array, start?: number, end?: number) => Effect.Effect<void, TcpError>
  /** Queue as much as fits now without waiting; returns the count. */
  readonly tryWrite: (data: Uint8Array, start?: number, end?: number) => Effect.Effect<number, TcpError>
  /**
   * Wait until the send buffer has room (a quarter of it free), or until `wakeWriters` is called; fails if
   * the connection can no longer send. Callers re-check their own conditions afterwards.
   */
  readonly awaitWritable: Effect.Effect<void, TcpError>
  /** Wake fibers suspended in `write`/`awaitWritable` (e.g. a sender whose time is up). */
  readonly wakeWriters: () => void
  /** Bytes sent and acknowledged plus in flight are not counted here: free space in the send buffer. */
  readonly sendFree: () => number
  /** Half-close: FIN after queued data. */
  readonly shutdownWrite: Effect.Effect<void>
  /** RST now. */
  readonly abort: Effect.Effect<void>
  /** Completes when the connection is fully closed (TIME-WAIT entered or Closed), with the reason if it failed. */
  readonly awaitClosed: Effect.Effect<M.ErrorReason | undefined>
}

export interface TcpShape {
  readonly listen: (port: number, opts?: ListenOptions) => Effect.Effect<Stream.Stream<TcpConnection>, TcpError, Scope.Scope>
  readonly connect: (address: Ipv4Address, port: number, opts?: ConnectOptions) => Effect.Effect<TcpConnection, TcpError, Scope.Scope>
  readonly stats: TcpStats
  readonly connectionCount: () => number
}

export class Tcp extends Context.Tag("@miniperf/Tcp")<Tcp, TcpShape>() {}

export interface TcpOptions {
  /** Live connections (all but TIME-WAIT), default 4096. */
  readonly maxConnections?: number
  /** Live connections from one source address (default half of maxConnections). */
  readonly perSourceConnections?: number
  /** Half-open entries in all (default 1024); past it, SYN cookies. */
  readonly maxHalfOpen?: number
  /** Half-open entries from one source address (default 64); past it, SYN cookies. */
  readonly perSourceHalfOpen?: number
  /** TIME-WAIT entries (default 4096); past it, the oldest is recycled. */
  readonly maxTimeWait?: number
  /** "auto" (default): cookies once a half-open bound is reached; "always"; "never" (drop instead). */
  readonly synCookies?: "auto" | "always" | "never"
  /** Committed ring memory before new connections get small rings (default 256 MiB). */
  readonly memoryBytes?: number
  /** Cookie SYN-ACKs per second per source and in all (default 1000 and 20000; see synLimit.ts). */
  readonly synLimit?: Partial<SynLimitConfig>
  /** Secret for the SYN cookie hash (default random). */
  readonly cookieKey?: Cookie.CookieKey
  /** Keep-alive on accepted connections: idle ms before the first probe (default 60 s; 0 = off). */
  readonly serverKeepAliveMs?: number
  /** Overrides of the machine's defaults (buffer sizes, RTO bounds, MSL, ...). */
  readonly machine?: Partial<M.Config>
  /** Bytes a sink-mode connection keeps before its handler is installed (default 64 KiB). */
  readonly earlyLimit?: number
  /** Initial sequence numbers; default random (RFC 6528 asks for unpredictable). */
  readonly iss?: () => number
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/** How long a listener keeps answering with cookies after a half-open bound was last reached. */
const COOKIE_HOLD_MS = 2000

/** Meta of a segment whose TCP checksum the NIC completes (virtio NEEDS_CSUM), no segmentation. */
const CSUM_ONLY: VnetMeta = Object.freeze({
  flags: VNET_F_NEEDS_CSUM,
  gsoType: 0,
  hdrLen: 0,
  gsoSize: 0,
  csumStart: L4_OFFSET,
  csumOffset: W.CHECKSUM_OFFSET
})

// ---------------------------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------------------------

export const make = (opts: TcpOptions = {}) =>
  Effect.gen(function* () {
    const ip = yield* Ipv4
    const eth = yield* Ethernet
    const iface = yield* Interface
    const caps = eth.caps
    const maxConns = opts.maxConnections ?? 4096
    const perSourceConns = opts.perSourceConnections ?? Math.max(1, maxConns >>> 1)
    const maxHalfOpen = opts.maxHalfOpen ?? 1024
    const perSourceHalfOpen = opts.perSourceHalfOpen ?? 64
    const maxTimeWait = opts.maxTimeWait ?? 4096
    const cookieMode = opts.synCookies ?? "auto"
    const memoryBytes = opts.memoryBytes ?? 256 << 20
    const cookieKey: Cookie.CookieKey =
      opts.cookieKey ??
      (() => {
        const b = randomBytes(8)
        return { k0: b.readUInt32LE(0), k1: b.readUInt32LE(4) }
      })()
    const serverKeepAliveMs = opts.serverKeepAliveMs ?? 60_000
    const synLimiter = new SynLimiter({ ...DEFAULT_SYN_LIMIT, ...opts.synLimit })
    const earlyLimit = opts.earlyLimit ?? 65536
    const mss = ip.mtu - 40
    const baseCfg = M.makeConfig({
      mss,
      tso: caps.tso,
      maxSegmentBytes: caps.tso ? Math.floor(Math.min(64_000, caps.maxTxFrame - 14 - 20 - 60) / mss) * mss : mss,
      ...opts.machine
    })
    const iss = opts.iss ?? (() => Math.floor(Math.random() * 0x100000000))
    const stats: TcpStats = {
      segmentsIn: 0,
      segmentsOut: 0,
      activeOpens: 0,
      passiveOpens: 0,
      connections: 0,
      established: 0,
      resetsOut: 0,
      resetsIn: 0,
      retransmits: 0,
      synBacklogDrops: 0,
      acceptQueueDrops: 0,
      tableFullDrops: 0,
      halfOpen: 0,
      timeWait: 0,
      timeWaitRecycled: 0,
      synCookiesSent: 0,
      synRateLimited: 0,
      synCookiesOk: 0,
      perSourceRefusals: 0,
      memoryPressure: 0,
      memoryCommitted: 0,
      drops: {}
    }
    const table = new ConnTable(
      { maxConnections: maxConns, perSourceConnections: perSourceConns, maxHalfOpen, perSourceHalfOpen, maxTimeWait },
      stats
    )
    const listeners = new Map<number, Listener>()
    let nextId = 1
    let nextEphemeral = 32768 + Math.floor(Math.random() * 28000)
    const supervisors = yield* FiberMap.make<number>()
    const timerSignal = new Signal()
    let timerTarget = Infinity
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)

    // --- output ----------------------------------------------------------------------------
    const out: M.Output = {
      segment(tcb, repr) {
        const hl = W.headerLen(repr)
        const l4Len = hl + repr.payloadLen
        const f = ip.alloc(l4Len)
        if (repr.payloadLen > 0) M.copyPayload(tcb, repr.seq, repr.payloadLen, f, L4_OFFSET + hl)
        const src = ip.address()
        const dst = tcb.remote.addr as Ipv4Address
        const pseudo = Cs.pseudoV4(src, dst, Ip.PROTO_TCP, l4Len)
        const offload = caps.txChecksumOffload
        W.emit(repr, f.subarray(L4_OFFSET, L4_OFFSET + l4Len), pseudo, !offload)
        // one shared record for every segment the NIC only checksums; a record of its own per TSO frame
        const meta: VnetMeta = !offload
          ? PLAIN
          : repr.payloadLen <= tcb.sndMss
            ? CSUM_ONLY
            : {
                flags: VNET_F_NEEDS_CSUM,
                gsoType: VNET_GSO_TCPV4,
                hdrLen: L4_OFFSET + hl,
                gsoSize: tcb.sndMss,
                csumStart: L4_OFFSET,
                csumOffset: W.CHECKSUM_OFFSET
              }
        stats.segmentsOut++
        if ((repr.flags & W.RST) !== 0) stats.resetsOut++
        ip.send(f, dst, Ip.PROTO_TCP, l4Len, { meta, dontFragment: true })
      },
      deliver(tcb, buf, start, end) {
        const c = table.ofTcb(tcb)
        if (c === undefined) return
        c.received += end - start
        if (c.handler !== undefined) {
          c.handler(buf, start, end)
        } else if (c.earlyBytes < earlyLimit) {
          const n = Math.min(end - start, earlyLimit - c.earlyBytes)
          c.early.push(buf.slice(start, start + n))
          c.earlyBytes += n
        }
      }
    }

    const sendBare = (repr: W.TcpRepr, remote: number): void => {
      const hl = W.headerLen(repr)
      const f = ip.alloc(hl)
      W.emit(repr, f.subarray(L4_OFFSET, L4_OFFSET + hl), Cs.pseudoV4(ip.address(), remote, Ip.PROTO_TCP, hl), true)
      stats.segmentsOut++
      if ((repr.flags & W.RST) !== 0) stats.resetsOut++
      ip.send(f, remote as Ipv4Address, Ip.PROTO_TCP, hl)
    }

    const remove = (c: Conn): void => table.remove(c)

    /** After the machine ran for `c`: route its events to the waiting fibers and keep the timer honest. */
    const settle = (c: Conn): void => {
      const t = c.tcb
      // every retransmission (timeout, fast, SACK, tail-loss probe) reaches the layer's count
      const rx = t.counters.retransSegs
      if (rx !== c.retransSeen) {
        stats.retransmits += rx - c.retransSeen
        c.retransSeen = rx
      }
      const ev = M.takeEvents(t)
      if (c.writePending && (M.sendFree(t) >= t.cfg.sendBufBytes >>> 2 || !M.maySend(t))) {
        c.writePending = false
        c.writeSignal.notify()
      }
      if (ev !== 0) {
        if ((ev & M.EV_CONNECTED) !== 0) {
          table.endHalfOpen(c)
          if (!c.counted) {
            c.counted = true
            stats.established++
          }
          if (c.listener !== undefined && !c.accepted) {
            c.accepted = true
            c.listener.pending--
            if (!c.listener.accept.unsafeOffer(c)) {
              stats.acceptQueueDrops++
              M.abort(t, t.lastNowMs, out)
            }
          }
        }
        if ((ev & (M.EV_READABLE | M.EV_PEER_FIN | M.EV_CLOSED | M.EV_RESET | M.EV_TIMED_OUT)) !== 0) c.readSignal.notify()
        // A writer waiting for room is woken once a quarter of the send buffer is free, not per ACK.
        if ((ev & (M.EV_CLOSED | M.EV_RESET | M.EV_TIMED_OUT)) !== 0) c.writeSignal.notify()
        else if ((ev & M.EV_WRITABLE) !== 0) {
          if (M.sendFree(t) >= t.cfg.sendBufBytes >>> 2 || !M.maySend(t)) c.writeSignal.notify()
          else c.writePending = true
        }
        if ((ev & (M.EV_CONNECTED | M.EV_PEER_FIN | M.EV_CLOSED | M.EV_RESET | M.EV_TIMED_OUT)) !== 0) c.stateSignal.notify()
        if ((ev & M.EV_RESET) !== 0) stats.resetsIn++
        if ((ev & M.EV_CLOSED) !== 0) remove(c)
      }
      if (t.state === "TimeWait" && !c.timeWait && !c.removed) {
        table.enterTimeWait(c)
        c.stateSignal.notify()
      }
      // closed while settling (aborted at a full accept queue): nothing else would call settle again for it
      if (t.state === "Closed" && !c.removed) {
        M.takeEvents(t)
        remove(c)
        c.stateSignal.notify()
        c.readSignal.notify()
        c.writeSignal.notify()
        return
      }
      const at = M.pollAt(t)
      // (while a burst holds its ACK, the burst end polls this connection itself)
      if (at !== undefined && at < timerTarget && !t.holdAck) {
        timerTarget = at
        timerSignal.notify()
      }
    }

    /** Start the connection's supervising fiber (from plain code: the receive burst, or an Effect). */
    const supervise = (c: Conn): void => {
      const fiber = runFork(
        Effect.gen(function* () {
          while (!c.removed) yield* c.stateSignal.wait
        }).pipe(
          Effect.onInterrupt(() =>
            Effect.gen(function* () {
              if (c.removed) return
              const now = yield* Clock.currentTimeMillis
              M.abort(c.tcb, now, out)
              settle(c)
              remove(c)
              yield* eth.flush
            })
          )
        )
      )
      FiberMap.unsafeSet(supervisors, c.id, fiber)
    }

    // --- input -----------------------------------------------------------------------------
    ip.register(Ip.PROTO_TCP, (h, payload, _frame, trusted, nowMs) => {
      stats.segmentsIn++
      // Under a SYN flood: a bare SYN for a listener that is on cookies, from a source past its rate and of
      // no connection of ours, is dropped before it is parsed (for a drop neither its checksum nor its
      // options matter, and the parse allocates: at 150k SYNs a second that garbage was a seventh of the CPU).
      if (payload.length >= W.HEADER_LEN && (payload[13]! & (W.SYN | W.ACK | W.RST | W.FIN)) === W.SYN) {
        const dstPort = (payload[2]! << 8) | payload[3]!
        const l = listeners.get(dstPort)
        if (
          l !== undefined &&
          nowMs - l.boundAt < COOKIE_HOLD_MS &&
          synLimiter.refuses(h.src, nowMs) &&
          table.find(dstPort, connKey(h.src, (payload[0]! << 8) | payload[1]!)) === undefined
        ) {
          stats.synRateLimited++
          countDrop(stats.drops, "RateLimited")
          return
        }
      }
      const seg = W.parse(payload, Cs.pseudoV4(h.src, h.dst, Ip.PROTO_TCP, payload.length), !trusted)
      if (typeof seg === "string") {
        countDrop(stats.drops, seg === "Checksum" ? "BadChecksum" : seg === "BadDataOffset" ? "BadHeaderLength" : seg === "BadOption" ? "BadOption" : "Truncated")
        return
      }
      if (h.dst !== iface.current().address) {
        countDrop(stats.drops, "NotForUs") // no TCP to broadcast addresses
        return
      }
      const key = connKey(h.src, seg.srcPort)
      const c = table.find(seg.dstPort, key)
      if (c !== undefined) {
        if (c.tcb.state === "TimeWait" && listeners.has(seg.dstPort) && M.timeWaitAcceptsSyn(c.tcb, seg)) {
          remove(c)
          c.stateSignal.notify()
        } else {
          const t = c.tcb
          t.holdAck = true
          if (!c.held) {
            c.held = true
            held.push(c)
          }
          M.input(t, seg, payload, seg.headerLen, nowMs, out)
          settle(c)
          return
        }
      }
      const l = listeners.get(seg.dstPort)
      if (l !== undefined) {
        const f = seg.flags
        if ((f & W.RST) !== 0) return // RFC 9293 §3.10.7.2: an RST to LISTEN is ignored
        if ((f & W.ACK) === 0) {
          // a SYN opens; anything else without ACK (FIN, NULL, Xmas, SYN+FIN probes) is dropped unanswered
          if ((f & (W.SYN | W.FIN)) === W.SYN) passiveOpen(l, h.src, h.dst, seg, key, nowMs)
          else countDrop(stats.drops, "ProbeToListener")
          return
        }
        if ((f & W.SYN) === 0 && cookieOpen(l, h.src, h.dst, seg, payload, key, nowMs)) return
      }
      const rst = M.rstFor(seg)
      if (rst !== undefined) {
        countDrop(stats.drops, "NoListener")
        sendBare(rst, h.src)
      }
    })

    /** A SYN for a listener: a half-open entry, or a SYN cookie when any half-open bound is reached. */
    const passiveOpen = (l: Listener, src: number, dst: number, seg: W.TcpRepr, key: number, nowMs: number): void => {
      if (!table.admitLive(src)) return
      // Once a bound was reached, the listener stays on cookies for 2 s (hysteresis): under a flood whose
      // SYN-ACKs the flooder's host resets, half-open slots free up at once, and creating a connection (and
      // its supervising fiber) for every SYN that finds a free slot cost more than the whole cookie path.
      const bound = table.halfOpenFull(l, src)
      if (bound) l.boundAt = nowMs
      const full = bound || nowMs - l.boundAt < COOKIE_HOLD_MS
      if (cookieMode === "always" || (full && cookieMode === "auto")) {
        if (!synLimiter.admit(src, nowMs)) {
          stats.synRateLimited++
          countDrop(stats.drops, "RateLimited")
          return
        }
        const cookie = Cookie.make(cookieKey, src, dst, seg.srcPort, seg.dstPort, seg.seq, seg.mss, nowMs)
        sendBare(M.cookieSynAck(l.cfg, seg, cookie, nowMs), src)
        stats.synCookiesSent++
        l.cookieAt = nowMs
        return
      }
      if (full) {
        stats.synBacklogDrops++
        return
      }
      const tcb = M.acceptSyn(sized(l.cfg, src), seg, { addr: dst, port: seg.dstPort }, { addr: src, port: seg.srcPort }, iss(), nowMs, out)
      const nc = new Conn(nextId++, key, tcb, l)
      l.pending++
      stats.passiveOpens++
      table.insert(nc)
      settle(nc)
      supervise(nc)
    }

    /**
     * An ACK for a listener that matched no connection: if it acknowledges one of our cookies (sent in
     * the last two cookie periods), the connection opens Established. Returns false when it is not a
     * cookie ACK (the caller answers with RST, as for any stray ACK).
     */
    const cookieOpen = (l: Listener, src: number, dst: number, seg: W.TcpRepr, payload: Uint8Array, key: number, nowMs: number): boolean => {
      if (cookieMode === "never" || nowMs - l.cookieAt > 2 * Cookie.PERIOD_MS) return false
      const mss = Cookie.check(cookieKey, src, dst, seg.srcPort, seg.dstPort, (seg.seq - 1) >>> 0, (seg.ack - 1) >>> 0, nowMs)
      if (mss === 0) {
        countDrop(stats.drops, "BadCookie")
        return false
      }
      if (!table.admitLive(src)) return true // dropped: the peer's retransmission or its data will try again
      const tcb = M.acceptCookie(sized(l.cfg, src), l.cfg, seg, { addr: dst, port: seg.dstPort }, { addr: src, port: seg.srcPort }, Math.min(mss, l.cfg.mss), nowMs)
      const nc = new Conn(nextId++, key, tcb, l)
      l.pending++ // settled below: EV_CONNECTED moves it to the accept queue
      stats.passiveOpens++
      stats.synCookiesOk++
      table.insert(nc)
      M.input(tcb, seg, payload, seg.headerLen, nowMs, out)
      settle(nc)
      supervise(nc)
      return true
    }

    // Our address went away (DHCP lease lost, or changed): connections bound to it end now, not after
    // their retransmissions give up. The RST they would send finds no route while unconfigured.
    iface.onChange((c, p) => {
      if (p.address === 0 || c.address === p.address) return
      const now = eth.nowMs()
      for (const conn of table.all(true)) {
        if (conn.tcb.local.addr !== p.address) continue
        M.abort(conn.tcb, now, out)
        settle(conn)
        remove(conn)
      }
    })

    // ACKs held during a receive burst go out once at its end (one ACK per burst per connection).
    const held: Array<Conn> = []
    eth.onBurstEnd((nowMs) => {
      for (let i = 0; i < held.length; i++) {
        const c = held[i]!
        c.held = false
        c.tcb.holdAck = false
        if (c.tcb.ackNow) M.poll(c.tcb, nowMs, out)
        settle(c) // also tells the timer fiber about deadlines set during the burst
      }
      held.length = 0
    })

    // --- timers: one fiber for every connection --------------------------------------------
    yield* Effect.gen(function* () {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        let next = Infinity
        for (const c of table.all()) {
          let at = M.pollAt(c.tcb)
          if (at !== undefined && at <= now) {
            M.poll(c.tcb, now, out)
            settle(c)
            at = M.pollAt(c.tcb)
          }
          if (at !== undefined && at < next) next = at
        }
        yield* eth.flush
        timerTarget = next
        if (next === Infinity) {
          yield* timerSignal.wait
        } else {
          // sleepMillis: a keep-alive or FIN-WAIT-2 deadline may be past the JS timer limit
          yield* Effect.raceFirst(timerSignal.wait, sleepMillis(Math.max(1, next - now)))
        }
      }
    }).pipe(Effect.forkScoped)

    // --- application side ------------------------------------------------------------------
    const failure = (c: Conn): TcpError => {
      const e = c.tcb.error
      return new TcpError({
        reason: e === "Refused" ? "Refused" : e === "Reset" ? "Reset" : e === "TimedOut" ? "TimedOut" : e === "Aborted" ? "Aborted" : "Closed"
      })
    }

    const kick = (c: Conn) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          M.poll(c.tcb, now, out)
          settle(c)
        })
      )

    const view = (c: Conn): TcpConnection => {
      const t = c.tcb
      const read = (maxBytes = 65536): Effect.Effect<Option.Option<Uint8Array>, TcpError> =>
        Effect.suspend(() => {
          const n = M.recvAvailable(t)
          if (n > 0) {
            const b = new Uint8Array(Math.min(n, maxBytes))
            const got = M.recv(t, b)
            c.received += got
            return Effect.as(kick(c), Option.some(got === b.length ? b : b.subarray(0, got)))
          }
          if (t.finReceived) return Effect.succeed(Option.none())
          if (t.state === "Closed") return t.error === undefined ? Effect.succeed(Option.none()) : Effect.fail(failure(c))
          return Effect.zipRight(c.readSignal.wait, read(maxBytes))
        })
      const tryWrite = (data: Uint8Array, start = 0, end = data.length): Effect.Effect<number, TcpError> =>
        Effect.suspend(() => {
          if (!M.maySend(t)) return Effect.fail(t.error !== undefined ? failure(c) : new TcpError({ reason: "Closed" }))
          const n = M.send(t, data, start, end)
          return n > 0 ? Effect.as(kick(c), n) : Effect.succeed(0)
        })
      const write = (data: Uint8Array, start = 0, end = data.length): Effect.Effect<void, TcpError> =>
        Effect.suspend(() => {
          if (start >= end) return Effect.void
          return Effect.flatMap(tryWrite(data, start, end), (n) =>
            n === 0 ? Effect.zipRight(c.writeSignal.wait, write(data, start, end)) : write(data, start + n, end)
          )
        })
      const awaitWritable: Effect.Effect<void, TcpError> = Effect.suspend(() => {
        if (!M.maySend(t)) return Effect.fail(t.error !== undefined ? failure(c) : new TcpError({ reason: "Closed" }))
        if (M.sendFree(t) >= t.cfg.sendBufBytes >>> 2) return Effect.void
        return c.writeSignal.wait
      })
      const awaitPeerFin: Effect.Effect<void, TcpError> = Effect.suspend(() => {
        if (t.finReceived) return Effect.void
        if (t.state === "Closed") return t.error === undefined ? Effect.void : Effect.fail(failure(c))
        return Effect.zipRight(c.stateSignal.wait, awaitPeerFin)
      })
      const awaitClosed: Effect.Effect<M.ErrorReason | undefined> = Effect.suspend(() => {
        if (c.removed || t.state === "TimeWait" || t.state === "Closed") return Effect.succeed(t.error)
        return Effect.zipRight(c.stateSignal.wait, awaitClosed)
      })
      return {
        id: c.id,
        localAddress: t.local.addr as Ipv4Address,
        localPort: t.local.port,
        remoteAddress: t.remote.addr as Ipv4Address,
        remotePort: t.remote.port,
        state: () => t.state,
        counters: () => t.counters,
        bytesReceived: () => c.received,
        read,
        sink: (handler) => {
          const early = c.early
          c.early = []
          for (const b of early) handler(b, 0, b.length)
          c.handler = handler
        },
        awaitPeerFin,
        write,
        tryWrite,
        awaitWritable,
        wakeWriters: () => c.writeSignal.notify(),
        sendFree: () => M.sendFree(t),
        shutdownWrite: Effect.zipRight(
          Effect.sync(() => M.close(t)),
          kick(c)
        ),
        abort: Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            M.abort(t, now, out)
            settle(c)
          })
        ),
        awaitClosed
      }
    }

    /**
     * Memory pressure: committed ring bytes over the bound (or over a quarter of it from one remote
     * address) give new connections small rings.
     */
    const PRESSURE_RING = 32 * 1024
    const sized = (cfg: M.Config, remote: number): M.Config => {
      const need = cfg.sendBufBytes + cfg.recvBufBytes
      // a quarter of the bound per remote address: one host's idle connections cannot shrink everyone's
      if (stats.memoryCommitted + need <= memoryBytes && table.committedBy(remote) + need <= memoryBytes >>> 2) return cfg
      stats.memoryPressure++
      return M.makeConfig({
        ...cfg,
        sendBufBytes: Math.min(cfg.sendBufBytes, PRESSURE_RING),
        recvBufBytes: Math.min(cfg.recvBufBytes, PRESSURE_RING)
      })
    }

    const cfgFor = (o: ListenOptions | ConnectOptions | undefined, server = false): M.Config =>
      M.makeConfig({
        ...baseCfg,
        ...(o?.recvMode !== undefined ? { recvMode: o.recvMode } : {}),
        ...(o?.nagle !== undefined ? { nagle: o.nagle } : {}),
        ...(o?.sendBufBytes !== undefined ? { sendBufBytes: Math.max(4096, Math.min(64 << 20, o.sendBufBytes)) } : {}),
        ...(o?.recvBufBytes !== undefined ? { recvBufBytes: Math.max(4096, Math.min(64 << 20, o.recvBufBytes)) } : {}),
        // accepted connections probe an idle peer (a client that vanished) unless the caller's machine
        // options say otherwise: 6 unanswered probes 10 s apart end the connection
        ...(server && opts.machine?.keepAliveIdleMs === undefined && serverKeepAliveMs > 0
          ? { keepAliveIdleMs: serverKeepAliveMs, keepAliveIntervalMs: 10_000, keepAliveCount: 6 }
          : {})
      })

    const listen = (port: number, o?: ListenOptions) =>
      Effect.gen(function* () {
        if (!Number.isInteger(port) || port <= 0 || port > 65535) return yield* new TcpError({ reason: "InvalidArgument", detail: `bad port ${port}` })
        if (listeners.has(port)) return yield* new TcpError({ reason: "AddressInUse", detail: `port ${port} is already listening` })
        const backlog = o?.backlog ?? 128
        const accept = yield* Queue.bounded<Conn>(backlog)
        const l: Listener = { port, backlog, cfg: cfgFor(o, true), accept, pending: 0, cookieAt: -Infinity, boundAt: -Infinity }
        yield* Effect.acquireRelease(
          Effect.sync(() => listeners.set(port, l)),
          () =>
            Effect.gen(function* () {
              listeners.delete(port)
              // connections accepted by the kernel side but never taken by the app: reset them
              const left = yield* Queue.takeAll(accept)
              const now = yield* Clock.currentTimeMillis
              for (const c of left) {
                M.abort(c.tcb, now, out)
                settle(c)
              }
              yield* Queue.shutdown(accept)
              yield* eth.flush
            })
        )
        return Stream.fromQueue(accept).pipe(Stream.map(view))
      })

    const connect = (address: Ipv4Address, port: number, o?: ConnectOptions) =>
      Effect.gen(function* () {
        if (!Number.isInteger(port) || port <= 0 || port > 65535) return yield* new TcpError({ reason: "InvalidArgument", detail: `bad port ${port}` })
        if (iface.nextHop(address) === undefined) return yield* new TcpError({ reason: "NoRoute", detail: formatIpv4(address) })
        if (stats.connections >= maxConns) return yield* new TcpError({ reason: "TableFull" })
        const key = connKey(address, port)
        let local = o?.localPort ?? 0
        if (local === 0) {
          for (let i = 0; i < 28232; i++) {
            const p = 32768 + ((nextEphemeral + i) % 28232)
            if (!listeners.has(p) && table.find(p, key) === undefined) {
              local = p
              nextEphemeral = p + 1 - 32768
              break
            }
          }
          if (local === 0) return yield* new TcpError({ reason: "AddressInUse", detail: "no free ephemeral port" })
        } else if (table.find(local, key) !== undefined) {
          return yield* new TcpError({ reason: "AddressInUse", detail: `port ${local}` })
        }
        const now = yield* Clock.currentTimeMillis
        const c = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const tcb = M.connect(sized(cfgFor(o), address), { addr: ip.address(), port: local }, { addr: address, port }, iss(), now, out)
            const nc = new Conn(nextId++, key, tcb, undefined)
            stats.activeOpens++
            table.insert(nc)
            settle(nc)
            return nc
          }),
          (nc) =>
            Effect.gen(function* () {
              if (nc.removed || nc.tcb.state === "TimeWait") return
              // the user's scope ended: an open connection gets a FIN when the app already half-closed, else RST
              const t = yield* Clock.currentTimeMillis
              if (nc.tcb.closeRequested && nc.tcb.state !== "Established") {
                return
              }
              M.abort(nc.tcb, t, out)
              settle(nc)
              yield* eth.flush
            })
        )
        supervise(c)
        yield* eth.flush
        while (c.tcb.state === "SynSent") yield* c.stateSignal.wait
        if (c.tcb.state === "Closed") return yield* failure(c)
        return view(c)
      })

    // Closing the layer: every connection's supervisor is interrupted (FiberMap's scope), which resets it.
    yield* Effect.addFinalizer(() => eth.flush)

    return Tcp.of({ listen, connect, stats, connectionCount: () => stats.connections })
  })

export const layer = (opts: TcpOptions = {}): Layer.Layer<Tcp, never, Ipv4 | Ethernet | Interface> => Layer.scoped(Tcp, make(opts))
