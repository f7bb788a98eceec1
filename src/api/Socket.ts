/**
 * Our TCP connections as `@effect/platform` Sockets, and a `SocketServer` over `Tcp.listen`.
 *
 * This is the ONE file that touches `@effect/platform/Socket` and `SocketServer` (style.md §2.10): in
 * Effect 4 the module moves to `effect/unstable/socket` and `SocketError` becomes a wrapper over
 * `SocketReadError`/`SocketWriteError`/`SocketOpenError`; only this file changes then.
 *
 * Semantics follow `NodeSocket.fromDuplex` (@effect/platform-node-shared 0.5x, for @effect/platform 0.97):
 * - `run(handler)` / `runRaw(handler)`: every received chunk goes to `handler`; when it returns an Effect,
 *   that Effect is forked into the run's FiberSet (as NodeSocket does), so a slow handler does not stall the
 *   reader. The run succeeds at the peer's FIN, after the handler fibers forked so far have finished (NodeSocket
 *   interrupts them; waiting is what makes an echo of the last chunks reliable), and fails with
 *   `SocketGenericError({ reason: "Read", cause: TcpError })` on RST or a timeout. A handler failure fails the
 *   run, as in NodeSocket. Reading is bounded: at most `maxPendingHandlers` handler fibers may be running; past
 *   that the reader waits, the receive buffer fills and TCP's window closes (backpressure to the peer).
 * - `writer`: `write(chunk)` completes once the bytes are in the send buffer (not when ACKed) and suspends
 *   while it is full. Writes from concurrent fibers are taken in call order, never interleaved. Strings are
 *   sent as UTF-8. Releasing the writer's scope sends FIN (half-close, `end()`); the socket still reads.
 *   `CloseEvent` with code <= 1000 also sends FIN; with a code > 1000 the connection is aborted with RST (like
 *   `destroy(err)`), and a running `run` fails with `SocketGenericError({ reason: "Read" })` whose cause
 *   says the code. Writes after FIN or RST fail with `SocketGenericError({ reason: "Write", cause: TcpError })`.
 * - Unlike NodeSocket (which opens the socket in `run`), the connection exists before `run`: writes do not wait
 *   for a `run` to start, and `run` may be called again after a previous one ended.
 * - The handler's context (and the SocketServer handler's context) has `Connection` (our `TcpConnection`:
 *   endpoints, state, counters), the way NodeSocket provides `NetSocket`.
 * - When the Socket's scope closes (the `connect` scope, or a server handler's end), an open connection with
 *   received bytes nobody read is reset (RST), as a kernel does on close(); otherwise it gets FIN after its
 *   queued data (if not sent yet) and finishes the close on its own in the Tcp layer.
 *
 * Errors: `connect` fails with our `TcpError` (reason "Refused" | "TimedOut" | "NoRoute" | "TableFull" | "InvalidArgument" | ...);
 * read and write failures are `SocketError`s (the platform interface allows nothing else) whose `cause` is a
 * `TcpError`: `tcpErrorOf(e)` gets it back.
 */
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import type * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Interface } from "../layers/Interface.js"
import { Signal } from "../layers/Signal.js"
import * as Tcp from "../layers/Tcp.js"
import { formatIpv4 } from "../protocols/address.js"
import { parseIp, type IpAddress } from "../protocols/ipAddress.js"
import type { Ipv6Address } from "../protocols/ipv6/address.js"

export type { CloseEvent, Socket, SocketError } from "@effect/platform/Socket"
export { SocketServer } from "@effect/platform/SocketServer"

/** The connection behind a Socket, in the context of `run` handlers and SocketServer handlers. */
export class Connection extends Context.Tag("@miniperf/api/Connection")<Connection, Tcp.TcpConnection>() {}

export interface SocketOptions {
  /** Largest chunk handed to `run`'s handler (default 65536). */
  readonly readChunk?: number
  /** Handler fibers that may run at once before the reader waits (default 64). */
  readonly maxPendingHandlers?: number
}

/** The TcpError behind a SocketError (or a TcpError itself), if any. */
export const tcpErrorOf = (e: unknown): Tcp.TcpError | undefined => {
  if (e instanceof Tcp.TcpError) return e
  if (Socket.isSocketError(e) && "cause" in e && e.cause instanceof Tcp.TcpError) return e.cause
  return undefined
}

const encoder = new TextEncoder()

/**
 * A Socket over an open connection. Needs a Scope: when it closes, the connection is finished (FIN or RST,
 * see the module comment).
 */
