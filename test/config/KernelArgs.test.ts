import { it as eit } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type Config,
  ConfigError,
  type ConfigErrorReason,
  type Decoded,
  DEFAULTS,
  FLAGS,
  KernelArgs,
  MAX_IP6,
  MAX_STATIC_ARP,
  USAGE,
  decodeArgv,
  decodeArgvEither,
  decodeKernelString,
  defaultMac,
  encodeConfig,
  formatConfigError,
  isConfig,
  toArgv,
  tokenize
} from "../../src/config/KernelArgs.js"
import { type Ipv4Address, type MacAddress, formatMac, ipv4, mac, parseMac } from "../../src/protocols/address.js"
import { ipv6, parseIpv6 } from "../../src/protocols/ipv6/address.js"

const HOST = "testhost"
const opts = { hostname: HOST }

const ok = (argv: ReadonlyArray<string>): Config => {
  const r = decodeArgvEither(argv, opts)
  if (Either.isLeft(r)) throw new Error(`expected success, got: ${formatConfigError(r.left)}`)
  if (!isConfig(r.right)) throw new Error(`expected a Config, got ${r.right._tag}`)
  return r.right
}

const bad = (argv: ReadonlyArray<string>): ConfigError => {
  const r = decodeArgvEither(argv, opts)
  if (Either.isRight(r)) throw new Error(`expected an error for ${JSON.stringify(argv)}, got ${JSON.stringify(r.right)}`)
  expect(r.left).toBeInstanceOf(ConfigError)
  return r.left
}

/** An example as the shell would split it, without the program name. */
const exampleWords = (example: string): ReadonlyArray<string> => {
  const t = tokenize(example.replace(/^miniperf /, ""))
  if (t._tag === "Error") throw new Error(t.message)
  return t.words
}

