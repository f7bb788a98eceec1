import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Interface from "../../src/layers/Interface.js"
import * as Tcp from "../../src/layers/Tcp.js"
import { A_IP, B_IP, make, runVirtual } from "../support/twoStacks.js"

const pattern = (n: number, seed: number): Uint8Array => {
  const b = new Uint8Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    b[i] = x >>> 24
  }
  return b
}
const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

/** Read everything until the peer's FIN. */
const readAll = (c: Tcp.TcpConnection) =>
  Effect.gen(function* () {
    const parts: Array<Uint8Array> = []
    let n = 0
    while (true) {
      const r = yield* c.read()
      if (Option.isNone(r)) break
      parts.push(r.value)
      n += r.value.length
    }
    const out = new Uint8Array(n)
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  })

describe("TCP between two stacks on a simulated link", () => {
  it.scoped("connect, send 2 MB each way, close; bytes equal", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 1, delay: "1 millis" })
      const up = pattern(2_000_000, 1)
      const down = pattern(2_000_000, 2)
      const server = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const conns = yield* tcp.listen(5001)
        const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
        const writer = yield* Effect.fork(Effect.zipRight(c.write(down), c.shutdownWrite))
        const got = yield* readAll(c)
        yield* writer.await
        yield* c.awaitClosed
        return got
      }).pipe(Effect.provide(net.b))
      const client = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const c = yield* tcp.connect(B_IP, 5001)
        expect(c.remoteAddress).toBe(B_IP)
        expect(c.localAddress).toBe(A_IP)
        const writer = yield* Effect.fork(Effect.zipRight(c.write(up), c.shutdownWrite))
        const got = yield* readAll(c)
        yield* writer.await
        return got
      }).pipe(Effect.provide(net.a))
      const sf = yield* Effect.fork(Effect.scoped(server))
      const cf = yield* Effect.fork(Effect.scoped(client))
      const r = yield* runVirtual(cf, 5, 120_000)
      const s = yield* runVirtual(sf, 5, 120_000)
      expect(sha(r.value)).toBe(sha(down))
      expect(sha(s.value)).toBe(sha(up))
    })
  )

  it.scoped("under loss the layer's retransmit count is the sum of its connections' (fast and SACK retransmits too, not only timeouts)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 11, delay: "2 millis", lossRate: 0.02 })
      const data = pattern(3_000_000, 5)
      const server = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const conns = yield* tcp.listen(5002)
        const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
        yield* c.write(data)
        yield* c.shutdownWrite
        yield* readAll(c)
        yield* c.awaitClosed
        return c.counters()
      }).pipe(Effect.provide(net.b))
      const client = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const c = yield* tcp.connect(B_IP, 5002)
        const got = yield* readAll(c)
        yield* c.shutdownWrite
        return got.length
      }).pipe(Effect.provide(net.a))
      const sf = yield* Effect.fork(Effect.scoped(server))
      const cf = yield* Effect.fork(Effect.scoped(client))
      const r = yield* runVirtual(cf, 5, 300_000)
      const s = yield* runVirtual(sf, 5, 300_000)
      expect(r.value).toBe(data.length)
      const counters = s.value
      expect(counters.fastRetransmits + counters.lostRetransmits).toBeGreaterThan(0)
      const st = (yield* Effect.provide(Tcp.Tcp, net.b)).stats
      expect(st.retransmits).toBe(counters.retransSegs)
      expect(st.retransmits).toBeGreaterThan(counters.rtoExpiries)
    })
  )

  it.scoped("connecting to a closed port is refused (RST)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 2 })
      const f = yield* Effect.fork(Effect.scoped(Effect.flip(Effect.flatMap(Tcp.Tcp, (t) => t.connect(B_IP, 9))).pipe(Effect.provide(net.a))))
      const r = yield* runVirtual(f, 5, 10_000)
      expect(r.value.reason).toBe("Refused")
    })
  )

  it.scoped("losing the local address (DHCP expiry) ends the connections bound to it at once", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 3, delay: "1 millis" })
      const server = Effect.gen(function* () {
        const conns = yield* (yield* Tcp.Tcp).listen(5001)
        const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
        const iface = yield* Interface.Interface
        iface.set(Interface.UNCONFIGURED)
        return yield* c.awaitClosed
      }).pipe(Effect.provide(net.b))
      const sf = yield* Effect.fork(Effect.scoped(server))
      // the client holds its connection open (its scope would reset it otherwise)
      yield* Effect.fork(Effect.scoped(Effect.zipRight(Effect.flatMap(Tcp.Tcp, (t) => t.connect(B_IP, 5001)), Effect.never).pipe(Effect.provide(net.a))))
      const r = yield* runVirtual(sf, 5, 10_000)
      expect(r.value).toBe("Aborted")
      expect(r.virtualMs).toBeLessThan(1000)
    })
  )
})
