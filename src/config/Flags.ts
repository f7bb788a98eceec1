/**
 * The flag table and the lexer: argv words (with `--args STRING` spliced in) -> a record of raw strings keyed by flag,
 * which `KernelArgs.ts` decodes with one Schema. This module checks only the shape of the command line (known flags,
 * values present, nothing stray, nothing repeated); every value is judged by the Schema.
 */
import { earlyAnswer } from "../version.js"
import { ConfigError, showValue } from "./ConfigError.js"
import { tokenize } from "./Tokenize.js"

/** Upper bound on `-a` entries (the ARP table downstream is bounded too). At least 16 are required by the design. */
export const MAX_STATIC_ARP = 256
/** Upper bound on `--ip6` addresses (each one joins a group and runs DAD). */
export const MAX_IP6 = 16

/**
 * What the lexer hands to the Schema: each value exactly as typed, keyed by its canonical flag.
 * `hostname` is not a flag: it is an input to the default MAC (see `defaultMac`).
 */
export interface RawArgs {
  readonly "-i"?: string
  readonly "-g"?: string
  readonly "-d"?: string
  readonly "-a": ReadonlyArray<string>
  readonly "--tap"?: string
  readonly "--mac"?: string
  readonly "--mtu"?: string
  readonly "--no-offload": boolean
  readonly "--ip6": ReadonlyArray<string>
  readonly "--gw6"?: string
  readonly "--no-ipv6": boolean
  readonly "--pcap"?: string
  readonly "--drop-chance"?: string
  readonly "--corrupt-chance"?: string
  readonly "--port"?: string
  readonly "--iperf3-port"?: string
  readonly "--interval"?: string
  readonly "--max-connections"?: string
  readonly "--busy-poll"?: string
  readonly "--stall-timeout"?: string
  readonly "--udp-send-max"?: string
  readonly "--one-off": boolean
  readonly "--logfile"?: string
  readonly "--metrics"?: string
  readonly "-y"?: string
  readonly "--json": boolean
  readonly hostname: string
}

export type ValueFlag =
  | "-i"
  | "-g"
  | "-d"
  | "--tap"
  | "--mac"
  | "--mtu"
  | "--pcap"
  | "--drop-chance"
  | "--corrupt-chance"
  | "--port"
  | "--iperf3-port"
  | "--interval"
  | "--max-connections"
  | "--busy-poll"
  | "--stall-timeout"
  | "--udp-send-max"
  | "--logfile"
  | "--metrics"
  | "--gw6"
  | "-y"

/** The plain switches (no value): true when given. */
export type SwitchFlag = "--no-offload" | "--one-off" | "--no-ipv6" | "--json"

type Kind = "value" | "repeat" | "switch" | "help" | "version" | "args"

export interface FlagSpec {
  /** Canonical name, the key in `RawArgs` for value flags. */
  readonly flag: string
  /** Every spelling, e.g. `-h` and `--help`. */
  readonly names: ReadonlyArray<string>
  readonly kind: Kind
  readonly metavar: string
  /** What a value must look like, for "needs a value" and as the start of value errors. */
  readonly expect: string
  /** A correct usage. */
  readonly example: string
  readonly help: string
}

const spec = (
  flag: string,
  kind: Kind,
  metavar: string,
  expect: string,
  example: string,
  help: string,
  names: ReadonlyArray<string> = [flag]
): FlagSpec => ({ flag, names, kind, metavar, expect, example, help })

