import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Wire from "../../../src/protocols/iperf/wire.js"
import { fromHex, toHex } from "../../../src/protocols/bytes.js"
import { TCP_MODES, fixtureHex, fixtureText, tcpHeader, type TcpFixture } from "./fixtures.js"

const done = (r: Wire.FeedResult): Wire.SettingsRepr => {
  if (r._tag !== "Done") throw new Error(`expected Done, got ${JSON.stringify(r)}`)
  return r.settings
}

/** What each captured header must decode to, and the options that make the emitter reproduce it. */
const EXPECTED: Record<
  TcpFixture,
  { readonly fields: Partial<Wire.SettingsRepr>; readonly opts: Wire.ClientHeaderOptions }
> = {
  plain: {
    fields: { flags: 0x40010078, mode: "plain", needsAck: true, amountRaw: -100, amount: { kind: "time", durationMs: 1000 }, rate: 10 * 1024 * 1024 },
    opts: { mode: "plain", amount: { kind: "time", durationMs: 1000 }, rate: 10 * 1024 * 1024 }
  },
  amount: {
    fields: { flags: 0x40010078, mode: "plain", needsAck: true, bufferLen: 300, amount: { kind: "bytes", bytes: 1000 } },
    opts: { mode: "plain", amount: { kind: "bytes", bytes: 1000 }, bufferLen: 300 }
  },
  tradeoff: {
    fields: { flags: 0xc0010078, mode: "tradeoff", needsAck: true, mPort: 5001, amount: { kind: "bytes", bytes: 102400 } },
    opts: { mode: "tradeoff", amount: { kind: "bytes", bytes: 102400 } }
  },
  dual: {
    fields: { flags: 0xc0010079, mode: "dual", needsAck: true, mPort: 5001, amount: { kind: "bytes", bytes: 102400 } },
    opts: { mode: "dual", amount: { kind: "bytes", bytes: 102400 } }
  },
  reverse: {
    fields: { flags: 0x44010078, mode: "reverse", needsAck: false, upperFlags: 0x0400, amount: { kind: "bytes", bytes: 102400 } },
    opts: { mode: "reverse", amount: { kind: "bytes", bytes: 102400 } }
  },
  fullduplex: {
    fields: { flags: 0x44010078, mode: "fullDuplex", needsAck: false, upperFlags: 0x0800, amount: { kind: "bytes", bytes: 102400 } },
    opts: { mode: "fullDuplex", amount: { kind: "bytes", bytes: 102400 } }
  },
  peerdetect: {
    fields: { flags: 0x46010078, mode: "plain", needsAck: true, amount: { kind: "bytes", bytes: 1000 } },
    opts: { mode: "plain", amount: { kind: "bytes", bytes: 1000 }, peerDetect: true }
  },
  parallel: {
    fields: { flags: 0x40010078, mode: "plain", needsAck: true, numThreads: 2, amount: { kind: "bytes", bytes: 1000 } },
    opts: { mode: "plain", amount: { kind: "bytes", bytes: 1000 }, numThreads: 2 }
  },
  plain_t2: {
    fields: { flags: 0x40010078, mode: "plain", needsAck: true, bufferLen: 8192, tos: 0x10, rate: 1024 * 1024, amount: { kind: "time", durationMs: 1000 } },
    opts: { mode: "plain", amount: { kind: "time", durationMs: 1000 }, bufferLen: 8192, tos: 0x10, rate: 1024 * 1024 }
  }
}

const withData = (hdr: Uint8Array, dataLen: number): Uint8Array => {
  const b = new Uint8Array(hdr.length + dataLen)
  b.set(hdr)
  for (let i = 0; i < dataLen; i++) b[hdr.length + i] = 0x30 + (i % 10)
  return b
}