const shQuote = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`

const A = (d: number): Ipv4Address => ipv4(198, 51, 100, d)
const M = (s: string): MacAddress => parseMac(s)!

describe("decoding: the same Config from argv, --args and a kernel string", () => {
  const argv = [
    "-i", "198.51.100.2/24", "-g", "198.51.100.1", "-d", "1000",
    "-a", "02:00:00:00:00:01/198.51.100.1", "-a", "02:00:00:00:00:07/198.51.100.7"
  ]
  const expected: Config = {
    ip: { _tag: "Static", address: A(2), prefix: 24, gateway: A(1) },
    ip6: [],
    ipv6: true,
    staticArp: [{ mac: M("02:00:00:00:00:01"), ip: A(1) }, { mac: M("02:00:00:00:00:07"), ip: A(7) }],
    debugMs: 1000,
    tap: "tap0",
    mac: defaultMac("tap0", HOST),
    mtu: 1500,
    offload: true,
    dropChance: 0,
    corruptChance: 0,
    port: 5001,
    iperf3Port: 5201,
    maxConnections: 4096,
    busyPollUs: 5000,
    stallTimeoutS: 10,
    udpSendMaxS: 60,
    oneOff: false,
    report: "human"
  }

  it("argv words", () => {
    expect(ok(argv)).toEqual(expected)
  })

  it("--args STRING, --args=STRING and decodeKernelString", async () => {
    const s = argv.join(" ")
    expect(ok(["--args", s])).toEqual(expected)
    expect(ok([`--args=${s}`])).toEqual(expected)
    expect(await Effect.runPromise(decodeKernelString(s, opts))).toEqual(expected)
  })

  it("argv and --args mixed, with quoting", () => {
    expect(ok(["-i", "198.51.100.2/24", "--args", `-g "198.51.100.1"  -d '1000'`, "--args", argv.slice(6).join("\t")]))
      .toEqual(expected)
  })

  it("MinIperf's own example string", () => {
    const c = ok(["--args", "-i 198.51.100.2/24 -g 198.51.100.1 -a 02:00:00:00:00:01/198.51.100.1"])
    expect(c.ip).toEqual({ _tag: "Static", address: A(2), prefix: 24, gateway: A(1) })
    expect(c.staticArp).toEqual([{ mac: M("02:00:00:00:00:01"), ip: A(1) }])
  })

  it("defaults: DHCP and the documented values, no optional keys", () => {
    const c = ok([])
    expect(c).toEqual({
      ip: { _tag: "Dhcp" },
      ip6: [],
      ipv6: true,
      staticArp: [],
      tap: DEFAULTS.tap,
      mac: defaultMac(DEFAULTS.tap, HOST),
      mtu: 1500,
      offload: true,
      dropChance: 0,
      corruptChance: 0,
      port: 5001,
      iperf3Port: 5201,
      maxConnections: 4096,
      busyPollUs: DEFAULTS.busyPollUs,
      stallTimeoutS: DEFAULTS.stallTimeoutS,
      udpSendMaxS: DEFAULTS.udpSendMaxS,
      oneOff: false,
      report: "human"
    })
    for (const k of ["debugMs", "debugTotals", "pcap", "intervalS", "logfile", "metrics"]) expect(k in c).toBe(false)
    expect("gateway" in c.ip).toBe(false)
  })

  it("every Node option, as `--flag value` and as `--flag=value`", () => {
    const pairs: ReadonlyArray<readonly [string, string]> = [
      ["--tap", "mpx-tap7"], ["--mac", "02:aa:bb:cc:dd:ee"], ["--mtu", "9000"], ["--pcap", "/tmp/x y.pcap"],
      ["--drop-chance", "0.5"], ["--corrupt-chance", "12"], ["--port", "5002"], ["--iperf3-port", "5301"], ["--interval", "0.25"],
      ["--max-connections", "16"], ["--busy-poll", "0"], ["--stall-timeout", "30"], ["--udp-send-max", "120"],
      ["--logfile", "/tmp/mini perf.log"], ["--reportstyle", "C"]
    ]
    const spaced = ok([...pairs.flat(), "--no-offload", "--one-off"])
    const eq = ok([...pairs.map(([f, v]) => `${f}=${v}`), "--no-offload", "-1"])
    expect(spaced).toEqual(eq)
    expect(spaced).toEqual({
      ip: { _tag: "Dhcp" },
      ip6: [],
      ipv6: true,
      staticArp: [],
      tap: "mpx-tap7",
      mac: mac(0x02aa, 0xbbccddee),
      mtu: 9000,
      offload: false,
      pcap: "/tmp/x y.pcap",
      dropChance: 0.5,
      corruptChance: 12,
      port: 5002,
      iperf3Port: 5301,
      intervalS: 0.25,
      maxConnections: 16,
      busyPollUs: 0,
      stallTimeoutS: 30,
      udpSendMaxS: 120,
      oneOff: true,
      logfile: "/tmp/mini perf.log",
      report: "csv"
    })
  })

  it("getopt-style attached short values (-i198.51.100.2/24)", () => {
    expect(ok(["-i198.51.100.2/24", "-g198.51.100.1", "-d50"])).toEqual(ok(["-i", "198.51.100.2/24", "-g", "198.51.100.1", "-d", "50"]))
  })

  it("a value may start with '-' when it is not one of our flags, and reaches the value check", () => {
    const e = bad(["--drop-chance", "-1"])
    expect([e.reason, e.flag, e.value]).toEqual(["InvalidValue", "--drop-chance", "-1"])
    expect(ok(["--pcap", "-weird.pcap"]).pcap).toBe("-weird.pcap")
  })

  it("MAC addresses are accepted with ':' or '-' and any case", () => {
    expect(ok(["--mac", "02-AB-cd-00-00-01"]).mac).toBe(M("02:ab:cd:00:00:01"))
  })

  eit.effect("decodeArgv is an Effect that fails with ConfigError", () =>
    Effect.gen(function* () {
      const c = yield* decodeArgv(["-i", "203.0.113.9/24"], opts)
      expect(isConfig(c) && c.ip).toEqual({ _tag: "Static", address: ipv4(203, 0, 113, 9), prefix: 24 })
      const e = yield* Effect.flip(decodeArgv(["-i", "203.0.113.9"], opts))
      expect(e._tag).toBe("ConfigError")
      expect(e.flag).toBe("-i")
      const caught = yield* decodeArgv(["--mtu", "1"], opts).pipe(
        Effect.catchTag("ConfigError", (err) => Effect.succeed(err.flag))
      )
      expect(caught).toBe("--mtu")
    }))
})

describe("default MAC", () => {
  it("is stable for the same inputs and differs for other inputs", () => {
    expect(defaultMac("tap0", "h1")).toBe(defaultMac("tap0", "h1"))
    expect(defaultMac("tap0", "h1")).not.toBe(defaultMac("tap1", "h1"))
    expect(defaultMac("tap0", "h1")).not.toBe(defaultMac("tap0", "h2"))
    expect(ok(["--tap", "mpx0"]).mac).toBe(defaultMac("mpx0", HOST))
    expect(ok(["--tap", "mpx0"]).mac).toBe(ok(["--args", "--tap mpx0"]).mac)
  })

  it("is always locally administered, unicast and 48 bits", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 15 }), fc.string({ maxLength: 64 }), (tap, host) => {
        const m = defaultMac(tap, host)
        expect(Number.isInteger(m) && m >= 0 && m < 2 ** 48).toBe(true)
        const first = parseInt(formatMac(m).slice(0, 2), 16)
        expect(first & 0x02).toBe(0x02) // locally administered
        expect(first & 0x01).toBe(0) // unicast
      }),
      { numRuns: 200 }
    )
  })
})

describe("boundaries", () => {
  const accepts = (argv: ReadonlyArray<string>) => expect(Either.isRight(decodeArgvEither(argv, opts))).toBe(true)
  const refuses = (argv: ReadonlyArray<string>, flag: string) => {
    const e = bad(argv)
    expect(e.flag).toBe(flag)
  }

  it("-1/--one-off: a switch, off by default; -1 after a value flag is still that flag's (bad) value", () => {
    expect(ok([]).oneOff).toBe(false)
    expect(ok(["-1"]).oneOff).toBe(true)
    expect(ok(["--one-off"]).oneOff).toBe(true)
    expect(ok(["--args", "-i 198.51.100.2/24 -1"])).toMatchObject({ oneOff: true, ip: { _tag: "Static", address: A(2) } })
    expect(ok(["-1", "--one-off"]).oneOff).toBe(true) // as --no-offload: twice is once
    expect(toArgv(encodeConfig(ok(["-1"])))).toContain("--one-off")
    expect(toArgv(encodeConfig(ok([])))).not.toContain("--one-off")
    // `--port -1` is a negative port, not --port followed by the switch
    const e = bad(["--port", "-1"])
    expect([e.reason, e.flag, e.value]).toEqual(["InvalidValue", "--port", "-1"])
    refuses(["-1", "--port", "-1"], "--port")
  })

  it("-y C / --reportstyle C and -J / --json: the report format; one of them; any other style exits 2 naming -y", () => {
    expect(ok([]).report).toBe("human")
    expect(ok(["-y", "C"]).report).toBe("csv")
    expect(ok(["-y", "c"]).report).toBe("csv")
    expect(ok(["--reportstyle", "C"]).report).toBe("csv")
    expect(ok(["-J"]).report).toBe("json")
    expect(ok(["--json"]).report).toBe("json")
    expect(ok(["--args", "-i 198.51.100.2/24 -y C"]).report).toBe("csv")
    for (const v of ["X", "csv", "", "CC"]) refuses(["-y", v], "-y")
    const e = bad(["-y", "X"])
    expect([e.reason, e.flag, e.value]).toEqual(["InvalidValue", "-y", "X"])
    expect(formatConfigError(e)).toContain("-y C")
    expect(bad(["-y"]).reason).toBe("MissingValue")
    const both = bad(["-y", "C", "-J"])
    expect([both.reason, both.flag]).toEqual(["InvalidValue", "-y"])
    expect(both.message).toContain("one report format")
    expect(toArgv(encodeConfig(ok(["-J"])))).toContain("--json")
    expect(toArgv(encodeConfig(ok(["-y", "C"])))).toEqual(expect.arrayContaining(["-y", "C"]))
  })

  it("--logfile FILE: any name but empty, NUL or a leading '-' (./-1 names such a file)", () => {
    expect("logfile" in ok([])).toBe(false)
    expect(ok(["--logfile", "/var/log/miniperf.log"]).logfile).toBe("/var/log/miniperf.log")
    expect(ok(["--logfile=./-1"]).logfile).toBe("./-1")
    expect(ok(["--logfile", "relative name.log"]).logfile).toBe("relative name.log")
    refuses(["--logfile", "-x.log"], "--logfile")
    refuses(["--logfile="], "--logfile")
    expect(bad(["--logfile", "a\0b"]).message).toContain("NUL")
    const line = formatConfigError(bad(["--logfile", "-1"]))
    expect(line).toBe(
      "miniperf: invalid value '-1' for --logfile: the file name starts with '-' (looks like an option); write ./-1 for such a file, " +
        "e.g. --logfile /var/log/miniperf.log"
    )
  })

  it("--mtu 576..9000", () => {
    refuses(["--mtu", "575"], "--mtu")
    expect(ok(["--mtu", "576"]).mtu).toBe(576)
    expect(ok(["--mtu", "9000"]).mtu).toBe(9000)
    refuses(["--mtu", "9001"], "--mtu")
  })

  it("percentages 0..100", () => {
    for (const f of ["--drop-chance", "--corrupt-chance"]) {
      refuses([f, "-1"], f)
      accepts([f, "0"])
      accepts([f, "100"])
      accepts([f, "100.0"])
      refuses([f, "100.5"], f)
      refuses([f, "101"], f)
      refuses([f, "NaN"], f)
      refuses([f, "Infinity"], f)
      refuses([f, "0x10"], f)
      refuses([f, ""], f)
    }
    expect(ok(["--drop-chance", "1e-3"]).dropChance).toBe(0.001)
  })

  it("-i prefix 1..32; network and broadcast addresses refused up to /30", () => {
    refuses(["-i", "198.51.100.2/0"], "-i")
    expect(ok(["-i", "198.51.100.2/1"]).ip).toEqual({ _tag: "Static", address: A(2), prefix: 1 })
    expect(ok(["-i", "198.51.100.2/30"]).ip).toEqual({ _tag: "Static", address: A(2), prefix: 30 })
    refuses(["-i", "198.51.100.3/30"], "-i") // broadcast of 198.51.100.0/30
    refuses(["-i", "198.51.100.4/30"], "-i") // network of 198.51.100.4/30
    expect(ok(["-i", "198.51.100.4/31"]).ip).toEqual({ _tag: "Static", address: A(4), prefix: 31 }) // RFC 3021
    expect(ok(["-i", "198.51.100.255/32"]).ip).toEqual({ _tag: "Static", address: A(255), prefix: 32 })
    refuses(["-i", "198.51.100.2/33"], "-i")
    refuses(["-i", "198.51.100.2/024"], "-i")
  })

  it("--port 1..65535, -d >= 1, --interval 0 or >= 0.001, --max-connections >= 1, --busy-poll 0..1000000", () => {
    refuses(["--port", "0"], "--port")
    accepts(["--port", "1"])
    accepts(["--port", "65535"])
    refuses(["--port", "65536"], "--port")
    refuses(["--iperf3-port", "0"], "--iperf3-port")
    expect(ok(["--iperf3-port", "5301"]).iperf3Port).toBe(5301)
    refuses(["--iperf3-port", "65536"], "--iperf3-port")
    // iperf 2 and iperf3 cannot share a port
    refuses(["--port", "5201"], "--port")
    refuses(["--port", "6000", "--iperf3-port", "6000"], "--iperf3-port")
    expect(ok(["--port", "5201", "--iperf3-port", "5001"])).toMatchObject({ port: 5201, iperf3Port: 5001 })
    refuses(["-d", "0"], "-d")
    expect(ok(["-d", "1"]).debugMs).toBe(1)
    expect(ok(["--metrics", "127.0.0.1:9100"]).metrics).toEqual({ host: "127.0.0.1", port: 9100 })
    expect(ok(["--metrics=127.10.0.1:1"]).metrics).toEqual({ host: "127.10.0.1", port: 1 })
    expect(ok(["--metrics", "[::1]:65535"]).metrics).toEqual({ host: "::1", port: 65535 })
    expect(ok(["--metrics", "[0:0:0:0:0:0:0:1]:9100"]).metrics).toEqual({ host: "::1", port: 9100 })
    expect(ok(["--args", "-i 198.51.100.2/24 --metrics 127.0.0.1:9100"]).metrics).toEqual({ host: "127.0.0.1", port: 9100 })
    expect("metrics" in ok([])).toBe(false) // off by default
    expect("debugTotals" in ok(["-d", "1"])).toBe(false)
    expect(ok(["-d", "500,totals"])).toMatchObject({ debugMs: 500, debugTotals: true })
    expect(ok(["-d500,totals"])).toMatchObject({ debugMs: 500, debugTotals: true })
    expect(ok(["--args", "-i 198.51.100.2/24 -d 86400000,totals"])).toMatchObject({ debugMs: 86_400_000, debugTotals: true })
    expect(ok(["--interval", "0"]).intervalS).toBe(0) // off
    refuses(["--interval", "0.0005"], "--interval")
    expect(ok(["--interval", "0.001"]).intervalS).toBe(0.001)
    expect(ok(["--interval", "2"]).intervalS).toBe(2)
    refuses(["--interval", "86401"], "--interval")
    refuses(["--max-connections", "0"], "--max-connections")
    expect(ok(["--max-connections", "65535"]).maxConnections).toBe(65535)
    refuses(["--max-connections", "65536"], "--max-connections")
    expect(ok(["--busy-poll", "0"]).busyPollUs).toBe(0)
    expect(ok(["--busy-poll", "1000000"]).busyPollUs).toBe(1_000_000)
    refuses(["--busy-poll", "1000001"], "--busy-poll")
    refuses(["--busy-poll", "-5"], "--busy-poll")
  })

  it("--stall-timeout and --udp-send-max: whole seconds 1..3600", () => {
    for (const f of ["--stall-timeout", "--udp-send-max"]) {
      refuses([f, "0"], f)
      accepts([f, "1"])
      accepts([f, "3600"])
      refuses([f, "3601"], f)
    }
    expect(ok(["--stall-timeout", "120"]).stallTimeoutS).toBe(120)
    expect(ok(["--udp-send-max", "5"]).udpSendMaxS).toBe(5)
  })

  it("--tap 1..15 bytes", () => {
    expect(ok(["--tap", "a"]).tap).toBe("a")
    expect(ok(["--tap", "abcdefghijklmno"]).tap).toBe("abcdefghijklmno")
    refuses(["--tap", "abcdefghijklmnop"], "--tap")
    refuses(["--tap", "ééééééééé"], "--tap") // 18 bytes in UTF-8
  })

  it(`at least 16 -a entries, up to ${MAX_STATIC_ARP}; one more is refused`, () => {
    const base = ipv4(198, 51, 100, 0)
    const c16 = ok(["-i", "198.51.100.1/23", ...arpEntries(16)])
    expect(c16.staticArp.length).toBe(16)
    expect(c16.staticArp[15]).toEqual({ mac: mac(0x0200, 15), ip: base + 17 })
    expect(ok(["--args", ["-i 198.51.100.1/23", ...arpEntries(20)].join(" ")]).staticArp.length).toBe(20)
    const many = ok(["-i", "198.51.100.1/23", ...arpEntries(MAX_STATIC_ARP)])
    expect(many.staticArp.length).toBe(MAX_STATIC_ARP)
    const e = bad(["-i", "198.51.100.1/23", ...arpEntries(MAX_STATIC_ARP + 1)])
    expect([e.reason, e.flag]).toEqual(["InvalidValue", "-a"])
    expect(e.message).toContain(String(MAX_STATIC_ARP))
  })
})

/** `n` distinct entries inside 198.51.100.0/23, skipping .0 and our own .1: 198.51.100.2, .3, ... */
function arpEntries(n: number): Array<string> {
  const out: Array<string> = []
  for (let k = 0; k < n; k++) {
    const h = k + 2
    out.push("-a", `${formatMac(mac(0x0200, k))}/198.51.${100 + (h >> 8)}.${h & 0xff}`)
  }
  return out
}

/** One row per error kind: argv, then what the error must say. `value: undefined` when there is no value to show. */
interface Row {
  readonly argv: ReadonlyArray<string>
  readonly reason: ConfigErrorReason
  readonly flag: string
  readonly value: string | undefined
  readonly says: string
}
const row = (argv: ReadonlyArray<string>, reason: ConfigErrorReason, flag: string, value: string | undefined, says: string): Row =>
  ({ argv, reason, flag, value, says })

const I = ["-i", "198.51.100.2/24"]

const ROWS: ReadonlyArray<Row> = [
  // -i
  row(["-i", "198.51.100.300/24"], "InvalidValue", "-i", "198.51.100.300/24", "expected IPv4/prefix"),
  row(["-i", "198.51.100.2"], "InvalidValue", "-i", "198.51.100.2", "prefix length is missing"),
  row(["-i", "198.51.100.2/"], "InvalidValue", "-i", "198.51.100.2/", "expected IPv4/prefix"),
  row(["-i", "198.51.100.2/0"], "InvalidValue", "-i", "198.51.100.2/0", "1..32"),
  row(["-i", "198.51.100.2/33"], "InvalidValue", "-i", "198.51.100.2/33", "1..32"),
  row(["-i", "198.051.100.2/24"], "InvalidValue", "-i", "198.051.100.2/24", "expected IPv4/prefix"),
  row(["-i", "198.51.100.0/24"], "InvalidValue", "-i", "198.51.100.0/24", "network address of 198.51.100.0/24"),
  row(["-i", "198.51.100.255/24"], "InvalidValue", "-i", "198.51.100.255/24", "broadcast address of 198.51.100.0/24"),
  row(["-i", "127.0.0.1/8"], "InvalidValue", "-i", "127.0.0.1/8", "loopback"),
  row(["-i", "224.0.0.5/24"], "InvalidValue", "-i", "224.0.0.5/24", "multicast"),
  row(["-i", "0.0.0.0/24"], "InvalidValue", "-i", "0.0.0.0/24", "not a host address"),
  row(["-i", "255.255.255.255/32"], "InvalidValue", "-i", "255.255.255.255/32", "broadcast"),
  row(["-i", "1"], "InvalidValue", "-i", "1", "--interval"),
  // -g
  row([...I, "-g", "198.51.100"], "InvalidValue", "-g", "198.51.100", "expected an IPv4 address"),
  row([...I, "-g", "198.51.100.1/24"], "InvalidValue", "-g", "198.51.100.1/24", "without a prefix"),
  row([...I, "-g", "203.0.113.1"], "InvalidValue", "-g", "203.0.113.1", "inside the subnet 198.51.100.0/24"),
  row([...I, "-g", "198.51.100.2"], "InvalidValue", "-g", "198.51.100.2", "our own -i address"),
  row([...I, "-g", "198.51.100.255"], "InvalidValue", "-g", "198.51.100.255", "broadcast address"),
  row(["-g", "198.51.100.1"], "InvalidValue", "-g", "198.51.100.1", "needs a static address"),
  // -d
  row(["-d", "0"], "InvalidValue", "-d", "0", "1..86400000"),
  row(["-d", "1.5"], "InvalidValue", "-d", "1.5", "whole number"),
  row(["-d", "ten"], "InvalidValue", "-d", "ten", "whole number"),
  row(["-d", "500,total"], "InvalidValue", "-d", "500,total", "MS or MS,totals"),
  row(["-d", "500,"], "InvalidValue", "-d", "500,", "MS or MS,totals"),
  row(["-d", "500,totals,totals"], "InvalidValue", "-d", "500,totals,totals", "MS or MS,totals"),
  row(["-d", ",totals"], "InvalidValue", "-d", ",totals", "whole number"),
  row(["-d", "0,totals"], "InvalidValue", "-d", "0,totals", "1..86400000"),
  // -a
  row(["-a", "02:00:00:00:00:01/198.51.100.1"], "InvalidValue", "-a", "02:00:00:00:00:01/198.51.100.1", "DHCP"),
  row([...I, "-a", "02:00:00:00:00:01"], "InvalidValue", "-a", "02:00:00:00:00:01", "expected MAC/IPv4"),
  row([...I, "-a", "02:00:00:00:01/198.51.100.1"], "InvalidValue", "-a", "02:00:00:00:01/198.51.100.1", "six hex pairs"),
  row([...I, "-a", "02:00:00:00:00:01/198.51.100.256"], "InvalidValue", "-a", "02:00:00:00:00:01/198.51.100.256", "after the '/'"),
  row([...I, "-a", "ff:ff:ff:ff:ff:ff/198.51.100.1"], "InvalidValue", "-a", "ff:ff:ff:ff:ff:ff/198.51.100.1", "multicast"),
  row([...I, "-a", "02:00:00:00:00:01/203.0.113.1"], "InvalidValue", "-a", "02:00:00:00:00:01/203.0.113.1", "inside the subnet"),
  row([...I, "-a", "02:00:00:00:00:01/198.51.100.2"], "InvalidValue", "-a", "02:00:00:00:00:01/198.51.100.2", "our own"),
  row([...I, "-a", "02:00:00:00:00:01/198.51.100.9", "-a", "02:00:00:00:00:02/198.51.100.9"], "InvalidValue", "-a",
    "02:00:00:00:00:02/198.51.100.9", "198.51.100.9 already has a static ARP entry"),
  // Node options
  row(["--tap", ""], "InvalidValue", "--tap", "", "empty"),
  row(["--tap", "abcdefghijklmnop"], "InvalidValue", "--tap", "abcdefghijklmnop", "at most 15"),
  row(["--tap", "a/b"], "InvalidValue", "--tap", "a/b", "'/'"),
  row(["--tap", "tap0:1"], "InvalidValue", "--tap", "tap0:1", "':'"),
  row(["--tap", "ta p"], "InvalidValue", "--tap", "ta p", "blanks"),
  row(["--tap", ".."], "InvalidValue", "--tap", "..", "not interface names"),
  row(["--mac", "02:00:00:00:00"], "InvalidValue", "--mac", "02:00:00:00:00", "six hex pairs"),
  row(["--mac", "01:00:5e:00:00:01"], "InvalidValue", "--mac", "01:00:5e:00:00:01", "multicast"),
  row(["--mac", "00:00:00:00:00:00"], "InvalidValue", "--mac", "00:00:00:00:00:00", "not a usable"),
  row(["--mtu", "1500.5"], "InvalidValue", "--mtu", "1500.5", "whole number"),
  row(["--mtu", "9001"], "InvalidValue", "--mtu", "9001", "576..9000"),
  row(["--pcap", ""], "InvalidValue", "--pcap", "", "empty"),
  row(["--drop-chance", "101"], "InvalidValue", "--drop-chance", "101", "0..100"),
  row(["--corrupt-chance", "-1"], "InvalidValue", "--corrupt-chance", "-1", "0..100"),
  row(["--port", "http"], "InvalidValue", "--port", "http", "1..65535"),
  row(["--interval", "-1"], "InvalidValue", "--interval", "-1", "0..86400"),
  row(["--interval", "0.0001"], "InvalidValue", "--interval", "0.0001", "0 (off) or 0.001..86400"),
  row(["--max-connections", "1e3"], "InvalidValue", "--max-connections", "1e3", "whole number"),
  row(["--busy-poll", "2.5"], "InvalidValue", "--busy-poll", "2.5", "whole number"),
  row(["--stall-timeout", "0"], "InvalidValue", "--stall-timeout", "0", "1..3600"),
  row(["--udp-send-max", "1h"], "InvalidValue", "--udp-send-max", "1h", "1..3600"),
  row(["--logfile", ""], "InvalidValue", "--logfile", "", "empty"),
  // --metrics: a loopback address of the host only, never the TAP's or any other
  row(["--metrics", "0.0.0.0:9100"], "InvalidValue", "--metrics", "0.0.0.0:9100", "loopback address of this host only"),
  row(["--metrics", "198.51.100.2:9100"], "InvalidValue", "--metrics", "198.51.100.2:9100", "never on the TAP"),
  row(["--metrics", "[2001:db8::2]:9100"], "InvalidValue", "--metrics", "[2001:db8::2]:9100", "127.0.0.0/8 or [::1]"),
  row(["--metrics", "[::]:9100"], "InvalidValue", "--metrics", "[::]:9100", "loopback address of this host only"),
  row(["--metrics", "localhost:9100"], "InvalidValue", "--metrics", "localhost:9100", "not a name"),
  row(["--metrics", "::1:9100"], "InvalidValue", "--metrics", "::1:9100", "in brackets"),
  row(["--metrics", "[::1]9100"], "InvalidValue", "--metrics", "[::1]9100", "[IPv6]:PORT"),
  row(["--metrics", "127.0.0.1"], "InvalidValue", "--metrics", "127.0.0.1", "port is missing"),
  row(["--metrics", "9100"], "InvalidValue", "--metrics", "9100", "port is missing"),
  row(["--metrics", "127.0.0.1:0"], "InvalidValue", "--metrics", "127.0.0.1:0", "1..65535"),
  row(["--metrics", "127.0.0.1:65536"], "InvalidValue", "--metrics", "127.0.0.1:65536", "1..65535"),
  row(["--metrics", "127.0.0.1:http"], "InvalidValue", "--metrics", "127.0.0.1:http", "whole number"),
  row(["--metrics", "127.0.0.256:9100"], "InvalidValue", "--metrics", "127.0.0.256:9100", "IPv4 address"),
  row(["--metrics"], "MissingValue", "--metrics", undefined, "loopback address and a port"),
  row(["--logfile", "-1"], "InvalidValue", "--logfile", "-1", "starts with '-'"),
  row(["--logfile"], "MissingValue", "--logfile", undefined, "file name"),
  row(["--logfile", "--one-off"], "MissingValue", "--logfile", undefined, "next word --one-off is an option"),
  row(["--one-off=yes"], "UnexpectedValue", "--one-off", "yes", ""),
  row(["-1x"], "UnknownFlag", "-1x", "-1x", "--help"),
  row(["--logfile", "/tmp/a.log", "--logfile=/tmp/b.log"], "Repeated", "--logfile", "/tmp/b.log", "'/tmp/a.log'"),
  // shape of the command line
  row(["-i"], "MissingValue", "-i", undefined, "expected IPv4/prefix"),
  row(["-i", "-g", "198.51.100.1"], "MissingValue", "-i", undefined, "next word -g is an option"),
  row(["--mtu", "--no-offload"], "MissingValue", "--mtu", undefined, "next word --no-offload"),
  row(["--port"], "MissingValue", "--port", undefined, "port"),
  row(["--args"], "MissingValue", "--args", undefined, "one string"),
  row(["--no-offload=yes"], "UnexpectedValue", "--no-offload", "yes", ""),
  row(["--bogus"], "UnknownFlag", "--bogus", "--bogus", "--help"),
  row(["--drop-chanse=5"], "UnknownFlag", "--drop-chanse", "--drop-chanse=5", "did you mean --drop-chance?"),
  row(["-x"], "UnknownFlag", "-x", "-x", "--help"),
  row(["-p", "5001"], "UnknownFlag", "-p", "-p", "--port"),
  row(["-hx"], "UnknownFlag", "-hx", "-hx", "--help"),
  row(["tap0"], "StrayArgument", "", "tap0", "only options"),
  row([...I, "198.51.100.1"], "StrayArgument", "", "198.51.100.1", "only options"),
  row(["-"], "StrayArgument", "", "-", "only options"),
  row(["-i", "198.51.100.2/24", "-i", "198.51.100.3/24"], "Repeated", "-i", "198.51.100.3/24", "'198.51.100.2/24'"),
  row(["--args", "--mtu 1500", "--mtu=9000"], "Repeated", "--mtu", "9000", "'1500'"),
  row(["--args", "-i '198.51.100.2/24"], "Quoting", "--args", "-i '198.51.100.2/24", "unterminated ' quote"),
  row(["--args", "-i 198.51.100.2/24 \\"], "Quoting", "--args", "-i 198.51.100.2/24 \\", "trailing backslash"),
  row(["--args", "--args '-i 198.51.100.2/24'"], "InvalidValue", "--args", "--args '-i 198.51.100.2/24'", "cannot appear inside")
]

describe("errors: one per kind, naming the flag, the value and a correct example", () => {
  for (const r of ROWS) {
    it(`${r.reason} ${JSON.stringify(r.argv)}`, () => {
      const e = bad(r.argv)
      expect(e.reason).toBe(r.reason)
      expect(e.flag).toBe(r.flag)
      expect(e.value).toBe(r.value)
      expect(e.message).toContain(r.says)
      const line = formatConfigError(e)
      expect(line.startsWith("miniperf: ")).toBe(true)
      expect(line).not.toContain("\n")
      if (r.flag !== "") expect(line).toContain(r.flag)
      if (r.value !== undefined) expect(line).toContain(`'${r.value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`)
      expect(line).toContain(`e.g. ${e.example}`)
      expect(line).not.toMatch(/Expected|└|ParseError|\{/)
      // the example itself is a correct command line (when it is one of our flags)
      if (e.example.startsWith("-")) {
        expect(Either.isRight(decodeArgvEither(exampleWords(e.example), opts)), e.example).toBe(true)
      }
    })
  }

  it("the brief's example line, word for word", () => {
    expect(formatConfigError(bad(["-i", "198.51.100.300/24"]))).toBe(
      "miniperf: invalid value '198.51.100.300/24' for -i: expected IPv4/prefix, e.g. -i 198.51.100.2/24"
    )
  })

  it("every example in the flag table decodes", () => {
    for (const s of FLAGS) {
      const r = decodeArgvEither(exampleWords(s.example), opts)
      expect(Either.isRight(r), s.example).toBe(true)
    }
  })

  it("control characters and long values stay on one line", () => {
    const line = formatConfigError(bad(["--tap", "a\nb\tc\u0007"]))
    expect(line).not.toContain("\n")
    expect(line).toContain("'a\\nb\\tc\\u{7}'")
    const long = formatConfigError(bad(["--pcap=", "x".repeat(1000)]))
    expect(long.length).toBeLessThan(300)
  })

  it("the first problem wins, in command-line order for shape errors", () => {
    expect(bad(["--bogus", "-i", "x"]).reason).toBe("UnknownFlag")
    expect(bad(["-i", "x", "--bogus"]).reason).toBe("UnknownFlag")
  })
})

