/**
 * The [SUM] lines of iperf 2 tests with more than one stream (-d, --full-duplex, -P k), per interval step and for the
 * whole test, as `iperf -s -i 1` prints them (test/fixtures/iperf-console/iperf2-d-i1, iperf2-P2-i1).
 */
import { describe, expect, it } from "vitest"
import * as Fmt from "../../src/protocols/iperf/format.js"
import { groupSum, makeParallelGroups, pairSum, type IperfShell } from "../../src/layers/iperf/shell.js"
import { ipv4 } from "../../src/protocols/address.js"

const CLIENT = ipv4(198, 51, 100, 1)

const fakeShell = (lines: Array<string>): IperfShell =>
  ({ sumLine: (startS: number, endS: number, bytes: number) => void lines.push(Fmt.formatSum(startS, endS, bytes)) }) as unknown as IperfShell

describe("iperf 2 [SUM] lines", () => {
  it("-d: a step's [SUM] once both streams gave it (over the earlier end), the total's when both ended", () => {
    const lines: Array<string> = []
    const s = pairSum(fakeShell(lines))
    s.addInterval(0, 0, 1, 1000)
    expect(lines).toEqual([])
    s.addInterval(0, 0, 1, 3000)
    expect(lines).toEqual(["[SUM] 0.0000-1.0000 sec  3.91 KBytes  32.0 Kbits/sec"])
    s.addInterval(1, 1, 1.988, 500)
    s.add(4500, 1.988)
    s.addInterval(1, 1, 2, 500)
    s.add(4500, 2.006)
    expect(lines.slice(1)).toEqual(["[SUM] 1.0000-1.9880 sec  1000 Bytes  8.10 Kbits/sec", "[SUM] 0.0000-1.9880 sec  8.79 KBytes  36.2 Kbits/sec"])
    s.addInterval(2, 2, 3, 1) // after the total: nothing
    expect(lines).toHaveLength(3)
  })

  it("-P 2: the streams of one client form a group (the sum over the latest end); its next test is a new group", () => {
    const lines: Array<string> = []
    const groups = makeParallelGroups(fakeShell(lines))
    const a = groups(CLIENT, 2)
    const b = groups(CLIENT, 2)
    expect(b).toBe(a)
    a.add(1000, 2.0028)
    b.add(1000, 1.9975)
    expect(lines).toEqual(["[SUM] 0.0000-2.0028 sec  1.95 KBytes  7.99 Kbits/sec"])
    expect(groups(CLIENT, 2)).not.toBe(a)
  })

  it("a group whose steps never complete keeps at most 64 of them open", () => {
    const lines: Array<string> = []
    const s = groupSum(fakeShell(lines), 3, "latest")
    for (let k = 0; k < 1000; k++) s.addInterval(k, k, k + 1, 1)
    for (let k = 0; k < 1000; k++) s.addInterval(k, k, k + 1, 1)
    for (let k = 0; k < 1000; k++) s.addInterval(k, k, k + 1, 1)
    expect(lines).toHaveLength(64) // the first 64 steps completed; the rest were never held
  })
})
