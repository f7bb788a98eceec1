/**
 * What the iperf 2 server's TCP and UDP shells share: the options, the console with its rate limits, the statistics,
 * the FiberSet every session and stream runs in (interrupted with the layer's scope), and the one counter that numbers
 * every stream in the console (`[  3]`, `[ *4]`), TCP and UDP alike.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import type { IpAddress } from "../../protocols/ipAddress.js"
import * as Fmt from "../../protocols/iperf/format.js"
import * as OneTest from "../../protocols/iperf/oneTest.js"
import * as Session from "../../protocols/iperf/session.js"
import { sleepMillis } from "../Sleep.js"
import * as LogLimiter from "../LogLimiter.js"
import { printer } from "../Output.js"
import type { IperfOptions, IperfStats } from "../Iperf.js"

/** A TCP session or connect-back stream where nothing moves for this long is reset (`--stall-timeout`). */
export const DEFAULT_STALL_TIMEOUT_MS = 10_000
/** Session-start lines a second, per kind, before they are summed up (a -P 64 test prints all of its lines). */
export const SESSION_LINES_PER_S = 64
/** Longest UDP stream we send (`--udp-send-max`). */
export const DEFAULT_UDP_SEND_MAX_MS = 60_000

/** The kinds of session-start lines, each under the SESSION_LINES_PER_S cap. */
export type SessionLineKind = "connections" | "UDP streams started" | "UDP stream results"

/**
 * A part of the first test (protocols/iperf/oneTest.ts): a joined stream, or a stream it made us open. `end` is
 * called once the part's final console lines are printed; calling it again does nothing.
 */
export interface TestPart {
  /** A stream this part makes us open (connect-back, a UDP stream we send) becomes a part of the test too. */
  readonly sub: () => TestPart
  readonly end: () => void
}

export interface IperfShell {
  readonly opts: IperfOptions
  readonly port: number
  readonly print: (line: string) => void
  readonly stats: IperfStats
  readonly stallMs: number
  readonly graceMs: number
  readonly headerTimeoutMs: number
  readonly udpSendMaxMs: number
  /** Wall-clock microseconds, for UDP transit times against the client's timestamps. */
  readonly wallUs: () => number
  /** The bytes every stream we send is cut from. */
  readonly pattern: Session.Pattern
  readonly sessions: FiberSet.FiberSet<void, never>
  /** The next console id. */
  readonly nextId: () => number
  /** A refusal or drop line: a few a second per kind, then one summary line. */
  readonly logLimited: (kind: string, line: string) => void
  /** A session-start or result line, under the session cap; `before` (a column header) only with it. */
  readonly logSession: (kind: SessionLineKind, line: string, before?: string) => void
  /** A stream with a valid header starts: its part of the first test, or undefined when it is not in it. */
  readonly joinTest: (client: IpAddress, threads: number) => TestPart | undefined
  /** Done once the first test is over (every part ended, its last lines printed): what `--one-off` waits for. */
  readonly firstTestOver: Deferred.Deferred<void>
  /**
   * A connection line (`[  1] local A port 5001 connected with B port P`): the next report line is preceded by its
   * column header again, as the real server does. `via`: how it is printed (default `print`; accepted connections
   * go under the session-line cap).
   */
  readonly connectionLine: (line: string, via?: (line: string) => void) => void
  /** The next report line gets its column header again (a `Server Report:` block). */
  readonly headerAgain: () => void
  /**
   * A report of a stream (an interval or the whole test), printed in the report format: on the console after the
   * column header (`[ ID] Interval ...`) when a connection line came since the last one or the header differs (TCP,
   * UDP); a CSV line with `-y C`. `via` prints the line, with the header before it when given (a rate-limited line
   * takes its header along, so a flood of streams cannot print headers without their lines).
   */
  readonly report: (r: Fmt.StreamReport, via?: (line: string, header: string | undefined) => void) => void
  /** A console line that only the human-readable format has (banners, [SUM], `Server Report:` blocks). */
  readonly human: (line: string) => void
  /** The `[SUM]` line of streams that ended (console only: `-y C` has none, as 2.1.8's). */
  readonly sumLine: (startS: number, endS: number, bytes: number) => void
}

/**
 * The `[SUM]` line of a `-d` test (and of `--full-duplex`): each of the two streams adds its total when it ends; the
 * second prints the sum over the earlier end, as the real server does.
 */
export interface PairSum {
  readonly add: (bytes: number, endS: number) => void
  /** A member's interval report `k` (from startS to endS): the [SUM] of step k prints when every member gave it. */
  readonly addInterval: (k: number, startS: number, endS: number, bytes: number) => void
}


