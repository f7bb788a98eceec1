/**
 * The stack's statistics as Effect Metrics, and MinIperf's `-d` dump as one consumer of them (`--metrics`, in
 * MetricsServer.ts, is the other). Each dump is one block for the interval since the previous one: rates of the
 * counters over it and the gauges at its end (`formatInterval`); with `dumpTotals` (`-d MS,totals`) the cumulative
 * per-layer totals follow it (`formatDump`).
 *
 * The hot path is untouched: every layer keeps plain mutable numbers in its `stats` object (bumped per
 * frame, no Effect). This layer maps each number to a `Metric.counter` (monotonic numbers: frames,
 * bytes, drops) or a `Metric.gauge` (levels: connections now, ARP cache size), tagged with
 * `stack=<nic name>`, and `sample` copies the live numbers into them (a counter grows by the delta since
 * the last sample). Sampling runs at each dump and every `sampleEveryMs` (default 1 s), so an embedding
 * app sees them in `Metric.snapshot` at most that stale, or calls `sample` itself first. The cost is one
 * pass over about a hundred numbers per sample, nothing per packet.
 *
 * Drops by reason become `miniperf_<layer>_drops{reason=...}` counters, created when a reason first
 * shows up. Counters are `incremental` (they only go up), which is what makes them Prometheus counters on
 * `--metrics` (Prometheus.ts).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { DropReason } from "../protocols/drop.js"
import type { DropCounts } from "./Counters.js"
import { Arp } from "./Arp.js"
import { Dhcp } from "./Dhcp.js"
import { Ethernet } from "./Ethernet.js"
import { Icmp } from "./Icmp.js"
import { Iperf } from "./Iperf.js"
import { Iperf3 } from "./Iperf3.js"
import { Ipv4 } from "./Ipv4.js"
import { Ipv6 } from "./Ipv6.js"
import { Icmpv6 } from "./Icmpv6.js"
import { Tcp } from "./Tcp.js"
import { Udp } from "./Udp.js"
import { printer } from "./Output.js"
import { sleepMillis } from "./Sleep.js"

export type StatKind = "counter" | "gauge"

export interface StatDef {
  readonly layer: string
  readonly name: string
  readonly kind: StatKind
  readonly read: () => number
}

type AnyMetric = Metric.Metric.Counter<number> | Metric.Metric.Gauge<number>

export interface StatMetric {
  readonly def: StatDef
  /** `miniperf_<layer>_<name>`, tagged stack=<nic> (and reason=... for drops). */
  readonly metric: AnyMetric
}

export interface StatsShape {
  /** The stack tag on every metric (the NIC's name, made unique per process). */
  readonly stackTag: string
  /** Every metric, drop reasons included once seen. */
  readonly metrics: () => ReadonlyArray<StatMetric>
  /** Copy the live numbers into the metrics now. */
  readonly sample: Effect.Effect<void>
  /** Sample, then read every metric back: `layer.name` (drops: `layer.drops.Reason`) -> value. */
  readonly read: Effect.Effect<ReadonlyMap<string, number>>
  /** The dump's lines for the current values (sampled first). */
  readonly dumpLines: Effect.Effect<ReadonlyArray<string>>
}

export class Stats extends Context.Tag("@miniperf/Stats")<Stats, StatsShape>() {}

export interface StatsOptions {
  /** Dump every this many ms (`-d`); omit for no dump. */
  readonly dumpEveryMs?: number
  /** Each dump also prints the cumulative totals (`formatDump`) after the interval block (`-d MS,totals`). */
  readonly dumpTotals?: boolean
  /** Background sampling for Metric readers (default 1000 ms; 0 = only on demand and at dumps). */
  readonly sampleEveryMs?: number
  /** Where the dump goes (default stdout). */
  readonly print?: (line: string) => void
}

const usedTags = new Map<string, number>()

const uniqueTag = (name: string): string => {
  const n = usedTags.get(name) ?? 0
  usedTags.set(name, n + 1)
  return n === 0 ? name : `${name}#${n}`
}


const valueOf = (m: AnyMetric): number => {
  const s = m.unsafeValue([]) as { readonly count?: number; readonly value?: number }
  return s.count ?? s.value ?? 0
}

