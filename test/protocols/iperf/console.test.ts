/**
 * Golden console layout of `iperf -s` 2.1.8: every expected line below is in the real server's captured output
 * (test/fixtures/iperf-console/, README there), and our formatter makes it from fixed numbers. Lines the real server
 * ends with the kernel's `(icwnd/mss/irtt=...)` are compared up to that suffix, which we do not print (format.ts).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Fmt from "../../../src/protocols/iperf/format.js"
import { ipv4 } from "../../../src/protocols/address.js"

const DIR = path.resolve(__dirname, "../../fixtures/iperf-console")
const real = (name: string): ReadonlyArray<string> => fs.readFileSync(path.join(DIR, `${name}.server.txt`), "utf8").split("\n")
const withoutTcpInfo = (l: string): string => l.replace(/ \(icwnd\/mss\/irtt=\d+\/\d+\/\d+\)$/, "")

const S = "198.51.100.1"
const C = "198.51.100.2"
const GiB = 1024 ** 3
const MiB = 1024 ** 2

describe("iperf 2 server console, line for line against iperf -s 2.1.8", () => {
  it("formatHost is the one address formatter (dotted IPv4)", () => {
    expect(Fmt.formatHost(ipv4(198, 51, 100, 1))).toBe(S)
  })

  it("listening banner (TCP) and the -r/-d client block", () => {
    const tcp = real("iperf2-tcp")
    // the real TCP window is the kernel's 128 KByte; ours prints its own receive window the same way
    expect(Fmt.listeningBanner("TCP", 5001, 128 * 1024)).toEqual(tcp.slice(0, 4))
    const r = real("iperf2-r")
    expect(Fmt.clientConnecting(C, "TCP", 5001, 67.5 * 1024)).toEqual(r.slice(7, 11))
    expect(Fmt.clientConnecting(C, "TCP", 5001, 1.98 * MiB)).toEqual(real("iperf2-r-i1").slice(9, 13))
  })

  it("UDP banner with its buffer line, and without one (ours: no socket buffer)", () => {
    expect(Fmt.listeningBanner("UDP", 5001, 208 * 1024)).toEqual(real("iperf2-udp").slice(0, 4))
    expect(Fmt.listeningBanner("UDP", 5001)).toEqual(real("iperf2-udp").filter((l, i) => i < 4 && !l.startsWith("UDP buffer")))
  })

  it("connection lines: accepted, connect-back (reverse), UDP", () => {
    expect(Fmt.connectedWith(1, false, S, 5001, C, 44756)).toBe(withoutTcpInfo(real("iperf2-tcp")[4]!))
    expect(Fmt.connectedWith(2, true, S, 43446, C, 5001, ["(reverse)"])).toBe(withoutTcpInfo(real("iperf2-r")[11]!))
    expect(Fmt.connectedWith(1, false, S, 5001, C, 34641)).toBe(real("iperf2-udp")[4])
  })

  it("headers", () => {
    expect(real("iperf2-tcp")[5]).toBe(Fmt.BW_HEADER)
    expect(real("iperf2-udp")[5]).toBe(Fmt.UDP_HEADER)
  })

  it("TCP -r: the whole session after the banner, from fixed numbers", () => {
    const ours = [
      Fmt.connectedWith(1, false, S, 5001, C, 51822),
      Fmt.BW_HEADER,
      Fmt.formatInterval(1, 0, 2.0032, 3.21 * GiB),
      ...Fmt.clientConnecting(C, "TCP", 5001, 67.5 * 1024),
      Fmt.connectedWith(2, true, S, 43446, C, 5001, ["(reverse)"]),
      Fmt.BW_HEADER,
      Fmt.formatInterval(2, 0, 2.0152, 3.14 * GiB, true)
    ]
    expect(ours).toEqual(real("iperf2-r").slice(4, 14).map(withoutTcpInfo))
  })

  it("TCP -d: both connection lines, one header, the two totals and their [SUM]", () => {
    const ours = [
      Fmt.connectedWith(1, false, S, 5001, C, 57202),
      ...Fmt.clientConnecting(C, "TCP", 5001, 4 * MiB),
      Fmt.connectedWith(2, true, S, 44310, C, 5001, ["(reverse)"]),
      Fmt.BW_HEADER,
      Fmt.formatInterval(1, 0, 2.0087, 1.4334 * GiB),
      Fmt.formatInterval(2, 0, 2.0209, 1.87 * GiB, true),
      Fmt.formatSum(0, 2.0087, 3.3 * GiB)
    ]
    expect(ours).toEqual(real("iperf2-d").slice(4, 14).map(withoutTcpInfo))
  })

  it("TCP -P 2: two connection lines, the header, the totals and [SUM]", () => {
    const ours = [
      Fmt.connectedWith(1, false, S, 5001, C, 53758),
      Fmt.connectedWith(2, false, S, 5001, C, 53770),
      Fmt.BW_HEADER,
      Fmt.formatInterval(1, 0, 2.0028, 2.0937 * GiB),
      Fmt.formatInterval(2, 0, 1.9975, 1.5929 * GiB),
      Fmt.formatSum(0, 2.0047, 3.69 * GiB)
    ]
    expect(ours).toEqual(real("iperf2-P2").slice(4, 10).map(withoutTcpInfo))
  })

  it("TCP -i 1: interval lines under the header, then the total", () => {
    const ours = [
      Fmt.BW_HEADER,
      Fmt.formatInterval(1, 0, 1, 1.58 * GiB),
      Fmt.formatInterval(1, 1, 2, 1.72 * GiB),
      Fmt.formatInterval(1, 0, 2.0011, 3.31 * GiB)
    ]
    expect(ours).toEqual(real("iperf2-tcp-i1").slice(5, 9))
  })

  it("UDP -i 1: interval lines with jitter and loss, then the total", () => {
    const ours = [
      Fmt.connectedWith(1, false, S, 5001, C, 53123),
      Fmt.UDP_HEADER,
      Fmt.formatUdpInterval(1, 0, 1, 131 * 1024, 0.000011, 0, 91),
      Fmt.formatUdpInterval(1, 1, 2, 128 * 1024, 0.00001, 0, 89),
      Fmt.formatUdpInterval(1, 0, 2.0057, 260 * 1024, 0.00001, 0, 181)
    ]
    expect(ours).toEqual(real("iperf2-udp-i1").slice(4, 9))
  })
})

describe("iperf 2 -y C, field for field against iperf -s -y C 2.1.8", () => {
  const ends = { local: S, localPort: 5001, remote: C, remotePort: 33938 }
  /** The real line's timestamp as a local-time epoch (what our lines are stamped with). */
  const stamp = (line: string): number => {
    const t = line.slice(0, 14)
    return new Date(+t.slice(0, 4), +t.slice(4, 6) - 1, +t.slice(6, 8), +t.slice(8, 10), +t.slice(10, 12), +t.slice(12, 14)).getTime()
  }

  it("TCP with -i 1: interval lines and the total, the client's end first", () => {
    const r = real("iperf2-i1-csv")
    expect(Fmt.csvLine(stamp(r[0]!), { id: 1, sent: false, startS: 0, endS: 1, bytes: 581220252, ...ends })).toBe(r[0])
    expect(Fmt.csvLine(stamp(r[1]!), { id: 1, sent: false, startS: 1, endS: 2, bytes: 851235840, ...ends })).toBe(r[1])
    // the whole test: 2.001391 s (the bit rate is the byte count over the real duration, truncated)
    expect(Fmt.csvLine(stamp(r[2]!), { id: 1, sent: false, startS: 0, endS: 2.001391, bytes: 1432485948, ...ends })).toBe(r[2])
  })

  it("-d: the stream we send has our end first (no [SUM] line in CSV)", () => {
    const r = real("iperf2-d-csv").filter((l) => /^\d{14},/.test(l))
    expect(r).toHaveLength(2)
    const back = { local: S, localPort: 44324, remote: C, remotePort: 5001 }
    const ours = Fmt.csvLine(stamp(r[1]!), { id: 2, sent: true, startS: 0, endS: 2.01741, bytes: 3716022272, ...back })
    expect(ours).toBe(r[1])
  })

  it("UDP: jitter in ms, lost, total, lost percent and out-of-order after the TCP fields", () => {
    const r = real("iperf2-udp-i1-csv")
    const u = { local: S, localPort: 5001, remote: C, remotePort: 33002 }
    expect(Fmt.csvLine(stamp(r[0]!), {
      id: 1, sent: false, startS: 0, endS: 1, bytes: 133770, ...u, udp: { jitterS: 0.00001, lost: 0, datagrams: 91, outOfOrder: 0 }
    })).toBe(r[0])
    expect(Fmt.csvLine(stamp(r[2]!), {
      id: 1, sent: false, startS: 0, endS: 2.022386, bytes: 267540, ...u, udp: { jitterS: 0.000015, lost: 0, datagrams: 182, outOfOrder: 0 }
    })).toBe(r[2])
    expect(Fmt.csvLine(0, { id: 3, sent: false, startS: 0, endS: 2, bytes: 1000, ...u, udp: { jitterS: 0.0012345, lost: 1, datagrams: 3, outOfOrder: 2 } }))
      .toMatch(/,3,0\.0-2\.0,1000,4000,1\.234,1,3,33\.333,2$/)
  })

  it("2.1.8 stamps whole-test lines without -i with 19700101000000; ours carry the real time", () => {
    expect(real("iperf2-tcp-csv")[0]).toMatch(/^19700101000000,/)
    const d = new Date(2026, 11, 7, 4, 55, 12)
    expect(Fmt.csvTimestamp(d.getTime())).toBe("20261207045512")
  })
})

