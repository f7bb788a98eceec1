/**
 * The TCP connection table and its resource model (design.md §7): which connections exist, and how many
 * of each kind a peer may hold.
 *
 * - live connections (everything not in TIME-WAIT), bounded in all and per source address (an IPv6 source
 *   counted by its /64, protocols/ipAddress.ts `sourceKey`: one host may use any address of its prefix);
 * - half-open (SYN-RECEIVED) entries of listeners, counted in all and per source (the listener asks
 *   `halfOpenFull` and answers with a SYN cookie instead of adding one past a bound);
 * - TIME-WAIT, a list of its own in arrival order, bounded, the oldest recycled first;
 * - committed ring memory: each connection commits its send and receive ring sizes until it no longer
 *   needs them (TIME-WAIT with empty rings, or removal). A half-open entry commits nothing (its rings are
 *   never allocated in SYN-RECEIVED): it commits when its handshake completes (`established`), so
 *   spoofed SYNs cannot fill the memory bound. Active opens and cookie connections commit when inserted.
 *
 * Plain synchronous bookkeeping over the shell's `TcpStats`; the shell calls it from the receive burst,
 * its timer fiber and application calls, which all run on the one thread.
 */
import type * as Queue from "effect/Queue"
import { sourceKey, type EndpointKey, type SourceKey } from "../../protocols/ipAddress.js"
import * as M from "../../protocols/tcp/machine.js"
import { countDrop, type DropCounts } from "../Counters.js"
import { Signal } from "../Signal.js"

/** Receives in-order payload synchronously, in the receive burst; the bytes are borrowed. */
export type SinkHandler = (buf: Uint8Array, start: number, end: number) => void

export interface Listener {
  readonly port: number
  readonly backlog: number
  readonly cfg: M.Config
  /** The same for connections over IPv6 (the MSS is 20 bytes smaller). */
  readonly cfg6: M.Config
  readonly accept: Queue.Queue<Conn>
  /** Connections in SYN-RECEIVED or accepted-but-not-taken. */
  pending: number
  /** When this listener last answered with a cookie (cookie ACKs are checked only within two periods). */
  cookieAt: number
  /** When a half-open bound was last reached (the listener stays on cookies for a while after). */
  boundAt: number
}

export class Conn {
  readonly readSignal = new Signal()
  readonly writeSignal = new Signal()
  readonly stateSignal = new Signal()
  handler: SinkHandler | undefined = undefined
  early: Array<Uint8Array> = []
  earlyBytes = 0
  received = 0
  accepted = false
  removed = false
  /** Room appeared in the send buffer but less than the wake-up threshold. */
  writePending = false
  /** In the list of connections whose ACK the current receive burst holds. */
  held = false
  /** Counted in `established`. */
  counted = false
  /** Counted as live (not TIME-WAIT) / half-open / in the TIME-WAIT list. */
  live = false
  halfOpen = false
  timeWait = false
  /** Ring bytes this connection committed (from establishment or insertion; released on TIME-WAIT or removal). */
  committed = 0
  /** The machine's retransmission count already added to the layer's. */
  retransSeen = 0
  constructor(
    readonly id: number,
    readonly key: EndpointKey,
    readonly tcb: M.Tcb,
    readonly listener: Listener | undefined
  ) {}
}

/** The remote endpoint as one number: table key within a local port (IPv4, the hot path). */
export const connKey = (addr: number, port: number): number => addr * 65536 + port

/** The remote IPv6 endpoint as one 9-code-unit string (never equal to a numeric key; same Map). */
export const connKey6 = (addr: string, port: number): string => addr + String.fromCharCode(port)

/** The counters the table keeps (a part of the layer's TcpStats). */
export interface TableStats {
  connections: number
  established: number
  halfOpen: number
  timeWait: number
  timeWaitRecycled: number
  tableFullDrops: number
  perSourceRefusals: number
  memoryCommitted: number
  readonly drops: DropCounts
}

export interface TableLimits {
  readonly maxConnections: number
  readonly perSourceConnections: number
  readonly maxHalfOpen: number
  readonly perSourceHalfOpen: number
  readonly maxTimeWait: number
}

const bump = (m: Map<SourceKey, number>, k: SourceKey, d: number): void => {
  const n = (m.get(k) ?? 0) + d
  if (n <= 0) m.delete(k)
  else m.set(k, n)
}

export class ConnTable {
  /** localPort -> remote key -> connection */
  private readonly byPort = new Map<number, Map<EndpointKey, Conn>>()
  private readonly byTcb = new Map<M.Tcb, Conn>()
  /** Per source (sourceKey: an IPv4 address, or an IPv6 /64). */
  private readonly liveBySource = new Map<SourceKey, number>()
  private readonly halfOpenBySource = new Map<SourceKey, number>()
  private readonly committedBySource = new Map<SourceKey, number>()
  /** TIME-WAIT connections, oldest first (a Set keeps insertion order). */
  private readonly timeWaitList = new Set<Conn>()

  constructor(
    readonly limits: TableLimits,
    private readonly stats: TableStats
  ) {}

  find(localPort: number, key: EndpointKey): Conn | undefined {
    return this.byPort.get(localPort)?.get(key)
  }