export const make = (opts: StatsOptions = {}) =>
  Effect.gen(function* () {
    const eth = yield* Ethernet
    const arp = yield* Arp
    const ip = yield* Ipv4
    const icmp = yield* Icmp
    const udp = yield* Udp
    const tcp = Option.getOrUndefined(yield* Effect.serviceOption(Tcp))
    const iperf = Option.getOrUndefined(yield* Effect.serviceOption(Iperf))
    const iperf3 = Option.getOrUndefined(yield* Effect.serviceOption(Iperf3))
    const dhcp = Option.getOrUndefined(yield* Effect.serviceOption(Dhcp))
    const ip6 = Option.getOrUndefined(yield* Effect.serviceOption(Ipv6))
    const icmp6 = Option.getOrUndefined(yield* Effect.serviceOption(Icmpv6))
    const nic = eth.nic
    const stackTag = uniqueTag(nic.name)
    const startMs = yield* Clock.currentTimeMillis

    const defs: Array<StatDef> = []
    const c = (layer: string, name: string, read: () => number): void => void defs.push({ layer, name, kind: "counter", read })
    const g = (layer: string, name: string, read: () => number): void => void defs.push({ layer, name, kind: "gauge", read })
    const dropSources: Array<readonly [string, DropCounts]> = []

    const es = eth.stats
    c("link", "rx_frames", () => es.rxFrames)
    c("link", "rx_bytes", () => es.rxBytes)
    c("link", "tx_frames", () => es.txFrames)
    c("link", "tx_bytes", () => es.txBytes)
    c("link", "rx_ring_drops", () => nic.stats.rxDropped)
    c("link", "tx_link_drops", () => nic.stats.txDropped)
    c("link", "tx_queue_drops", () => es.txQueueDrops)
    c("link", "rx_unknown_type", () => es.rxUnknownType)
    c("link", "rx_not_for_us", () => es.rxNotForUs)
    c("link", "rx_handler_errors", () => es.rxHandlerErrors)
    dropSources.push(["link", es.drops])

    const as = arp.stats
    c("arp", "requests_in", () => as.requestsIn)
    c("arp", "replies_in", () => as.repliesIn)
    c("arp", "requests_out", () => as.requestsOut)
    c("arp", "replies_out", () => as.repliesOut)
    c("arp", "pending_drops", () => as.pendingDrops)
    g("arp", "cache_entries", () => arp.cacheSize())
    g("arp", "pending_frames", () => arp.pendingFrames())
    dropSources.push(["arp", as.drops])

    const is = ip.stats
    c("ipv4", "packets_in", () => is.packetsIn)
    c("ipv4", "packets_out", () => is.packetsOut)
    c("ipv4", "delivered", () => is.delivered)
    c("ipv4", "fragments_in", () => is.fragmentsIn)
    c("ipv4", "reassembled", () => is.reassembled)
    c("ipv4", "reassembly_timeouts", () => is.reassemblyTimeouts)
    c("ipv4", "fragments_out", () => is.fragmentsOut)
    c("ipv4", "fragmented_out", () => is.fragmentedOut)
    c("ipv4", "no_route", () => is.noRoute)
    c("ipv4", "icmp_errors_out", () => is.icmpErrorsOut)
    c("ipv4", "icmp_errors_rate_limited", () => is.icmpErrorsRateLimited)
    c("ipv4", "icmp_errors_suppressed", () => is.icmpErrorsSuppressed)
    c("ipv4", "reassembly_evictions", () => is.reassemblyEvictions)
    c("ipv4", "fragment_duplicates", () => is.fragmentDuplicates)
    dropSources.push(["ipv4", is.drops])

    if (ip6 !== undefined && ip6.enabled) {
      const s6 = ip6.stats
      c("ipv6", "packets_in", () => s6.packetsIn)
      c("ipv6", "packets_out", () => s6.packetsOut)
      c("ipv6", "delivered", () => s6.delivered)
      c("ipv6", "not_our_group", () => s6.notOurGroup)
      c("ipv6", "fragments_in", () => s6.fragmentsIn)
      c("ipv6", "reassembled", () => s6.reassembled)
      c("ipv6", "reassembly_timeouts", () => s6.reassemblyTimeouts)
      c("ipv6", "reassembly_evictions", () => s6.reassemblyEvictions)
      c("ipv6", "fragment_duplicates", () => s6.fragmentDuplicates)
      c("ipv6", "fragments_out", () => s6.fragmentsOut)
      c("ipv6", "fragmented_out", () => s6.fragmentedOut)
      c("ipv6", "no_route", () => s6.noRoute)
      c("ipv6", "icmp_errors_out", () => s6.icmpErrorsOut)
      c("ipv6", "icmp_errors_rate_limited", () => s6.icmpErrorsRateLimited)
      c("ipv6", "icmp_errors_suppressed", () => s6.icmpErrorsSuppressed)
      dropSources.push(["ipv6", s6.drops])
      const nd = ip6.ndStats
      c("nd", "solicitations_in", () => nd.solicitationsIn)
      c("nd", "solicitations_out", () => nd.solicitationsOut)
      c("nd", "advertisements_in", () => nd.advertisementsIn)
      c("nd", "advertisements_out", () => nd.advertisementsOut)
      c("nd", "router_advertisements_in", () => nd.routerAdvertisementsIn)
      c("nd", "router_solicitations_in", () => nd.routerSolicitationsIn)
      c("nd", "router_solicitations_out", () => nd.routerSolicitationsOut)
      c("nd", "dad_probes_out", () => nd.dadProbesOut)
      c("nd", "dad_duplicates", () => nd.dadDuplicates)
      c("nd", "address_conflicts", () => nd.addressConflicts)
      c("nd", "mld_reports_out", () => nd.mldReportsOut)
      c("nd", "mld_queries_in", () => nd.mldQueriesIn)
      c("nd", "pending_drops", () => nd.pendingDrops)
      g("nd", "neighbors", () => ip6.neighborCount())
      g("nd", "addresses_assigned", () => ip6.addresses().filter((a) => a.state === "Assigned").length)
      dropSources.push(["nd", nd.drops])
      if (icmp6 !== undefined) {
        const i6 = icmp6.stats
        c("icmpv6", "echo_requests_in", () => i6.echoRequestsIn)
        c("icmpv6", "echo_replies_out", () => i6.echoRepliesOut)
        c("icmpv6", "echo_replies_in", () => i6.echoRepliesIn)
        c("icmpv6", "errors_in", () => i6.errorsIn)
        c("icmpv6", "other_in", () => i6.otherIn)
        dropSources.push(["icmpv6", i6.drops])
      }
    }

    const ics = icmp.stats
    c("icmp", "echo_requests_in", () => ics.echoRequestsIn)
    c("icmp", "echo_replies_out", () => ics.echoRepliesOut)
    c("icmp", "echo_replies_in", () => ics.echoRepliesIn)
    c("icmp", "unreachable_in", () => ics.unreachableIn)
    c("icmp", "other_in", () => ics.otherIn)
    dropSources.push(["icmp", ics.drops])

    const us = udp.stats
    c("udp", "datagrams_in", () => us.datagramsIn)
    c("udp", "datagrams_out", () => us.datagramsOut)
    c("udp", "no_port", () => us.noPort)
    dropSources.push(["udp", us.drops])

    if (tcp !== undefined) {
      const ts = tcp.stats
      c("tcp", "active_opens", () => ts.activeOpens)
      c("tcp", "passive_opens", () => ts.passiveOpens)
      g("tcp", "established", () => ts.established)
      g("tcp", "connections", () => ts.connections)
      c("tcp", "segments_in", () => ts.segmentsIn)
      c("tcp", "segments_out", () => ts.segmentsOut)
      c("tcp", "retransmits", () => ts.retransmits)
      c("tcp", "resets_in", () => ts.resetsIn)
      c("tcp", "resets_out", () => ts.resetsOut)
      c("tcp", "syn_backlog_drops", () => ts.synBacklogDrops)
      c("tcp", "accept_queue_drops", () => ts.acceptQueueDrops)
      c("tcp", "table_full_drops", () => ts.tableFullDrops)
      g("tcp", "half_open", () => ts.halfOpen)
      g("tcp", "time_wait", () => ts.timeWait)
      c("tcp", "time_wait_recycled", () => ts.timeWaitRecycled)
      c("tcp", "syn_cookies_sent", () => ts.synCookiesSent)
      c("tcp", "syn_cookies_ok", () => ts.synCookiesOk)
      c("tcp", "syn_rate_limited", () => ts.synRateLimited)
      c("tcp", "per_source_refusals", () => ts.perSourceRefusals)
      c("tcp", "memory_pressure", () => ts.memoryPressure)
      g("tcp", "memory_committed_bytes", () => ts.memoryCommitted)
      g("tcp", "accept_queued", () => tcp.acceptQueued())
      g("tcp", "syn_filter_sources", () => ts.synFilterSources)
      g("tcp", "syn_filter_level", () => ts.synFilterLevel)
      c("tcp", "syn_filter_updates", () => ts.synFilterUpdates)
      c("tcp", "syn_filter_refused", () => ts.synFilterRefused)
      dropSources.push(["tcp", ts.drops])
    }

    if (iperf !== undefined) {
      const ps = iperf.stats
      c("iperf", "tcp_sessions", () => ps.tcpSessions)
      g("iperf", "tcp_sessions_active", () => ps.tcpSessionsActive)
      c("iperf", "tcp_bytes_in", () => ps.tcpBytesIn)
      c("iperf", "tcp_bytes_out", () => ps.tcpBytesOut)
      c("iperf", "connect_backs", () => ps.connectBacks)
      c("iperf", "connect_back_failures", () => ps.connectBackFailures)
      c("iperf", "rejected_headers", () => ps.rejectedHeaders)
      c("iperf", "session_errors", () => ps.sessionErrors)
      c("iperf", "udp_streams", () => ps.udpStreams)
      g("iperf", "udp_streams_active", () => ps.udpStreamsActive)
      c("iperf", "udp_datagrams_in", () => ps.udpDatagramsIn)
      c("iperf", "udp_bytes_in", () => ps.udpBytesIn)
      c("iperf", "udp_reports_out", () => ps.udpReportsOut)
      c("iperf", "udp_stream_drops", () => ps.udpStreamDrops)
      c("iperf", "udp_send_streams", () => ps.udpSendStreams)
      g("iperf", "udp_send_streams_active", () => ps.udpSendStreamsActive)
      c("iperf", "udp_send_refused", () => ps.udpSendRefused)
      c("iperf", "udp_send_drops", () => ps.udpSendDrops)
      c("iperf", "udp_datagrams_out", () => ps.udpDatagramsOut)
      c("iperf", "udp_bytes_out", () => ps.udpBytesOut)
      c("iperf", "udp_send_errors", () => ps.udpSendErrors)
      c("iperf", "udp_send_skipped", () => ps.udpSendSkipped)
      c("iperf", "udp_reports_in", () => ps.udpReportsIn)
      c("iperf", "udp_bad_replies", () => ps.udpBadReplies)
      c("iperf", "header_timeouts", () => ps.headerTimeouts)
      c("iperf", "stalled_sessions", () => ps.stalledSessions)
      c("iperf", "close_grace_aborts", () => ps.closeGraceAborts)
      c("iperf", "udp_stream_evictions", () => ps.udpStreamEvictions)
      c("iperf", "udp_send_unreachable_stops", () => ps.udpSendUnreachableStops)
      c("iperf", "udp_send_unverified_stops", () => ps.udpSendUnverifiedStops)
      c("iperf", "udp_send_per_dest_refused", () => ps.udpSendPerDestRefused)
      c("iperf", "udp_send_capped", () => ps.udpSendCapped)
      c("iperf", "log_suppressed", () => ps.logSuppressed)
    }
    if (iperf3 !== undefined) {
      const p3 = iperf3.stats
      c("iperf3", "connections", () => p3.connections)
      c("iperf3", "tests", () => p3.tests)
      c("iperf3", "tests_completed", () => p3.testsCompleted)
      c("iperf3", "tests_aborted", () => p3.testsAborted)
      c("iperf3", "denied", () => p3.denied)
      c("iperf3", "bad_cookies", () => p3.badCookies)
      c("iperf3", "stalled", () => p3.stalled)
      c("iperf3", "pending_evicted", () => p3.pendingEvicted)
      c("iperf3", "udp_wrong_peer", () => p3.udpWrongPeer)
      c("iperf3", "log_suppressed", () => p3.logSuppressed)
      c("iperf3", "streams", () => p3.streams)
      c("iperf3", "bytes_in", () => p3.bytesIn)
      c("iperf3", "bytes_out", () => p3.bytesOut)
      c("iperf3", "udp_datagrams_in", () => p3.udpDatagramsIn)
      c("iperf3", "udp_bytes_in", () => p3.udpBytesIn)
      c("iperf3", "udp_datagrams_out", () => p3.udpDatagramsOut)
      c("iperf3", "udp_ignored", () => p3.udpIgnored)
      c("iperf3", "udp_send_errors", () => p3.udpSendErrors)
      c("iperf3", "write_timeouts", () => p3.writeTimeouts)
      const srv = iperf3.server
      g("iperf3", "tests_active", () => (srv.test !== undefined ? 1 : 0))
      g("iperf3", "streams_active", () => srv.test?.streams.length ?? 0)
      g("iperf3", "connections_active", () => srv.conns.size)
    }

    if (dhcp !== undefined) {
      const ds = dhcp.stats.counters
      c("dhcp", "discovers_out", () => ds.discoversOut)
      c("dhcp", "requests_out", () => ds.requestsOut)
      c("dhcp", "offers_in", () => ds.offersIn)
      c("dhcp", "acks_in", () => ds.acksIn)
      c("dhcp", "naks_in", () => ds.naksIn)
      c("dhcp", "ignored_in", () => ds.ignoredIn)
      c("dhcp", "bad_options_in", () => ds.badOptionsIn)
      c("dhcp", "binds", () => ds.binds)
      c("dhcp", "renewals", () => ds.renewals)
      c("dhcp", "rebinds", () => ds.rebinds)
      c("dhcp", "expiries", () => ds.expiries)
      dropSources.push(["dhcp", dhcp.stats.drops])
    }

    const tagged = <M extends AnyMetric>(m: M): M => Metric.tagged(m as Metric.Metric<unknown, number, unknown>, "stack", stackTag) as unknown as M
    const makeMetric = (d: StatDef): AnyMetric =>
      tagged(
        d.kind === "counter"
          ? Metric.counter(`miniperf_${d.layer}_${d.name}`, { description: `${d.layer} ${d.name.replace(/_/g, " ")}`, incremental: true })
          : Metric.gauge(`miniperf_${d.layer}_${d.name}`, { description: `${d.layer} ${d.name.replace(/_/g, " ")}` })
      ).register()

    const entries: Array<{ readonly sm: StatMetric; last: number }> = defs.map((def) => ({ sm: { def, metric: makeMetric(def) }, last: 0 }))
    const dropEntries = new Map<string, { readonly sm: StatMetric; last: number }>()

    const update = (e: { readonly sm: StatMetric; last: number }): void => {
      const v = e.sm.def.read()
      if (e.sm.def.kind === "gauge") {
        ;(e.sm.metric as Metric.Metric.Gauge<number>).unsafeUpdate(v, [])
      } else if (v !== e.last) {
        ;(e.sm.metric as Metric.Metric.Counter<number>).unsafeUpdate(v - e.last, [])
      }
      e.last = v
    }

    const sampleNow = (): void => {
      for (const e of entries) update(e)
      for (const [layer, counts] of dropSources) {
        for (const reason of Object.keys(counts) as Array<DropReason>) {
          const key = `${layer}.drops.${reason}`
          let e = dropEntries.get(key)
          if (e === undefined) {
            const def: StatDef = { layer, name: `drops.${reason}`, kind: "counter", read: () => counts[reason] ?? 0 }
            const metric = Metric.tagged(
              Metric.counter(`miniperf_${layer}_drops`, { description: `${layer} drops by reason`, incremental: true }),
              "reason",
              reason
            ).pipe((m) => Metric.tagged(m, "stack", stackTag))
            e = { sm: { def, metric: metric.register() }, last: 0 }
            dropEntries.set(key, e)
          }
          update(e)
        }
      }
    }

    const sample = Effect.sync(sampleNow)

    const read = Effect.sync(() => {
      sampleNow()
      const m = new Map<string, number>()
      for (const e of entries) m.set(`${e.sm.def.layer}.${e.sm.def.name}`, valueOf(e.sm.metric))
      for (const [k, e] of dropEntries) m.set(k, valueOf(e.sm.metric))
      return m as ReadonlyMap<string, number>
    })

    const dumpLines = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(read, (v) => formatDump(v, (now - startMs) / 1000, dhcp?.state()))
    )

    if (opts.dumpEveryMs !== undefined && opts.dumpEveryMs > 0) {
      const every = opts.dumpEveryMs
      const totals = opts.dumpTotals === true
      const print = yield* printer(opts.print)
      yield* Effect.gen(function* () {
        // the counters all start at 0 with the stack, so the first interval runs from the start
        let prev: ReadonlyMap<string, number> = new Map()
        let prevS = 0
        while (true) {
          yield* sleepMillis(every)
          const now = yield* Clock.currentTimeMillis
          const cur = yield* read
          const nowS = (now - startMs) / 1000
          const lines = formatInterval(prev, cur, prevS, nowS)
          const all = totals ? [...lines, ...formatDump(cur, nowS, dhcp?.state())] : lines
          prev = cur
          prevS = nowS
          yield* Effect.sync(() => {
            for (const l of all) print(l)
          })
        }
      }).pipe(Effect.forkScoped)
    }
    const bgEvery = opts.sampleEveryMs ?? 1000
    if (bgEvery > 0) {
      yield* Effect.sleep(Duration.millis(bgEvery)).pipe(Effect.zipRight(sample), Effect.forever, Effect.forkScoped)
    }
    sampleNow()

    return Stats.of({
      stackTag,
      metrics: () => [...entries.map((e) => e.sm), ...[...dropEntries.values()].map((e) => e.sm)],
      sample,
      read,
      dumpLines
    })
  })

