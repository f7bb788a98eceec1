/**
 * Socket conformance: the echo / pipeThroughChannel test that Effect's own NodeSocket passes
 * (packages/platform-node/test/Socket.test.ts, "open", Effect-TS/effect v3 line), rerun over our stack:
 * server = `makeSocketServer` on stack B, client = `makeChannel` on stack A, the two stacks joined by a
 * SimLink, under TestClock. Then the semantics of style.md §2.10 one by one: FIN ends `run`, RST fails it
 * with reason "Read", releasing the writer half-closes, a CloseEvent > 1000 resets, writes suspend while the
 * send buffer is full, handler failures do not stop the server, typed connect errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import * as Socket from "@effect/platform/Socket"
import type * as SocketServer from "@effect/platform/SocketServer"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Tcp from "../../src/layers/Tcp.js"
import * as Api from "../../src/api/Socket.js"
import { formatIpv4 } from "../../src/protocols/address.js"
import { A6, A_IP, B6, B_IP, DAD_DONE_MS, make, runVirtual } from "../support/twoStacks.js"

/** The echo server of Effect's test: write back every chunk; the writer (FIN) is released after the run. */
const echoServer = (port: number) =>
  Effect.gen(function* () {
    const server = yield* Api.makeSocketServer({ port })
    yield* server
      .run(
        Effect.fnUntraced(function* (socket) {
          const write = yield* socket.writer
          yield* socket.run(write)
        }, Effect.scoped)
      )
      .pipe(Effect.forkScoped)
    return server
  })

const bytes = (n: number, seed: number): Uint8Array => {
  const b = new Uint8Array(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}
const sha = (b: Uint8Array | ReadonlyArray<Uint8Array>): string => {
  const h = createHash("sha256")
  for (const p of b instanceof Uint8Array ? [b] : b) h.update(p)
  return h.digest("hex")
}

describe("Socket conformance (NodeSocket's echo test) over two stacks on a SimLink", () => {
  it.scoped("open: Hello, World through pipeThroughChannel and back", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 1, delay: "1 millis" })
      const server = yield* echoServer(7).pipe(Effect.provide(net.b))
      expect(server.address).toEqual({ _tag: "TcpAddress", hostname: formatIpv4(B_IP), port: 7 })
      const channel = Api.makeChannel(formatIpv4(B_IP), (server.address as SocketServer.TcpAddress).port)
      const outputEffect = Stream.make("Hello", "World").pipe(
        Stream.encodeText,
        Stream.pipeThroughChannel(channel),
        Stream.decodeText(),
        Stream.mkString,
        Stream.runCollect
      )
      const f = yield* Effect.fork(outputEffect.pipe(Effect.provide(net.a)))
      const { value: output } = yield* runVirtual(f, 5, 30_000)
      expect(Chunk.join(output, "")).toBe("HelloWorld")
    })
  )

  it.scoped("1 MB in 100 chunks echoed in order through pipeThroughChannel", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 2, delay: "1 millis" })
      yield* echoServer(7).pipe(Effect.provide(net.b))
      const parts = Array.from({ length: 100 }, (_, i) => bytes(10_000, i + 1))
      const out = Stream.fromIterable(parts).pipe(
        Stream.pipeThroughChannel(Api.makeChannel(B_IP, 7)),
        Stream.runCollect,
        Effect.provide(net.a)
      )
      const f = yield* Effect.fork(out)
      const { value } = yield* runVirtual(f, 5, 120_000)
      const got = Chunk.toReadonlyArray(value)
      expect(got.reduce((n, c) => n + c.length, 0)).toBe(1_000_000)
      expect(sha(got)).toBe(sha(parts))
    })
  )
})

