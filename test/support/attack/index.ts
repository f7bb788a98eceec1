/**
 * Support for the attack tests (test/e2e/hostile.e2e.test.ts, design.md §7): running the attack tools of
 * `attack.py` inside a test's namespace, tcpdump on the kernel side of the TAP, judging the real clients'
 * output, and reading counters from our server's `-d MS,totals` statistics dump (the totals block; the interval block before it
 * is skipped).
 *
 * Counter names live in `COUNTERS` only: the drop reasons and the SYN-cookie counters are being added by the
 * hardening work in parallel, so their spelling in the dump may still change; adjust it here.
 */
import type { ChildProcess } from "node:child_process"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { NetnsError } from "../netns.js"
import type { RunResult, Server } from "../server.js"

/** Debian's python3 (the pyenv `python3` on PATH has no scapy; attack.py needs only the standard library anyway). */
export const PYTHON = "/usr/bin/python3"
export const ATTACK = path.resolve(__dirname, "attack.py")
export const FIXTURES = path.resolve(__dirname, "../../fixtures/iperf")

const sleep = (ms: number) => Effect.sleep(Duration.millis(ms))

// ---- the -d dump ----------------------------------------------------------------------------------------

/**
 * Where each counter is in the dump: a `[layer, label]` pair reads `label N` from the `layer:` line; a drop
 * reason reads `Reason N` from inside that line's `drops N (...)` list (absent = 0, the dump omits zero reasons).
 */
export const COUNTERS = {
  tcpConnections: { layer: "tcp", label: "connections" },
  tcpEstablished: { layer: "tcp", label: "established" },
  tcpBacklogDrops: { layer: "tcp", label: "backlog drops" },
  tcpResetsOut: { layer: "tcp", label: "out", after: "resets in \\d+" },
  // `syn cookies sent N ok M, table full N, per-source refusals N` (the hardening work's tcp line)
  synCookiesSent: { layer: "tcp", label: "syn cookies sent" },
  synCookiesOk: { layer: "tcp", label: "ok", after: "syn cookies sent \\d+" },
  tcpTableFull: { layer: "tcp", label: "table full" },
  tcpPerSourceRefusals: { layer: "tcp", label: "per-source refusals" },
  tcpHalfOpen: { layer: "tcp", label: "half-open" },
  tcpTimeWait: { layer: "tcp", label: "time-wait" },
  // `syn filter sources N level L/64 (updates N, refused N)`: the link's kernel SYN filter (synShield.ts)
  synFilterSources: { layer: "tcp", label: "syn filter sources" },
  synFilterUpdates: { layer: "tcp", label: "updates" },
  ipv4FragmentsIn: { layer: "ipv4", label: "fragments in" },
  ipv4Reassembled: { layer: "ipv4", label: "reassembled" },
  icmpEchoRequests: { layer: "icmp", label: "echo requests" },
  icmpEchoReplies: { layer: "icmp", label: "echo replies" },
  udpStreams: { layer: "iperf", label: "udp streams" },
  udpSendStreams: { layer: "iperf", label: "udp send streams" },
  udpBytesOut: { layer: "iperf", label: "udp bytes out" }
} as const

export const DROPS = {
  martianSource: { layer: "ipv4", reason: "MartianSource" },
  fragmentOverlap: { layer: "ipv4", reason: "FragmentOverlap" },
  reassemblyLimit: { layer: "ipv4", reason: "ReassemblyLimit" },
  probeToListener: { layer: "tcp", reason: "ProbeToListener" },
  perSourceLimit: { layer: "tcp", reason: "PerSourceLimit" },
  tableFull: { layer: "tcp", reason: "TableFull" },
  rateLimited: { layer: "tcp", reason: "RateLimited" },
  badCookie: { layer: "tcp", reason: "BadCookie" }
} as const

export type CounterName = keyof typeof COUNTERS
export type DropName = keyof typeof DROPS

export interface Dump {
  readonly uptimeS: number
  /** `layer` -> the rest of that line. */
  readonly lines: ReadonlyMap<string, string>
}

/** A line of the dump: `layer: ...`, for every layer the server has (link, arp, ipv4, ipv6, icmpv6, nd, tcp, iperf3, ...). */
export const DUMP_LINE = /^([a-z][a-z0-9]*): (.*)$/

