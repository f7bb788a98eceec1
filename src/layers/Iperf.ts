/**
 * The iperf 2 server (iperf 2.1.8 and 2.0.x clients; iperf-wire.md §A, §B) over our Tcp and Udp layers: the public
 * service, its options and statistics. The shells are in ./iperf/: tcpServer.ts (one session fiber per connection),
 * udpServer.ts (the stream table on the iperf port), udpSender.ts (the streams we send), all over one shell.ts (the
 * console, the statistics, the session FiberSet interrupted with this layer's scope).
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fmt from "../protocols/iperf/format.js"
import { makeShell } from "./iperf/shell.js"
import { RECV_WINDOW as TCP_RECV_WINDOW, serveTcp } from "./iperf/tcpServer.js"
import { serveUdp } from "./iperf/udpServer.js"
import type { Tcp, TcpError } from "./Tcp.js"
import type { Udp, UdpError } from "./Udp.js"

export { DEFAULT_STALL_TIMEOUT_MS, DEFAULT_UDP_SEND_MAX_MS, SESSION_LINES_PER_S } from "./iperf/shell.js"

export interface IperfStats {
  tcpSessions: number
  tcpSessionsActive: number
  tcpBytesIn: number
  tcpBytesOut: number
  connectBacks: number
  connectBackFailures: number
  rejectedHeaders: number
  sessionErrors: number
  udpStreams: number
  udpStreamsActive: number
  udpBytesIn: number
  udpDatagramsIn: number
  udpReportsOut: number
  udpStreamDrops: number
  /** UDP streams the server sent (`-u -r`, `-u -d`, `-u -R`), refused by the plan or past the cap. */
  udpSendStreams: number
  udpSendStreamsActive: number
  udpSendRefused: number
  udpSendDrops: number
  udpDatagramsOut: number
  udpBytesOut: number
  /** Datagrams udp.sendWith refused (no route, too large), and datagrams skipped by a sender that fell behind. */
  udpSendErrors: number
  udpSendSkipped: number
  /** Reports received from the client's listener, and replies that were not one. */
  udpReportsIn: number
  udpBadReplies: number
  /** Connections closed for want of a complete, valid header within the header timeout. */
  headerTimeouts: number
  /** Sessions and connect-back streams ended because nothing moved (no byte in, none into the peer's window). */
  stalledSessions: number
  /** Connections reset after the test because the peer did not let them close within the grace. */
  closeGraceAborts: number
  /** UDP receive streams forgotten to make room for a new client (the table was full). */
  udpStreamEvictions: number
  /** Server-sent UDP streams stopped by an ICMP destination unreachable from their destination. */
  udpSendUnreachableStops: number
  /** Server-sent UDP streams stopped because the destination had not shown it wants them (budget, silence). */
  udpSendUnverifiedStops: number
  /** Requests for a sending stream to an address that already gets maxUdpSendersPerAddress. */
  udpSendPerDestRefused: number
  /** Sending streams cut to the server's duration cap. */
  udpSendCapped: number
  /** Refusal/drop log lines held back by the log limiter. */
  logSuppressed: number
}

export interface IperfShape {
  readonly port: number
  readonly stats: IperfStats
  /**
   * Succeeds once the first test is over: a TCP session or UDP stream, with every -P stream of that client, its
   * connect-backs and the server report, each after its last console line (protocols/iperf/oneTest.ts). `--one-off`
   * waits for it.
   */
  readonly firstTestOver: Effect.Effect<void>
}

export class Iperf extends Context.Tag("@miniperf/Iperf")<Iperf, IperfShape>() {}

export interface IperfOptions {
  readonly port?: number
  /** Server-side interval reports every this many seconds (like `iperf -s -i`). */
  readonly intervalS?: number
  /** Where console lines go (default: stdout). */
  readonly print?: (line: string) => void
  /**
   * How results are printed: as `iperf -s` (default), `-y C` CSV lines as `iperf -s -y C` (no banner either), or
   * `-J`: one JSON document per finished stream with the CSV fields (Fmt.jsonDocument).
   */
  readonly report?: "human" | "csv" | "json"
  /** Serve UDP too (default true). */
  readonly udp?: boolean
  /** Concurrent UDP streams kept (default 64); datagrams of further new streams are dropped and counted. */
  readonly maxUdpStreams?: number
  /** A client that sends no complete header within this time is closed (default 10 s). */
  readonly headerTimeoutMs?: number
  /** Concurrent UDP streams the server sends (`-u -r`/`-d`/`-R`, default 16); further requests are dropped and counted. */
  readonly maxUdpSenders?: number
  /**
   * Of those, to one address at most (default 8, half of the default cap: `iperf -c -u -P 8 -R` is served, and one
   * address cannot take every slot); further requests from it are refused and counted.
   */
  readonly maxUdpSendersPerAddress?: number
  /** Wall-clock microseconds, for UDP transit times against the client's timestamps. */
  readonly wallClockUs?: () => number
  /**
   * A TCP session or connect-back stream where nothing moves for this long (no byte received, none sent into the
   * peer's window) is reset, in every mode (default 10 s).
   */
  readonly stallTimeoutMs?: number
  /** Server-sent UDP streams (`-u -r`/`-d`/`-R`) end after at most this long (default 60 s); longer requests are cut. */
  readonly udpSendMaxMs?: number
  /** After the test, a connection that has not closed within this grace is reset (default 3 s). */
  readonly closeGraceMs?: number
}

export const make = (opts: IperfOptions = {}) =>
  Effect.gen(function* () {
    const sh = yield* makeShell(opts)
    yield* serveTcp(sh)
    // the real server's banner, once per protocol (it serves one of them; we serve both on the same port). Our UDP has
    // no socket buffer to report, so that block has no size line.
    for (const l of Fmt.listeningBanner("TCP", sh.port, TCP_RECV_WINDOW)) sh.human(l)
    if (opts.udp !== false) {
      yield* serveUdp(sh)
      for (const l of Fmt.listeningBanner("UDP", sh.port)) sh.human(l)
    }
    return Iperf.of({ port: sh.port, stats: sh.stats, firstTestOver: Deferred.await(sh.firstTestOver) })
  })

export const layer = (opts: IperfOptions = {}): Layer.Layer<Iperf, TcpError | UdpError, Tcp | Udp> => Layer.scoped(Iperf, make(opts))