describe("iperf wire: golden headers from the real 2.1.8 client", () => {
  for (const m of TCP_MODES) {
    it(`${m}: parse → expected record; emit → the same 60 bytes`, () => {
      const bytes = tcpHeader(m)
      expect(bytes.length).toBe(60)
      const r = Wire.parseHeader(bytes)
      expect(r._tag).toBe("Done")
      expect(r.consumed).toBe(60)
      const s = done(r)
      expect(s).toMatchObject({
        hasHeader: true,
        headerLen: 60,
        keyLen: 0,
        mPort: 5001,
        numThreads: 1,
        versionU: 0x00020001,
        versionL: 0x00080003,
        ...EXPECTED[m].fields
      })
      const out = new Uint8Array(Wire.clientHeaderLen(EXPECTED[m].opts))
      expect(Wire.emitClientHeader(EXPECTED[m].opts, out)).toBe(60)
      expect(toHex(out)).toBe(toHex(bytes))
    })
  }

  it("the ack matches the real server's 28 bytes", () => {
    expect(toHex(Wire.makeAck())).toBe(fixtureText("tcp-ack.hex").trim())
    expect(Wire.parseAck(Wire.makeAck())).toEqual({ type: 2, length: 28, flags: 0, versionU: 0x00020001, versionL: 0x00080003 })
    expect(Wire.parseAck(Wire.makeAck().subarray(0, 27))).toBe("Truncated")
    const b = new Uint8Array(40)
    Wire.emitAck(b, 12)
    expect(toHex(b.subarray(12))).toBe(fixtureText("tcp-ack.hex").trim())
    expect(b.subarray(0, 12).every((x) => x === 0)).toBe(true)
  })

  it("-C (no header): the first bytes are data, the parser settles on NO_HEADER after looking at 4", () => {
    const b = fixtureHex("tcp-compat-first.hex")
    // "0123" carries the KEYCHECK bit, yet it is not a header (2.1.8 without --permit-key agrees)
    expect(0x30313233 & Wire.HEADER_KEYCHECK).not.toBe(0)
    expect(Wire.hasHeader(0x30313233)).toBe(false)
    const r = Wire.parseHeader(b)
    expect(r).toEqual({ _tag: "Done", consumed: 4, settings: Wire.NO_HEADER })
    expect(Wire.NO_HEADER.needsAck).toBe(false)
    // byte by byte
    const p = Wire.makeHeaderParser()
    for (let i = 0; i < 3; i++) expect(Wire.feedHeader(p, b.subarray(i, i + 1))).toEqual({ _tag: "NeedMore", consumed: 1 })
    expect(Wire.feedHeader(p, b.subarray(3))).toMatchObject({ _tag: "Done", consumed: 1 })
  })
})

describe("iperf wire: incremental parsing", () => {
  for (const m of ["plain", "tradeoff", "reverse"] as const) {
    it(`${m}: a split at every byte boundary gives the same result`, () => {
      const stream = withData(tcpHeader(m), 40)
      const whole = done(Wire.parseHeader(stream))
      for (let k = 0; k <= stream.length; k++) {
        const p = Wire.makeHeaderParser()
        const a = Wire.feedHeader(p, stream.subarray(0, k))
        const b = Wire.feedHeader(p, stream.subarray(k))
        const consumed = a.consumed + b.consumed
        expect(consumed).toBe(60)
        const settled = a._tag === "Done" ? a : b
        expect(done(settled)).toEqual(whole)
        if (k < 60) expect(a).toEqual({ _tag: "NeedMore", consumed: k })
      }
    })
  }

  it("one byte at a time, then the parser keeps answering Done with consumed 0", () => {
    const stream = withData(tcpHeader("dual"), 10)
    const p = Wire.makeHeaderParser()
    let consumed = 0
    let last: Wire.FeedResult | undefined
    for (let i = 0; i < stream.length; i++) {
      last = Wire.feedHeader(p, stream.subarray(i, i + 1))
      consumed += last.consumed
    }
    expect(consumed).toBe(60)
    expect(Wire.isSettled(p)).toBe(true)
    expect(last).toMatchObject({ _tag: "Done", consumed: 0 })
    expect(done(last!).mode).toBe("dual")
  })

  it("an empty chunk is fine at any point", () => {
    const p = Wire.makeHeaderParser()
    expect(Wire.feedHeader(p, new Uint8Array(0))).toEqual({ _tag: "NeedMore", consumed: 0 })
    Wire.feedHeader(p, tcpHeader("plain").subarray(0, 10))
    expect(Wire.feedHeader(p, new Uint8Array(0))).toEqual({ _tag: "NeedMore", consumed: 0 })
    expect(Wire.feedHeader(p, tcpHeader("plain").subarray(10))._tag).toBe("Done")
  })

  it("fast-check: any chunking of a header + data stream gives the single-shot result", () => {
    fc.assert(
      fc.property(fc.constantFrom(...TCP_MODES), fc.array(fc.integer({ min: 0, max: 80 }), { maxLength: 12 }), (m, cuts) => {
        const stream = withData(tcpHeader(m), 30)
        const whole = Wire.parseHeader(stream)
        const p = Wire.makeHeaderParser()
        let at = 0
        let consumed = 0
        let settled: Wire.FeedResult | undefined
        for (const c of [...cuts, stream.length]) {
          const end = Math.min(stream.length, at + c)
          const r = Wire.feedHeader(p, stream.subarray(at, end))
          consumed += r.consumed
          if (r._tag !== "NeedMore" && settled === undefined) settled = r
          at = end
        }
        expect(consumed).toBe(60)
        expect(settled?._tag).toBe("Done")
        expect(done(settled!)).toEqual(done(whole))
      })
    )
  })
})

