/**
 * The embedding surface (src/api/index.ts), from the index's exports only: what examples/echo.ts does (an echo
 * server made with `Socket.makeSocketServer`, a client with `Socket.connect`, two stacks on a SimLink) under TestClock.
 * The example itself is compiled against the packed package and run by test/package/pack.test.ts.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { Nic, SimLink, Socket, Stack, Tcp } from "../../src/api/index.js"

const stackOver = (nic: SimLink.SimLink["a"], address: string) =>
  Tcp.layer().pipe(Layer.provideMerge(Stack.layer({ address })), Layer.provide(Layer.succeed(Nic, nic)))

it.scoped("the echo example: an echo server and a client over a SimLink", () =>
  Effect.gen(function* () {
    const link = yield* SimLink.make({ seed: 1, delay: "1 millis" })
    const server = yield* Layer.build(stackOver(link.b, "198.51.100.1/24"))
    const client = yield* Layer.build(stackOver(link.a, "198.51.100.2/24"))
    const echo = Effect.gen(function* () {
      const s = yield* Socket.makeSocketServer({ port: 7 })
      yield* s.run((socket) => Effect.scoped(Effect.flatMap(socket.writer, (write) => socket.run(write))))
    })
    yield* Effect.forkScoped(Effect.scoped(echo).pipe(Effect.provide(server)))
    const lines: Array<string> = []
    const talk = Effect.gen(function* () {
      const socket = yield* Socket.connect("198.51.100.1", 7)
      yield* Effect.scoped(Effect.flatMap(socket.writer, (write) => write("hello\n")))
      yield* socket.run((bytes) => Effect.sync(() => lines.push(new TextDecoder().decode(bytes))))
    }).pipe(Effect.scoped, Effect.provide(client))
    const f = yield* Effect.fork(talk)
    for (let i = 0; i < 100 && f.unsafePoll() === null; i++) yield* TestClock.adjust("10 millis")
    yield* Fiber.join(f)
    expect(lines.join("")).toBe("hello\n")
  })
)
