import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as W from "../../../src/protocols/iperf3/wire.js"

const enc = new TextEncoder()
const frame = (text: string): Uint8Array => {
  const body = enc.encode(text)
  const b = new Uint8Array(4 + body.length)
  new DataView(b.buffer).setUint32(0, body.length)
  b.set(body, 4)
  return b
}
const cookie = (s: string): Uint8Array => Uint8Array.from([...enc.encode(s), 0])

/** Observed on the wire (iperf-wire.md §C.2): the 3.12 client's parameters for `-t 2`, and its results. */
const PARAMS_T2 = '{"tcp":true,"omit":0,"time":2,"num":0,"blockcount":0,"parallel":1,"len":131072,"pacing_timer":1000,"client_version":"3.12"}'
const CLIENT_RESULTS =
  '{"cpu_util_total":1.5,"cpu_util_user":0.2,"cpu_util_system":1.3,"sender_has_retransmits":1,"congestion_used":"bbr",' +
  '"streams":[{"id":1,"bytes":9343598592,"retransmits":0,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":2.000465}]}'

describe("iperf3 cookie", () => {
  it("36 characters of [a-z2-7] and a NUL", () => {
    const c = cookie("ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7gp")
    expect(c.length).toBe(W.COOKIE_LEN)
    expect(W.isValidCookie(c)).toBe(true)
    expect(W.cookieText(c)).toBe("ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7gp")
  })
  it("refuses a missing NUL, a wrong length, upper case, digits outside 2-7, HTTP", () => {
    const good = cookie("ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7gp")
    const noNul = good.slice()
    noNul[36] = 0x61
    expect(W.isValidCookie(noNul)).toBe(false)
    expect(W.isValidCookie(good.subarray(0, 36))).toBe(false)
    expect(W.isValidCookie(cookie("Ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7gp"))).toBe(false)
    expect(W.isValidCookie(cookie("ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7g1"))).toBe(false)
    expect(W.isValidCookie(cookie("ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7g8"))).toBe(false)
    expect(W.isValidCookie(enc.encode("GET / HTTP/1.1\r\nHost: example\r\n\r\nabcd").subarray(0, 37))).toBe(false)
  })
  it.each([0, 1, 5])("property: any 36 characters of the alphabet are valid (seed %i)", (seed) => {
    const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 31 }), { minLength: 36, maxLength: 36 }), (ix) =>
        W.isValidCookie(cookie(ix.map((i) => alphabet[i]).join("")))
      ),
      { seed }
    )
  })
  it("printable escapes control bytes and truncates", () => {
    expect(W.printable(Uint8Array.of(0x47, 0x0d, 0x0a, 0xff))).toBe("G\\x0d\\x0a\\xff")
    expect(W.printable(new Uint8Array(20).fill(0x41), 4)).toBe("AAAA...")
  })
})