/**
 * A `[SUM]` over `n` streams of one test, printed through `sh.reportLine` by the last to end: for the two streams of
 * `-d` and `--full-duplex` over the earlier end, for the `-P` streams over the latest (as the real server's lines show).
 */
export const groupSum = (sh: IperfShell, n: number, end: "earliest" | "latest"): PairSum => {
  let left = n
  let bytes = 0
  let endS = end === "earliest" ? Infinity : 0
  /** Interval steps still missing a member (a member that ends early leaves its later steps open: they go with the group). */
  const steps = new Map<number, { got: number; bytes: number; readonly startS: number; endS: number }>()
  return {
    add: (b, e) => {
      bytes += b
      endS = end === "earliest" ? Math.min(endS, e) : Math.max(endS, e)
      if (--left === 0) {
        steps.clear()
        sh.sumLine(0, endS, bytes)
      }
    },
    addInterval: (k, startS, e, b) => {
      if (left === 0 || (!steps.has(k) && steps.size >= MAX_OPEN_STEPS)) return
      const st = steps.get(k) ?? { got: 0, bytes: 0, startS, endS: e }
      steps.set(k, st)
      st.bytes += b
      st.endS = end === "earliest" ? Math.min(st.endS, e) : Math.max(st.endS, e)
      if (++st.got === n) {
        steps.delete(k)
        sh.sumLine(st.startS, st.endS, st.bytes)
      }
    }
  }
}

/** Interval steps of one group waiting for their members (a member far behind does not grow this). */
const MAX_OPEN_STEPS = 64

/** `-d`, `--full-duplex`: the two streams' sum. */
export const pairSum = (sh: IperfShell): PairSum => groupSum(sh, 2, "earliest")

/** `-P` groups still filling, per client address; past this many the oldest is forgotten (its sum never prints). */
const MAX_OPEN_GROUPS = 64

/**
 * The `-P k` streams of one client, grouped for their `[SUM]`: each joins the client's open group until k have
 * joined (a client's next test opens a new one). A stream of a group that never fills ends without a sum line.
 */
export const makeParallelGroups = (sh: IperfShell) => {
  const open = new Map<IpAddress, { joined: number; readonly threads: number; readonly sum: PairSum }>()
  return (client: IpAddress, threads: number): PairSum => {
    let g = open.get(client)
    if (g === undefined || g.threads !== threads) {
      if (g !== undefined) open.delete(client)
      if (open.size >= MAX_OPEN_GROUPS) open.delete(open.keys().next().value!)
      g = { joined: 0, threads, sum: groupSum(sh, threads, "latest") }
      open.set(client, g)
    }
    if (++g.joined === threads) open.delete(client)
    return g.sum
  }
}

export const makeStats = (): IperfStats => ({
  tcpSessions: 0,
  tcpSessionsActive: 0,
  tcpBytesIn: 0,
  tcpBytesOut: 0,
  connectBacks: 0,
  connectBackFailures: 0,
  rejectedHeaders: 0,
  sessionErrors: 0,
  udpStreams: 0,
  udpStreamsActive: 0,
  udpBytesIn: 0,
  udpDatagramsIn: 0,
  udpReportsOut: 0,
  udpStreamDrops: 0,
  udpSendStreams: 0,
  udpSendStreamsActive: 0,
  udpSendRefused: 0,
  udpSendDrops: 0,
  udpDatagramsOut: 0,
  udpBytesOut: 0,
  udpSendErrors: 0,
  udpSendSkipped: 0,
  udpReportsIn: 0,
  udpBadReplies: 0,
  headerTimeouts: 0,
  stalledSessions: 0,
  closeGraceAborts: 0,
  udpStreamEvictions: 0,
  udpSendUnreachableStops: 0,
  udpSendUnverifiedStops: 0,
  udpSendPerDestRefused: 0,
  udpSendCapped: 0,
  logSuppressed: 0
})

/** `-J`: streams with interval reports waiting for their total, and interval reports kept per stream. */
const MAX_PENDING_JSON = 1024
const MAX_JSON_INTERVALS = 100_000

