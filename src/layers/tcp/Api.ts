/**
 * The TCP layer's public face: its tag and shape, the connection API that applications and the iperf
 * shells use, options, counters and the one error type. The implementation is Tcp.ts and the files
 * beside this one.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { IpAddress } from "../../protocols/ipAddress.js"
import type * as Cookie from "../../protocols/tcp/cookie.js"
import type * as M from "../../protocols/tcp/machine.js"
import type { SynLimitConfig } from "../../protocols/tcp/synLimit.js"
import type { DropCounts } from "../Counters.js"
import type { SinkHandler } from "./Table.js"

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
  /** Sources whose bare SYNs the link's SYN filter drops now (protocols/tcp/synShield.ts). */
  synFilterSources: number
  /** The link filter's drop level for other sources' bare SYNs now (in 64ths). */
  synFilterLevel: number
  /** Times the link's SYN filter was replaced, and times the device refused it. */
  synFilterUpdates: number
  synFilterRefused: number
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
  readonly localAddress: IpAddress
  readonly localPort: number
  readonly remoteAddress: IpAddress
  readonly remotePort: number
}

export interface TcpConnection extends ConnectionInfo {
  readonly state: () => M.State
  readonly counters: () => M.Counters
  /** The congestion window, bytes (what iperf3 shows as Cwnd). */
  readonly cwnd: () => number
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
  readonly connect: (address: IpAddress, port: number, opts?: ConnectOptions) => Effect.Effect<TcpConnection, TcpError, Scope.Scope>
  readonly stats: TcpStats
  readonly connectionCount: () => number
  /** Connections waiting in the listeners' accept queues (accepted, not yet taken by the app): a gauge for Stats. */
  readonly acceptQueued: () => number
}

export class Tcp extends Context.Tag("@miniperf/Tcp")<Tcp, TcpShape>() {}

export interface TcpOptions {
  /** Live connections (all but TIME-WAIT), default 4096. */
  readonly maxConnections?: number
  /** Live connections from one source address (default half of maxConnections). */
  readonly perSourceConnections?: number
  /** Half-open entries in all (default 1024); past it, SYN cookies. */
  readonly maxHalfOpen?: number
  /**
   * Half-open entries from one source address (default 16); past it, SYN cookies. Small, because each entry costs a
   * Tcb and a fiber while cookies cost nothing: at a flood's onset 16 entries instead of 64 cut the ping loss behind
   * the flood about five-fold (21 -> 4 of 3000 pings over 6 runs each); a real client's `-P 64` gets cookies for the rest.
   */
  readonly perSourceHalfOpen?: number
  /** TIME-WAIT entries (default 4096); past it, the oldest is recycled. */
  readonly maxTimeWait?: number
  /** "auto" (default): cookies once a half-open bound is reached; "always"; "never" (drop instead). */
  readonly synCookies?: "auto" | "always" | "never"
  /** Committed ring memory before new connections get small rings (default 256 MiB). */
  readonly memoryBytes?: number
  /** Cookie SYN-ACKs per second per source and in all (default 1000 and 20000; see synLimit.ts). */
  readonly synLimit?: Partial<SynLimitConfig>
  /**
   * Hand the limiter's verdicts to the link's SYN filter where the link has one (default true): a source the
   * limiter keeps refusing has its bare SYNs dropped by the device (the TAP: in the kernel) but one in 64.
   */
  readonly synFilter?: boolean
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

