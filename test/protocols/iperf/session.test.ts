import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Wire from "../../../src/protocols/iperf/wire.js"
import * as Session from "../../../src/protocols/iperf/session.js"
import { tcpHeader, type TcpFixture } from "./fixtures.js"

const settingsOf = (m: TcpFixture): Wire.SettingsRepr => {
  const r = Wire.parseHeader(tcpHeader(m))
  if (r._tag !== "Done") throw new Error(r._tag)
  return r.settings
}

const headerFor = (opts: Wire.ClientHeaderOptions): Wire.SettingsRepr => {
  const b = new Uint8Array(Wire.clientHeaderLen(opts))
  Wire.emitClientHeader(opts, b)
  const r = Wire.parseHeader(b)
  if (r._tag !== "Done") throw new Error(r._tag)
  return r.settings
}

describe("iperf session plan per mode (headers captured from the real client)", () => {
  it("plain -t 1: ack, receive only, close on FIN, safety deadline T + 2 s", () => {
    expect(Session.plan(settingsOf("plain"))).toEqual({
      refuse: undefined,
      sendAck: true,
      sendHere: undefined,
      connectBack: undefined,
      closeOnPeerFin: true,
      receiveDeadlineMs: 3000,
      writeLen: 128 * 1024,
      label: ""
    })
  })

  it("-n 1000 -l 300: ack, no deadline in amount mode, writes of 300", () => {
    const p = Session.plan(settingsOf("amount"))
    expect(p).toMatchObject({ sendAck: true, sendHere: undefined, connectBack: undefined, receiveDeadlineMs: undefined, writeLen: 300 })
  })

  it("-r: ack; connect back to mPort after this connection closes, exactly N bytes", () => {
    expect(Session.plan(settingsOf("tradeoff"))).toMatchObject({
      sendAck: true,
      sendHere: undefined,
      connectBack: { when: "afterClose", port: 5001, send: { kind: "bytes", bytes: 102400 } }
    })
  })

  it("-d: ack; connect back now", () => {
    expect(Session.plan(settingsOf("dual"))).toMatchObject({
      sendAck: true,
      connectBack: { when: "now", port: 5001, send: { kind: "bytes", bytes: 102400 } }
    })
  })

  it("-R: no ack; send on this socket; label (reverse)", () => {
    expect(Session.plan(settingsOf("reverse"))).toMatchObject({
      sendAck: false,
      sendHere: { kind: "bytes", bytes: 102400 },
      connectBack: undefined,
      label: "(reverse)"
    })
  })

  it("--full-duplex: no ack; send on this socket while receiving; label (full-duplex)", () => {
    expect(Session.plan(settingsOf("fullduplex"))).toMatchObject({
      sendAck: false,
      sendHere: { kind: "bytes", bytes: 102400 },
      label: "(full-duplex)"
    })
  })

  it("-X: ack (the client blocks for it)", () => {
    expect(Session.plan(settingsOf("peerdetect"))).toMatchObject({ sendAck: true, sendHere: undefined, connectBack: undefined })
  })

  it("-P 2: each connection is planned on its own, as plain", () => {
    expect(settingsOf("parallel").numThreads).toBe(2)
    expect(Session.plan(settingsOf("parallel"))).toMatchObject({ sendAck: true, connectBack: undefined })
  })

  it("-C: no header → no ack, receive only", () => {
    expect(Session.plan(Wire.NO_HEADER)).toMatchObject({ refuse: undefined, sendAck: false, sendHere: undefined, connectBack: undefined })
  })

  it("-L 6001 -r -t 2: connect back to 6001 for 2 s; the client's listener window is T + 3 s", () => {
    const s = headerFor({ mode: "tradeoff", mPort: 6001, amount: { kind: "time", durationMs: 2000 } })
    expect(Session.plan(s).connectBack).toEqual({ when: "afterClose", port: 6001, send: { kind: "time", durationMs: 2000 } })
    expect(Session.connectBackWindowMs(s)).toBe(5000)
    const d = headerFor({ mode: "dual", mPort: 5002, amount: { kind: "time", durationMs: 2000 } })
    expect(Session.connectBackWindowMs(d)).toBe(4000)
    expect(Session.connectBackWindowMs(settingsOf("tradeoff"))).toBeUndefined()
  })

  it("refusals: bounceback, and a v1 test with no port to connect back to", () => {
    const bb = Wire.parseHeader(new Uint8Array([0x00, 0x80, 0, 0]))
    if (bb._tag !== "Done") throw new Error()
    expect(Session.plan(bb.settings)).toMatchObject({ refuse: "Bounceback", sendAck: false })
    const s = headerFor({ mode: "dual", mPort: 0, amount: { kind: "bytes", bytes: 1 } })
    expect(Session.plan(s).refuse).toBe("NoConnectBackPort")
  })

  it("client-side limits are documented as numbers", () => {
    expect(Session.clientFinWaitMs(1000)).toBe(2000)
    expect(Session.clientFinWaitMs(10_000)).toBe(10_000)
    expect(Session.TRADEOFF_LISTENER_SLACK_MS).toBe(3000)
    expect(Session.DUAL_LISTENER_SLACK_MS).toBe(2000)
  })
})

