/**
 * The iperf layer against hostile and broken clients, over two stacks on a simulated link (TestClock):
 * each bad session ends alone with a logged reason, and a good session running beside it completes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { setU32 } from "../../src/protocols/bytes.js"
import * as Wire from "../../src/protocols/iperf/wire.js"
import * as Iperf from "../../src/layers/Iperf.js"
import * as Tcp from "../../src/layers/Tcp.js"
import { B_IP, make, runVirtual, type TwoStacks } from "../support/twoStacks.js"

const withIperf = (net: TwoStacks, lines: Array<string>) =>
  Layer.build(Iperf.layer({ port: 5001, print: (l) => void lines.push(l), wallClockUs: () => 0 }).pipe(Layer.provide(Layer.succeedContext(net.b))))

const header = (o: Wire.ClientHeaderOptions): Uint8Array => {
  const b = new Uint8Array(Wire.clientHeaderLen(o))
  Wire.emitClientHeader(o, b)
  return b
}

/** A client that writes `chunks` (one write each, Nagle off so they leave as separate segments), then FIN, and reads to EOF. */
const client = (chunks: ReadonlyArray<Uint8Array>, opts: { readonly reset?: boolean } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const tcp = yield* Tcp.Tcp
      const c = yield* tcp.connect(B_IP, 5001, { nagle: false })
      for (const ch of chunks) yield* c.write(ch)
      if (opts.reset === true) {
        yield* Effect.sleep("200 millis")
        yield* c.abort
        return { got: 0, state: c.state() }
      }
      yield* c.shutdownWrite
      let got = 0
      while (true) {
        const r = yield* Effect.either(c.read())
        if (r._tag === "Left" || Option.isNone(r.right)) break
        got += r.right.value.length
      }
      yield* c.awaitClosed
      return { got, state: c.state() }
    })
  )

const plainHeader = header({ mode: "plain", amount: { kind: "bytes", bytes: 100_000 } })