/** Every complete dump in the server's output, oldest first (a dump is complete when its `tcp:` line is there). */
export const dumps = (output: string): Array<Dump> => {
  const res: Array<Dump> = []
  const blocks = output.split(/^--- statistics at /m).slice(1)
  for (const b of blocks) {
    const m = /^([\d.]+) s ---\n/.exec(b)
    if (m === null) continue
    const lines = new Map<string, string>()
    for (const l of b.slice(m[0].length).split("\n")) {
      const lm = DUMP_LINE.exec(l)
      if (lm === null) break
      lines.set(lm[1]!, lm[2]!)
    }
    if (lines.has("tcp") && lines.has("iperf")) res.push({ uptimeS: Number(m[1]), lines })
  }
  return res
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** A counter's value, or undefined when the dump does not have it (a name not yet added by the server). */
export const counter = (d: Dump, name: CounterName): number | undefined => {
  const c: { layer: string; label: string; after?: string } = COUNTERS[name]
  const line = d.lines.get(c.layer)
  if (line === undefined) return undefined
  const re = new RegExp(`(?:^|[\\s,;(])${c.after !== undefined ? `${c.after},? ` : ""}${esc(c.label)} (\\d+)`)
  const m = re.exec(line)
  return m === null ? undefined : Number(m[1])
}

/** A drop reason's count (0 when the dump lists no such reason: it omits zero reasons). */
export const drops = (d: Dump, name: DropName): number => {
  const c = DROPS[name]
  const line = d.lines.get(c.layer) ?? ""
  const list = /(?:^|, )drops \d+ \(([^)]*)\)/.exec(line)
  if (list === null) return 0
  const m = new RegExp(`(?:^|, )${c.reason} (\\d+)`).exec(list[1]!)
  return m === null ? 0 : Number(m[1])
}

export const lastDump = (s: Server): Dump | undefined => dumps(s.output()).at(-1)

/** Waits (bounded) for a dump printed after `afterS` seconds of uptime that satisfies `ok`; returns the last dump seen. */
export const waitDump = (s: Server, ok: (d: Dump) => boolean, opts: { afterS?: number; timeoutMs?: number } = {}) =>
  Effect.gen(function* () {
    const t0 = Date.now()
    const afterS = opts.afterS ?? 0
    for (;;) {
      const d = dumps(s.output()).filter((x) => x.uptimeS > afterS).at(-1)
      if (d !== undefined && ok(d)) return d
      if (Date.now() - t0 > (opts.timeoutMs ?? 10_000) || s.child.exitCode !== null) return d
      yield* sleep(100)
    }
  })

/** The uptime of the newest dump (0 before the first). Use it to ask for a dump taken after some moment. */
export const dumpNow = (s: Server): number => lastDump(s)?.uptimeS ?? 0

// ---- attack tools -----------------------------------------------------------------------------------------

export interface AttackResult {
  readonly run: RunResult
  readonly result: ReadonlyMap<string, string>
}

const parseResult = (stdout: string): Map<string, string> => {
  const m = new Map<string, string>()
  const line = stdout.split("\n").reverse().find((l) => l.startsWith("RESULT ") || l.startsWith("READY "))
  for (const kv of (line ?? "").split(" ").slice(1)) {
    const i = kv.indexOf("=")
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1))
  }
  return m
}

/** Runs one bounded attack.py subcommand to completion in the server's namespace (SIGKILL after timeoutS). */
export const attack = (s: Server, sub: string, args: ReadonlyArray<string>, timeoutS = 60): Effect.Effect<AttackResult> =>
  Effect.map(s.client(PYTHON, [ATTACK, sub, ...args], timeoutS), (run) => ({ run, result: parseResult(run.stdout) }))

export interface Held {
  readonly child: ChildProcess
  readonly ready: ReadonlyMap<string, string>
  readonly output: () => string
}

/**
 * Starts a holding attack.py subcommand (silent, zerowin) in the namespace and waits (bounded) for its READY line.
 * It is killed by PID when the scope closes (Netns.spawn), or earlier with `release`.
 */
export const hold = (s: Server, sub: string, args: ReadonlyArray<string>, timeoutMs = 60_000): Effect.Effect<Held, NetnsError, Scope.Scope> =>
  Effect.gen(function* () {
    const child = yield* s.ns.spawn(PYTHON, [ATTACK, sub, ...args])
    let out = ""
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()))
    const t0 = Date.now()
    while (!/^READY /m.test(out)) {
      if (child.exitCode !== null) return yield* new NetnsError({ message: `attack.py ${sub} exited: ${out}` })
      if (Date.now() - t0 > timeoutMs) return yield* new NetnsError({ message: `attack.py ${sub} not ready: ${out}` })
      yield* sleep(50)
    }
    return { child, ready: parseResult(out), output: () => out }
  })

