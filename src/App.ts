/**
 * The program's layer graph, from a decoded Config: TAP -> (fault injector) -> (pcap) -> stack -> apps.
 * Kept apart from main.ts so tests and embedding apps can build the same graph over another Nic.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Config } from "./config/KernelArgs.js"
import * as FaultInjector from "./nic/FaultInjector.js"
import * as Pcap from "./nic/Pcap.js"
import * as Tap from "./nic/Tap.js"
import type { Nic, NicError } from "./nic/Nic.js"
import * as Stack from "./layers/Stack.js"
import { Ethernet } from "./layers/Ethernet.js"
import * as Dhcp from "./layers/Dhcp.js"
import * as Iperf from "./layers/Iperf.js"
import * as Iperf3 from "./layers/Iperf3.js"
import * as MetricsServer from "./layers/MetricsServer.js"
import { printer } from "./layers/Output.js"
import * as Stats from "./layers/Stats.js"
import * as Tcp from "./layers/Tcp.js"
import { formatIpv4, formatMac, prefixMask } from "./protocols/address.js"
import { formatIpv6, linkLocalFromMac } from "./protocols/ipv6/address.js"

/**
 * TAP, then the fault injector (when --drop-chance/--corrupt-chance ask for one), then the pcap writer on
 * top, so the capture shows what the stack really saw and sent.
 */
export const nicLayer = (cfg: Config): Layer.Layer<Nic, NicError> => {
  let nic: Layer.Layer<Nic, NicError> = Tap.layer({ name: cfg.tap, mac: cfg.mac, mtu: cfg.mtu, offload: cfg.offload, busyPollUs: cfg.busyPollUs })
  if (cfg.dropChance > 0 || cfg.corruptChance > 0) {
    nic = FaultInjector.layer({ dropRate: cfg.dropChance / 100, corruptRate: cfg.corruptChance / 100, seed: Date.now() >>> 0 }).pipe(Layer.provide(nic))
  }
  if (cfg.pcap !== undefined) nic = Pcap.layer(cfg.pcap).pipe(Layer.provide(nic))
  return nic
}

/** MinIperf's start-up lines: the interface and its address (or DHCP). */
export const bannerLines = (cfg: Config): ReadonlyArray<string> => [
  `Interface ${cfg.tap}: MAC ${formatMac(cfg.mac)}, MTU ${cfg.mtu}, offloads ${cfg.offload ? "requested" : "off"}, ` +
    `busy poll ${cfg.busyPollUs > 0 ? `${cfg.busyPollUs} us` : "off"}`,
  cfg.ip._tag === "Dhcp"
    ? "Initialize network interface 0: DHCP"
    : `Initialize network interface 0: ${formatIpv4(cfg.ip.address)} netmask ${formatIpv4(prefixMask(cfg.ip.prefix))} gw ${formatIpv4(cfg.ip.gateway ?? 0)}`,
  cfg.ipv6
    ? `IPv6: ${[`${formatIpv6(linkLocalFromMac(cfg.mac))}/64`, ...cfg.ip6.map((a) => `${formatIpv6(a.address)}/${a.prefixLen}`)].join(", ")} (tentative until DAD)`
    : "IPv6: off (--no-ipv6)"
]

/**
 * `nicLayer` that prints the banner once the link is open (TAP, fault injector, pcap file), before the stack is
 * built on it: a TAP that cannot be opened prints only its error, not an interface that never existed.
 */
export const announcedNicLayer = (cfg: Config): Layer.Layer<Nic, NicError> =>
  nicLayer(cfg).pipe(Layer.tap(() => Effect.flatMap(printer(), (print) => Effect.sync(() => bannerLines(cfg).forEach((l) => print(l))))))

export const stackLayer = (cfg: Config): Layer.Layer<Stack.StackServices, never, Nic> =>
  Layer.unwrapEffect(
    // the IPv6 address lines go where every console line goes (Output: stdout or --logfile)
    Effect.map(printer(), (print) =>
      Stack.layer({
        ...(cfg.ip._tag === "Static"
          ? { address: { address: cfg.ip.address, prefix: cfg.ip.prefix, gateway: cfg.ip.gateway } }
          : {}),
        staticArp: cfg.staticArp,
        // SLAAC when no static address is given (RFC 4862), as a host does
        ipv6: cfg.ipv6
          ? { addresses: cfg.ip6, print, slaac: cfg.ip6.length === 0, ...(cfg.gw6 !== undefined ? { gateway: cfg.gw6 } : {}) }
          : { enabled: false }
      })
    )
  )