describe("Socket semantics (style.md §2.10)", () => {
  it.scoped("run ends at the peer's FIN; releasing the writer sends FIN but the socket still reads (half-close)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 3 })
      const received = yield* Queue.unbounded<string>()
      const server = yield* Api.makeSocketServer({ port: 80 }).pipe(Effect.provide(net.b))
      // server: read until the client's FIN, then answer and close
      yield* server
        .run((socket) =>
          Effect.gen(function* () {
            // the handler's context has the connection (read it like NodeSocket's NetSocket)
            const conn = yield* Effect.serviceOption(Api.Connection)
            expect(conn._tag === "Some" && conn.value.remoteAddress).toBe(A_IP)
            const chunks: Array<string> = []
            yield* socket.run((b) => void chunks.push(new TextDecoder().decode(b)))
            const write = yield* socket.writer
            yield* write(`got ${chunks.join("")}`)
          }).pipe(Effect.scoped)
        )
        .pipe(Effect.forkScoped)
      const client = Effect.gen(function* () {
        const socket = yield* Api.connect(B_IP, 80)
        const reading = yield* Effect.fork(socket.run((b) => Queue.offer(received, new TextDecoder().decode(b))))
        yield* Effect.scoped(Effect.flatMap(socket.writer, (write) => Effect.zipRight(write("ping "), write("pong"))))
        // the writer's scope is closed: FIN sent; the answer still arrives, and run ends at the server's FIN
        yield* Fiber.join(reading)
        return yield* Queue.takeAll(received)
      }).pipe(Effect.scoped, Effect.provide(net.a))
      const f = yield* Effect.fork(client)
      const { value } = yield* runVirtual(f, 5, 30_000)
      expect(Chunk.toReadonlyArray(value).join("")).toBe("got ping pong")
    })
  )

  it.scoped("RST fails run with SocketGenericError reason Read (cause TcpError Reset); CloseEvent > 1000 sends it", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 4 })
      const server = yield* Api.makeSocketServer({ port: 80 }).pipe(Effect.provide(net.b))
      yield* server
        .run((socket) =>
          Effect.gen(function* () {
            const write = yield* socket.writer
            yield* write("bye")
            yield* write(new Socket.CloseEvent(4000, "go away"))
          }).pipe(Effect.scoped)
        )
        .pipe(Effect.forkScoped)
      const client = Effect.gen(function* () {
        const socket = yield* Api.connect(B_IP, 80)
        const got: Array<string> = []
        const err = yield* Effect.flip(socket.run((b) => void got.push(new TextDecoder().decode(b))))
        const write = yield* socket.writer
        const werr = yield* Effect.flip(write("more"))
        return { err, werr, got }
      }).pipe(Effect.scoped, Effect.provide(net.a))
      const f = yield* Effect.fork(client)
      const { value } = yield* runVirtual(f, 5, 30_000)
      expect(Socket.isSocketError(value.err)).toBe(true)
      expect(value.err.reason).toBe("Read")
      expect(Api.tcpErrorOf(value.err)?.reason).toBe("Reset")
      expect(value.werr.reason).toBe("Write")
    })
  )

  it.scoped("a local CloseEvent(1000) sends FIN and ends our run with a clean SocketCloseError", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 5 })
      const peerDone = yield* Queue.unbounded<string>()
      const server = yield* Api.makeSocketServer({ port: 80 }).pipe(Effect.provide(net.b))
      yield* server
        .run((socket) => Effect.zipRight(socket.run(() => {}), Queue.offer(peerDone, "fin")))
        .pipe(Effect.forkScoped)
      const client = Effect.gen(function* () {
        const socket = yield* Api.connect(B_IP, 80)
        const reading = yield* Effect.fork(Effect.flip(socket.run(() => {})))
        const write = yield* socket.writer
        yield* write(new Socket.CloseEvent(1000))
        const err = yield* Fiber.join(reading)
        const peer = yield* Queue.take(peerDone)
        return { err, peer }
      }).pipe(Effect.scoped, Effect.provide(net.a))
      const f = yield* Effect.fork(client)
      const { value } = yield* runVirtual(f, 5, 30_000)
      expect(Socket.SocketCloseError.isClean((c) => c === 1000)(value.err)).toBe(true)
      expect(value.peer).toBe("fin")
    })
  )

  it.scoped("a write suspends while the send buffer is full and completes when the peer reads", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 6 })
      const startReading = yield* Queue.unbounded<void>()
      const total = yield* Queue.unbounded<number>()
      const server = yield* Api.makeSocketServer({ port: 80 }).pipe(Effect.provide(net.b))
      yield* server
        .run((socket) =>
          Effect.gen(function* () {
            yield* Queue.take(startReading)
            let n = 0
            yield* socket.run((b) => void (n += b.length))
            yield* Queue.offer(total, n)
          })
        )
        .pipe(Effect.forkScoped)
      const big = bytes(4_000_000, 9)
      const client = Effect.gen(function* () {
        const socket = yield* Api.connect(B_IP, 80)
        const write = yield* socket.writer
        const writing = yield* Effect.forkScoped(write(big))
        return { writing }
      }).pipe(Effect.provide(net.a))
      const cf = yield* Effect.fork(client)
      const { value } = yield* runVirtual(cf, 5, 10_000)
      // the peer does not read: 4 MB cannot fit in our send buffer plus its receive window
      yield* TestClock.adjust("2 seconds")
      const early = value.writing.unsafePoll()
      if (early !== null) console.log(early)
      expect(early).toBeNull()
      yield* Queue.offer(startReading, undefined)
      yield* runVirtual(value.writing, 5, 60_000)
      expect(yield* Queue.size(total)).toBe(0) // the peer is still reading (no FIN yet)
    })
  )

  it.scoped("SocketServer: a failing handler is reported, not passed on; the next connection is served", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 7 })
      const server = yield* Api.makeSocketServer({ port: 80 }).pipe(Effect.provide(net.b))
      let n = 0
      const serverFiber = yield* server
        .run((socket) =>
          Effect.gen(function* () {
            n++
            if (n === 1) return yield* Effect.fail("handler failed")
            const write = yield* socket.writer
            yield* write("second")
          }).pipe(Effect.scoped)
        )
        .pipe(Effect.forkScoped)
      const once = Effect.gen(function* () {
        const socket = yield* Api.connect(B_IP, 80)
        const got: Array<string> = []
        yield* socket.run((b) => void got.push(new TextDecoder().decode(b))).pipe(Effect.either)
        return got.join("")
      }).pipe(Effect.scoped, Effect.provide(net.a))
      const f = yield* Effect.fork(Effect.zip(once, once))
      const { value } = yield* runVirtual(f, 5, 30_000)
      expect(value[1]).toBe("second")
      expect(serverFiber.unsafePoll()).toBeNull()
    })
  )

  it.scoped("connect: typed TcpError for a closed port (Refused), an address off-link without a gateway (NoRoute), and an address or port that cannot be used (InvalidArgument)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 8 })
      const refused = yield* Effect.fork(Effect.flip(Effect.scoped(Api.connect(B_IP, 9))).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(refused, 5, 10_000)
      expect(r.value.reason).toBe("Refused")
      const noRoute = yield* Effect.flip(Effect.scoped(Api.connect("203.0.113.9", 80))).pipe(Effect.provide(net.a))
      expect(noRoute.reason).toBe("NoRoute")
      const notAnAddress = yield* Effect.flip(Effect.scoped(Api.connect("198.51.100.300", 80))).pipe(Effect.provide(net.a))
      expect(notAnAddress.reason).toBe("InvalidArgument")
      const badPort = yield* Effect.flip(Effect.scoped(Api.connect(B_IP, 70000))).pipe(Effect.provide(net.a))
      expect(badPort.reason).toBe("InvalidArgument")
      const badListen = yield* Effect.flip(Effect.scoped(Effect.flatMap(Tcp.Tcp, (t) => t.listen(0)))).pipe(Effect.provide(net.a))
      expect(badListen.reason).toBe("InvalidArgument")
    })
  )
})

