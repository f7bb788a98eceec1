/**
 * The TCP shell: demux, listeners (SYN backlog, SYN cookies, accept queue), active opens, the events of
 * the machine routed to waiting fibers, and one timer fiber for all connections. Beside it in tcp/: the
 * public API (Api.ts), the connection table and its resource model (Table.ts), frames out (Output.ts)
 * and the application side of a connection (View.ts).
 *
 * Resource model (like Linux's; every peer may be hostile and spoof any on-link source):
 * - live connections (everything not in TIME-WAIT) are bounded in all (`maxConnections`) and per source
 *   address (`perSourceConnections`); past a bound a new SYN is dropped and counted;
 * - half-open (SYN-RECEIVED) entries are bounded per listener (backlog), in all (`maxHalfOpen`) and per
 *   source (`perSourceHalfOpen`); past any of these the SYN is answered with a SYN cookie (RFC 4987 §3.6,
 *   protocols/tcp/cookie.ts) and nothing is kept, so spoofed SYNs or a flood never refuse a real client;
 * - TIME-WAIT has its own bound (`maxTimeWait`) with the oldest entry recycled first, never refusing a
 *   new connection, and a new SYN may reopen a TIME-WAIT 4-tuple (RFC 6191);
 * - buffer memory: each connection commits its send and receive ring sizes; past `memoryBytes` committed
 *   (or a quarter of it from one remote address), new connections get small rings (like tcp_mem
 *   pressure), so memory stays bounded by the tables. A passive open commits, and is sized, only when its
 *   handshake completes: half-open entries (spoofed SYNs) allocate no ring and put no one under pressure.
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
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Cs from "../protocols/checksum.js"
import { formatIp, sourceKey, type IpAddress } from "../protocols/ipAddress.js"
import { isMulticast, type Ipv6Address } from "../protocols/ipv6/address.js"
import * as Ip6 from "../protocols/ipv6/wire.js"
import * as Cookie from "../protocols/tcp/cookie.js"
import { DEFAULT_SYN_LIMIT, SynLimiter } from "../protocols/tcp/synLimit.js"
import { DEFAULT_SYN_SHIELD, SynShield, type SynFilterUpdate } from "../protocols/tcp/synShield.js"
import * as Ip from "../protocols/ipv4/wire.js"
import * as M from "../protocols/tcp/machine.js"
import * as W from "../protocols/tcp/wire.js"
import { countDrop } from "./Counters.js"
import { Ethernet } from "./Ethernet.js"
import { Interface } from "./Interface.js"
import { Ipv4 } from "./Ipv4.js"
import { Ipv6 } from "./Ipv6.js"
import { Signal } from "./Signal.js"
import { Tcp, TcpError, type ConnectOptions, type ListenOptions, type TcpOptions, type TcpStats } from "./tcp/Api.js"
import { makeOutput } from "./tcp/Output.js"
import { Conn, ConnTable, connKey, connKey6, type Listener } from "./tcp/Table.js"
import { makeView } from "./tcp/View.js"
import { sleepMillis } from "./Sleep.js"

export * from "./tcp/Api.js"

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/** How long a listener keeps answering with cookies after a half-open bound was last reached. */
const COOKIE_HOLD_MS = 2000


// ---------------------------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------------------------