describe("iperf3 control reader: length-prefixed JSON across segments", () => {
  it("the observed parameters, split at every byte boundary, parse once and only when complete", () => {
    const f = frame(PARAMS_T2)
    expect(f.subarray(0, 4)).toEqual(Uint8Array.of(0, 0, 0, 0x7b)) // 123 bytes, as captured
    for (let cut = 0; cut <= f.length; cut++) {
      const r = W.makeReader()
      W.feed(r, f, 0, cut)
      if (cut < f.length) {
        expect(W.takeJson(r)).toBe(W.NEED_MORE)
        W.feed(r, f, cut, f.length)
      }
      const j = W.takeJson(r)
      expect(j).toEqual({ json: JSON.parse(PARAMS_T2) })
      expect(W.buffered(r)).toBe(0)
    }
  })
  it("one byte per segment, with state bytes and two messages interleaved", () => {
    const all = Uint8Array.from([...frame('{"a":1}'), W.TEST_END, ...frame('{"b":[2]}'), W.IPERF_DONE])
    const r = W.makeReader(64)
    const got: Array<unknown> = []
    const expects: Array<"json" | "byte"> = ["json", "byte", "json", "byte"]
    for (const b of all) {
      expect(W.feed(r, Uint8Array.of(b))).toBeUndefined()
      while (got.length < expects.length) {
        if (expects[got.length] === "byte") {
          const x = W.takeByte(r)
          if (x === undefined) break
          got.push(x)
        } else {
          const j = W.takeJson(r)
          if (j === W.NEED_MORE) break
          got.push(j)
        }
      }
    }
    expect(got).toEqual([{ json: { a: 1 } }, W.TEST_END, { json: { b: [2] } }, W.IPERF_DONE])
  })
  it("a length above 64 KiB is refused as soon as the length is in; exactly 64 KiB is accepted", () => {
    const r = W.makeReader()
    W.feed(r, Uint8Array.of(0, 1, 0, 1)) // 65537
    expect(W.takeJson(r)).toEqual({ _drop: "JsonTooLong", len: 65537 })
    const r2 = W.makeReader()
    W.feed(r2, Uint8Array.of(0x47, 0x45, 0x54, 0x20)) // "GET " as a length
    expect(W.takeJson(r2)).toMatchObject({ _drop: "JsonTooLong" })
    const big = frame(`{"x":"${"y".repeat(W.MAX_JSON_LEN - 8)}"}`)
    expect(big.length).toBe(4 + W.MAX_JSON_LEN)
    const r3 = W.makeReader()
    expect(W.feed(r3, big)).toBeUndefined()
    const j = W.takeJson(r3)
    expect(typeof j === "object" && "json" in j).toBe(true)
  })
  it("the buffer is bounded: unread bytes beyond one frame overflow", () => {
    const r = W.makeReader(100)
    expect(W.feed(r, new Uint8Array(100))).toBeUndefined()
    expect(W.feed(r, new Uint8Array(1))).toBe("ReaderOverflow")
    W.takeByte(r)
    expect(W.feed(r, new Uint8Array(1))).toBeUndefined()
  })
  it("bad JSON, an empty message and invalid UTF-8 are drops, and consumed", () => {
    for (const [bytes, drop] of [
      [frame("{bad}"), "BadJson"],
      [frame(""), "BadJson"],
      [Uint8Array.from([0, 0, 0, 2, 0xc3, 0x28]), "BadUtf8"]
    ] as const) {
      const r = W.makeReader()
      W.feed(r, bytes)
      W.feed(r, Uint8Array.of(W.IPERF_DONE))
      expect(W.takeJson(r)).toMatchObject({ _drop: drop })
      expect(W.takeByte(r)).toBe(W.IPERF_DONE)
    }
  })
  it("property: takeJson never throws on arbitrary bytes, and never consumes more than it was given", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 300 }), (bytes, cut) => {
        const r = W.makeReader(1024)
        W.feed(r, bytes, 0, Math.min(cut, bytes.length))
        W.feed(r, bytes, Math.min(cut, bytes.length))
        for (let i = 0; i < 10; i++) {
          const before = W.buffered(r)
          const j = W.takeJson(r)
          if (j === W.NEED_MORE || "_drop" in j) {
            if (j !== W.NEED_MORE && j._drop === "JsonTooLong") break
            if (j === W.NEED_MORE) break
          }
          expect(W.buffered(r)).toBeLessThan(before)
        }
      })
    )
  })
})

describe("iperf3 parameters", () => {
  it("the observed -t 2 parameters", () => {
    const p = W.decodeParams(JSON.parse(PARAMS_T2))
    expect(p).toEqual({
      protocol: "tcp", omitS: 0, timeS: 2, bytes: 0, blocks: 0, parallel: 1, len: 131072, reverse: false, bidirectional: false,
      bandwidth: 0, udpCounters64: false, getServerOutput: false, clientVersion: "3.12", clamped: []
    })
  })
  it("options: -R, --bidir, -n, -k, -b, -P, unknown keys ignored, omit clamped", () => {
    const base = JSON.parse(PARAMS_T2) as Record<string, unknown>
    expect(W.decodeParams({ ...base, reverse: true })).toMatchObject({ reverse: true, bidirectional: false })
    expect(W.decodeParams({ ...base, bidirectional: true, parallel: 2 })).toMatchObject({ bidirectional: true, parallel: 2 })
    expect(W.decodeParams({ ...base, time: 0, num: 10485760 })).toMatchObject({ timeS: 0, bytes: 10485760 })
    expect(W.decodeParams({ ...base, time: 0, blockcount: 5 })).toMatchObject({ blocks: 5 })
    expect(W.decodeParams({ ...base, bandwidth: 1e8, title: "x", authtoken: "y", MSS: 1000 })).toMatchObject({ bandwidth: 1e8 })
    expect(W.decodeParams({ ...base, omit: 1000 })).toMatchObject({ omitS: W.MAX_OMIT_S, clamped: ["omit 1000 s -> 600 s"] })
    expect(W.decodeParams({ ...base, len: undefined })).toMatchObject({ len: 131072 })
    expect(W.decodeParams({ udp: true, time: 2, parallel: 1, bandwidth: 1048576 })).toMatchObject({ protocol: "udp", len: 1448 })
  })
  it("a bandwidth between 0 and 1 bit/s is the slowest rate (1 bit/s), not 'unlimited' raised to the UDP ceiling", () => {
    expect(W.decodeParams({ udp: true, time: 2, parallel: 1, bandwidth: 0.5 })).toMatchObject({ bandwidth: 1, clamped: [] })
    expect(W.decodeParams({ tcp: true, time: 2, parallel: 1, bandwidth: 0.5 })).toMatchObject({ bandwidth: 1 })
    expect(W.decodeParams({ udp: true, time: 2, parallel: 1, bandwidth: 0 })).toMatchObject({ bandwidth: W.MAX_UDP_RATE_BPS })
    expect(W.decodeParams({ tcp: true, time: 2, parallel: 1 })).toMatchObject({ bandwidth: 0 })
  })
  it("refusals carry the iperf3 error number the client prints", () => {
    const base = JSON.parse(PARAMS_T2) as Record<string, unknown>
    const refused = (o: unknown, ierrno: number) => expect(W.decodeParams(o)).toMatchObject({ _tag: "ParamError", ierrno })
    refused({ ...base, parallel: 129 }, W.IE_NUMSTREAMS)
    refused({ ...base, parallel: 0 }, W.IE_NUMSTREAMS)
    refused({ ...base, time: 86_401 }, W.IE_DURATION)
    refused({ ...base, len: 2 * 1024 * 1024 }, W.IE_BLOCKSIZE)
    refused({ ...base, tcp: undefined }, W.IE_PROTOCOL)
    refused({ ...base, tcp: undefined, sctp: true }, W.IE_PROTOCOL)
    refused({ ...base, time: -1 }, W.IE_RECVPARAMS)
    refused({ ...base, parallel: "4" }, W.IE_RECVPARAMS)
    refused({ ...base, num: Number.NaN }, W.IE_RECVPARAMS)
    refused({ ...base, reverse: true, bidirectional: true }, W.IE_RECVPARAMS)
    refused([1, 2], W.IE_RECVPARAMS)
    refused(null, W.IE_RECVPARAMS)
    refused("tcp", W.IE_RECVPARAMS)
  })
  it("property: decodeParams never throws on arbitrary JSON", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => void W.decodeParams(v)))
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("tcp", "udp", "time", "parallel", "len", "num", "omit", "reverse"), fc.jsonValue()), (o) => {
        const p = W.decodeParams(o)
        if (!("_tag" in p)) {
          expect(p.parallel).toBeGreaterThanOrEqual(1)
          expect(p.parallel).toBeLessThanOrEqual(W.MAX_PARALLEL)
          expect(p.len).toBeLessThanOrEqual(W.MAX_TCP_BLOCK)
        }
      })
    )
  })
})