describe("Socket over IPv6", () => {
  it.scoped("makeChannel to \"2001:db8::2\" (text) echoes 200 kB in order; the connection's endpoints are the IPv6 addresses", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 11, delay: "1 millis" }, {}, { ipv6: true })
      yield* TestClock.adjust(`${DAD_DONE_MS} millis`)
      yield* echoServer(7).pipe(Effect.provide(net.b))
      const parts = Array.from({ length: 20 }, (_, i) => bytes(10_000, i + 100))
      const out = Stream.fromIterable(parts).pipe(Stream.pipeThroughChannel(Api.makeChannel("2001:db8::2", 7)), Stream.runCollect)
      const f = yield* Effect.fork(out.pipe(Effect.provide(net.a)))
      const { value } = yield* runVirtual(f, 5, 60_000)
      expect(sha([...value])).toBe(sha(parts))
      const info = yield* Effect.fork(
        Effect.scoped(Effect.map(Api.connectWithInfo(B6, 7), ({ connection }) => [connection.localAddress, connection.remoteAddress])).pipe(
          Effect.provide(net.a)
        )
      )
      const { value: ends } = yield* runVirtual(info, 5, 10_000)
      expect(ends).toEqual([A6, B6])
    })
  )

  it.scoped("connect over IPv6: a closed port is Refused (RST), bad text is InvalidArgument, no IPv6 is NoRoute", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 12 }, {}, { ipv6: true })
      yield* TestClock.adjust(`${DAD_DONE_MS} millis`)
      const refused = yield* Effect.fork(Effect.flip(Effect.scoped(Api.connect("2001:db8::2", 9))).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(refused, 5, 10_000)
      expect(r.value.reason).toBe("Refused")
      const bad = yield* Effect.flip(Effect.scoped(Api.connect("2001:db8::g", 80))).pipe(Effect.provide(net.a))
      expect(bad.reason).toBe("InvalidArgument")
      const v4only = yield* make({ seed: 13 })
      const noRoute = yield* Effect.flip(Effect.scoped(Api.connect("2001:db8::2", 80))).pipe(Effect.provide(v4only.a))
      expect(noRoute.reason).toBe("NoRoute")
    })
  )
})