const ready = Layer.effectDiscard(
  Effect.gen(function* () {
    const eth = yield* Ethernet
    const c = eth.caps
    const print = yield* printer()
    yield* Effect.sync(() => {
      print(`Link up: ${eth.nic.name}, offloads ${c.rxOffload ? "on (checksum, TSO)" : "off"}`)
      print("Entering main event loop")
    })
  })
)

export const tcpLayer = (cfg: Config): Layer.Layer<Tcp.Tcp, never, Stack.StackServices> => Tcp.layer({ maxConnections: cfg.maxConnections })

export const iperfLayer = (cfg: Config) =>
  Iperf.layer({
    port: cfg.port,
    ...(cfg.intervalS !== undefined && cfg.intervalS > 0 ? { intervalS: cfg.intervalS } : {}),
    stallTimeoutMs: cfg.stallTimeoutS * 1000,
    udpSendMaxMs: cfg.udpSendMaxS * 1000,
    ...(cfg.report !== "human" ? { report: cfg.report } : {})
  })

/** The iperf3 server, on TCP (and UDP) 5201 unless --iperf3-port says otherwise (iperf-wire.md §C). */
export const iperf3Layer = (cfg: Config) =>
  Iperf3.layer({
    port: cfg.iperf3Port,
    stallTimeoutMs: cfg.stallTimeoutS * 1000,
    ...(cfg.intervalS !== undefined ? { intervalS: cfg.intervalS } : {}),
    ...(cfg.report === "json" ? { json: true } : {}),
    ...(cfg.oneOff ? { oneOff: true } : {})
  })

/** The DHCP client when no -i was given (prints the lease when bound). */
export const dhcpLayer = (cfg: Config) => (cfg.ip._tag === "Dhcp" ? Dhcp.layer({}) : Layer.empty)

/** Metrics for every layer, and the -d dump when asked for. */
export const statsLayer = (cfg: Config) =>
  Stats.layer(cfg.debugMs !== undefined ? { dumpEveryMs: cfg.debugMs, dumpTotals: cfg.debugTotals === true } : {})

/**
 * `--metrics`: the loopback socket, bound before anything else is built (before the TAP opens: a taken port ends the
 * program at once, exit 2, like a log file that cannot be opened); it answers 503 until the stack is up. Without the
 * flag, a listener that serves nothing and binds nothing.
 */
export const metricsListenerLayer = (cfg: Config): Layer.Layer<MetricsServer.MetricsListener, MetricsServer.MetricsServerError> =>
  cfg.metrics === undefined
    ? Layer.succeed(MetricsServer.MetricsListener, { host: "", port: 0, attach: () => Effect.void })
    : MetricsServer.listenerLayer({ host: cfg.metrics.host, port: cfg.metrics.port })

export const layer = (cfg: Config) => {
  const stack = tcpLayer(cfg).pipe(Layer.provideMerge(stackLayer(cfg)))
  const withDhcp = dhcpLayer(cfg).pipe(Layer.provideMerge(stack))
  const apps = Layer.merge(iperfLayer(cfg), iperf3Layer(cfg)).pipe(Layer.provideMerge(withDhcp))
  // the metrics start serving once Stats (and so the whole stack) is there
  const stats = MetricsServer.attachLayer.pipe(Layer.provideMerge(statsLayer(cfg)))
  return Layer.merge(ready, stats).pipe(Layer.provideMerge(apps), Layer.provide(announcedNicLayer(cfg)), Layer.provide(metricsListenerLayer(cfg)))
}

/**
 * The program: the layer graph, run until interrupted (SIGINT/SIGTERM), or with `--one-off` until the first test
 * to end, iperf 2 or iperf3 (each server's `firstTestOver`, done after that test's last console line). Either way
 * the scope closes every layer in order: connections, fibers, the TAP.
 */
export const run = (cfg: Config) =>
  Effect.scoped(
    Effect.gen(function* () {
      const services = yield* Layer.build(layer(cfg))
      if (!cfg.oneOff) return yield* Effect.never
      yield* Effect.raceFirst(
        Context.get(services, Iperf.Iperf).firstTestOver,
        Context.get(services, Iperf3.Iperf3).firstTestOver
      )
    })
  )