/** SIGKILL a child we started, by PID, and wait for it to be gone. */
export const release = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    try {
      process.kill(child.pid, "SIGKILL")
    } catch {
      resume(Effect.void)
    }
  })

export interface Capture {
  /** Stops tcpdump (SIGINT, by PID) and returns the lines it printed. */
  readonly stop: Effect.Effect<ReadonlyArray<string>>
}

/** tcpdump on the kernel side of our TAP (`-l -n -e`, link-level headers shown); killed by PID at scope end at the latest. */
export const capture = (s: Server, filter: ReadonlyArray<string>): Effect.Effect<Capture, NetnsError, Scope.Scope> =>
  Effect.gen(function* () {
    const child = yield* s.ns.spawn("tcpdump", ["-i", s.tap, "-l", "-n", "-e", "-U", "-Q", "in", ...filter])
    let out = ""
    let err = ""
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()))
    const t0 = Date.now()
    while (!/listening on/.test(err)) {
      if (child.exitCode !== null) return yield* new NetnsError({ message: `tcpdump exited: ${err}` })
      if (Date.now() - t0 > 10_000) return yield* new NetnsError({ message: `tcpdump did not start: ${err}` })
      yield* sleep(20)
    }
    yield* sleep(100)
    const stop = Effect.async<ReadonlyArray<string>>((resume) => {
      const done = () => resume(Effect.succeed(out.split("\n").filter((l) => l.length > 0)))
      if (child.exitCode !== null || child.pid === undefined) return done()
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid!, "SIGKILL")
        } catch {
          /* gone */
        }
      }, 3000)
      child.once("exit", () => {
        clearTimeout(timer)
        done()
      })
      process.kill(child.pid, "SIGINT")
    })
    return { stop }
  })

// ---- judging the real clients -----------------------------------------------------------------------------

const UNIT: Record<string, number> = { "bits/sec": 1e-6, "Kbits/sec": 1e-3, "Mbits/sec": 1, "Gbits/sec": 1e3 }

export interface Iperf2Tcp {
  /** Connect time the client measured (`ct=` with `-e`), ms. */
  readonly connectMs: number | undefined
  /** The final rate of stream 1, Mbit/s. */
  readonly mbits: number | undefined
}

/** An `iperf -c ... -e` TCP client's connect time and rate (iperf 2 exits 0 even on failure: judge its lines). */
export const iperf2Tcp = (out: string): Iperf2Tcp => {
  const ct = /connected with .*\(ct=([\d.]+) ms\)/.exec(out)
  const rates = [...out.matchAll(/^\[\s*1\] 0\.0+-[\d.]+ sec\s+[\d.]+ \w*Bytes\s+([\d.]+) (\w*bits\/sec)/gm)]
  const last = rates.at(-1)
  return {
    connectMs: ct === null ? undefined : Number(ct[1]),
    mbits: last === undefined ? undefined : Number(last[1]) * (UNIT[last[2]!] ?? Number.NaN)
  }
}

export interface Iperf2Udp {
  readonly serverReport: boolean
  readonly lost: number | undefined
  readonly total: number | undefined
}

/** An `iperf -c -u` client's Server Report (lost/total datagrams) if it got one. */
export const iperf2Udp = (out: string): Iperf2Udp => {
  const i = out.indexOf("Server Report:")
  if (i < 0) return { serverReport: false, lost: undefined, total: undefined }
  const m = /(\d+)\/(\d+) \(/.exec(out.slice(i))
  return { serverReport: true, lost: m === null ? undefined : Number(m[1]), total: m === null ? undefined : Number(m[2]) }
}

/** An iperf3 client's receiver line rate (Mbit/s), undefined when it has none. */
export const iperf3Receiver = (out: string): number | undefined => {
  const m = /sec\s+[\d.]+ \w*Bytes\s+([\d.]+) (\w*bits\/sec)\s+receiver/.exec(out)
  return m === null ? undefined : Number(m[1]) * (UNIT[m[2]!] ?? Number.NaN)
}

export interface PingResult {
  readonly transmitted: number
  readonly received: number
}

export const pingResult = (out: string): PingResult | undefined => {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
  return m === null ? undefined : { transmitted: Number(m[1]), received: Number(m[2]) }
}

/** Our server's MAC as the kernel side learned it (after some traffic). */
export const serverMac = (s: Server, ip: string) =>
  Effect.map(s.ns.exec("ip", ["neigh", "show", ip, "dev", s.tap]), (r) => /lladdr ([0-9a-f:]{17})/.exec(r.stdout)?.[1])