describe("iperf sender", () => {
  it("amount mode sends exactly N bytes: the last write is trimmed", () => {
    const s = Session.makeSender({ kind: "bytes", bytes: 1048576 }, 0)
    const sizes: number[] = []
    for (;;) {
      const n = Session.nextWriteLen(s, 0, 61440)
      if (n === 0) break
      sizes.push(n)
      Session.commit(s, n)
    }
    expect(s.sent).toBe(1048576)
    expect(sizes.length).toBe(18)
    expect(sizes[17]).toBe(1048576 - 17 * 61440)
    expect(s.finished).toBe(true)
    expect(Session.nextWriteLen(s, 0, 61440)).toBe(0)
  })

  it("amount mode with partial socket accepts still ends exactly at N", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200_000 }), fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 20 }), (total, accepts) => {
        const s = Session.makeSender({ kind: "bytes", bytes: total }, 0)
        let i = 0
        for (;;) {
          const n = Session.nextWriteLen(s, 0, 65536)
          if (n === 0) break
          Session.commit(s, Math.min(n, accepts[i++ % accepts.length]!))
          expect(s.sent).toBeLessThanOrEqual(total)
        }
        expect(s.sent).toBe(total)
      })
    )
  })

  it("time mode stops at start + duration (counted from the sender's start)", () => {
    const s = Session.makeSender({ kind: "time", durationMs: 2000 }, 10_000)
    expect(Session.deadlineMs(s)).toBe(12_000)
    expect(Session.nextWriteLen(s, 10_000, 1000)).toBe(1000)
    Session.commit(s, 1000)
    expect(Session.nextWriteLen(s, 11_999, 1000)).toBe(1000)
    Session.commit(s, 1000)
    expect(Session.nextWriteLen(s, 12_000, 1000)).toBe(0)
    expect(s.finished).toBe(true)
    expect(Session.nextWriteLen(s, 11_000, 1000)).toBe(0)
    expect(s.sent).toBe(2000)
  })

  it("the pattern is '0123456789…' and views continue it across writes without allocating", () => {
    const p = Session.makePattern(1000)
    const a = Session.view(p, 0, 7)
    const b = Session.view(p, 7, 9)
    const text = (u: Uint8Array): string => Buffer.from(u).toString("latin1")
    expect(text(a)).toBe("0123456")
    expect(text(b)).toBe("789012345")
    expect(a.buffer).toBe(p.buf.buffer)
    expect(b.buffer).toBe(p.buf.buffer)
    expect(Session.view(p, 123_456_789, 5000).length).toBe(1000)
    fc.assert(
      fc.property(fc.nat(1e12), fc.integer({ min: 0, max: 1000 }), (off, len) => {
        const v = Session.view(p, off, len)
        expect(v.length).toBe(len)
        for (let i = 0; i < Math.min(len, 20); i++) expect(v[i]).toBe(0x30 + ((off + i) % 10))
      })
    )
  })
})
