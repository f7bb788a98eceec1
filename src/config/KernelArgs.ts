/**
 * MinIperf's configuration (design.md §1, style.md §2.9): the kernel-style flags `-i -g -d -a` plus the Node-side options,
 * given as argv words, as one `--args '…'` string, or both mixed. One tokenizer (`Tokenize.ts`), one lexer (`Flags.ts`) and
 * one Schema (`KernelArgs` below) turn them into a typed `Config`; nothing downstream sees strings for addresses or numbers.
 *
 * Decisions (documented here and in `USAGE`):
 * - `-i` prefix is 1..32. /0 is refused (it would put the whole Internet on-link). /31 (RFC 3021) and /32 are accepted; for
 *   prefixes up to /30 the network and broadcast addresses of the subnet are refused as host addresses.
 * - Addresses are dotted quads without leading zeros (`198.051.100.2` is refused: inet_aton would read it as octal).
 *   0.0.0.0/8, 127/8, multicast 224/4 and 240/4 (including 255.255.255.255) are not host addresses.
 * - `-g` and `-a` need `-i` (with DHCP the server supplies the gateway, and MinIperf refused static ARP with DHCP).
 *   The gateway and every static ARP address must be inside the `-i` subnet and differ from our own address; ARP IPs must
 *   be unique (MACs may repeat). At most `MAX_STATIC_ARP` entries.
 * - A single-valued flag given twice is an error, not "last one wins" (argv and `--args` mixed would make that surprising).
 * - `--drop-chance` / `--corrupt-chance` are percentages 0..100 and may have decimals (0.5 = one frame in 200).
 * - The default MAC is `defaultMac(tap, hostname)`: stable for the same inputs, locally administered, unicast.
 * - `--ip6 ADDR/PREFIX` (repeatable): any RFC 4291 text form, prefix 1..128; a unicast address (not ::, ::1 or
 *   multicast), not the subnet-router anycast address of its prefix (interface identifier all zeros, RFC 4291 §2.6.1),
 *   each address once. The link-local address from the MAC is always configured besides. `--no-ipv6` turns IPv6 off and
 *   is refused together with `--ip6`. Addresses are printed back in RFC 5952 form. Without `--ip6`, SLAAC forms an
 *   address from each autonomous /64 that router advertisements carry (RFC 4862).
 * - `--gw6 ADDR`: a unicast IPv6 address without a prefix, link-local or inside an `--ip6` prefix (a router must be on
 *   our link); refused with `--no-ipv6`.
 * - `-d MS` or `-d MS,totals` (no other suffix): the interval block only, or followed by the cumulative totals.
 * - `--metrics HOST:PORT`: HOST a loopback address of this host, a dotted quad in 127.0.0.0/8 or `[::1]` (any RFC 4291
 *   spelling of it); names such as `localhost` are refused (the resolver decides what they mean), as is every other
 *   address: the metrics endpoint is never on the TAP or another interface. PORT 1..65535 (no 0: a scraper needs to
 *   know it).
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import * as os from "node:os"
import {
  type Ipv4Address,
  type MacAddress,
  formatIpv4,
  formatMac,
  isMulticastMac,
  mac as makeMac,
  parseIpv4,
  parseMac,
  prefixMask
} from "../protocols/address.js"
import { formatIpv6, inPrefix, isLinkLocal, isLoopback, isMulticast, isUnspecified, maskPrefix, parseIpv6, parseIpv6Prefix, type Ipv6Address } from "../protocols/ipv6/address.js"
import { ConfigError } from "./ConfigError.js"
import { FLAGS, type FlagSpec, MAX_STATIC_ARP, type RawArgs, type SwitchFlag, exampleFor, lex } from "./Flags.js"

export { ConfigError, type ConfigErrorReason, formatConfigError } from "./ConfigError.js"
export { FLAGS, MAX_IP6, MAX_STATIC_ARP, type RawArgs } from "./Flags.js"
export { tokenize } from "./Tokenize.js"

// ---------------------------------------------------------------------------------------------------------------------
// The decoded types

export interface StaticIp {
  readonly _tag: "Static"
  readonly address: Ipv4Address
  readonly prefix: number
  readonly gateway?: Ipv4Address
}
export interface DhcpIp {
  readonly _tag: "Dhcp"
}
export interface StaticArpEntry {
  readonly mac: MacAddress
  readonly ip: Ipv4Address
}

export interface StaticIp6 {
  readonly address: Ipv6Address
  readonly prefixLen: number
}

export interface Config {
  readonly ip: StaticIp | DhcpIp
  /** `--ip6`: static IPv6 addresses besides the link-local one. */
  readonly ip6: ReadonlyArray<StaticIp6>
  /** false with `--no-ipv6`. */
  readonly ipv6: boolean
  /** `--gw6`: a static default IPv6 router. */
  readonly gw6?: Ipv6Address
  readonly staticArp: ReadonlyArray<StaticArpEntry>
  /** `-d`: statistics dump interval. */
  readonly debugMs?: number
  /** `-d MS,totals`: each dump also prints the cumulative totals (present only when asked for). */
  readonly debugTotals?: true
  readonly tap: string
  readonly mac: MacAddress
  /** IP MTU, 576..9000. */
  readonly mtu: number
  readonly offload: boolean
  readonly pcap?: string
  /** Percent, 0..100. */
  readonly dropChance: number
  /** Percent, 0..100. */
  readonly corruptChance: number
  readonly port: number
  /** The iperf3 server's port (TCP control and data, UDP). */
  readonly iperf3Port: number
  /** Server-side iperf interval reports. */
  readonly intervalS?: number
  readonly maxConnections: number
  /** Adaptive busy polling of the TAP, microseconds of quiet before sleeping again (0: off). */
  readonly busyPollUs: number
  /** iperf 2 and iperf3: a test where nothing moves for this long ends (seconds). */
  readonly stallTimeoutS: number
  /** iperf 2: server-sent UDP streams last at most this long (seconds). */
  readonly udpSendMaxS: number
  /** `-1`/`--one-off`: serve one test (the first to end, iperf 2 or iperf3), then exit 0. */
  readonly oneOff: boolean
  /** `--logfile`: console lines appended to this file instead of stdout (reopened on SIGHUP). */
  readonly logfile?: string
  /** `--metrics`: the Prometheus endpoint's address, a loopback address of the host (`127.0.0.1`, `::1`) and a port. */
  readonly metrics?: MetricsAddress
  /** How iperf results are printed: as the servers do (default), `-y C` CSV lines, or `-J` JSON documents. */
  readonly report: "human" | "csv" | "json"
}