describe("iperf3 results", () => {
  it("the client's observed results decode; missing keys and unknown ids are refused (as 3.12's get_results)", () => {
    const j = JSON.parse(CLIENT_RESULTS) as Record<string, unknown>
    expect(W.decodeClientResults(j, [1])).toEqual({ senderHasRetransmits: 1, streams: [{ id: 1, bytes: 9343598592, retransmits: 0 }] })
    expect(W.decodeClientResults(j, [3])).toMatchObject({ _tag: "ParamError", reason: "stream result with unknown id 1" })
    for (const k of ["cpu_util_total", "cpu_util_user", "cpu_util_system", "sender_has_retransmits", "streams"]) {
      const o = { ...j }
      delete o[k]
      expect(W.decodeClientResults(o, [1])).toMatchObject({ _tag: "ParamError" })
    }
    for (const k of ["id", "bytes", "retransmits", "jitter", "errors", "packets"]) {
      const s = { ...(j["streams"] as Array<Record<string, unknown>>)[0]! }
      delete s[k]
      expect(W.decodeClientResults({ ...j, streams: [s] }, [1])).toMatchObject({ _tag: "ParamError" })
    }
    expect(W.decodeClientResults({ ...j, streams: [7] }, [1])).toMatchObject({ _tag: "ParamError" })
  })
  it("our results carry every key the 3.12 client requires, framed with their length", () => {
    const b = W.encodeResults({
      cpuTotal: 1.23456789, cpuUser: 1, cpuSystem: 0.23456789, senderHasRetransmits: -1,
      streams: [{ id: 1, bytes: 123, retransmits: -1, jitter: 0, errors: 0, packets: 0, startTime: 0, endTime: 2.0004567891 }]
    })
    const r = W.makeReader()
    W.feed(r, b)
    const j = W.takeJson(r) as { json: Record<string, unknown> }
    expect(j.json).toEqual({
      cpu_util_total: 1.234568, cpu_util_user: 1, cpu_util_system: 0.234568, sender_has_retransmits: -1,
      streams: [{ id: 1, bytes: 123, retransmits: -1, jitter: 0, errors: 0, packets: 0, start_time: 0, end_time: 2.000457 }]
    })
    // what the client checks of the server's results is what we check of the client's
    expect(W.decodeClientResults(j.json, [1])).toEqual({ senderHasRetransmits: -1, streams: [{ id: 1, bytes: 123, retransmits: -1 }] })
  })
  it("SERVER_ERROR is 0xfe and two big-endian ints; state bytes are single bytes", () => {
    expect([...W.serverError(W.IE_NUMSTREAMS)]).toEqual([0xfe, 0, 0, 0, 6, 0, 0, 0, 0])
    expect([...W.serverError(W.IE_RECVPARAMS, 22)]).toEqual([0xfe, 0, 0, 0, 114, 0, 0, 0, 22])
    expect([...W.stateByte(W.ACCESS_DENIED)]).toEqual([0xff])
    expect([...W.stateByte(W.PARAM_EXCHANGE)]).toEqual([9])
  })
})