// ---- the interval block: rates and gauges ------------------------------------------------------------------

/** Keys of the values that are levels, not monotonic counts (everything else in `read` is a counter). */
const GAUGES: ReadonlySet<string> = new Set([
  "arp.cache_entries", "arp.pending_frames", "nd.neighbors", "nd.addresses_assigned",
  "tcp.established", "tcp.connections", "tcp.half_open", "tcp.time_wait", "tcp.memory_committed_bytes", "tcp.accept_queued",
  "tcp.syn_filter_sources", "tcp.syn_filter_level",
  "iperf.tcp_sessions_active", "iperf.udp_streams_active", "iperf.udp_send_streams_active",
  "iperf3.tests_active", "iperf3.streams_active", "iperf3.connections_active"
])

export const isGaugeKey = (key: string): boolean => GAUGES.has(key)

/**
 * Per-second rates of the counters between two readings `dtS` seconds apart: (now - before) / dtS. A counter absent
 * before counts from 0 (drop reasons appear when first seen); gauges are left out; a counter that went down (a
 * restarted source) gives 0, never a negative rate; dtS <= 0 gives 0 for everything.
 */
export const counterRates = (before: ReadonlyMap<string, number>, now: ReadonlyMap<string, number>, dtS: number): Map<string, number> => {
  const r = new Map<string, number>()
  for (const [k, v] of now) {
    if (GAUGES.has(k)) continue
    const d = v - (before.get(k) ?? 0)
    r.set(k, dtS > 0 && d > 0 ? d / dtS : 0)
  }
  return r
}