export interface MetricsAddress {
  /** A loopback address in its plain text form: dotted quad in 127.0.0.0/8, or `::1`. */
  readonly host: string
  readonly port: number
}

export interface Help {
  readonly _tag: "Help"
  readonly text: string
}
export interface Version {
  readonly _tag: "Version"
}
export type Decoded = Config | Help | Version

export const isConfig = (d: Decoded): d is Config => !("_tag" in d)

export const DEFAULTS = {
  tap: "tap0",
  mtu: 1500,
  port: 5001,
  iperf3Port: 5201,
  maxConnections: 4096,
  busyPollUs: 5000,
  stallTimeoutS: 10,
  udpSendMaxS: 60,
  dropChance: 0,
  corruptChance: 0
} as const

export const MTU_MIN = 576
export const MTU_MAX = 9000
export const DEBUG_MS_MAX = 86_400_000
export const INTERVAL_S_MIN = 0.001
export const INTERVAL_S_MAX = 86_400
export const MAX_CONNECTIONS_MAX = 65_535
export const BUSY_POLL_US_MAX = 1_000_000
export const STALL_TIMEOUT_S_MAX = 3_600
export const UDP_SEND_MAX_S_MAX = 3_600

// ---------------------------------------------------------------------------------------------------------------------
// Pure value checks: each returns the value or an `Invalid` carrying the person-readable reason.