export const FLAGS: ReadonlyArray<FlagSpec> = [
  spec("-i", "value", "IPv4/PREFIX", "expected IPv4/prefix", "-i 198.51.100.2/24",
    "static address and prefix length (1..32); without -i the address comes from DHCP"),
  spec("-g", "value", "IPv4", "expected an IPv4 address", "-i 198.51.100.2/24 -g 198.51.100.1",
    "default gateway; needs -i and must be inside its subnet"),
  spec("-d", "value", "MS[,totals]", "expected a whole number of milliseconds", "-d 1000",
    "every MS milliseconds (1..86400000) print the statistics of the interval: rates (frames/s, Mbit/s, drops/s) and gauges (connections by state, memory, queues); -d MS,totals adds the cumulative totals per layer"),
  spec("-a", "repeat", "MAC/IPv4", "expected MAC/IPv4", "-i 198.51.100.2/24 -a 02:00:00:00:00:01/198.51.100.1",
    `static ARP entry, repeatable (up to ${MAX_STATIC_ARP}); needs -i, the address must be in its subnet`),
  spec("--tap", "value", "NAME", "expected an interface name", "--tap tap0",
    "TAP device to open or attach to (1..15 characters, no '/', ':' or blanks; default tap0)"),
  spec("--mac", "value", "MAC", "expected a MAC address", "--mac 02:00:00:00:00:02",
    "our Ethernet address (default: a stable locally administered address derived from the TAP name and host name)"),
  spec("--mtu", "value", "N", "expected an MTU", "--mtu 1500", "IP MTU in bytes, 576..9000 (default 1500)"),
  spec("--no-offload", "switch", "", "", "--no-offload", "turn off the virtio-net header, TSO and checksum offload"),
  spec("--ip6", "repeat", "IPv6/PREFIX", "expected IPv6/prefix", "--ip6 2001:db8::2/64",
    `static IPv6 address and prefix length (1..128), repeatable (up to ${MAX_IP6}); the link-local address from the MAC is always there`),
  spec("--gw6", "value", "IPv6", "expected an IPv6 address", "--gw6 fe80::1",
    "default IPv6 router (link-local, or on the link of an --ip6 prefix), kept besides those router advertisements announce"),
  spec("--no-ipv6", "switch", "", "", "--no-ipv6", "no IPv6 at all: IPv4 only, nothing sent or answered for type 0x86dd"),
  spec("--pcap", "value", "FILE", "expected a file name", "--pcap /tmp/miniperf.pcap", "write every frame to FILE (pcap)"),
  spec("--drop-chance", "value", "PERCENT", "expected a percentage", "--drop-chance 5",
    "drop this percentage of frames in each direction, 0..100 (default 0)"),
  spec("--corrupt-chance", "value", "PERCENT", "expected a percentage", "--corrupt-chance 1",
    "corrupt one byte in this percentage of frames, 0..100 (default 0)"),
  spec("--port", "value", "N", "expected a port number", "--port 5001", "iperf 2 TCP/UDP port, 1..65535 (default 5001)"),
  spec("--iperf3-port", "value", "N", "expected a port number", "--iperf3-port 5201",
    "iperf3 TCP/UDP port, 1..65535, not the iperf 2 port (default 5201; the client's -p)"),
  spec("--interval", "value", "SECONDS", "expected a number of seconds", "--interval 0.5",
    "interval report lines every SECONDS, 0.001..86400 (decimals allowed), or 0 for none; iperf 2 tests default to none, iperf3 tests to 1 s, as iperf -s and iperf3 -s"),
  spec("--max-connections", "value", "N", "expected a connection count", "--max-connections 4096",
    "limit on live TCP connections (TIME-WAIT and half-open entries have bounds of their own), 1..65535 (default 4096; half of it per client address)"),
  spec("--busy-poll", "value", "US", "expected a number of microseconds", "--busy-poll 5000",
    "after a frame, poll the TAP without sleeping until it is quiet for US microseconds; 0 = off (default 5000)"),
  spec("--stall-timeout", "value", "SECONDS", "expected a number of seconds", "--stall-timeout 30",
    "end an iperf 2 or iperf3 test (any mode) when nothing moves for SECONDS: no byte in, none taken by the peer; 1..3600 (default 10)"),
  spec("--udp-send-max", "value", "SECONDS", "expected a number of seconds", "--udp-send-max 120",
    "iperf 2 UDP streams the server sends (-u -r/-d/-R) stop after the client's -t or SECONDS, whichever is less; 1..3600 (default 60)"),
  spec("--one-off", "switch", "", "", "--one-off",
    "serve one test, then exit 0 (like iperf3 -s -1): the first iperf 2 test (all -P streams of that client, connect-backs and server report included) or iperf3 test to end",
    ["-1", "--one-off"]),
  spec("--logfile", "value", "FILE", "expected a file name", "--logfile /var/log/miniperf.log",
    "append every console line to FILE instead of stdout, one write per line; SIGHUP reopens FILE (logrotate)"),
  spec("--metrics", "value", "HOST:PORT", "expected a loopback address and a port", "--metrics 127.0.0.1:9100",
    "serve GET /metrics (Prometheus text format) over the host's own loopback, 127.0.0.0/8 or [::1], never on the TAP; off by default"),
  spec("-y", "value", "C", "expected C (CSV, the one report style)", "-y C",
    "iperf 2 results as CSV lines, as iperf -s -y C prints them (and no banner or connection lines)", ["-y", "--reportstyle"]),
  spec("--json", "switch", "", "", "--json",
    "results as JSON, one document per line per finished test: iperf3 tests in iperf3 -s -J's layout, iperf 2 streams with the -y C fields (README); no other iperf lines",
    ["-J", "--json"]),
  spec("--args", "args", "STRING", "expected the flags as one string", "--args '-i 198.51.100.2/24 -g 198.51.100.1'",
    "the flags above as one kernel-style string, split like a shell would (quotes allowed); may be mixed with argv"),
  spec("-h", "help", "", "", "miniperf --help", "print this help and exit", ["-h", "--help"]),
  spec("--version", "version", "", "", "miniperf --version", "print the version and exit", ["-v", "--version"])
]