export const make = (opts: TcpOptions = {}) =>
  Effect.gen(function* () {
    const ip = yield* Ipv4
    const ip6 = yield* Ipv6
    const eth = yield* Ethernet
    const iface = yield* Interface
    const caps = eth.caps
    const maxConns = opts.maxConnections ?? 4096
    const perSourceConns = opts.perSourceConnections ?? Math.max(1, maxConns >>> 1)
    const maxHalfOpen = opts.maxHalfOpen ?? 1024
    const perSourceHalfOpen = opts.perSourceHalfOpen ?? 16
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
    // the limiter's verdicts handed down to the link's SYN filter, where it has one (the TAP's runs in the kernel)
    const linkFilter = opts.synFilter === false ? undefined : eth.nic.synFilter
    const shield =
      linkFilter === undefined
        ? undefined
        : new SynShield({
            ...DEFAULT_SYN_SHIELD,
            perSource: synLimiter.cfg.perSource,
            total: synLimiter.cfg.total,
            keepShift: linkFilter.keepShift,
            maxSources: Math.min(DEFAULT_SYN_SHIELD.maxSources, linkFilter.maxSources)
          })
    const earlyLimit = opts.earlyLimit ?? 65536
    const mss = ip.mtu - 40
    const baseCfg = M.makeConfig({
      mss,
      tso: caps.tso,
      maxSegmentBytes: caps.tso ? Math.floor(Math.min(64_000, caps.maxTxFrame - 14 - 20 - 60) / mss) * mss : mss,
      ...opts.machine
    })
    // IPv6: a 40-byte IP header, so MSS = MTU - 60 (1440 on 1500), and TSO frames sized for it
    const mss6 = ip6.mtu - 60
    /** The listener's config for a peer of this family. */
    const cfgOf = (l: Listener, peer: IpAddress): M.Config => (typeof peer === "number" ? l.cfg : l.cfg6)
    /** The IPv6 form of a config: the same but for the MSS and the TSO frame size. */
    const v6 = (cfg: M.Config): M.Config =>
      M.makeConfig({
        ...cfg,
        mss: Math.min(cfg.mss, mss6),
        maxSegmentBytes: caps.tso ? Math.min(cfg.maxSegmentBytes, Math.floor(Math.min(64_000, caps.maxTxFrame - 14 - 40 - 60) / mss6) * mss6) : mss6
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
      synFilterSources: 0,
      synFilterLevel: 0,
      synFilterUpdates: 0,
      synFilterRefused: 0,
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
    const { out, sendBare } = makeOutput(ip, ip6, caps, stats, table, earlyLimit)

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
          // a passive open commits its rings now; smaller than its listener's when sized under pressure
          if (table.established(c)) {
            const l = c.listener!.cfg
            if (t.sendbuf.capacity < l.sendBufBytes || t.recvbuf.capacity < l.recvBufBytes) stats.memoryPressure++
          }
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

    /** Make the timer fiber wake by `at` (it sleeps until its earliest deadline). */
    const wakeTimerAt = (at: number): void => {
      if (at < timerTarget) {
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
    /** A SYN dropped unanswered by the cookie rate limits. */
    const rateLimited = (src: IpAddress, nowMs: number): void => {
      stats.synRateLimited++
      countDrop(stats.drops, "RateLimited")
      if (shield === undefined || typeof src !== "number") return
      const verdict = shield.refused(src, nowMs)
      if (verdict === undefined) return
      if (verdict === "join") applyFilter(shield.join(src))
      wakeTimerAt(shield.dueAt)
    }

    /** The shield's window ended: hand its verdict to the link. */
    const shieldTick = (nowMs: number): void => {
      const update = shield!.tick(nowMs)
      if (update !== undefined) applyFilter(update)
    }

    const applyFilter = (update: SynFilterUpdate): void => {
      stats.synFilterUpdates++
      if (linkFilter!.set(update.sources, update.allLevel)) {
        stats.synFilterSources = update.sources.length
        stats.synFilterLevel = update.allLevel
      } else {
        stats.synFilterRefused++
        stats.synFilterSources = 0
        stats.synFilterLevel = 0
      }
    }

    /**
     * A segment for us, from either family: `src`/`dst` are numbers for IPv4 and strings for IPv6, told apart
     * by typeof where the family matters (the pseudo-header, the table key, the link's SYN filter).
     */
    const segmentIn = (src: IpAddress, dst: IpAddress, payload: Uint8Array, trusted: boolean, nowMs: number): void => {
      stats.segmentsIn++
      const v4 = typeof src === "number"
      // Under a SYN flood: a bare SYN for a listener that is on cookies, from a source past its rate and of
      // no connection of ours, is dropped before it is parsed (for a drop neither its checksum nor its
      // options matter, and the parse allocates: at 150k SYNs a second that garbage was a seventh of the CPU).
      if (payload.length >= W.HEADER_LEN && (payload[13]! & (W.SYN | W.ACK | W.RST | W.FIN)) === W.SYN) {
        const dstPort = (payload[2]! << 8) | payload[3]!
        const l = listeners.get(dstPort)
        // (the link's filter, a kernel BPF program on the TAP, knows IPv4 sources only)
        if (shield !== undefined && l !== undefined && v4) shield.syn(src)
        if (
          l !== undefined &&
          nowMs - l.boundAt < COOKIE_HOLD_MS &&
          synLimiter.refuses(v4 ? src : sourceKey(src), nowMs) &&
          table.find(dstPort, v4 ? connKey(src, (payload[0]! << 8) | payload[1]!) : connKey6(src, (payload[0]! << 8) | payload[1]!)) === undefined
        ) {
          rateLimited(src, nowMs)
          return
        }
      }
      const pseudo = v4 ? Cs.pseudoV4(src, dst as number, Ip.PROTO_TCP, payload.length) : Cs.pseudoV6(src, dst as Ipv6Address, Ip6.NH_TCP, payload.length)
      const seg = W.parse(payload, pseudo, !trusted)
      if (typeof seg === "string") {
        countDrop(stats.drops, seg)
        return
      }
      if (v4 ? dst !== iface.current().address : isMulticast(dst as Ipv6Address)) {
        countDrop(stats.drops, "NotForUs") // no TCP to broadcast addresses or multicast groups
        return
      }
      const key = v4 ? connKey(src, seg.srcPort) : connKey6(src, seg.srcPort)
      const c = table.find(seg.dstPort, key)
      if (c !== undefined) {
        if (c.tcb.state === "TimeWait" && listeners.has(seg.dstPort) && M.timeWaitAcceptsSyn(c.tcb, seg)) {
          remove(c)
          c.stateSignal.notify()
        } else {
          const t = c.tcb
          // a segment that may complete a passive open's handshake: its rings are sized now, while none is
          // allocated (this segment's payload may be the first to use one), and committed if it does (settle)
          if (c.halfOpen && (seg.flags & (W.ACK | W.SYN | W.RST)) === W.ACK) sizeHalfOpen(c)
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
          if ((f & (W.SYN | W.FIN)) === W.SYN) passiveOpen(l, src, dst, seg, key, nowMs)
          else countDrop(stats.drops, "ProbeToListener")
          return
        }
        if ((f & W.SYN) === 0 && cookieOpen(l, src, dst, seg, payload, key, nowMs)) return
      }
      const rst = M.rstFor(seg)
      if (rst !== undefined) {
        countDrop(stats.drops, "NoListener")
        sendBare(rst, src, dst)
      }
    }

    ip.register(Ip.PROTO_TCP, (h, payload, _frame, trusted, nowMs) => segmentIn(h.src, h.dst, payload, trusted, nowMs))
    ip6.register(Ip6.NH_TCP, (i) => segmentIn(i.ip.src, i.ip.dst, i.payload, i.checksumTrusted, i.nowMs))

    /** A SYN for a listener: a half-open entry, or a SYN cookie when any half-open bound is reached. */
    const passiveOpen = (l: Listener, src: IpAddress, dst: IpAddress, seg: W.TcpRepr, key: number | string, nowMs: number): void => {
      if (!table.admitLive(src)) return
      // Once a bound was reached, the listener stays on cookies for 2 s (hysteresis): under a flood whose
      // SYN-ACKs the flooder's host resets, half-open slots free up at once, and creating a connection (and
      // its supervising fiber) for every SYN that finds a free slot cost more than the whole cookie path.
      const bound = table.halfOpenFull(l, src)
      if (bound) l.boundAt = nowMs
      const full = bound || nowMs - l.boundAt < COOKIE_HOLD_MS
      if (cookieMode === "always" || (full && cookieMode === "auto")) {
        if (!synLimiter.admit(sourceKey(src), nowMs)) {
          rateLimited(src, nowMs)
          return
        }
        const cookie = Cookie.make(cookieKey, src, dst, seg.srcPort, seg.dstPort, seg.seq, seg.mss, nowMs)
        sendBare(M.cookieSynAck(cfgOf(l, src), seg, cookie, nowMs), src, dst)
        stats.synCookiesSent++
        l.cookieAt = nowMs
        return
      }
      if (full) {
        stats.synBacklogDrops++
        return
      }
      // the listener's ring sizes, not committed: they are decided again as the handshake completes (sizeHalfOpen)
      const tcb = M.acceptSyn(cfgOf(l, src), seg, { addr: dst, port: seg.dstPort }, { addr: src, port: seg.srcPort }, iss(), nowMs, out)
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
    const cookieOpen = (l: Listener, src: IpAddress, dst: IpAddress, seg: W.TcpRepr, payload: Uint8Array, key: number | string, nowMs: number): boolean => {
      if (cookieMode === "never" || nowMs - l.cookieAt > 2 * Cookie.PERIOD_MS) return false
      const mss = Cookie.check(cookieKey, src, dst, seg.srcPort, seg.dstPort, (seg.seq - 1) >>> 0, (seg.ack - 1) >>> 0, nowMs)
      if (mss === 0) {
        countDrop(stats.drops, "BadCookie")
        return false
      }
      if (!table.admitLive(src)) return true // dropped: the peer's retransmission or its data will try again
      const lcfg = cfgOf(l, src)
      const tcb = M.acceptCookie(sized(lcfg, src), lcfg, seg, { addr: dst, port: seg.dstPort }, { addr: src, port: seg.srcPort }, Math.min(mss, lcfg.mss), nowMs)
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
        if (shield !== undefined && shield.dueAt <= now) shieldTick(now)
        let next = shield?.dueAt ?? Infinity
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
    const { view, failure } = makeView({ out, settle })

    /**
     * Memory pressure: committed ring bytes over the bound (or over a quarter of it from one remote
     * address) give new connections small rings. Only connections past their handshake (and active opens)
     * have committed any.
     */
    const PRESSURE_RING = 32 * 1024
    /** A passive open's receive ring under pressure: it must hold the window the SYN-ACK offered (unscaled, up to 65535). */
    const PRESSURE_RECV_PASSIVE = 64 * 1024
    // a quarter of the bound per remote address: one host's idle connections cannot shrink everyone's
    const fits = (need: number, remote: number | string): boolean =>
      stats.memoryCommitted + need <= memoryBytes && table.committedBy(remote) + need <= memoryBytes >>> 2
    /** Ring sizes for an active open or a cookie connection (committed as it is inserted). */
    const sized = (cfg: M.Config, remote: number | string): M.Config => {
      if (fits(cfg.sendBufBytes + cfg.recvBufBytes, remote)) return cfg
      stats.memoryPressure++
      return M.makeConfig({
        ...cfg,
        sendBufBytes: Math.min(cfg.sendBufBytes, PRESSURE_RING),
        recvBufBytes: Math.min(cfg.recvBufBytes, PRESSURE_RING)
      })
    }

    /**
     * A half-open entry's ring sizes, decided against the memory committed now, just before a segment that
     * may complete its handshake (the SYN-ACK was built from the listener's cfg, and the Tcb keeps the
     * window scale it offered). Decided again if that segment does not complete it; counted as pressure
     * when it does and the rings are smaller (settle).
     */
    const sizeHalfOpen = (c: Conn): void => {
      const cfg = c.listener!.cfg
      if (fits(cfg.sendBufBytes + cfg.recvBufBytes, c.tcb.remote.addr)) M.resizeRings(c.tcb, cfg.sendBufBytes, cfg.recvBufBytes)
      else M.resizeRings(c.tcb, Math.min(cfg.sendBufBytes, PRESSURE_RING), Math.min(cfg.recvBufBytes, PRESSURE_RECV_PASSIVE))
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
        const cfg = cfgFor(o, true)
        const l: Listener = { port, backlog, cfg, cfg6: v6(cfg), accept, pending: 0, cookieAt: -Infinity, boundAt: -Infinity }
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

    const connect = (address: IpAddress, port: number, o?: ConnectOptions) =>
      Effect.gen(function* () {
        if (!Number.isInteger(port) || port <= 0 || port > 65535) return yield* new TcpError({ reason: "InvalidArgument", detail: `bad port ${port}` })
        // IPv4: the interface's route; IPv6: a source address for the destination (none: IPv6 off, or no route)
        const localAddr: IpAddress | undefined =
          typeof address === "number" ? (iface.nextHop(address) === undefined ? undefined : ip.address()) : ip6.enabled ? ip6.selectSource(address) : undefined
        if (localAddr === undefined) return yield* new TcpError({ reason: "NoRoute", detail: formatIp(address) })
        if (stats.connections >= maxConns) return yield* new TcpError({ reason: "TableFull" })
        const key = typeof address === "number" ? connKey(address, port) : connKey6(address, port)
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
            const cfg = typeof address === "number" ? cfgFor(o) : v6(cfgFor(o))
            const tcb = M.connect(sized(cfg, address), { addr: localAddr, port: local }, { addr: address, port }, iss(), now, out)
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

    const acceptQueued = (): number => {
      let n = 0
      // a Queue's size counts waiting takers as negative (the server's accept loop is one): only items count here
      for (const l of listeners.values()) n += Math.max(0, Option.getOrElse(l.accept.unsafeSize(), () => 0))
      return n
    }

    return Tcp.of({ listen, connect, stats, connectionCount: () => stats.connections, acceptQueued })
  })

export const layer = (opts: TcpOptions = {}): Layer.Layer<Tcp, never, Ipv4 | Ipv6 | Ethernet | Interface> => Layer.scoped(Tcp, make(opts))