/** A rate for people: whole numbers from 100 up, one decimal below (trailing .0 dropped). */
export const fmtRate = (x: number): string => {
  if (x >= 100) return String(Math.round(x))
  const t = x.toFixed(1)
  return t.endsWith(".0") ? t.slice(0, -2) : t
}

/** Bytes per second as Mbit/s (decimal megabits, as iperf prints them), two decimals. */
export const fmtMbits = (bytesPerS: number): string => ((bytesPerS * 8) / 1e6).toFixed(2)

const fmtBytes = (b: number): string =>
  b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1 << 10 ? `${(b / (1 << 10)).toFixed(1)} KiB` : `${b} B`

/**
 * The `-d` block for one interval, from the readings at its start and end (`read`, cumulative): a header, then
 * - `rates:` frames/s and Mbit/s each way on the link, drops/s (every drop: ring, link, queue and by reason),
 *   TCP segments/s and retransmits/s, the iperf 2 and iperf3 payload Mbit/s;
 * - `now:` the gauges at the end: TCP connections by state and committed buffer memory, iperf sessions and
 *   streams, iperf3 tests and streams, queue depths (frames waiting for ARP, connections in accept queues);
 * - `drops:` (only when something was dropped) the rate of each drop reason, by layer.
 */
export const formatInterval = (
  before: ReadonlyMap<string, number>,
  now: ReadonlyMap<string, number>,
  fromS: number,
  toS: number
): ReadonlyArray<string> => {
  const rate = counterRates(before, now, toS - fromS)
  const r = (k: string): number => rate.get(k) ?? 0
  const n = (k: string): number => now.get(k) ?? 0
  const has = (layer: string): boolean => {
    for (const k of now.keys()) if (k.startsWith(`${layer}.`)) return true
    return false
  }
  const dropParts: Array<string> = []
  let dropsPerS = r("link.rx_ring_drops") + r("link.tx_link_drops") + r("link.tx_queue_drops")
  for (const [k, label] of [["link.rx_ring_drops", "link rx ring"], ["link.tx_link_drops", "link tx"], ["link.tx_queue_drops", "link tx queue"]] as const) {
    if (r(k) > 0) dropParts.push(`${label} ${fmtRate(r(k))}/s`)
  }
  for (const [k, x] of rate) {
    const i = k.indexOf(".drops.")
    if (i < 0 || x <= 0) continue
    dropsPerS += x
    dropParts.push(`${k.slice(0, i)} ${k.slice(i + 7)} ${fmtRate(x)}/s`)
  }
  const lines: Array<string> = [`--- interval ${fromS.toFixed(1)}-${toS.toFixed(1)} s ---`]
  let rates =
    `rates: in ${fmtRate(r("link.rx_frames"))} frames/s ${fmtMbits(r("link.rx_bytes"))} Mbit/s, ` +
    `out ${fmtRate(r("link.tx_frames"))} frames/s ${fmtMbits(r("link.tx_bytes"))} Mbit/s, drops ${fmtRate(dropsPerS)}/s`
  if (has("tcp")) {
    rates += `; tcp segments in ${fmtRate(r("tcp.segments_in"))}/s out ${fmtRate(r("tcp.segments_out"))}/s, retransmits ${fmtRate(r("tcp.retransmits"))}/s`
  }
  if (has("iperf")) {
    rates += `; iperf in ${fmtMbits(r("iperf.tcp_bytes_in") + r("iperf.udp_bytes_in"))} Mbit/s out ${fmtMbits(r("iperf.tcp_bytes_out") + r("iperf.udp_bytes_out"))} Mbit/s`
  }
  if (has("iperf3")) {
    rates += `; iperf3 in ${fmtMbits(r("iperf3.bytes_in") + r("iperf3.udp_bytes_in"))} Mbit/s out ${fmtMbits(r("iperf3.bytes_out"))} Mbit/s`
  }
  lines.push(rates)
  const gauges: Array<string> = []
  if (has("tcp")) {
    gauges.push(
      `tcp connections ${n("tcp.connections")} (established ${n("tcp.established")}, half-open ${n("tcp.half_open")}, ` +
        `time-wait ${n("tcp.time_wait")}), memory committed ${fmtBytes(n("tcp.memory_committed_bytes"))}`
    )
  }
  if (has("iperf")) {
    gauges.push(
      `iperf sessions ${n("iperf.tcp_sessions_active")}, udp streams in ${n("iperf.udp_streams_active")} out ${n("iperf.udp_send_streams_active")}`
    )
  }
  if (has("iperf3")) gauges.push(`iperf3 tests ${n("iperf3.tests_active")}, streams ${n("iperf3.streams_active")}`)
  gauges.push(`queued: arp ${n("arp.pending_frames")} frames${has("tcp") ? `, tcp accept ${n("tcp.accept_queued")}` : ""}`)
  lines.push(`now: ${gauges.join("; ")}`)
  if (dropParts.length > 0) lines.push(`drops: ${dropParts.join(", ")}`)
  return lines
}