describe("iperf wire: length rules and refusals", () => {
  const flagsOnly = (flags: number, total = 300): Uint8Array => {
    const b = new Uint8Array(total)
    new DataView(b.buffer).setUint32(0, flags >>> 0)
    new DataView(b.buffer).setUint32(4, 1)
    return b
  }

  it("a declared length over 256 is refused after the 4 flag bytes", () => {
    const flags = Wire.HEADER_EXTEND | Wire.HEADER_LEN_BIT | ((300 << 1) & Wire.HEADER_LEN_MASK)
    expect(Wire.declaredLength(flags)).toBe("HeaderTooLong")
    expect(Wire.parseHeader(flagsOnly(flags))).toEqual({ _tag: "Rejected", consumed: 4, reason: "HeaderTooLong" })
    // 256 itself is accepted
    const ok = Wire.HEADER_EXTEND | Wire.HEADER_LEN_BIT | ((256 << 1) & Wire.HEADER_LEN_MASK)
    const r = Wire.parseHeader(flagsOnly(ok))
    expect(r._tag).toBe("Done")
    expect(r.consumed).toBe(256)
  })

  it("a declared length under the 24-byte v1 block is refused", () => {
    const flags = Wire.HEADER_EXTEND | Wire.HEADER_LEN_BIT | (8 << 1)
    expect(Wire.parseHeader(flagsOnly(flags))).toEqual({ _tag: "Rejected", consumed: 4, reason: "HeaderTooShort" })
  })

  it("fallback lengths without LEN_BIT: VERSION1 → 24, EXTEND → 60, VERSION2 → 36", () => {
    expect(Wire.declaredLength(Wire.HEADER_VERSION1)).toBe(24)
    expect(Wire.declaredLength(Wire.HEADER_VERSION1 | Wire.RUN_NOW)).toBe(24)
    expect(Wire.declaredLength(Wire.HEADER_EXTEND)).toBe(60)
    expect(Wire.declaredLength(Wire.HEADER_VERSION1 | Wire.HEADER_VERSION2)).toBe(60)
    expect(Wire.declaredLength(Wire.HEADER_VERSION2)).toBe(36)
    expect(Wire.declaredLength(Wire.HEADER_KEYCHECK | Wire.HEADER_VERSION2)).toBe(36)
  })

  it("negative numThreads is refused", () => {
    const b = withData(tcpHeader("plain"), 0)
    b.set([0xff, 0xff, 0xff, 0xfe], 4)
    expect(Wire.parseHeader(b)).toEqual({ _tag: "Rejected", consumed: 60, reason: "NegativeThreads" })
  })

  it("a 2.0.x client: 24-byte v1 header (-r and -d), no ack, no extension", () => {
    for (const mode of ["tradeoff", "dual"] as const) {
      const opts: Wire.ClientHeaderOptions = { mode, v1Only: true, amount: { kind: "time", durationMs: 10_000 }, mPort: 5002 }
      const hdr = new Uint8Array(Wire.clientHeaderLen(opts))
      expect(Wire.emitClientHeader(opts, hdr)).toBe(24)
      expect(toHex(hdr)).toBe(`${mode === "dual" ? "80000001" : "80000000"}000000010000138a0000000000000000fffffc18`)
      const r = Wire.parseHeader(withData(hdr, 100))
      expect(r.consumed).toBe(24)
      expect(done(r)).toMatchObject({
        hasHeader: true,
        headerLen: 24,
        mode,
        needsAck: false,
        mPort: 5002,
        amount: { kind: "time", durationMs: 10_000 },
        upperFlags: 0,
        versionU: 0,
        rate: 0
      })
    }
  })

  it("a 2.0.x plain test has flags 0: no header, everything is data", () => {
    const opts: Wire.ClientHeaderOptions = { mode: "plain", v1Only: true, amount: { kind: "bytes", bytes: 5 } }
    const hdr = new Uint8Array(24)
    Wire.emitClientHeader(opts, hdr)
    expect(Wire.parseHeader(hdr)).toEqual({ _tag: "Done", consumed: 4, settings: Wire.NO_HEADER })
  })

  it("--permit-key: the key length closes the header and the key follows; both are consumed", () => {
    const opts: Wire.ClientHeaderOptions = { mode: "plain", amount: { kind: "time", durationMs: 2000 }, key: "1700000000.123456-abcdefghijklmnop" }
    const len = Wire.clientHeaderLen(opts)
    expect(len).toBe(60 + 2 + 34)
    const hdr = new Uint8Array(len)
    Wire.emitClientHeader(opts, hdr)
    expect(new DataView(hdr.buffer).getUint32(0)).toBe((0x50010000 | (62 << 1)) >>> 0)
    const stream = withData(hdr, 20)
    for (let k = 0; k <= stream.length; k++) {
      const p = Wire.makeHeaderParser()
      const a = Wire.feedHeader(p, stream.subarray(0, k))
      const b = Wire.feedHeader(p, stream.subarray(k))
      expect(a.consumed + b.consumed).toBe(len)
      const s = done(a._tag === "Done" ? a : b)
      expect(s).toMatchObject({ headerLen: 62, keyLen: 34, key: opts.key, mode: "plain", needsAck: true })
    }
  })

  it("--permit-key with a key length outside 4..128 is refused", () => {
    const opts: Wire.ClientHeaderOptions = { mode: "plain", amount: { kind: "bytes", bytes: 1 }, key: "abcd" }
    const hdr = new Uint8Array(Wire.clientHeaderLen(opts))
    Wire.emitClientHeader(opts, hdr)
    hdr[61] = 3
    expect(Wire.parseHeader(hdr)).toEqual({ _tag: "Rejected", consumed: 62, reason: "BadKeyLength" })
    hdr[60] = 1 // 259
    expect(Wire.parseHeader(hdr)).toMatchObject({ _tag: "Rejected", reason: "BadKeyLength" })
  })

  it("--bounceback settles after the flags with mode bounceback", () => {
    const b = fromHex("00800000 00000064 00000001")
    const r = Wire.parseHeader(b)
    expect(r.consumed).toBe(4)
    expect(done(r)).toMatchObject({ mode: "bounceback", hasHeader: true, headerLen: 4, needsAck: false })
  })

  it("amount decoding: negative = 10 ms units, positive = bytes", () => {
    expect(Wire.decodeAmount(-200)).toEqual({ kind: "time", durationMs: 2000 })
    expect(Wire.decodeAmount(-150)).toEqual({ kind: "time", durationMs: 1500 })
    expect(Wire.decodeAmount(0x00a00000)).toEqual({ kind: "bytes", bytes: 10 * 1024 * 1024 })
    expect(Wire.decodeAmount(-0x80000000)).toEqual({ kind: "time", durationMs: 0x80000000 * 10 })
    expect(Wire.decodeAmount(0)).toEqual({ kind: "bytes", bytes: 0 })
  })

  it("fast-check: random bytes never throw, under any chunking", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(100), { maxLength: 8 }), (bytes, cuts) => {
        const p = Wire.makeHeaderParser()
        let at = 0
        for (const c of [...cuts, bytes.length]) {
          const end = Math.min(bytes.length, at + c)
          const r = Wire.feedHeader(p, bytes.subarray(at, end))
          expect(r.consumed).toBeLessThanOrEqual(end - at)
          at = end
        }
        Wire.decodeUdpSettings(bytes)
      }),
      { numRuns: 2000 }
    )
  })

  it("fast-check: random flag words with a plausible header never throw and respect the length rules", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ minLength: 400, maxLength: 400 }), (flags, rest) => {
        const b = rest.slice()
        new DataView(b.buffer).setUint32(0, flags)
        const r = Wire.parseHeader(b)
        expect(r._tag).not.toBe("NeedMore")
        if (r._tag === "Done" && r.settings.hasHeader && r.settings.mode !== "bounceback") {
          expect(r.settings.headerLen).toBeGreaterThanOrEqual(24)
          expect(r.settings.headerLen).toBeLessThanOrEqual(256)
          expect(r.consumed).toBe(r.settings.headerLen + r.settings.keyLen)
          expect(r.settings.numThreads).toBeGreaterThanOrEqual(0)
        }
      }),
      { numRuns: 2000 }
    )
  })

  it("fast-check: parse(emit(options)) recovers the options", () => {
    const modes = ["plain", "tradeoff", "dual", "reverse", "fullDuplex"] as const
    fc.assert(
      fc.property(
        fc.constantFrom(...modes),
        fc.integer({ min: 1, max: 128 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.oneof(
          fc.integer({ min: 1, max: 0x7fffffff }).map((n): Wire.AmountRepr => ({ kind: "time", durationMs: n * 10 })),
          fc.integer({ min: 0, max: 0x7fffffff }).map((n): Wire.AmountRepr => ({ kind: "bytes", bytes: n }))
        ),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.boolean(),
        (mode, numThreads, mPort, amount, tos, rate, peerDetect) => {
          const opts: Wire.ClientHeaderOptions = { mode, numThreads, mPort, amount, tos, rate, peerDetect }
          const b = new Uint8Array(Wire.clientHeaderLen(opts))
          Wire.emitClientHeader(opts, b)
          const s = done(Wire.parseHeader(b))
          // -X adds VERSION2, and a VERSION1 test with VERSION2 is no longer a v1 (-r/-d) test for 2.1.8's server
          const expectedMode = peerDetect && (mode === "tradeoff" || mode === "dual") ? "plain" : mode
          expect(s).toMatchObject({ mode: expectedMode, numThreads, mPort, amount, tos, rate, headerLen: 60 })
          expect(s.needsAck).toBe(peerDetect || !(mode === "reverse" || mode === "fullDuplex"))
        }
      )
    )
  })
})

