import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Fmt from "../../../src/protocols/iperf/format.js"
import { fixtureText } from "./fixtures.js"

describe("iperf report formatting (lines printed by the real 2.1.8 client and server)", () => {
  const printed = fixtureText("tcp-client-report-lines.txt") + fixtureText("tcp-server-output.txt") + fixtureText("udp-client-output.txt")

  // [id, start, end, bytes, reverse] chosen so that the real line is reproduced; each expected line was printed by iperf
  const CASES: ReadonlyArray<readonly [string, () => string]> = [
    ["[  1] 0.0000-0.0170 sec  1000 Bytes   469 Kbits/sec", () => Fmt.formatInterval(1, 0, 0.017045, 1000)],
    ["[  2] 0.0000-0.0003 sec   100 KBytes  2.47 Gbits/sec", () => Fmt.formatInterval(2, 0, 0.000332, 102400)],
    ["[  1] 0.0000-1.0012 sec  1.38 MBytes  11.5 Mbits/sec", () => Fmt.formatInterval(1, 0, 1.0012, 1441800)],
    ["[ *1] 0.0000-0.0001 sec   100 KBytes  0.000 bits/sec", () => Fmt.formatInterval(1, 0, 0.00006, 102400, true)],
    ["[ *4] 0.0000-0.0124 sec   100 KBytes  66.1 Mbits/sec", () => Fmt.formatInterval(4, 0, 0.01239, 102400, true)],
    ["[  1] 0.0000-0.0001 sec   100 KBytes  6.25 Gbits/sec", () => Fmt.formatInterval(1, 0, 0.000131, 102400)],
    ["[SUM] 0.0000-0.0000 sec  1.95 KBytes  0.000 bits/sec", () => Fmt.formatSum(0, 0.00004, 2000)],
    ["[SUM] 0.0000-0.0019 sec   200 KBytes   853 Mbits/sec", () => Fmt.formatSum(0, 0.00192, 204800)],
    ["[ 10] 0.0000-0.0008 sec  1000 Bytes  10.1 Mbits/sec", () => Fmt.formatInterval(10, 0, 0.00079, 1000)],
    ["[ 12] 0.0000-0.0005 sec   996 Bytes  14.6 Mbits/sec", () => Fmt.formatInterval(12, 0, 0.000546, 996)],
    ["[  1] 0.0000-0.3146 sec  43.1 KBytes  1.12 Mbits/sec   0.008 ms 0/30 (0%)", () => Fmt.formatUdpInterval(1, 0, 0.314628, 44100, 0.000008, 0, 30)]
  ]
  for (const [line, make] of CASES) {
    it(line, () => {
      expect(printed).toContain(line)
      expect(make()).toBe(line)
    })
  }

  it("the example from iperf-wire.md §A.7", () => {
    expect(Fmt.formatInterval(1, 0, 2.0005, 6.29 * 1024 ** 3)).toBe("[  1] 0.0000-2.0005 sec  6.29 GBytes  27.0 Gbits/sec")
    expect(printed).toContain(Fmt.BW_HEADER)
    expect(printed).toContain(Fmt.UDP_HEADER)
  })

  it("unit boundaries: bytes base 1024, bits base 1000, four places", () => {
    expect(Fmt.formatBytes(0)).toBe("0.000 Bytes")
    expect(Fmt.formatBytes(1023)).toBe("1023 Bytes")
    expect(Fmt.formatBytes(1024)).toBe("1.00 KBytes")
    expect(Fmt.formatBytes(10 * 1024 * 1024)).toBe("10.0 MBytes")
    expect(Fmt.formatBytes(1048576)).toBe("1.00 MBytes")
    expect(Fmt.formatBytes(1105920)).toBe("1.05 MBytes")
    expect(Fmt.formatBitsPerSec(999 / 8)).toBe(" 999 bits/sec")
    expect(Fmt.formatBitsPerSec(1000 / 8)).toBe("1.00 Kbits/sec")
    expect(Fmt.formatBitsPerSec(27e9 / 8)).toBe("27.0 Gbits/sec")
    expect(Fmt.formatBitsPerSec(Number.NaN)).toBe("0.000 bits/sec")
  })

  it("transfer ids", () => {
    expect(Fmt.transferId(1)).toBe("[  1] ")
    expect(Fmt.transferId(123)).toBe("[123] ")
    expect(Fmt.transferId(2, true)).toBe("[ *2] ")
    expect(Fmt.transferId(12, true)).toBe("[*12] ")
  })

  it("%.2g as C prints it", () => {
    expect(Fmt.formatG(0)).toBe("0")
    expect(Fmt.formatG(100 / 3)).toBe("33")
    expect(Fmt.formatG(10 / 3)).toBe("3.3")
    expect(Fmt.formatG(50)).toBe("50")
    expect(Fmt.formatG(100)).toBe("1e+02")
    expect(Fmt.formatG(0.5)).toBe("0.5")
    expect(Fmt.formatG(0.012345)).toBe("0.012")
    expect(Fmt.formatG(0.00001234)).toBe("1.2e-05")
    expect(Fmt.formatG(9.96)).toBe("10")
    expect(Fmt.formatUdpInterval(1, 0, 1, 1470, 0, 0, 0)).toContain("0/0 (nan%)")
  })

  it("fast-check: formatting never throws and the amount column is at most 4 digits wide", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e18, noNaN: true }), fc.double({ min: 0, max: 1e6, noNaN: true }), (bytes, secs) => {
        const line = Fmt.formatInterval(1, 0, secs, bytes)
        const m = /sec +([0-9.]+) [KMGTP]?Bytes +([0-9.]+) [KMGTP]?bits\/sec$/.exec(line)
        expect(m).not.toBeNull()
        expect(m![1]!.replace(".", "").length).toBeLessThanOrEqual(4)
      })
    )
  })
})