const byName: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.flatMap((s) => s.names.map((n) => [n, s] as const)))

export const flagSpec = (flag: string): FlagSpec | undefined => byName.get(flag)

/** Example for a canonical flag; falls back to the help hint. */
export const exampleFor = (flag: string): string => byName.get(flag)?.example ?? "miniperf --help"

const RUN_EXAMPLE = "miniperf --tap tap0 -i 198.51.100.2/24 -g 198.51.100.1"

/** The flag a word would select, if it is spelled like one of ours (`--mtu`, `--mtu=9000`, `-i`, `-i198.51.100.2/24`). */
const flagOf = (w: string): FlagSpec | undefined => {
  if (w.startsWith("--")) {
    const eq = w.indexOf("=")
    return byName.get(eq < 0 ? w : w.slice(0, eq))
  }
  if (w.length >= 2 && w[0] === "-") return byName.get(w.slice(0, 2))
  return undefined
}

/** Iperf habits that mean something else (or nothing) here. */
const IPERF_HINTS: Readonly<Record<string, string>> = {
  "-p": "the iperf port is --port",
  "-s": "miniperf is always a server; no -s needed",
  "-u": "iperf UDP is served on the same --port, no flag needed",
  "-P": "there is no -P; see --max-connections",
  "-t": "the test length is chosen by the client",
  "-B": "the address is -i IPv4/prefix"
}

const editDistance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]!
}

const unknownFlag = (word: string): ConfigError => {
  const name = word.startsWith("--") && word.includes("=") ? word.slice(0, word.indexOf("=")) : word
  const hint = IPERF_HINTS[name]
  if (hint !== undefined) {
    return new ConfigError({ reason: "UnknownFlag", flag: name, value: word, message: hint, example: RUN_EXAMPLE })
  }
  let best: FlagSpec | undefined
  let bestD = Infinity
  if (name.length > 2 && name.length <= 40) {
    for (const s of FLAGS) {
      for (const n of s.names) {
        if (n.length <= 2) continue
        const d = editDistance(name, n)
        if (d < bestD) {
          bestD = d
          best = s
        }
      }
    }
  }
  if (best !== undefined && bestD <= 2) {
    const n = best.names[best.names.length - 1]!
    return new ConfigError({ reason: "UnknownFlag", flag: name, value: word, message: `did you mean ${n}?`, example: best.example })
  }
  return new ConfigError({ reason: "UnknownFlag", flag: name, value: word, message: "see miniperf --help for the options", example: RUN_EXAMPLE })
}

export type LexResult =
  | { readonly _tag: "Raw"; readonly raw: RawArgs }
  | { readonly _tag: "Help" }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Error"; readonly error: ConfigError }

const fail = (error: ConfigError): LexResult => ({ _tag: "Error", error })

/** The same rule main.ts applies before loading anything (version.ts). */
const askedFor = (words: ReadonlyArray<string>): LexResult | undefined => {
  const a = earlyAnswer(words)
  return a === undefined ? undefined : { _tag: a }
}

const ARGS = byName.get("--args")!