describe("iperf wire: UDP settings", () => {
  it("decodes the header of a real 2.1.8 datagram (flags 0x48010098, -t 0.3)", () => {
    const s = Wire.decodeUdpSettings(fixtureHex("udp-first-datagram.hex"))
    expect(s).toMatchObject({
      flags: 0x48010098,
      headerLen: 60,
      seqNo64: true,
      mode: "plain",
      needsAck: false,
      amount: { kind: "time", durationMs: 300 },
      rate: 1024 * 1024,
      mPort: 5001
    })
  })

  it("-R over UDP: VERSION2 + upper REVERSE", () => {
    const b = fixtureHex("udp-first-datagram.hex").slice()
    b.set([0x6c, 0x01, 0x00, 0x98], 16)
    b.set([0x04, 0x00], 16 + 32)
    expect(Wire.decodeUdpSettings(b)).toMatchObject({ mode: "reverse", seqNo64: true })
    b.set([0xc8, 0x01, 0x00, 0x98], 16)
    b.set([0x00, 0x00], 16 + 32)
    expect(Wire.decodeUdpSettings(b)).toMatchObject({ mode: "tradeoff" })
  })

  it("a short datagram is a header-less stream", () => {
    expect(Wire.decodeUdpSettings(new Uint8Array(10))).toBe(Wire.NO_HEADER)
  })
})