describe("iperf layer: hostile and broken clients", () => {
  it.scoped("a header split into 1-byte segments is parsed once; data counted; ack sent", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 3, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const bytes = [...plainHeader].map((x) => Uint8Array.of(x))
      const f = yield* Effect.fork(client([...bytes, new Uint8Array(5000)]).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(f, 5, 30_000)
      expect(r.value.got).toBe(Wire.ACK_LEN) // the 28-byte CLIENTHDRACK
      const stats = Iperf.Iperf.pipe(Effect.provide(ip))
      expect((yield* stats).stats.tcpBytesIn).toBe(plainHeader.length + 5000)
      expect(lines.some((l) => /^\[\s*1\] 0\.0000-\d+\.\d{4} sec\s+4\.94 KBytes/.test(l))).toBe(true)
    })
  )

  const refusals: ReadonlyArray<readonly [string, Uint8Array, RegExp]> = [
    [
      "a declared header length over 256",
      (() => {
        const b = plainHeader.slice()
        setU32(b, 0, Wire.HEADER_EXTEND | Wire.HEADER_LEN_BIT | ((300 << 1) & Wire.HEADER_LEN_MASK))
        return b
      })(),
      /bad header .*HeaderTooLong/
    ],
    [
      "a negative thread count",
      (() => {
        const b = plainHeader.slice()
        setU32(b, 4, 0xfffffffe)
        return b
      })(),
      /bad header .*NegativeThreads/
    ]
  ]
  for (const [name, bad, re] of refusals) {
    it.scoped(`${name}: that session is closed with a reason, a good session beside it completes`, () =>
      Effect.gen(function* () {
        const net = yield* make({ seed: 4, delay: "1 millis" })
        const lines: Array<string> = []
        yield* withIperf(net, lines)
        const good = yield* Effect.fork(client([plainHeader, new Uint8Array(200_000)]).pipe(Effect.provide(net.a)))
        const evil = yield* Effect.fork(client([bad, new Uint8Array(1000)]).pipe(Effect.provide(net.a), Effect.either))
        yield* runVirtual(evil, 5, 30_000)
        const g = yield* runVirtual(good, 5, 60_000)
        expect(g.value.got).toBe(Wire.ACK_LEN)
        expect(lines.some((l) => re.test(l))).toBe(true)
        expect(lines.filter((l) => / sec .*bits\/sec/.test(l)).length).toBeGreaterThanOrEqual(1)
      })
    )
  }

  it.scoped("garbage without header bits is counted as -C data and the session ends normally", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 5 })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const junk = new Uint8Array(3000).fill(0x30)
      const f = yield* Effect.fork(client([junk]).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(f, 5, 30_000)
      expect(r.value.got).toBe(0)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.tcpBytesIn).toBe(3000)
    })
  )

  it.scoped("a client that resets mid-test ends only its own session", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 6, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const timeHeader = header({ mode: "plain", amount: { kind: "time", durationMs: 10_000 } })
      const good = yield* Effect.fork(client([plainHeader, new Uint8Array(200_000)]).pipe(Effect.provide(net.a)))
      const evil = yield* Effect.fork(client([timeHeader, new Uint8Array(50_000)], { reset: true }).pipe(Effect.provide(net.a)))
      yield* runVirtual(evil, 5, 30_000)
      const g = yield* runVirtual(good, 5, 60_000)
      expect(g.value.got).toBe(Wire.ACK_LEN)
      // let the server notice the reset
      const settle = yield* Effect.fork(Effect.sleep("100 millis"))
      yield* runVirtual(settle, 5, 1000)
      expect(lines.some((l) => /ended the test early: TCP Reset/.test(l)), lines.join("\n")).toBe(true)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.tcpSessionsActive).toBe(0)
    })
  )

  it.scoped("-r to a connect-back port that refuses: logged, the session itself completed", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 7, delay: "1 millis" })
      const lines: Array<string> = []
      yield* withIperf(net, lines)
      const h = header({ mode: "tradeoff", mPort: 6001, amount: { kind: "bytes", bytes: 10_000 } })
      const f = yield* Effect.fork(client([h, new Uint8Array(10_000 - h.length)]).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(f, 5, 30_000)
      expect(r.value.got).toBe(Wire.ACK_LEN)
      const wait = yield* Effect.fork(Effect.sleep("15 seconds"))
      yield* runVirtual(wait, 50, 20_000)
      expect(lines.some((l) => /connect back to 198\.51\.100\.1:6001 failed: TCP Refused/.test(l))).toBe(true)
      void Fiber.interrupt
    })
  )

  it.scoped("hostile: 4 zero bytes (a plain 'no header' stream) and then silence: reset by the stall deadline, one log line, counted", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 81 })
      const lines: Array<string> = []
      const ctx = yield* withIperf(net, lines)
      const f = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const c = yield* (yield* Tcp.Tcp).connect(B_IP, 5001)
            yield* c.write(new Uint8Array(4))
            return yield* Effect.either(c.read())
          })
        ).pipe(Effect.provide(net.a))
      )
      const r = yield* runVirtual(f, 100, 30_000)
      expect(r.virtualMs).toBeGreaterThanOrEqual(10_000)
      expect(r.virtualMs).toBeLessThan(12_500) // 10 s of silence, seen within a 1 s check
      expect(r.value._tag === "Left" || Option.isNone(r.value.right)).toBe(true)
      const st = Iperf.Iperf.pipe(Effect.provide(ctx))
      expect((yield* st).stats.stalledSessions).toBe(1)
      expect((yield* st).stats.tcpSessionsActive).toBe(0)
      expect(lines.filter((l) => /nothing moved with .* for 10000 ms \(4 bytes in\); reset/.test(l))).toHaveLength(1)
    })
  )

  it.scoped("a rate-limited client (-b 80k: one 128 KiB write every 13.1 s) is not reset by the stall deadline", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 82 })
      const lines: Array<string> = []
      const ctx = yield* withIperf(net, lines)
      const buf = 128 * 1024
      const f = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const c = yield* (yield* Tcp.Tcp).connect(B_IP, 5001, { nagle: false })
            yield* c.write(header({ mode: "plain", amount: { kind: "bytes", bytes: 3 * buf }, rate: 80_000 }))
            for (let k = 0; k < 3; k++) {
              if (k > 0) yield* Effect.sleep(`${Math.round((buf * 8 * 1000) / 80_000)} millis`) // 13 107 ms
              yield* c.write(new Uint8Array(buf))
            }
            yield* c.shutdownWrite
            for (;;) {
              const r = yield* Effect.either(c.read()) // the 28-byte ack, then our FIN (or a reset)
              if (r._tag === "Left") return "reset"
              if (Option.isNone(r.right)) return "eof"
            }
          })
        ).pipe(Effect.provide(net.a))
      )
      const r = yield* runVirtual(f, 100, 60_000)
      expect(r.value).toBe("eof")
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ctx))).stats
      expect(st.stalledSessions).toBe(0)
      expect(lines.some((l) => /^\[ {2}1\] 0\.0000-26\.\d{4} sec +384 KBytes/.test(l))).toBe(true)
    })
  )

  it.scoped("a client that connects and never sends a header is closed after the header timeout", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 8 })
      const lines: Array<string> = []
      yield* withIperf(net, lines)
      const f = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const c = yield* (yield* Tcp.Tcp).connect(B_IP, 5001)
            return yield* Effect.either(c.read())
          })
        ).pipe(Effect.provide(net.a))
      )
      const r = yield* runVirtual(f, 100, 30_000)
      expect(r.virtualMs).toBeGreaterThanOrEqual(10_000)
      expect(r.value._tag === "Left" || Option.isNone(r.value.right)).toBe(true)
      expect(lines.some((l) => /no header from .* within 10000 ms/.test(l))).toBe(true)
    })
  )
})