export const fromConnection = (conn: Tcp.TcpConnection, opts: SocketOptions = {}): Effect.Effect<Socket.Socket, never, Scope.Scope> =>
  Effect.gen(function* () {
    const readChunk = opts.readChunk ?? 65536
    const maxPending = Math.max(1, opts.maxPendingHandlers ?? 64)
    /** Payload bytes handed to run handlers so far (to know whether anything is left unread at close). */
    let consumed = 0
    let finSent = false
    /** Set when a CloseEvent ended the socket locally; a running `run` then ends with this error. */
    let localClose: Socket.SocketError | undefined
    const localCloseSignal = new Signal()
    const writeLock = yield* Effect.makeSemaphore(1)

    const shutdown = Effect.suspend(() => {
      if (finSent) return Effect.void
      finSent = true
      return conn.shutdownWrite
    })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const st = conn.state()
        if (st === "Closed" || st === "TimeWait") return Effect.void
        // unread bytes: RST (as a kernel does on close); else FIN after the queued data, if not sent yet
        return conn.counters().bytesIn > consumed ? conn.abort : shutdown
      })
    )

    const run = <_, E, R>(
      handler: (_: Uint8Array) => Effect.Effect<_, E, R> | void,
      options?: { readonly onOpen?: Effect.Effect<void> | undefined }
    ): Effect.Effect<void, Socket.SocketError | E, R> =>
      Effect.scopedWith((scope) =>
        Effect.gen(function* () {
          const set = yield* FiberSet.make<unknown, E>().pipe(Scope.extend(scope))
          const runFork = yield* FiberSet.runtime(set)<R>().pipe(Effect.provideService(Connection, conn))
          let pending = 0
          const settled = new Signal()
          if (options?.onOpen !== undefined) yield* options.onOpen
          const reader: Effect.Effect<void, Socket.SocketError> = Effect.gen(function* () {
            while (true) {
              if (localClose !== undefined) return yield* Effect.fail(localClose)
              while (pending >= maxPending) yield* settled.wait
              const r = yield* Effect.raceFirst(
                Effect.mapError(conn.read(readChunk), (cause) => new Socket.SocketGenericError({ reason: "Read", cause })),
                Effect.zipRight(localCloseSignal.wait, Effect.succeed(Option.none<Uint8Array>()))
              )
              if (localClose !== undefined) return yield* Effect.fail(localClose)
              if (Option.isNone(r)) break
              consumed += r.value.length
              const result = handler(r.value)
              if (Effect.isEffect(result)) {
                pending++
                runFork(
                  Effect.ensuring(
                    result,
                    Effect.sync(() => {
                      pending--
                      settled.notify()
                    })
                  )
                )
              }
            }
            // the peer's FIN: let the handler fibers forked so far finish (or fail the run)
            yield* FiberSet.awaitEmpty(set)
          })
          // a failing handler fiber fails the FiberSet's join, and the run with it
          return yield* Effect.raceFirst(reader, FiberSet.join(set))
        })
      )

    const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> => {
      if (Socket.isCloseEvent(chunk)) {
        return writeLock.withPermits(1)(
          Effect.suspend(() => {
            if (chunk.code > 1000) {
              localClose = new Socket.SocketGenericError({ reason: "Read", cause: new Error(`closed with code ${chunk.code}`) })
              localCloseSignal.notify()
              return conn.abort
            }
            localClose = new Socket.SocketCloseError({ reason: "Close", code: chunk.code, closeReason: chunk.reason })
            localCloseSignal.notify()
            return shutdown
          })
        )
      }
      const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk
      return writeLock.withPermits(1)(
        Effect.suspend(() =>
          finSent
            ? Effect.fail(new Socket.SocketGenericError({ reason: "Write", cause: new Tcp.TcpError({ reason: "Closed", detail: "FIN already sent" }) }))
            : Effect.mapError(conn.write(bytes), (cause) => new Socket.SocketGenericError({ reason: "Write", cause }))
        )
      )
    }

    const writer = Effect.acquireRelease(Effect.succeed(write), () => writeLock.withPermits(1)(shutdown))

    return Socket.Socket.of({
      [Socket.TypeId]: Socket.TypeId,
      run,
      runRaw: run,
      writer
    })
  })

/**
 * The address `connect` takes: text first (a dotted quad, or any RFC 4291 IPv6 form such as "2001:db8::1";
 * no zone index), else an IpAddress value (an Ipv4Address number, or an Ipv6Address string of 8 code
 * units). Address text always holds ':' or '.', so an Ipv6Address value is read as text only if one of its
 * groups is 0x3a or 0x2e and the whole still parses: never for 2001:db8::/32 or fe80::/10 addresses.
 */
const toAddress = (address: IpAddress | string): IpAddress | undefined => {
  if (typeof address === "number") return address
  const text = parseIp(address)
  if (text !== undefined) return text
  return address.length === 8 ? (address as Ipv6Address) : undefined
}

/**
 * Active open: a Socket to `address:port` (IPv4 or IPv6, as text or as an IpAddress). Fails with TcpError
 * "Refused" (RST), "TimedOut" (no SYN-ACK), "NoRoute", "TableFull". The connection lives in the scope.
 */