describe("help and version", () => {
  it("-h and --help give the usage text, even next to errors", () => {
    for (const argv of [["-h"], ["--help"], ["--bogus", "-h"], ["-i", "-h"], ["--args", "-i x --help"]]) {
      const r = decodeArgvEither(argv, opts)
      expect(r).toEqual(Either.right({ _tag: "Help", text: USAGE }))
    }
  })

  it("--version and -v", () => {
    for (const argv of [["--version"], ["-v"], ["--tap", "tap0", "-v"], ["--args", "-i 198.51.100.2/24 -v"], ["--bogus", "-v"]]) {
      expect(decodeArgvEither(argv, opts)).toEqual(Either.right({ _tag: "Version" }))
    }
    expect(decodeArgvEither(["--version", "--help"], opts)).toEqual(Either.right({ _tag: "Help", text: USAGE }))
    expect(decodeArgvEither(["-v", "-h"], opts)).toEqual(Either.right({ _tag: "Help", text: USAGE }))
    // whole words only: a short switch takes no attached value, and --version none after '='
    expect(Either.isLeft(decodeArgvEither(["-vv"], opts))).toBe(true)
    expect(Either.isLeft(decodeArgvEither(["--version=1"], opts))).toBe(true)
  })

  it("the usage names every flag and uses RFC 5737 addresses only (and the host's loopback, on --metrics lines only)", () => {
    for (const s of FLAGS) for (const n of s.names) expect(USAGE).toContain(n)
    const ips = USAGE.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? []
    expect(ips.length).toBeGreaterThan(0)
    for (const line of USAGE.split("\n")) {
      for (const ip of line.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? []) {
        if (line.includes("--metrics") && ip.startsWith("127.")) continue
        expect(ip).toMatch(/^(198\.51\.100|203\.0\.113|192\.0\.2)\./)
      }
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Properties

const FLAG_WORDS = FLAGS.flatMap((s) => s.names)
const VALUE_WORDS = [
  "198.51.100.2/24", "198.51.100.1", "203.0.113.7", "02:00:00:00:00:01/198.51.100.1", "02:00:00:00:00:01", "1500", "0", "-1",
  "100", "tap0", "", "'", "\"", "\\", "=", "--", "-", "/", "0.5", "1e309", "-i 198.51.100.2/24 -g 198.51.100.1"
]
const wordArb = fc.oneof(
  fc.constantFrom(...FLAG_WORDS),
  fc.constantFrom(...VALUE_WORDS),
  fc.tuple(fc.constantFrom(...FLAG_WORDS), fc.constantFrom(...VALUE_WORDS)).map(([f, v]) => `${f}=${v}`),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 12 })
)

describe("properties", () => {
  it("any argv decodes or gives a ConfigError with a one-line message; it never throws", () => {
    fc.assert(
      fc.property(fc.array(wordArb, { maxLength: 16 }), (argv) => {
        const r = decodeArgvEither(argv, opts)
        if (Either.isLeft(r)) {
          expect(r.left).toBeInstanceOf(ConfigError)
          const line = formatConfigError(r.left)
          expect(line.startsWith("miniperf: ")).toBe(true)
          expect(line).not.toContain("\n")
        } else {
          expect(["Help", "Version", undefined]).toContain((r.right as { _tag?: string })._tag)
        }
      }),
      { numRuns: 1000 }
    )
  })

  const hostInSubnet = (prefix: number, x: number): boolean => {
    if (prefix > 30) return true
    const hostMask = (1 << (32 - prefix)) - 1
    const h = x & hostMask
    return h !== 0 && h !== hostMask
  }

  /** Valid Configs: a static address inside 198.51.100.0/24 with prefix 24..32 (or DHCP) and everything else in range. */
  const configArb: fc.Arbitrary<Config> = fc.record({
    prefix: fc.integer({ min: 24, max: 32 }),
    octets: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 0, maxLength: 24 }),
    useGateway: fc.boolean(),
    arpMacs: fc.array(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { minLength: 24, maxLength: 24 }),
    debugMs: fc.option(fc.integer({ min: 1, max: 86_400_000 }), { nil: undefined }),
    debugTotals: fc.boolean(),
    metrics: fc.option(fc.tuple(fc.constantFrom("127.0.0.1", "127.1.2.3", "::1"), fc.integer({ min: 1, max: 65535 })), { nil: undefined }),
    tap: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,14}$/),
    macHi: fc.integer({ min: 0, max: 0xffff }),
    macLo: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    mtu: fc.integer({ min: 576, max: 9000 }),
    offload: fc.boolean(),
    pcap: fc.option(fc.string({ unit: "binary", minLength: 1, maxLength: 30 }).filter((s) => !s.includes("\0")), { nil: undefined }),
    dropChance: fc.double({ min: 0, max: 100, noNaN: true }),
    corruptChance: fc.constantFrom(0, 1, 50, 100, 0.25),
    port: fc.integer({ min: 1, max: 65535 }),
    iperf3Port: fc.integer({ min: 1, max: 65534 }),
    intervalS: fc.option(fc.double({ min: 0.001, max: 86400, noNaN: true }), { nil: undefined }),
    maxConnections: fc.integer({ min: 1, max: 65535 }),
    busyPollUs: fc.integer({ min: 0, max: 1_000_000 }),
    stallTimeoutS: fc.integer({ min: 1, max: 3600 }),
    udpSendMaxS: fc.integer({ min: 1, max: 3600 }),
    oneOff: fc.boolean(),
    report: fc.constantFrom("human" as const, "csv" as const, "json" as const),
    logfile: fc.option(fc.string({ unit: "binary", minLength: 1, maxLength: 30 }).filter((s) => !s.includes("\0") && !s.startsWith("-")), {
      nil: undefined
    }),
    ipv6: fc.boolean(),
    ip6: fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 0xffff }), fc.oneof(fc.integer({ min: 1, max: 112 }), fc.constant(128))), { maxLength: 3, selector: (t) => t[0] })
  }).map((g): Config => {
    const hosts = g.octets.filter((x) => hostInSubnet(g.prefix, x))
    const own = hosts[0]
    let ip: Config["ip"] = { _tag: "Dhcp" }
    let arp: Config["staticArp"] = []
    if (own !== undefined) {
      const mask = g.prefix === 32 ? 0xff : ~((1 << (32 - g.prefix)) - 1) & 0xff
      const same = hosts.slice(1).filter((x) => (x & mask) === (own & mask))
      const gateway = g.useGateway ? same[0] : undefined
      const address = A(own)
      ip = gateway === undefined
        ? { _tag: "Static", address, prefix: g.prefix }
        : { _tag: "Static", address, prefix: g.prefix, gateway: A(gateway) }
      arp = same.slice(gateway === undefined ? 0 : 1).map((x, k) => ({
        mac: mac(0x0200 | (k & 0xff), g.arpMacs[k]!),
        ip: A(x)
      }))
    }
    let macHi = (g.macHi & 0xfeff) >>> 0 // unicast
    if (macHi === 0 && g.macLo === 0) macHi = 0x0200
    return {
      ip,
      ip6: g.ipv6 ? g.ip6.map(([lo, len]) => ({ address: ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, lo), prefixLen: len })) : [],
      ipv6: g.ipv6,
      staticArp: arp,
      ...(g.debugMs !== undefined ? { debugMs: g.debugMs } : {}),
      ...(g.debugMs !== undefined && g.debugTotals ? { debugTotals: true as const } : {}),
      ...(g.metrics !== undefined ? { metrics: { host: g.metrics[0], port: g.metrics[1] } } : {}),
      tap: g.tap === "." || g.tap === ".." ? "tap0" : g.tap,
      mac: mac(macHi, g.macLo),
      mtu: g.mtu,
      offload: g.offload,
      ...(g.pcap !== undefined ? { pcap: g.pcap } : {}),
      dropChance: g.dropChance + 0, // -0 -> 0
      corruptChance: g.corruptChance,
      port: g.port,
      iperf3Port: g.iperf3Port >= g.port ? g.iperf3Port + 1 : g.iperf3Port, // never the same port
      ...(g.intervalS !== undefined ? { intervalS: g.intervalS } : {}),
      maxConnections: g.maxConnections,
      busyPollUs: g.busyPollUs,
      stallTimeoutS: g.stallTimeoutS,
      udpSendMaxS: g.udpSendMaxS,
      oneOff: g.oneOff,
      ...(g.logfile !== undefined ? { logfile: g.logfile } : {}),
      report: g.report
    }
  })

  it("encode -> argv -> decode gives back the same Config, and so does the same words as one --args string", () => {
    fc.assert(
      fc.property(configArb, (c) => {
        const argv = toArgv(encodeConfig(c))
        const viaArgv = decodeArgvEither(argv, opts)
        expect(viaArgv).toEqual(Either.right(c))
        const viaString = decodeArgvEither(["--args", argv.map(shQuote).join(" ")], opts)
        expect(viaString).toEqual(Either.right(c))
      }),
      { numRuns: 300 }
    )
  })

  it("the Schema alone decodes the lexer's record and validates the Config type side", () => {
    const decoded: Decoded = ok(["-i", "192.0.2.10/24", "-g", "192.0.2.1"])
    expect(Schema.is(Schema.typeSchema(KernelArgs))(decoded)).toBe(true)
    expect(Schema.is(Schema.typeSchema(KernelArgs))({ ...(decoded as Config), mac: -1 })).toBe(false)
  })
})

