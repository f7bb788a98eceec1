import { describe, expect, it } from "vitest"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { fromHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { ipv4 } from "../../../src/protocols/address.js"
import * as W from "../../../src/protocols/tcp/wire.js"
import type { SeqNum } from "../../../src/protocols/tcp/seq.js"

const lines = readFileSync(fileURLToPath(new URL("./fixtures/linux-v4-handshake.hex", import.meta.url)), "utf8")
  .trim()
  .split("\n")
const A = ipv4(198, 51, 100, 1)
const B = ipv4(198, 51, 100, 2)
const syn = fromHex(lines[0]!)
const synAck = fromHex(lines[1]!)
const ack = fromHex(lines[2]!)
const data = fromHex(lines[3]!)
const ps = (src: number, dst: number, b: Uint8Array) => Cs.pseudoV4(src, dst, 6, b.length)

describe("tcp wire: golden Linux capture (198.51.100.1 -> .2, iperf handshake)", () => {
  const synRepr = W.make({
    srcPort: 37640,
    dstPort: 5001,
    seq: 4011944830 as SeqNum,
    ack: 0 as SeqNum,
    flags: W.SYN,
    window: 64240,
    mss: 1460,
    sackPermitted: true,
    hasTs: true,
    tsVal: 12517193,
    tsEcr: 0,
    wscale: 10,
    headerLen: 40,
    payloadLen: 0
  })
  it("parses the SYN with options and a verified checksum", () => {
    expect(W.parse(syn, ps(A, B, syn), true)).toEqual(synRepr)
  })
  it("emits the SYN byte for byte (Linux option layout, checksum filled)", () => {
    const b = new Uint8Array(W.headerLen(synRepr))
    W.emit(synRepr, b, ps(A, B, b), true)
    expect(Buffer.from(b).toString("hex")).toBe(lines[0])
  })
  it("parses and re-emits the SYN-ACK", () => {
    const r = W.parse(synAck, ps(B, A, synAck), true)
    expect(W.isDrop(r)).toBe(false)
    if (W.isDrop(r)) return
    expect(r.flags).toBe(W.SYN | W.ACK)
    expect(r.ack).toBe(4011944831)
    expect(r.tsEcr).toBe(12517193)
    const b = new Uint8Array(synAck.length)
    W.emit(r, b, ps(B, A, b), true)
    expect(b).toEqual(synAck)
  })
  it("parses and re-emits the pure ACK and a data segment (payload in place)", () => {
    for (const seg of [ack, data]) {
      const r = W.parse(seg, ps(A, B, seg), true)
      if (W.isDrop(r)) throw new Error(r)
      expect(r.headerLen).toBe(32)
      expect(r.hasTs).toBe(true)
      const b = new Uint8Array(seg.length)
      b.set(seg.subarray(r.headerLen), r.headerLen)
      W.emit(r, b, ps(A, B, b), true)
      expect(b).toEqual(seg)
    }
    const r = W.parse(data, ps(A, B, data), true) as W.TcpRepr
    expect(r.payloadLen).toBe(60)
    expect(r.flags).toBe(W.ACK | W.PSH)
    expect(W.payload(data)[0]).toBe(0x40)
  })
  it("rejects a corrupted checksum only when verifying", () => {
    const b = syn.slice()
    b[5] = b[5]! ^ 1
    expect(W.parse(b, ps(A, B, b), true)).toBe("BadChecksum")
    expect(W.isDrop(W.parse(b, ps(A, B, b), false))).toBe(false)
  })
  it("emit without fill leaves the folded pseudo-header sum (NEEDS_CSUM), completed by a NIC", () => {
    const b = new Uint8Array(syn.length)
    W.emit(synRepr, b, ps(A, B, b), false)
    expect((b[16]! << 8) | b[17]!).toBe(Cs.fold(ps(A, B, b)))
    // what the NIC does: checksum from csumStart over the segment with the field as is
    const c = Cs.finish(Cs.sum(b, 0, b.length, 0))
    b[16] = c >>> 8
    b[17] = c & 0xff
    expect(b).toEqual(syn)
  })
  it("rejects every truncation", () => {
    for (const seg of [syn, synAck, ack, data]) {
      const hl = W.dataOffset(seg)
      for (let n = 0; n < hl; n++) {
        const cut = seg.subarray(0, n)
        expect(W.isDrop(W.parse(cut, 0, false))).toBe(true)
        expect(W.checkLen(cut)).toBe(false)
      }
    }
  })
})

describe("tcp wire: lying option lengths", () => {
  const withOpts = (opts: number[]): Uint8Array => {
    const pad = (4 - (opts.length % 4)) % 4
    const b = new Uint8Array(20 + opts.length + pad)
    b[0] = 0x12
    b[1] = 0x34
    b[3] = 80
    b[12] = ((5 + (opts.length + pad) / 4) << 4) & 0xf0
    b[13] = W.ACK
    b.set(opts, 20)
    return b
  }
  it("accepts NOP/EOL and skips unknown options", () => {
    const r = W.parse(withOpts([1, 1, 30, 4, 0xaa, 0xbb, 2, 4, 5, 0xb4, 0]), 0, false)
    expect(W.isDrop(r)).toBe(false)
    expect((r as W.TcpRepr).mss).toBe(1460)
  })
  it.each([
    ["MSS length 3", [2, 3, 5, 0]],
    ["MSS length 5", [2, 5, 5, 0xb4, 0]],
    ["WS length 2", [3, 2, 1, 1]],
    ["WS length runs past header", [1, 1, 1, 3]],
    ["SACK-perm length 3", [4, 3, 0, 0]],
    ["TS length 8", [8, 8, 0, 0, 0, 0, 0, 0]],
    ["SACK length 9", [5, 9, 0, 0, 0, 0, 0, 0, 0]],
    ["SACK length 10 but only 8 bytes left", [5, 10, 0, 0, 0, 0, 0, 0]],
    ["length 0", [30, 0, 0, 0]],
    ["length 1", [30, 1, 0, 0]],
    ["unknown option past the end", [30, 40, 0, 0]],
    ["kind with no length byte", [1, 1, 1, 30]]
  ])("%s", (_name, opts) => {
    expect(W.parse(withOpts(opts), 0, false)).toBe("BadOption")
  })
  it("data offset below 5 and above the buffer", () => {
    const b = withOpts([])
    b[12] = 4 << 4
    expect(W.parse(b, 0, false)).toBe("BadHeaderLength")
    b[12] = 6 << 4
    expect(W.parse(b, 0, false)).toBe("Truncated")
  })
})

const seqArb = fc.integer({ min: 0, max: 0xffffffff }).map((n) => n as SeqNum)
const reprArb = fc
  .record({
    srcPort: fc.integer({ min: 1, max: 65535 }),
    dstPort: fc.integer({ min: 1, max: 65535 }),
    seq: seqArb,
    ack: seqArb,
    flags: fc.integer({ min: 0, max: 255 }),
    window: fc.integer({ min: 0, max: 65535 }),
    urgent: fc.integer({ min: 0, max: 65535 }),
    mss: fc.integer({ min: 0, max: 65535 }),
    wscale: fc.integer({ min: -1, max: 14 }),
    sackPermitted: fc.boolean(),
    hasTs: fc.boolean(),
    tsVal: fc.integer({ min: 0, max: 0xffffffff }),
    tsEcr: fc.integer({ min: 0, max: 0xffffffff }),
    sack: fc.array(fc.tuple(seqArb, seqArb), { maxLength: 4 }).map((a) => a.flat()),
    payloadLen: fc.integer({ min: 0, max: 64 })
  })
  .map((r) => {
    const x = { ...r, tsVal: r.hasTs ? r.tsVal : 0, tsEcr: r.hasTs ? r.tsEcr : 0, headerLen: 0 }
    const full = x as W.TcpRepr
    const n = W.sackBlocksEmitted(full)
    const sack = x.sack.slice(0, 2 * n)
    const y = { ...x, sack: sack.length === 0 ? W.NO_SACK : sack }
    return { ...y, headerLen: W.headerLen(y as W.TcpRepr) } as W.TcpRepr
  })

describe("tcp wire: properties", () => {
  it("parse(emit(r)) = r, checksum verifies", () => {
    fc.assert(
      fc.property(reprArb, fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (r, s, d) => {
        const b = new Uint8Array(r.headerLen + r.payloadLen)
        for (let i = r.headerLen; i < b.length; i++) b[i] = (i * 7) & 0xff
        const p = Cs.pseudoV4(s, d, 6, b.length)
        W.emit(r, b, p, true)
        expect(W.parse(b, p, true)).toEqual(r)
      }),
      { numRuns: 500 }
    )
  })
  it("parse never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (b, v) => {
        const r = W.parse(b, 0, v)
        expect(typeof r === "string" || typeof r === "object").toBe(true)
      }),
      { numRuns: 2000 }
    )
  })
  it("parse never throws on random options after a valid fixed header", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), (opts) => {
        const ol = opts.length - (opts.length % 4)
        const b = new Uint8Array(20 + ol)
        b[1] = 1
        b[3] = 1
        b[12] = (5 + ol / 4) << 4
        b.set(opts.subarray(0, ol), 20)
        const r = W.parse(b, 0, false)
        if (typeof r === "object") expect(r.headerLen).toBe(20 + ol)
      }),
      { numRuns: 2000 }
    )
  })
})
