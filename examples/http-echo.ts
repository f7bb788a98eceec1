// An @effect/platform HttpServer on our TCP. HttpServer.make takes any `serve`; ours takes connections from our
// SocketServer and lets node:http parse them (the platform has no HTTP/1.1 parser of its own: NodeHttpServer's
// requests are node:http's), through a small adapter from a platform Socket to a node Duplex.
import { HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpMiddleware } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Exit, Layer, Runtime, Scope } from "effect"
import { createServer, type Server } from "node:http"
import { Duplex } from "node:stream"
import { Nic, SimLink, Socket, Stack, Tcp } from "miniperf"

// one connection: what arrives is pushed into a Duplex for node:http, what it writes goes to the socket
const serveConnection = (http: Server, socket: Socket.Socket) =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const writerScope = yield* Scope.make() // closed by node:http's end() (FIN), or with the connection
    yield* Effect.addFinalizer(() => Scope.close(writerScope, Exit.void))
    const write = yield* Scope.extend(socket.writer, writerScope)
    const duplex = new Duplex({
      read() {},
      write(chunk: Uint8Array, _encoding, done) {
        runFork(write(chunk)).addObserver((exit) => done(Exit.isSuccess(exit) ? null : new Error("write failed")))
      },
      final(done) {
        runFork(Scope.close(writerScope, Exit.void)).addObserver(() => done()) // FIN
      }
    })
    const closed = Effect.async<void>((resume) => void duplex.once("close", () => resume(Effect.void)))
    http.emit("connection", duplex)
    yield* socket.run((bytes) => void duplex.push(bytes)).pipe(Effect.ensuring(Effect.sync(() => duplex.push(null))))
    yield* closed
  })

// HttpServer over our SocketServer on `port`
const layerHttpServer = (port: number) =>
  Layer.scoped(
    HttpServer.HttpServer,
    Effect.map(Socket.makeSocketServer({ port }), (sockets) =>
      HttpServer.make({
        address: sockets.address,
        serve: (app, middleware?: HttpMiddleware.HttpMiddleware) =>
          Effect.gen(function* () {
            const handler = middleware === undefined ? NodeHttpServer.makeHandler(app) : NodeHttpServer.makeHandler(app, middleware)
            const http = createServer(yield* handler)
            yield* Effect.forkScoped(sockets.run((socket) => serveConnection(http, socket)))
          })
      })
    )
  )

// the app: answer with the method, the path and the body received
const echoApp = HttpServer.serve(
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    return HttpServerResponse.text(`${request.method} ${request.url} ${yield* request.text}`)
  })
)

const host = (nic: SimLink.SimLink["a"], address: string) =>
  Tcp.layer().pipe(Layer.provideMerge(Stack.layer({ address })), Layer.provide(Layer.succeed(Nic, nic)))

// a client that speaks HTTP/1.1 by hand over a Socket, and returns the whole response
const request = Effect.gen(function* () {
  const socket = yield* Socket.connect("198.51.100.1", 80)
  const write = yield* socket.writer
  yield* write("POST /echo HTTP/1.1\r\nHost: 198.51.100.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
  let response = ""
  yield* socket.run((bytes) => void (response += new TextDecoder().decode(bytes)))
  return response
})

const main = Effect.gen(function* () {
  const link = yield* SimLink.make({ delay: "1 millis" })
  const server = echoApp.pipe(Layer.provide(layerHttpServer(80)), Layer.provide(host(link.b, "198.51.100.1/24")))
  yield* Effect.forkScoped(Layer.launch(server))
  const response = yield* Effect.provide(Effect.scoped(request), host(link.a, "198.51.100.2/24"))
  yield* Console.log(response)
})

NodeRuntime.runMain(Effect.scoped(main))