describe("iperf 2 -J: one document per finished stream, named as the -y C columns", () => {
  const ends = { local: S, localPort: 5001, remote: C, remotePort: 33002 }
  it("UDP with two intervals: the stream's ends once, intervals and total with the CSV fields and values", () => {
    const stamp = new Date(2026, 11, 7, 4, 55, 7).getTime()
    const iv = (startS: number, endS: number, bytes: number, datagrams: number) => ({
      epochMs: stamp, r: { id: 1, sent: false, startS, endS, bytes, ...ends, udp: { jitterS: 0.00001, lost: 0, datagrams, outOfOrder: 0 } }
    })
    const total = { epochMs: stamp + 1000, r: { ...iv(0, 2.022386, 267540, 182).r, total: true, udp: { jitterS: 0.000015, lost: 0, datagrams: 182, outOfOrder: 0 } } }
    const d = Fmt.jsonDocument(total, [iv(0, 1, 133770, 91), iv(1, 2, 130830, 89)])
    expect(d).toEqual({
      protocol: "UDP", transfer_id: 1, source_address: C, source_port: 33002, destination_address: S, destination_port: 5001,
      intervals: [
        { timestamp: "20261207045507", interval: "0.0-1.0", transferred_bytes: 133770, bits_per_second: 1070160, jitter_ms: 0.01, lost_datagrams: 0, total_datagrams: 91, lost_percent: 0, out_of_order_datagrams: 0 },
        { timestamp: "20261207045507", interval: "1.0-2.0", transferred_bytes: 130830, bits_per_second: 1046640, jitter_ms: 0.01, lost_datagrams: 0, total_datagrams: 89, lost_percent: 0, out_of_order_datagrams: 0 }
      ],
      total: { timestamp: "20261207045508", interval: "0.0-2.0", transferred_bytes: 267540, bits_per_second: 1058314, jitter_ms: 0.015, lost_datagrams: 0, total_datagrams: 182, lost_percent: 0, out_of_order_datagrams: 0 }
    })
    // the same numbers as the CSV line of the real server for that stream
    const csv = real("iperf2-udp-i1-csv")[2]!.split(",")
    expect([d.source_address, d.source_port, d.destination_address, d.destination_port, d.transfer_id].map(String)).toEqual(csv.slice(1, 6))
    // (numbers as numbers: the CSV's "0.000" is 0)
    expect(Object.values(d.total as object).map(String).slice(1)).toEqual(csv.slice(6).map((x) => (/^\d+\.\d+$/.test(x) ? String(Number(x)) : x)))
  })

  it("TCP: the CSV field names, in order", () => {
    const d = Fmt.jsonDocument({ epochMs: 0, r: { id: 2, sent: true, startS: 0, endS: 2, bytes: 1000, ...ends, total: true } }, [])
    expect(d.protocol).toBe("TCP")
    expect(d.source_address).toBe(S) // we sent it: our end first, as in the CSV
    expect(Object.keys(d.total as object)).toEqual(["timestamp", "interval", "transferred_bytes", "bits_per_second"])
    expect([...Fmt.CSV_FIELDS]).toEqual(["timestamp", "source_address", "source_port", "destination_address", "destination_port", "transfer_id", "interval", "transferred_bytes", "bits_per_second"])
  })
})