// ---- the totals block ----------------------------------------------------------------------------------------

/** The dump's lines: one header, then one line per layer present. Drops by reason only when non-zero. */
export const formatDump = (v: ReadonlyMap<string, number>, uptimeS: number, dhcpState?: string): ReadonlyArray<string> => {
  const n = (k: string): number => v.get(k) ?? 0
  const drops = (layer: string): string => {
    const parts: Array<string> = []
    let total = 0
    for (const [k, x] of v) {
      if (k.startsWith(`${layer}.drops.`) && x > 0) {
        parts.push(`${k.slice(layer.length + 7)} ${x}`)
        total += x
      }
    }
    return parts.length === 0 ? "drops 0" : `drops ${total} (${parts.join(", ")})`
  }
  const has = (layer: string): boolean => {
    for (const k of v.keys()) if (k.startsWith(`${layer}.`)) return true
    return false
  }
  const lines: Array<string> = [`--- statistics at ${uptimeS.toFixed(1)} s ---`]
  lines.push(
    `link: in ${n("link.rx_frames")} frames ${n("link.rx_bytes")} bytes, out ${n("link.tx_frames")} frames ${n("link.tx_bytes")} bytes; ` +
      `rx ring drops ${n("link.rx_ring_drops")}, tx drops: queue ${n("link.tx_queue_drops")} link ${n("link.tx_link_drops")}, ` +
      `unknown type ${n("link.rx_unknown_type")}, not for us ${n("link.rx_not_for_us")}, ${drops("link")}`
  )
  lines.push(
    `arp: requests in ${n("arp.requests_in")} out ${n("arp.requests_out")}, replies in ${n("arp.replies_in")} out ${n("arp.replies_out")}, ` +
      `cache ${n("arp.cache_entries")}, pending drops ${n("arp.pending_drops")}, ${drops("arp")}`
  )
  lines.push(
    `ipv4: in ${n("ipv4.packets_in")}, out ${n("ipv4.packets_out")}, delivered ${n("ipv4.delivered")}, ${drops("ipv4")}, ` +
      `checksum errors ${n("ipv4.drops.BadChecksum")}, fragments in ${n("ipv4.fragments_in")} out ${n("ipv4.fragments_out")}, ` +
      `reassembled ${n("ipv4.reassembled")}, reassembly timeouts ${n("ipv4.reassembly_timeouts")} evictions ${n("ipv4.reassembly_evictions")}, ` +
      `duplicate fragments ${n("ipv4.fragment_duplicates")}, no route ${n("ipv4.no_route")}, ` +
      `icmp errors out ${n("ipv4.icmp_errors_out")} suppressed ${n("ipv4.icmp_errors_suppressed")}`
  )
  lines.push(
    `icmp: echo requests ${n("icmp.echo_requests_in")}, echo replies ${n("icmp.echo_replies_out")}, ` +
      `replies in ${n("icmp.echo_replies_in")}, unreachable in ${n("icmp.unreachable_in")}, other ${n("icmp.other_in")}, ${drops("icmp")}`
  )
  if (has("ipv6")) {
    lines.push(
      `ipv6: in ${n("ipv6.packets_in")}, out ${n("ipv6.packets_out")}, delivered ${n("ipv6.delivered")}, not our group ${n("ipv6.not_our_group")}, ` +
        `${drops("ipv6")}, fragments in ${n("ipv6.fragments_in")} out ${n("ipv6.fragments_out")}, reassembled ${n("ipv6.reassembled")}, ` +
        `reassembly timeouts ${n("ipv6.reassembly_timeouts")} evictions ${n("ipv6.reassembly_evictions")}, duplicate fragments ${n("ipv6.fragment_duplicates")}, ` +
        `no route ${n("ipv6.no_route")}, icmpv6 errors out ${n("ipv6.icmp_errors_out")} rate-limited ${n("ipv6.icmp_errors_rate_limited")} suppressed ${n("ipv6.icmp_errors_suppressed")}`
    )
    lines.push(
      `icmpv6: echo requests ${n("icmpv6.echo_requests_in")}, echo replies ${n("icmpv6.echo_replies_out")}, replies in ${n("icmpv6.echo_replies_in")}, ` +
        `errors in ${n("icmpv6.errors_in")}, other ${n("icmpv6.other_in")}, ${drops("icmpv6")}`
    )
    lines.push(
      `nd: addresses assigned ${n("nd.addresses_assigned")}, neighbours ${n("nd.neighbors")}, solicitations in ${n("nd.solicitations_in")} out ${n("nd.solicitations_out")}, ` +
        `advertisements in ${n("nd.advertisements_in")} out ${n("nd.advertisements_out")}, router advertisements in ${n("nd.router_advertisements_in")}, router solicitations out ${n("nd.router_solicitations_out")}, ` +
        `dad probes ${n("nd.dad_probes_out")} duplicates ${n("nd.dad_duplicates")} conflicts ${n("nd.address_conflicts")}, ` +
        `mld reports ${n("nd.mld_reports_out")} queries ${n("nd.mld_queries_in")}, pending drops ${n("nd.pending_drops")}, ${drops("nd")}`
    )
  }
  lines.push(`udp: in ${n("udp.datagrams_in")}, out ${n("udp.datagrams_out")}, no port ${n("udp.no_port")}, ${drops("udp")}`)
  if (has("tcp")) {
    lines.push(
      `tcp: active opens ${n("tcp.active_opens")}, passive opens ${n("tcp.passive_opens")}, established ${n("tcp.established")}, ` +
        `connections ${n("tcp.connections")}, segments in ${n("tcp.segments_in")} out ${n("tcp.segments_out")}, ` +
        `retransmits ${n("tcp.retransmits")}, resets in ${n("tcp.resets_in")} out ${n("tcp.resets_out")}, ` +
        `half-open ${n("tcp.half_open")}, time-wait ${n("tcp.time_wait")} (recycled ${n("tcp.time_wait_recycled")}), ` +
        `syn cookies sent ${n("tcp.syn_cookies_sent")} ok ${n("tcp.syn_cookies_ok")} rate-limited ${n("tcp.syn_rate_limited")}, table full ${n("tcp.table_full_drops")}, ` +
        `per-source refusals ${n("tcp.per_source_refusals")}, memory pressure ${n("tcp.memory_pressure")}, ` +
        `syn filter sources ${n("tcp.syn_filter_sources")} level ${n("tcp.syn_filter_level")}/64 (updates ${n("tcp.syn_filter_updates")}, refused ${n("tcp.syn_filter_refused")}), ` +
        `backlog drops ${n("tcp.syn_backlog_drops")}, ${drops("tcp")}`
    )
  }
  if (has("iperf")) {
    lines.push(
      `iperf: tcp sessions ${n("iperf.tcp_sessions")} (active ${n("iperf.tcp_sessions_active")}), bytes in ${n("iperf.tcp_bytes_in")} out ${n("iperf.tcp_bytes_out")}, ` +
        `udp streams ${n("iperf.udp_streams")}, udp bytes in ${n("iperf.udp_bytes_in")}, udp send streams ${n("iperf.udp_send_streams")}, ` +
        `udp bytes out ${n("iperf.udp_bytes_out")}, errors ${n("iperf.session_errors")}, ` +
        `header timeouts ${n("iperf.header_timeouts")}, stalled ${n("iperf.stalled_sessions")}, grace resets ${n("iperf.close_grace_aborts")}, ` +
        `udp evictions ${n("iperf.udp_stream_evictions")}, udp send stops (unreachable ${n("iperf.udp_send_unreachable_stops")}, ` +
        `unverified ${n("iperf.udp_send_unverified_stops")}), udp send refused per address ${n("iperf.udp_send_per_dest_refused")}, ` +
        `capped ${n("iperf.udp_send_capped")}, log lines held ${n("iperf.log_suppressed")}`
    )
  }
  if (has("iperf3")) {
    lines.push(
      `iperf3: connections ${n("iperf3.connections")}, tests ${n("iperf3.tests")} (completed ${n("iperf3.tests_completed")}, aborted ${n("iperf3.tests_aborted")}), ` +
        `streams ${n("iperf3.streams")}, bytes in ${n("iperf3.bytes_in")} out ${n("iperf3.bytes_out")}, ` +
        `udp datagrams in ${n("iperf3.udp_datagrams_in")} (bytes ${n("iperf3.udp_bytes_in")}) out ${n("iperf3.udp_datagrams_out")}, ` +
        `denied ${n("iperf3.denied")}, bad cookies ${n("iperf3.bad_cookies")}, stalled ${n("iperf3.stalled")}, ` +
        `cookie-less evicted ${n("iperf3.pending_evicted")}, udp wrong peer ${n("iperf3.udp_wrong_peer")}, log lines held ${n("iperf3.log_suppressed")}`
    )
  }
  if (has("dhcp")) {
    lines.push(
      `dhcp: state ${dhcpState ?? "?"}, discovers ${n("dhcp.discovers_out")}, requests ${n("dhcp.requests_out")}, offers ${n("dhcp.offers_in")}, ` +
        `acks ${n("dhcp.acks_in")}, naks ${n("dhcp.naks_in")}, renewals ${n("dhcp.renewals")}, rebinds ${n("dhcp.rebinds")}, expiries ${n("dhcp.expiries")}, ${drops("dhcp")}`
    )
  }
  return lines
}

export const layer = (opts: StatsOptions = {}): Layer.Layer<Stats, never, Ethernet | Arp | Ipv4 | Icmp | Udp> => Layer.scoped(Stats, make(opts))