export const connect = (
  address: IpAddress | string,
  port: number,
  opts: SocketOptions & Tcp.ConnectOptions = {}
): Effect.Effect<Socket.Socket, Tcp.TcpError, Tcp.Tcp | Scope.Scope> =>
  Effect.gen(function* () {
    const addr = toAddress(address)
    if (addr === undefined) return yield* new Tcp.TcpError({ reason: "InvalidArgument", detail: `not an IP address: ${String(address)}` })
    const tcp = yield* Tcp.Tcp
    const conn = yield* tcp.connect(addr, port, opts)
    return yield* fromConnection(conn, opts)
  })

/** Like `connect`, also returning the TcpConnection (endpoints, state, counters). */
export const connectWithInfo = (
  address: IpAddress | string,
  port: number,
  opts: SocketOptions & Tcp.ConnectOptions = {}
): Effect.Effect<{ readonly socket: Socket.Socket; readonly connection: Tcp.TcpConnection }, Tcp.TcpError, Tcp.Tcp | Scope.Scope> =>
  Effect.gen(function* () {
    const addr = toAddress(address)
    if (addr === undefined) return yield* new Tcp.TcpError({ reason: "InvalidArgument", detail: `not an IP address: ${String(address)}` })
    const tcp = yield* Tcp.Tcp
    const connection = yield* tcp.connect(addr, port, opts)
    const socket = yield* fromConnection(connection, opts)
    return { socket, connection }
  })

/**
 * A `connect` Socket as a Channel (for `Stream.pipeThroughChannel`), like `NodeSocket.makeNetChannel`; a
 * connect failure is a `SocketGenericError` "Open" whose cause is the TcpError.
 */
export const makeChannel = <IE = never>(
  address: IpAddress | string,
  port: number,
  opts: SocketOptions & Tcp.ConnectOptions = {}
): Channel.Channel<
  Chunk.Chunk<Uint8Array>,
  Chunk.Chunk<Uint8Array | string | Socket.CloseEvent>,
  Socket.SocketError | IE,
  IE,
  void,
  unknown,
  Tcp.Tcp
> =>
  Channel.unwrapScoped(
    Effect.map(
      Effect.mapError(connect(address, port, opts), (cause) => new Socket.SocketGenericError({ reason: "Open", cause })),
      Socket.toChannelWith<IE>()
    )
  )

const reportUnhandled = <E>(cause: Cause.Cause<E>): Effect.Effect<void> =>
  Effect.withFiberRuntime<void>((fiber) => {
    const level = fiber.getFiberRef(FiberRef.unhandledErrorLogLevel)
    return level._tag === "Some" ? Effect.logWithLevel(level.value, cause, "Unhandled error in SocketServer") : Effect.void
  })

/**
 * A SocketServer listening on `port` (every local address). `run(handler)` forks one child per connection
 * into a FiberSet; each handler gets the connection's Socket (and `Connection` in its context); a handler's
 * failure is logged (FiberRef.unhandledErrorLogLevel), never passed on; when the handler ends, the
 * connection is finished (FIN or RST, see the module comment). Connections that arrive before `run` wait in
 * the accept queue (bounded by the backlog). `address` is the interface address when the stack has one
 * configured, else 0.0.0.0.
 */
export const makeSocketServer = (
  opts: { readonly port: number } & Tcp.ListenOptions & SocketOptions
): Effect.Effect<SocketServer.SocketServer["Type"], SocketServer.SocketServerError, Tcp.Tcp | Scope.Scope> =>
  Effect.gen(function* () {
    const tcp = yield* Tcp.Tcp
    const conns = yield* Effect.mapError(tcp.listen(opts.port, opts), (cause) => new SocketServer.SocketServerError({ reason: "Open", cause }))
    const iface = yield* Effect.serviceOption(Interface)
    const hostAddr = Option.match(iface, { onNone: () => 0, onSome: (i) => i.current().address as number })
    const run = <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>): Effect.Effect<never, SocketServer.SocketServerError, R> =>
      Effect.scopedWith((scope) =>
        Effect.gen(function* () {
          const set = yield* FiberSet.make().pipe(Scope.extend(scope))
          const runFork = yield* FiberSet.runtime(set)<R>()
          yield* Stream.runForEach(conns, (conn) =>
            Effect.sync(() => {
              runFork(
                Effect.scoped(Effect.flatMap(fromConnection(conn, opts), handler)).pipe(
                  Effect.catchAllCause(reportUnhandled),
                  Effect.provideService(Connection, conn)
                )
              )
            })
          )
          // the listener was closed (the layer's scope ended): wait to be interrupted like a server that stopped
          return yield* Effect.never
        })
      )
    return SocketServer.SocketServer.of({
      address: { _tag: "TcpAddress", hostname: formatIpv4(hostAddr), port: opts.port },
      run
    })
  })

/** `makeSocketServer` as a Layer (the listener lives as long as the layer). */
export const layerSocketServer = (
  opts: { readonly port: number } & Tcp.ListenOptions & SocketOptions
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError, Tcp.Tcp> =>
  Layer.scoped(SocketServer.SocketServer, makeSocketServer(opts))