class Invalid {
  constructor(readonly message: string) {}
}

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)"
const dottedQuad = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`)

const parseQuad = (s: string): Ipv4Address | undefined => (dottedQuad.test(s) ? parseIpv4(s) : undefined)

/** Why an address cannot be a host's unicast address, if it cannot. */
const notAHost = (a: number): string | undefined => {
  const top = a >>> 24
  if (top === 0) return "0.0.0.0/8 is not a host address"
  if (top === 127) return "127.0.0.0/8 is loopback"
  if (top >= 224 && top < 240) return "that is a multicast address"
  if (top >= 240) return "240.0.0.0/4 and the broadcast address are not host addresses"
  return undefined
}

const net = (a: number, prefix: number): number => (a & prefixMask(prefix)) >>> 0
const subnetText = (a: number, prefix: number): string => `${formatIpv4(net(a, prefix))}/${prefix}`

/** For prefixes up to /30 the all-zeros and all-ones host parts are not usable host addresses. */
const edgeOfSubnet = (a: number, prefix: number): string | undefined => {
  if (prefix > 30) return undefined
  const host = (a & ~prefixMask(prefix)) >>> 0
  if (host === 0) return `that is the network address of ${subnetText(a, prefix)}`
  if (host === (~prefixMask(prefix)) >>> 0) return `that is the broadcast address of ${subnetText(a, prefix)}`
  return undefined
}

const looksLikeNumber = /^\d+(?:\.\d+)?$/

const checkCidr = (s: string): { readonly address: Ipv4Address; readonly prefix: number } | Invalid => {
  const slash = s.indexOf("/")
  if (slash < 0) {
    if (looksLikeNumber.test(s)) {
      return new Invalid("expected IPv4/prefix (MinIperf's -i is the address; the iperf report interval is --interval)")
    }
    return new Invalid(parseQuad(s) !== undefined ? "expected IPv4/prefix, the prefix length is missing" : "expected IPv4/prefix")
  }
  const address = parseQuad(s.slice(0, slash))
  const p = s.slice(slash + 1)
  if (address === undefined || !/^\d{1,2}$/.test(p)) return new Invalid("expected IPv4/prefix")
  const prefix = Number(p)
  if (prefix < 1 || prefix > 32) return new Invalid("the prefix length must be 1..32")
  const bad = notAHost(address) ?? edgeOfSubnet(address, prefix)
  return bad !== undefined ? new Invalid(bad) : { address, prefix }
}

/** Why `gateway` cannot be the gateway of `address/prefix`, if it cannot; `own` says how the messages name the address. */
const gatewayProblem = (gateway: number, address: number, prefix: number, own: "-i" | "the address"): string | undefined => {
  if (net(gateway, prefix) !== net(address, prefix)) return `the gateway must be inside the subnet ${subnetText(address, prefix)} of ${own}`
  if (gateway === address) return own === "-i" ? "the gateway is our own -i address" : "the gateway is our own address"
  return edgeOfSubnet(gateway, prefix)
}

const checkHostIpv4 = (s: string): Ipv4Address | Invalid => {
  const a = parseQuad(s)
  if (a === undefined) return new Invalid(s.includes("/") ? "expected an IPv4 address without a prefix" : "expected an IPv4 address")
  const bad = notAHost(a)
  return bad !== undefined ? new Invalid(bad) : a
}

const checkUnicastMac = (s: string, what: string): MacAddress | Invalid => {
  const m = parseMac(s)
  if (m === undefined) return new Invalid(`expected ${what} as six hex pairs like 02:00:00:00:00:01`)
  if (m === 0) return new Invalid("00:00:00:00:00:00 is not a usable address")
  if (isMulticastMac(m)) return new Invalid("that is a multicast or broadcast MAC; the first octet must be even")
  return m
}

/** `--gw6 ADDR`: a unicast IPv6 address (no prefix). */
const checkIp6Host = (s: string): Ipv6Address | Invalid => {
  if (s.includes("/")) return new Invalid("expected an address without a prefix length")
  const a = parseIpv6(s)
  if (a === undefined) return new Invalid("expected an IPv6 address (RFC 4291 text form)")
  if (isUnspecified(a)) return new Invalid(":: is not a router address")
  if (isLoopback(a)) return new Invalid("::1 is loopback")
  if (isMulticast(a)) return new Invalid("that is a multicast address (ff00::/8)")
  return a
}

const checkIp6Prefix = (s: string): StaticIp6 | Invalid => {
  const slash = s.indexOf("/")
  if (slash < 0) return new Invalid(`expected IPv6/prefix${parseIpv6Prefix(`${s}/64`) !== undefined ? ", the prefix length is missing" : ""}`)
  const p = parseIpv6Prefix(s)
  if (p === undefined) return new Invalid("expected IPv6/prefix (an RFC 4291 address, then /0..128)")
  if (p.prefixLen < 1) return new Invalid("the prefix length must be 1..128")
  const a = p.address
  if (isUnspecified(a)) return new Invalid(":: is not a host address")
  if (isLoopback(a)) return new Invalid("::1 is loopback")
  if (isMulticast(a)) return new Invalid("that is a multicast address (ff00::/8)")
  if (p.prefixLen < 128 && maskPrefix(a, p.prefixLen) === a) {
    return new Invalid(`that is the subnet-router anycast address of ${formatIpv6(a)}/${p.prefixLen} (RFC 4291 §2.6.1), not a host address`)
  }
  return { address: a, prefixLen: p.prefixLen }
}

const checkMacIp = (s: string): StaticArpEntry | Invalid => {
  const slash = s.lastIndexOf("/")
  if (slash < 0) return new Invalid("expected MAC/IPv4")
  const mac = checkUnicastMac(s.slice(0, slash), "MAC/IPv4 with the MAC")
  if (mac instanceof Invalid) return mac
  const ip = checkHostIpv4(s.slice(slash + 1))
  if (ip instanceof Invalid) return new Invalid(`${ip.message} after the '/'`)
  return { mac, ip }
}

/** Decimal integer in [min, max]; no sign, no exponent, no hex, at most 10 digits. */
const checkInt = (s: string, min: number, max: number, what: string): number | Invalid => {
  if (!/^\d{1,10}$/.test(s)) return new Invalid(`expected ${what}, a whole number ${min}..${max}`)
  const n = Number(s)
  if (n < min || n > max) return new Invalid(`${what} must be ${min}..${max}`)
  return n
}

/** Decimal number in [min, max] (decimals and an exponent allowed, no sign, no hex, no Infinity). */
const checkDecimal = (s: string, min: number, max: number, what: string): number | Invalid => {
  if (s.length > 32 || !/^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/.test(s)) {
    return new Invalid(`expected ${what}, a number ${min}..${max}`)
  }
  const n = Number(s)
  if (!Number.isFinite(n) || n < min || n > max) return new Invalid(`${what} must be ${min}..${max}`)
  return n
}

/** `-d`: `MS` (rates and gauges per interval) or `MS,totals` (and the cumulative totals after them). */
const checkDump = (s: string): { readonly ms: number; readonly totals: boolean } | Invalid => {
  const comma = s.indexOf(",")
  const ms = checkInt(comma < 0 ? s : s.slice(0, comma), 1, DEBUG_MS_MAX, "the dump interval in ms")
  if (ms instanceof Invalid) return ms
  if (comma < 0) return { ms, totals: false }
  const extra = s.slice(comma + 1)
  if (extra !== "totals") return new Invalid("expected MS or MS,totals (the cumulative totals after each interval's rates)")
  return { ms, totals: true }
}

const LOOPBACK_ONLY = "the metrics server listens on a loopback address of this host only (127.0.0.0/8 or [::1]), never on the TAP or another interface"

/**
 * `--metrics HOST:PORT`: HOST a loopback address of the host, written as a dotted quad in 127.0.0.0/8 or as [::1] (brackets, as
 * in a URL); PORT 1..65535. Names (localhost) are refused: what they resolve to is up to the host's resolver.
 */
const checkMetrics = (s: string): MetricsAddress | Invalid => {
  let hostText: string
  let portText: string
  if (s.startsWith("[")) {
    const close = s.indexOf("]")
    if (close < 0 || s[close + 1] !== ":") return new Invalid("expected [IPv6]:PORT, like [::1]:9100")
    hostText = s.slice(1, close)
    portText = s.slice(close + 2)
    const a = parseIpv6(hostText)
    if (a === undefined) return new Invalid("expected [IPv6]:PORT, like [::1]:9100")
    if (!isLoopback(a)) return new Invalid(LOOPBACK_ONLY)
    hostText = "::1"
  } else {
    const colon = s.lastIndexOf(":")
    if (colon < 0) return new Invalid("expected HOST:PORT, the port is missing")
    hostText = s.slice(0, colon)
    portText = s.slice(colon + 1)
    if (hostText.includes(":")) return new Invalid("write an IPv6 address in brackets, like [::1]:9100")
    const a = parseQuad(hostText)
    if (a === undefined) {
      return new Invalid(/^[\d.]*$/.test(hostText) ? "expected HOST:PORT with HOST an IPv4 address" : "give a loopback address, not a name")
    }
    if (a >>> 24 !== 127) return new Invalid(LOOPBACK_ONLY)
  }
  const port = checkInt(portText, 1, 65535, "the port")
  if (port instanceof Invalid) return port
  return { host: hostText, port }
}

/** `--metrics` back to text: `127.0.0.1:9100`, `[::1]:9100`. */
export const formatMetricsAddress = (m: MetricsAddress): string => (m.host.includes(":") ? `[${m.host}]:${m.port}` : `${m.host}:${m.port}`)
/** `--interval`: 0 (no interval lines, iperf 2 and iperf3 alike) or INTERVAL_S_MIN..INTERVAL_S_MAX seconds. */
const checkInterval = (s: string): number | Invalid => {
  const n = checkDecimal(s, 0, INTERVAL_S_MAX, "the interval in seconds")
  if (typeof n === "number" && n > 0 && n < INTERVAL_S_MIN) {
    return new Invalid(`the interval in seconds must be 0 (off) or ${INTERVAL_S_MIN}..${INTERVAL_S_MAX}`)
  }
  return n
}

/** `-y C`: iperf 2.1.8 takes `c` or `C` (CSV); its other styles are not report formats of a server. */
const checkReportStyle = (s: string): "C" | Invalid => (s === "C" || s === "c" ? "C" : new Invalid("the only report style is C (CSV)"))

const checkTap = (s: string): string | Invalid => {
  const bytes = Buffer.byteLength(s, "utf8")
  if (bytes === 0) return new Invalid("the name is empty")
  if (bytes > 15) return new Invalid("Linux interface names are at most 15 bytes")
  if (s === "." || s === "..") return new Invalid("'.' and '..' are not interface names")
  // the kernel's dev_valid_name: no '/', ':' or whitespace; we also refuse control characters
  if (/[/:\s\p{Cc}]/u.test(s)) return new Invalid("an interface name cannot contain '/', ':', blanks or control characters")
  return s
}

const checkPcap = (s: string): string | Invalid => {
  if (s.length === 0) return new Invalid("the file name is empty")
  if (s.includes("\0")) return new Invalid("the file name contains a NUL character")
  return s
}

/** A log file name; whether it can be opened is found out when it is opened (cli.ts, exit 2 as well). */
const checkLogfile = (s: string): string | Invalid => {
  const r = checkPcap(s)
  if (r instanceof Invalid) return r
  // `--logfile -1` is far more likely a slip than a file named "-1"; ./-1 still names one
  if (s.startsWith("-")) return new Invalid("the file name starts with '-' (looks like an option); write ./" + s + " for such a file")
  return s
}

// ---------------------------------------------------------------------------------------------------------------------
// Default MAC: FNV-1a (two offset bases) over "hostname\0tap" -> 48 bits, then locally administered (bit 1 of the first
// octet set) and unicast (bit 0 clear). Deterministic: the same host and TAP name always get the same address.

const fnv1a = (bytes: Uint8Array, basis: number): number => {
  let h = basis >>> 0
  for (const b of bytes) {
    h ^= b
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

export const defaultMac = (tap: string, hostname: string): MacAddress => {
  const bytes = new TextEncoder().encode(`${hostname}\0${tap}`)
  const h1 = fnv1a(bytes, 0x811c9dc5)
  const h2 = fnv1a(bytes, 0x050c5d1f)
  const first = ((h1 >>> 24) & 0xfc) | 0x02
  const hi16 = (first << 8) | ((h1 >>> 16) & 0xff)
  const lo32 = (((h1 & 0xffff) << 16) | (h2 & 0xffff)) >>> 0
  return makeMac(hi16, lo32)
}

// ---------------------------------------------------------------------------------------------------------------------
// Schemas. Each flag's value: a transformation from the string as typed to its typed value, failing with a `Type` issue
// whose message is the person-readable reason. The issue's path is the flag (the struct keys are the flag names), which is
// how a ParseError becomes a ConfigError naming the flag, the value and an example.

const Ipv4Type = Schema.declare(
  (u: unknown): u is Ipv4Address => typeof u === "number" && Number.isInteger(u) && u >= 0 && u <= 0xffffffff,
  { identifier: "Ipv4Address" }
)
const MacType = Schema.declare(
  (u: unknown): u is MacAddress => typeof u === "number" && Number.isInteger(u) && u >= 0 && u <= 0xffffffffffff,
  { identifier: "MacAddress" }
)

const fromString = <A, I>(to: Schema.Schema<A, I>, check: (s: string) => A | Invalid, format: (a: A) => string) =>
  Schema.transformOrFail(Schema.String, Schema.typeSchema(to), {
    strict: true,
    decode: (s, _, ast) => {
      const r = check(s)
      return r instanceof Invalid ? ParseResult.fail(new ParseResult.Type(ast, s, r.message)) : ParseResult.succeed(r)
    },
    encode: (a) => ParseResult.succeed(format(a))
  })

const Cidr = fromString(
  Schema.Struct({ address: Ipv4Type, prefix: Schema.Number }),
  checkCidr,
  (c) => `${formatIpv4(c.address)}/${c.prefix}`
)
const HostIpv4 = fromString(Ipv4Type, checkHostIpv4, formatIpv4)
const MacIp = fromString(
  Schema.Struct({ mac: MacType, ip: Ipv4Type }),
  checkMacIp,
  (e) => `${formatMac(e.mac)}/${formatIpv4(e.ip)}`
)
const Ip6Type = Schema.declare(
  (u: unknown): u is Ipv6Address => typeof u === "string" && u.length === 8,
  { identifier: "Ipv6Address" }
)
const Ip6Cidr = fromString(
  Schema.Struct({ address: Ip6Type, prefixLen: Schema.Number }),
  checkIp6Prefix,
  (c) => `${formatIpv6(c.address)}/${c.prefixLen}`
)
const Ip6Host = fromString(Ip6Type, checkIp6Host, formatIpv6)
const UnicastMac = fromString(MacType, (s) => checkUnicastMac(s, "a MAC"), formatMac)
const DumpSpec = fromString(
  Schema.Struct({ ms: Schema.Number, totals: Schema.Boolean }),
  checkDump,
  (d) => (d.totals ? `${d.ms},totals` : String(d.ms))
)
const MetricsAddr = fromString(Schema.Struct({ host: Schema.String, port: Schema.Number }), checkMetrics, formatMetricsAddress)
const intIn = (min: number, max: number, what: string) => fromString(Schema.Number, (s) => checkInt(s, min, max, what), String)
const decimalIn = (min: number, max: number, what: string) =>
  fromString(Schema.Number, (s) => checkDecimal(s, min, max, what), String)
const Percent = decimalIn(0, 100, "a percentage")
const TapName = fromString(Schema.String, checkTap, (s) => s)
const PcapPath = fromString(Schema.String, checkPcap, (s) => s)
const LogfilePath = fromString(Schema.String, checkLogfile, (s) => s)

const opt = <A, I>(s: Schema.Schema<A, I>) => Schema.optionalWith(s, { exact: true })
const withDefault = <A, I>(s: Schema.Schema<A, I>, d: A) => Schema.optionalWith(s, { exact: true, default: () => d })

/** Each flag's value on its own; relationships are checked by `KernelArgs`. */
export const Flags = Schema.Struct({
  "-i": opt(Cidr),
  "-g": opt(HostIpv4),
  "-d": opt(DumpSpec),
  "-a": Schema.Array(MacIp),
  "--tap": withDefault(TapName, DEFAULTS.tap),
  "--mac": opt(UnicastMac),
  "--mtu": withDefault(intIn(MTU_MIN, MTU_MAX, "the MTU"), DEFAULTS.mtu),
  "--no-offload": Schema.Boolean,
  "--ip6": Schema.Array(Ip6Cidr),
  "--no-ipv6": Schema.Boolean,
  "--gw6": opt(Ip6Host),
  "--pcap": opt(PcapPath),
  "--drop-chance": withDefault(Percent, DEFAULTS.dropChance),
  "--corrupt-chance": withDefault(Percent, DEFAULTS.corruptChance),
  "--port": withDefault(intIn(1, 65535, "the port"), DEFAULTS.port),
  "--iperf3-port": withDefault(intIn(1, 65535, "the port"), DEFAULTS.iperf3Port),
  "--interval": opt(fromString(Schema.Number, (s) => checkInterval(s), String)),
  "--max-connections": withDefault(intIn(1, MAX_CONNECTIONS_MAX, "the connection limit"), DEFAULTS.maxConnections),
  "--busy-poll": withDefault(intIn(0, BUSY_POLL_US_MAX, "the busy-poll time in microseconds"), DEFAULTS.busyPollUs),
  "--stall-timeout": withDefault(intIn(1, STALL_TIMEOUT_S_MAX, "the stall timeout in seconds"), DEFAULTS.stallTimeoutS),
  "--udp-send-max": withDefault(intIn(1, UDP_SEND_MAX_S_MAX, "the UDP send limit in seconds"), DEFAULTS.udpSendMaxS),
  "--one-off": Schema.Boolean,
  "--logfile": opt(LogfilePath),
  "--metrics": opt(MetricsAddr),
  "-y": opt(fromString(Schema.Literal("C"), checkReportStyle, (s) => s)),
  "--json": Schema.Boolean,
  hostname: Schema.String
})

const StaticIpSchema = Schema.TaggedStruct("Static", {
  address: Ipv4Type,
  prefix: Schema.Number,
  gateway: Schema.optionalWith(Ipv4Type, { exact: true })
})
const DhcpIpSchema = Schema.TaggedStruct("Dhcp", {})

export const ConfigSchema: Schema.Schema<Config> = Schema.Struct({
  ip: Schema.Union(StaticIpSchema, DhcpIpSchema),
  ip6: Schema.Array(Schema.Struct({ address: Ip6Type, prefixLen: Schema.Number })),
  ipv6: Schema.Boolean,
  gw6: Schema.optionalWith(Ip6Type, { exact: true }),
  staticArp: Schema.Array(Schema.Struct({ mac: MacType, ip: Ipv4Type })),
  debugMs: Schema.optionalWith(Schema.Number, { exact: true }),
  debugTotals: Schema.optionalWith(Schema.Literal(true), { exact: true }),
  tap: Schema.String,
  mac: MacType,
  mtu: Schema.Number,
  offload: Schema.Boolean,
  pcap: Schema.optionalWith(Schema.String, { exact: true }),
  dropChance: Schema.Number,
  corruptChance: Schema.Number,
  port: Schema.Number,
  iperf3Port: Schema.Number,
  intervalS: Schema.optionalWith(Schema.Number, { exact: true }),
  maxConnections: Schema.Number,
  busyPollUs: Schema.Number,
  stallTimeoutS: Schema.Number,
  udpSendMaxS: Schema.Number,
  oneOff: Schema.Boolean,
  logfile: Schema.optionalWith(Schema.String, { exact: true }),
  metrics: Schema.optionalWith(Schema.Struct({ host: Schema.String, port: Schema.Number }), { exact: true }),
  report: Schema.Literal("human", "csv", "json")
})

const at = (path: readonly [PropertyKey, ...Array<PropertyKey>], actual: unknown, ast: Schema.Schema.Any["ast"], message: string) =>
  new ParseResult.Pointer(path, actual, new ParseResult.Type(ast, actual, message))

/**
 * The one decoder: the lexer's raw record (strings keyed by flag) <-> `Config`.
 * Encoding gives back a raw record (always with an explicit `--mac`), so `lex(toArgv(encode(c)))` decodes to `c` again.
 */
export const KernelArgs: Schema.Schema<Config, RawArgs> = Schema.transformOrFail(Flags, Schema.typeSchema(ConfigSchema), {
  strict: true,
  decode: (f, _, ast) => {
    const cidr = f["-i"]
    const gateway = f["-g"]
    if (cidr === undefined) {
      if (gateway !== undefined) {
        return ParseResult.fail(at(["-g"], gateway, ast,
          "a gateway needs a static address, give -i too (with DHCP the server supplies the gateway)"))
      }
      if (f["-a"].length > 0) {
        return ParseResult.fail(at(["-a", 0], f["-a"][0], ast,
          "static ARP entries need a static address (-i); without -i the address comes from DHCP"))
      }
    } else {
      const { address, prefix } = cidr
      const within = `the subnet ${subnetText(address, prefix)} of -i`
      if (gateway !== undefined) {
        const problem = gatewayProblem(gateway, address, prefix, "-i")
        if (problem !== undefined) return ParseResult.fail(at(["-g"], gateway, ast, problem))
      }
      const seen = new Map<number, number>()
      for (let k = 0; k < f["-a"].length; k++) {
        const e = f["-a"][k]!
        if (net(e.ip, prefix) !== net(address, prefix)) {
          return ParseResult.fail(at(["-a", k], e, ast, `the ARP address must be inside ${within}`))
        }
        if (e.ip === address) return ParseResult.fail(at(["-a", k], e, ast, "that is our own -i address"))
        const edge = edgeOfSubnet(e.ip, prefix)
        if (edge !== undefined) return ParseResult.fail(at(["-a", k], e, ast, edge))
        const first = seen.get(e.ip)
        if (first !== undefined) {
          return ParseResult.fail(at(["-a", k], e, ast,
            `${formatIpv4(e.ip)} already has a static ARP entry (-a number ${first + 1}); each address once`))
        }
        seen.set(e.ip, k)
      }
    }
    const ip: StaticIp | DhcpIp = cidr === undefined
      ? { _tag: "Dhcp" }
      : gateway === undefined
      ? { _tag: "Static", address: cidr.address, prefix: cidr.prefix }
      : { _tag: "Static", address: cidr.address, prefix: cidr.prefix, gateway }
    if (f["--iperf3-port"] === f["--port"]) {
      // blame the flag that moved: --port onto iperf3's default, or --iperf3-port onto iperf 2's port
      return f["--port"] === DEFAULTS.iperf3Port
        ? ParseResult.fail(at(["--port"], f["--port"], ast,
          `${f["--port"]} is the iperf3 port (--iperf3-port, default ${DEFAULTS.iperf3Port}); choose another, or move iperf3 with --iperf3-port`))
        : ParseResult.fail(at(["--iperf3-port"], f["--iperf3-port"], ast,
          `the iperf 2 server already uses port ${f["--port"]} (--port); give iperf3 another one`))
    }
    const ip6 = f["--ip6"]
    if (ip6.length > 0 && f["--no-ipv6"]) {
      return ParseResult.fail(at(["--ip6", 0], ip6[0], ast, "--no-ipv6 turns IPv6 off; give one or the other"))
    }
    for (let k = 1; k < ip6.length; k++) {
      const first = ip6.findIndex((e) => e.address === ip6[k]!.address)
      if (first < k) {
        return ParseResult.fail(at(["--ip6", k], ip6[k], ast,
          `${formatIpv6(ip6[k]!.address)} was already given (--ip6 number ${first + 1}); each address once`))
      }
    }
    const gw6 = f["--gw6"]
    if (gw6 !== undefined && f["--no-ipv6"]) {
      return ParseResult.fail(at(["--gw6"], gw6, ast, "--no-ipv6 turns IPv6 off; give one or the other"))
    }
    if (gw6 !== undefined && !isLinkLocal(gw6) && !ip6.some((e) => inPrefix(gw6, e.address, e.prefixLen))) {
      return ParseResult.fail(at(["--gw6"], gw6, ast,
        `${formatIpv6(gw6)} is on no link of ours: give a link-local router address (fe80::/10) or one inside an --ip6 prefix`))
    }
    if (f["-y"] !== undefined && f["--json"]) {
      return ParseResult.fail(at(["-y"], f["-y"], ast, "-J/--json is given too; choose one report format"))
    }
    const tap = f["--tap"]
    const config: Config = {
      ip,
      ip6: ip6.map((e) => ({ address: e.address, prefixLen: e.prefixLen })),
      ipv6: !f["--no-ipv6"],
      ...(gw6 !== undefined ? { gw6 } : {}),
      staticArp: f["-a"].map((e) => ({ mac: e.mac, ip: e.ip })),
      ...(f["-d"] !== undefined ? { debugMs: f["-d"].ms } : {}),
      ...(f["-d"]?.totals === true ? { debugTotals: true as const } : {}),
      tap,
      mac: f["--mac"] ?? defaultMac(tap, f.hostname),
      mtu: f["--mtu"],
      offload: !f["--no-offload"],
      ...(f["--pcap"] !== undefined ? { pcap: f["--pcap"] } : {}),
      dropChance: f["--drop-chance"],
      corruptChance: f["--corrupt-chance"],
      port: f["--port"],
      iperf3Port: f["--iperf3-port"],
      ...(f["--interval"] !== undefined ? { intervalS: f["--interval"] } : {}),
      maxConnections: f["--max-connections"],
      busyPollUs: f["--busy-poll"],
      stallTimeoutS: f["--stall-timeout"],
      udpSendMaxS: f["--udp-send-max"],
      oneOff: f["--one-off"],
      ...(f["--logfile"] !== undefined ? { logfile: f["--logfile"] } : {}),
      ...(f["--metrics"] !== undefined ? { metrics: { host: f["--metrics"].host, port: f["--metrics"].port } } : {}),
      report: f["-y"] !== undefined ? "csv" : f["--json"] ? "json" : "human"
    }
    return ParseResult.succeed(config)
  },
  encode: (c) => {
    const f: Schema.Schema.Type<typeof Flags> = {
      ...(c.ip._tag === "Static" ? { "-i": { address: c.ip.address, prefix: c.ip.prefix } } : {}),
      ...(c.ip._tag === "Static" && c.ip.gateway !== undefined ? { "-g": c.ip.gateway } : {}),
      ...(c.debugMs !== undefined ? { "-d": { ms: c.debugMs, totals: c.debugTotals === true } } : {}),
      "-a": c.staticArp,
      "--tap": c.tap,
      "--mac": c.mac,
      "--mtu": c.mtu,
      "--no-offload": !c.offload,
      "--ip6": c.ip6,
      "--no-ipv6": !c.ipv6,
      ...(c.gw6 !== undefined ? { "--gw6": c.gw6 } : {}),
      ...(c.pcap !== undefined ? { "--pcap": c.pcap } : {}),
      "--drop-chance": c.dropChance,
      "--corrupt-chance": c.corruptChance,
      "--port": c.port,
      "--iperf3-port": c.iperf3Port,
      ...(c.intervalS !== undefined ? { "--interval": c.intervalS } : {}),
      "--max-connections": c.maxConnections,
      "--busy-poll": c.busyPollUs,
      "--stall-timeout": c.stallTimeoutS,
      "--udp-send-max": c.udpSendMaxS,
      "--one-off": c.oneOff,
      ...(c.logfile !== undefined ? { "--logfile": c.logfile } : {}),
      ...(c.metrics !== undefined ? { "--metrics": c.metrics } : {}),
      ...(c.report === "csv" ? { "-y": "C" as const } : {}),
      "--json": c.report === "json",
      hostname: ""
    }
    return ParseResult.succeed(f)
  }
})

/** A raw record back to argv words (`--flag=value` form, so values starting with '-' survive). */
export const toArgv = (raw: RawArgs): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const s of FLAGS) {
    if (s.kind === "value") {
      const v = raw[s.flag as keyof RawArgs]
      if (typeof v !== "string") continue
      if (s.flag.startsWith("--")) out.push(`${s.flag}=${v}`)
      else out.push(s.flag, v)
    } else if (s.kind === "repeat") {
      for (const v of raw[s.flag as "-a" | "--ip6"]) out.push(s.flag, v)
    } else if (s.kind === "switch" && raw[s.flag as SwitchFlag]) {
      out.push(s.flag)
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------------
// ParseError -> ConfigError

const valueAt = (raw: RawArgs, path: ReadonlyArray<PropertyKey>): string | undefined => {
  const v: unknown = raw[path[0] as keyof RawArgs]
  if (typeof v === "string") return v
  if (Array.isArray(v) && typeof path[1] === "number") {
    const x: unknown = v[path[1]]
    return typeof x === "string" ? x : undefined
  }
  return undefined
}

export const fromParseError = (raw: RawArgs, e: ParseResult.ParseError): ConfigError => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(e)
  const first = issues[0]
  const key = first?.path[0]
  const flag = typeof key === "string" && key.startsWith("-") ? key : "(arguments)"
  return new ConfigError({
    reason: "InvalidValue",
    flag,
    value: first === undefined ? undefined : valueAt(raw, first.path),
    message: first?.message ?? "invalid arguments",
    example: exampleFor(flag)
  })
}

// ---------------------------------------------------------------------------------------------------------------------
// Entry points

/** What is wrong with a static address or gateway given as a string, and which of the two. */
export interface StaticAddressProblem {
  readonly field: "address" | "gateway"
  readonly value: string
  readonly message: string
}

/**
 * A static address and optional gateway as strings, the way `-i` and `-g` take them ("198.51.100.2/24",
 * "198.51.100.1"), judged by the same checks, for apps that embed the stack (`Stack.layer`).
 */
export const checkStaticAddress = (cidr: string, gateway?: string): StaticIp | StaticAddressProblem => {
  const c = checkCidr(cidr)
  if (c instanceof Invalid) return { field: "address", value: cidr, message: c.message }
  if (gateway === undefined) return { _tag: "Static", address: c.address, prefix: c.prefix }
  const g = checkHostIpv4(gateway)
  const problem = g instanceof Invalid ? g.message : gatewayProblem(g, c.address, c.prefix, "the address")
  if (problem !== undefined) return { field: "gateway", value: gateway, message: problem }
  return { _tag: "Static", address: c.address, prefix: c.prefix, gateway: g as Ipv4Address }
}

export interface DecodeOptions {
  /** Input to the default MAC; defaults to `os.hostname()`. */
  readonly hostname?: string
}

const decodeRaw = Schema.decodeUnknownEither(KernelArgs)
export const encodeConfig = Schema.encodeSync(KernelArgs)

/** Synchronous decoder; never throws for any array of strings. */
export const decodeArgvEither = (argv: ReadonlyArray<string>, options: DecodeOptions = {}): Either.Either<Decoded, ConfigError> => {
  const hostname = options.hostname ?? os.hostname()
  const l = lex(argv, hostname)
  switch (l._tag) {
    case "Help":
      return Either.right({ _tag: "Help", text: USAGE })
    case "Version":
      return Either.right({ _tag: "Version" })
    case "Error":
      return Either.left(l.error)
    case "Raw": {
      const r = decodeRaw(l.raw, { errors: "first" })
      return Either.isRight(r) ? Either.right(r.right) : Either.left(fromParseError(l.raw, r.left))
    }
  }
}

/** argv (without `node` and the script) -> Config, or Help/Version, or a ConfigError for `formatConfigError` and exit 2. */
export const decodeArgv = (argv: ReadonlyArray<string>, options: DecodeOptions = {}): Effect.Effect<Decoded, ConfigError> =>
  Effect.suspend(() => decodeArgvEither(argv, options))

/** One kernel-style string, as MinIperf read it from the guest's command line. */
export const decodeKernelString = (s: string, options: DecodeOptions = {}): Effect.Effect<Decoded, ConfigError> =>
  decodeArgv(["--args", s], options)

// ---------------------------------------------------------------------------------------------------------------------
// Help

const usageLine = (s: FlagSpec): string => {
  const names = s.names.join(", ")
  return s.metavar === "" ? names : `${names} ${s.metavar}`
}

const column = Math.max(...FLAGS.map((s) => usageLine(s).length)) + 2

export const USAGE: string = [
  "Usage: miniperf [options]",
  "       miniperf --args '<MinIperf flags as one string>' [options]",
  "",
  "An iperf-compatible server (iperf 2 on TCP/UDP port 5001, iperf 3 on 5201) on a userspace TCP/IP stack that owns a TAP device.",
  "Options take a value as the next word or after '=' (--mtu 9000, --mtu=9000).",
  "",
  "MinIperf flags:",
  ...FLAGS.filter((s) => s.flag.length === 2 && s.kind !== "help").map((s) => `  ${usageLine(s).padEnd(column)}${s.help}`),
  "",
  "Node options:",
  ...FLAGS.filter((s) => !(s.flag.length === 2 && s.kind !== "help")).map((s) => `  ${usageLine(s).padEnd(column)}${s.help}`),
  "",
  "Examples:",
  "  miniperf --tap tap0 -i 198.51.100.2/24 -g 198.51.100.1",
  "  miniperf --tap tap0 --args '-i 198.51.100.2/24 -g 198.51.100.1 -a 02:00:00:00:00:01/198.51.100.1'",
  "  miniperf --tap tap0                       (address by DHCP)",
  "  miniperf --tap tap0 -i 198.51.100.2/24 -1 --logfile /var/log/miniperf.log",
  "  miniperf --tap tap0 -i 198.51.100.2/24 --ip6 2001:db8::2/64",
  "  miniperf --tap tap0 -i 198.51.100.2/24 -d 1000,totals --metrics 127.0.0.1:9100",
  `Static ARP entries: up to ${MAX_STATIC_ARP}. Exit status 2 on a bad command line.`
].join("\n")
