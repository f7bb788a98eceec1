/**
 * Golden console layout of `iperf3 -s` 3.12: the expected lines are the real server's, from
 * test/fixtures/iperf-console/ (README there), and our formatter makes them from fixed numbers.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as F from "../../../src/protocols/iperf3/format.js"

const DIR = path.resolve(__dirname, "../../fixtures/iperf-console")
const real = (name: string): ReadonlyArray<string> => fs.readFileSync(path.join(DIR, `${name}.server.txt`), "utf8").split("\n")
const MiB = 1024 ** 2
const GiB = 1024 ** 3
const KiB = 1024

describe("iperf3 server console, line for line against iperf3 -s 3.12", () => {
  it("the listening block, at start and after a test", () => {
    const r = real("iperf3-two")
    expect(F.listening(5201, 1)).toEqual(r.slice(0, 3))
    const i = r.indexOf("Server listening on 5201 (test #2)")
    expect(F.listening(5201, 2)).toEqual(r.slice(i - 1, i + 2))
  })

  it("TCP: accepted, connected, interval lines with their trailing blanks, the summary", () => {
    const ours = [
      F.accepted("198.51.100.2", 35066),
      F.connected(5, "198.51.100.1", 5201, "198.51.100.2", 35076),
      F.HEADER,
      F.summary({ id: 5, startS: 0, endS: 1.0077, bytes: 704 * MiB, side: "" }),
      F.summary({ id: 5, startS: 1.0077, endS: 2.0047, bytes: 725 * MiB, side: "" }),
      F.summary({ id: 5, startS: 2.0047, endS: 3.0043, bytes: 690 * MiB, side: "" }),
      F.summary({ id: 5, startS: 3.0043, endS: 3.0681, bytes: 10.8 * MiB, side: "" }),
      F.SEPARATOR,
      F.HEADER,
      F.summary({ id: 5, startS: 0, endS: 3.0681, bytes: 2.08 * GiB, side: "receiver" })
    ]
    expect(ours).toEqual(real("iperf3-tcp").slice(3, 13))
  })

  it("-R: Retr and Cwnd in the interval lines, Retr in the summary", () => {
    const ours = [
      F.HEADER_RETR_CWND,
      F.cwndInterval({ id: 5, startS: 0, endS: 1, bytes: 1.34 * GiB, retransmits: 2, cwndBytes: 837 * KiB }),
      F.cwndInterval({ id: 5, startS: 1, endS: 2, bytes: 1.35 * GiB, retransmits: 90, cwndBytes: 2.31 * MiB }),
      F.cwndInterval({ id: 5, startS: 2, endS: 2.9992, bytes: 879 * MiB, retransmits: 0, cwndBytes: 2.46 * MiB }),
      F.SEPARATOR,
      F.HEADER_RETR,
      F.summary({ id: 5, startS: 0, endS: 3, bytes: 3.55 * GiB, retransmits: 92, side: "sender" })
    ]
    expect(ours).toEqual(real("iperf3-R").slice(5, 12))
  })

  it("-u: jitter and loss in the interval lines and the summary", () => {
    const ours = [
      F.HEADER_UDP,
      F.udpSummary({ id: 5, startS: 0, endS: 1, bytes: 128.6 * KiB, jitterS: 0.00037, lost: 0, packets: 91, side: "" }),
      F.udpSummary({ id: 5, startS: 1, endS: 2, bytes: 127 * KiB, jitterS: 0.000511, lost: 0, packets: 90, side: "" }),
      F.udpSummary({ id: 5, startS: 2, endS: 3, bytes: 128.6 * KiB, jitterS: 0.001917, lost: 0, packets: 91, side: "" }),
      F.SEPARATOR,
      F.HEADER_UDP,
      F.udpSummary({ id: 5, startS: 0, endS: 3, bytes: 385 * KiB, jitterS: 0.001917, lost: 0, packets: 272, side: "receiver" })
    ]
    expect(ours).toEqual(real("iperf3-u").slice(5, 12))
  })

  it("-P 2: [SUM] per interval and separators between the groups", () => {
    const r = real("iperf3-P2")
    expect(r.slice(7, 11)).toEqual([
      F.summary({ id: 5, startS: 0, endS: 1, bytes: 258 * MiB, side: "" }),
      F.summary({ id: 8, startS: 0, endS: 1, bytes: 259 * MiB, side: "" }),
      F.summary({ id: "SUM", startS: 0, endS: 1, bytes: 516 * MiB, side: "" }),
      F.SEPARATOR
    ])
    expect(r.slice(23, 27)).toEqual([
      F.HEADER,
      F.summary({ id: 5, startS: 0, endS: 3.01, bytes: 793 * MiB, side: "receiver" }),
      F.summary({ id: 8, startS: 0, endS: 3.01, bytes: 824 * MiB, side: "receiver" }),
      F.summary({ id: "SUM", startS: 0, endS: 3.01, bytes: 1.58 * GiB, side: "receiver" })
    ])
  })

  it("--bidir: the role column, Retr and Cwnd for the sending stream", () => {
    const r = real("iperf3-bidir")
    expect(r.slice(6, 9)).toEqual([
      F.HEADER_RETR_CWND_BIDIR,
      F.summary({ id: 5, role: "RX-S", startS: 0, endS: 1.004, bytes: 267 * MiB, side: "" }),
      F.cwndInterval({ id: 8, role: "TX-S", startS: 0, endS: 1.004, bytes: 250 * MiB, retransmits: 195, cwndBytes: 337 * KiB })
    ])
    const sum = r.indexOf(F.HEADER_RETR_BIDIR)
    expect(r[sum - 1]).toBe(F.SEPARATOR)
    expect(r.slice(sum, sum + 3)).toEqual([
      F.HEADER_RETR_BIDIR,
      F.summary({ id: 5, role: "RX-S", startS: 0, endS: 3.02, bytes: 877 * MiB, side: "receiver" }),
      F.summary({ id: 8, role: "TX-S", startS: 0, endS: 3.02, bytes: 796 * MiB, retransmits: 555, side: "sender" })
    ])
  })
})