describe("--ip6 and --no-ipv6", () => {
  const A6 = (s: string) => parseIpv6(s)!

  it("repeatable, any RFC 4291 form, in argv and in the kernel string; IPv6 on by default", () => {
    const c = ok(["--ip6", "2001:DB8:0:0::2/64", "--args", "--ip6 2001:db8:1::0:5/128"])
    expect(c.ip6).toEqual([{ address: A6("2001:db8::2"), prefixLen: 64 }, { address: A6("2001:db8:1::5"), prefixLen: 128 }])
    expect(c.ipv6).toBe(true)
    expect(ok([]).ipv6).toBe(true)
    expect(ok(["--no-ipv6"])).toMatchObject({ ip6: [], ipv6: false })
  })

  it("encodes back in RFC 5952 form", () => {
    const raw = encodeConfig(ok(["--ip6", "2001:0db8:0000:0000:0000:0000:0000:0002/64"]))
    expect(toArgv(raw)).toContain("2001:db8::2/64")
  })

  const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string, string]> = [
    [["--ip6", "2001:db8::2"], "2001:db8::2", "the prefix length is missing"],
    [["--ip6", "2001:db8::g/64"], "2001:db8::g/64", "expected IPv6/prefix"],
    [["--ip6", "2001:db8::2/129"], "2001:db8::2/129", "expected IPv6/prefix"],
    [["--ip6", "2001:db8::2/0"], "2001:db8::2/0", "1..128"],
    [["--ip6", "::/64"], "::/64", ":: is not a host address"],
    [["--ip6", "::1/128"], "::1/128", "loopback"],
    [["--ip6", "ff02::1/64"], "ff02::1/64", "multicast"],
    [["--ip6", "2001:db8::/64"], "2001:db8::/64", "subnet-router anycast"],
    [["--ip6", "2001:db8::2/64", "--ip6", "2001:db8:0::2/48"], "2001:db8:0::2/48", "already given (--ip6 number 1)"],
    [["--ip6", "2001:db8::2/64", "--no-ipv6"], "2001:db8::2/64", "--no-ipv6 turns IPv6 off"]
  ]
  for (const [argv, value, says] of cases) {
    it(`${argv.join(" ")}: exit 2 naming --ip6, the value and an example`, () => {
      const e = bad(argv)
      expect(e.flag).toBe("--ip6")
      expect(e.value).toBe(value)
      expect(e.message).toContain(says)
      const line = formatConfigError(e)
      expect(line).toContain("--ip6")
      expect(line).toContain(value)
      expect(line).toContain("--ip6 2001:db8::2/64")
    })
  }

  it(`at most ${MAX_IP6} addresses`, () => {
    const argv = Array.from({ length: MAX_IP6 + 1 }, (_, k) => ["--ip6", `2001:db8::${k + 1}/64`]).flat()
    expect(bad(argv).message).toContain(`at most ${MAX_IP6}`)
    expect(ok(argv.slice(0, 2 * MAX_IP6)).ip6).toHaveLength(MAX_IP6)
  })
})