  /** Ring bytes committed by the connections with this remote address. */
  committedBy(remote: number | string): number {
    return this.committedBySource.get(sourceKey(remote)) ?? 0
  }

  ofTcb(tcb: M.Tcb): Conn | undefined {
    return this.byTcb.get(tcb)
  }

  /** Every connection (a snapshot when `copy`, for callers that remove while iterating). */
  *all(copy = false): IterableIterator<Conn> {
    for (const m of copy ? [...this.byPort.values()] : this.byPort.values()) {
      for (const c of copy ? [...m.values()] : m.values()) yield c
    }
  }

  /** Whether a new connection from `src` fits the live bounds; counts the refusal when not. */
  admitLive(src: number | string): boolean {
    const s = this.stats
    if (s.connections >= this.limits.maxConnections) {
      s.tableFullDrops++
      countDrop(s.drops, "TableFull")
      return false
    }
    if ((this.liveBySource.get(sourceKey(src)) ?? 0) >= this.limits.perSourceConnections) {
      s.perSourceRefusals++
      countDrop(s.drops, "PerSourceLimit")
      return false
    }
    return true
  }

  /** Whether a half-open bound (the listener's backlog, all, per source) is reached for `src`. */
  halfOpenFull(l: Listener, src: number | string): boolean {
    return (
      l.pending >= l.backlog ||
      this.stats.halfOpen >= this.limits.maxHalfOpen ||
      (this.halfOpenBySource.get(sourceKey(src)) ?? 0) >= this.limits.perSourceHalfOpen
    )
  }

  insert(c: Conn): void {
    const port = c.tcb.local.port
    let m = this.byPort.get(port)
    if (m === undefined) {
      m = new Map()
      this.byPort.set(port, m)
    }
    m.set(c.key, c)
    this.byTcb.set(c.tcb, c)
    c.live = true
    this.stats.connections++
    bump(this.liveBySource, sourceKey(c.tcb.remote.addr), 1)
    if (c.listener !== undefined && c.tcb.state === "SynReceived") {
      c.halfOpen = true
      this.stats.halfOpen++
      bump(this.halfOpenBySource, sourceKey(c.tcb.remote.addr), 1)
    } else {
      this.commit(c)
    }
  }

  /** Commit the connection's ring sizes (what they are now: the shell may have resized a passive open's). */
  private commit(c: Conn): void {
    c.committed = c.tcb.sendbuf.capacity + c.tcb.recvbuf.capacity
    this.stats.memoryCommitted += c.committed
    bump(this.committedBySource, sourceKey(c.tcb.remote.addr), c.committed)
  }

  private uncommit(c: Conn): void {
    if (c.committed === 0) return
    this.stats.memoryCommitted -= c.committed
    bump(this.committedBySource, sourceKey(c.tcb.remote.addr), -c.committed)
    c.committed = 0
  }

  /**
   * The connection is established: a half-open entry stops being one and commits its rings now. Returns
   * whether it did (false for a connection that was never half-open: it committed when inserted).
   */
  established(c: Conn): boolean {
    if (!c.halfOpen) return false
    this.endHalfOpen(c)
    this.commit(c)
    return true
  }

  /** The connection left SYN-RECEIVED (established, or gone). */
  private endHalfOpen(c: Conn): void {
    if (!c.halfOpen) return
    c.halfOpen = false
    this.stats.halfOpen--
    bump(this.halfOpenBySource, sourceKey(c.tcb.remote.addr), -1)
  }

  private endLive(c: Conn): void {
    this.endHalfOpen(c)
    if (c.live) {
      c.live = false
      this.stats.connections--
      bump(this.liveBySource, sourceKey(c.tcb.remote.addr), -1)
    }
    M.releaseBuffers(c.tcb)
    if (!c.tcb.sendbuf.allocated && !c.tcb.recvbuf.allocated) this.uncommit(c)
  }

  /**
   * The connection entered TIME-WAIT: it leaves the live table for the TIME-WAIT list. Past the bound the
   * oldest TIME-WAIT connection is removed (and told, through its state signal).
   */
  enterTimeWait(c: Conn): void {
    if (c.timeWait || c.removed) return
    if (c.counted) {
      c.counted = false
      this.stats.established--
    }
    this.endLive(c)
    c.timeWait = true
    this.timeWaitList.add(c)
    this.stats.timeWait++
    if (this.timeWaitList.size > this.limits.maxTimeWait) {
      const oldest = this.timeWaitList.values().next().value as Conn
      this.stats.timeWaitRecycled++
      this.remove(oldest)
      oldest.stateSignal.notify()
    }
  }

  /** Remove the connection from every count (idempotent). */
  remove(c: Conn): void {
    if (c.removed) return
    c.removed = true
    const m = this.byPort.get(c.tcb.local.port)
    if (m !== undefined && m.get(c.key) === c) {
      m.delete(c.key)
      if (m.size === 0) this.byPort.delete(c.tcb.local.port)
    }
    this.byTcb.delete(c.tcb)
    this.endLive(c)
    if (c.timeWait) {
      c.timeWait = false
      this.timeWaitList.delete(c)
      this.stats.timeWait--
    }
    this.uncommit(c)
    if (c.counted) {
      this.stats.established--
      c.counted = false
    }
    if (c.listener !== undefined && !c.accepted) c.listener.pending--
  }
}
