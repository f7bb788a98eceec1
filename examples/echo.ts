// Two hosts on a simulated link: an echo server (SocketServer) on one, a client (Socket) on the other.
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { Nic, SimLink, Socket, Stack, Tcp } from "miniperf"

// one host: TCP over the IPv4 stack over one end of the link
const host = (nic: SimLink.SimLink["a"], address: string) =>
  Tcp.layer().pipe(Layer.provideMerge(Stack.layer({ address })), Layer.provide(Layer.succeed(Nic, nic)))

// the server sends every byte back, until the client's FIN
const echoServer = Effect.flatMap(Socket.SocketServer, (server) =>
  server.run((socket) => Effect.scoped(Effect.flatMap(socket.writer, (write) => socket.run(write))))
)

const client = Effect.gen(function* () {
  const socket = yield* Socket.connect("198.51.100.1", 7)
  yield* Effect.scoped(Effect.flatMap(socket.writer, (write) => write("hello through a userspace TCP\n"))) // then FIN
  let reply = ""
  yield* socket.run((bytes) => Effect.sync(() => (reply += new TextDecoder().decode(bytes))))
  return reply
})

const main = Effect.gen(function* () {
  const link = yield* SimLink.make({ delay: "1 millis" })
  const server = Socket.layerSocketServer({ port: 7 }).pipe(Layer.provideMerge(host(link.b, "198.51.100.1/24")))
  yield* Effect.forkScoped(Effect.provide(echoServer, server))
  const reply = yield* Effect.provide(Effect.scoped(client), host(link.a, "198.51.100.2/24"))
  yield* Console.log(`echoed: ${reply.trimEnd()}`)
})

NodeRuntime.runMain(Effect.scoped(main))