export const makeShell = (opts: IperfOptions) =>
  Effect.gen(function* () {
    const print = yield* printer(opts.print)
    const stats = makeStats()
    const limiter = yield* LogLimiter.make(print)
    const sessionLimiter = yield* LogLimiter.make(print, SESSION_LINES_PER_S)
    let nextId = 1
    const oneTest = OneTest.make()
    const firstTestOver = Deferred.unsafeMake<void>(FiberId.none)
    const over = (): void => {
      Deferred.unsafeDone(firstTestOver, Exit.void)
    }
    const sessions = yield* FiberSet.make<void, never>()
    const fork = yield* FiberSet.runtime(sessions)<never>()
    const part = (): TestPart => {
      let ended = false
      return {
        sub: () => {
          OneTest.partStarts(oneTest)
          return part()
        },
        end: () => {
          if (ended) return
          ended = true
          const r = OneTest.partEnds(oneTest)
          if (r === "Over") over()
          else if (r === "Short") {
            // the client announced more streams than came: wait a little for them, then the test is over anyway
            fork(Effect.zipRight(sleepMillis(OneTest.SHORT_GRACE_MS), Effect.sync(() => {
              if (OneTest.expire(oneTest)) over()
            })))
          }
        }
      }
    }
    let needHeader = true
    let lastHeader = ""
    const csv = opts.report === "csv" || opts.report === "json" // neither prints console report lines
    const json = opts.report === "json"
    /** `-J`: each stream's interval reports until its total (streams that never end are forgotten past the cap). */
    const pending = new Map<string, Array<{ readonly epochMs: number; readonly r: Fmt.StreamReport }>>()
    const human = (line: string): void => {
      if (!csv) print(line)
    }
    const headed = (line: string, header: string, via?: (line: string, header: string | undefined) => void): void => {
      const h = needHeader || header !== lastHeader ? header : undefined
      needHeader = false
      lastHeader = header
      if (via !== undefined) via(line, h)
      else {
        if (h !== undefined) print(h)
        print(line)
      }
    }
    const shell: IperfShell = {
      opts,
      port: opts.port ?? 5001,
      print,
      stats,
      stallMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      graceMs: opts.closeGraceMs ?? 3_000,
      headerTimeoutMs: opts.headerTimeoutMs ?? 10_000,
      udpSendMaxMs: opts.udpSendMaxMs ?? DEFAULT_UDP_SEND_MAX_MS,
      wallUs: opts.wallClockUs ?? (() => Math.round((performance.timeOrigin + performance.now()) * 1000)),
      pattern: Session.makePattern(Session.MAX_WRITE_LEN),
      sessions,
      nextId: () => nextId++,
      logLimited: (kind, line) => {
        limiter.line(kind, line)
        stats.logSuppressed = limiter.suppressed() + sessionLimiter.suppressed()
      },
      logSession: (kind, line, before) => {
        sessionLimiter.line(kind, line, before)
        stats.logSuppressed = limiter.suppressed() + sessionLimiter.suppressed()
      },
      joinTest: (client, threads) => (OneTest.join(oneTest, client, threads) ? part() : undefined),
      firstTestOver,
      connectionLine: (line, via = print) => {
        if (csv) return
        via(line)
        needHeader = true
      },
      headerAgain: () => {
        needHeader = true
      },
      report: (r, via) => {
        if (json) {
          const key = `${r.id}${r.sent ? "s" : "r"}`
          const item = { epochMs: shell.wallUs() / 1000, r }
          if (r.total !== true) {
            let list = pending.get(key)
            if (list === undefined) {
              if (pending.size >= MAX_PENDING_JSON) pending.delete(pending.keys().next().value!)
              list = []
              pending.set(key, list)
            }
            if (list.length < MAX_JSON_INTERVALS) list.push(item)
            return
          }
          const list = pending.get(key) ?? []
          pending.delete(key)
          const line = JSON.stringify(Fmt.jsonDocument(item, list))
          if (via !== undefined) via(line, undefined)
          else print(line)
          return
        }
        if (csv) {
          const line = Fmt.csvLine(shell.wallUs() / 1000, r)
          if (via !== undefined) via(line, undefined)
          else print(line)
          return
        }
        if (r.udp === undefined) headed(Fmt.formatInterval(r.id, r.startS, r.endS, r.bytes, r.sent), Fmt.BW_HEADER, via)
        else {
          const u = r.udp
          headed(Fmt.formatUdpInterval(r.id, r.startS, r.endS, r.bytes, u.jitterS, u.lost, u.datagrams, r.sent), Fmt.UDP_HEADER, via)
        }
      },
      human,
      sumLine: (startS, endS, bytes) => {
        if (!csv) headed(Fmt.formatSum(startS, endS, bytes), Fmt.BW_HEADER)
      }
    }
    return shell
  })