/** Replace every `--args STRING` / `--args=STRING` by the words of STRING. Nested `--args` is refused. */
const expand = (argv: ReadonlyArray<string>): ReadonlyArray<string> | ConfigError => {
  const out: Array<string> = []
  for (let j = 0; j < argv.length; j++) {
    const w = argv[j]!
    let s: string | undefined
    if (w === "--args") {
      // the value is taken as is even though it normally starts with '-'
      if (j + 1 >= argv.length) {
        return new ConfigError({ reason: "MissingValue", flag: "--args", value: undefined, message: ARGS.expect, example: ARGS.example })
      }
      s = argv[++j]!
    } else if (w.startsWith("--args=")) {
      s = w.slice("--args=".length)
    } else {
      out.push(w)
      continue
    }
    const t = tokenize(s)
    if (t._tag === "Error") {
      return new ConfigError({ reason: "Quoting", flag: "--args", value: s, message: t.message, example: ARGS.example })
    }
    for (const x of t.words) {
      if (x === "--args" || x.startsWith("--args=")) {
        return new ConfigError({
          reason: "InvalidValue", flag: "--args", value: s, message: "--args cannot appear inside --args", example: ARGS.example
        })
      }
    }
    out.push(...t.words)
  }
  return out
}

/**
 * argv (without node and script) -> raw record, or Help/Version, or the first problem found.
 * `-h`/`--help` anywhere wins over everything else, then `-v`/`--version`; otherwise a broken command line is an error.
 */
export const lex = (argv: ReadonlyArray<string>, hostname: string): LexResult => {
  const early = askedFor(argv)
  if (early !== undefined) return early
  const words = expand(argv)
  if (words instanceof ConfigError) return fail(words)
  const early2 = askedFor(words)
  if (early2 !== undefined) return early2

  const values = new Map<string, string>()
  const repeats: Record<"-a" | "--ip6", Array<string>> = { "-a": [], "--ip6": [] }
  const switches = new Set<SwitchFlag>()

  for (let j = 0; j < words.length; j++) {
    const w = words[j]!
    const s = flagOf(w)
    if (s === undefined) {
      if (w.startsWith("-") && w !== "-" && w !== "--") return fail(unknownFlag(w))
      return fail(new ConfigError({
        reason: "StrayArgument", flag: "", value: w,
        message: "miniperf takes only options (did a value lose its flag, or need quotes?)", example: RUN_EXAMPLE
      }))
    }
    const long = w.startsWith("--")
    const eq = long ? w.indexOf("=") : -1
    let inline: string | undefined = long ? (eq < 0 ? undefined : w.slice(eq + 1)) : w.length > 2 ? w.slice(2) : undefined

    if (s.kind === "switch" || s.kind === "help" || s.kind === "version") {
      if (inline !== undefined) {
        if (!long) return fail(unknownFlag(w)) // e.g. -hx: no bundling of short switches
        return fail(new ConfigError({ reason: "UnexpectedValue", flag: s.flag, value: inline, message: "", example: s.example }))
      }
      if (s.kind === "help") return { _tag: "Help" } // not reached: askedFor saw it first
      if (s.kind === "version") return { _tag: "Version" }
      switches.add(s.flag as SwitchFlag) // given twice is the same as once, as before
      continue
    }
    if (inline === undefined) {
      const next = words[j + 1]
      // a negative number is a (bad) value for the Schema to judge, not the switch -1 (`--port -1`)
      if (next === undefined || (flagOf(next) !== undefined && !/^-\d/.test(next))) {
        const message = next === undefined ? `${s.expect}` : `${s.expect}, but the next word ${next} is an option`
        return fail(new ConfigError({ reason: "MissingValue", flag: s.flag, value: undefined, message, example: s.example }))
      }
      inline = next
      j++
    }
    if (s.kind === "repeat") {
      const list = repeats[s.flag as keyof typeof repeats]
      const max = s.flag === "-a" ? MAX_STATIC_ARP : MAX_IP6
      if (list.length >= max) {
        const what = s.flag === "-a" ? "static ARP entries" : "--ip6 addresses"
        return fail(new ConfigError({
          reason: "InvalidValue", flag: s.flag, value: inline,
          message: `at most ${max} ${what}`, example: s.example
        }))
      }
      list.push(inline)
      continue
    }
    const before = values.get(s.flag)
    if (before !== undefined) {
      return fail(new ConfigError({
        reason: "Repeated", flag: s.flag, value: inline, message: `it was already ${showValue(before)}; give it once`, example: s.example
      }))
    }
    values.set(s.flag, inline)
  }

  const raw: Record<string, unknown> = {
    ...repeats,
    "--no-offload": switches.has("--no-offload"),
    "--one-off": switches.has("--one-off"),
    "--no-ipv6": switches.has("--no-ipv6"),
    "--json": switches.has("--json"),
    hostname
  }
  for (const [k, v] of values) raw[k] = v
  return { _tag: "Raw", raw: raw as unknown as RawArgs }
}
