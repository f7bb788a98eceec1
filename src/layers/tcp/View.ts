/**
 * The application's side of a connection (`TcpConnection`): reads and writes as Effects that suspend on
 * the connection's signals, each call running the machine and settling its events at once.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { IpAddress } from "../../protocols/ipAddress.js"
import * as M from "../../protocols/tcp/machine.js"
import { TcpError, type TcpConnection } from "./Api.js"
import type { Conn } from "./Table.js"

export interface ViewDeps {
  readonly out: M.Output
  /** Route the machine's events after it ran for the connection (the layer's settle). */
  readonly settle: (c: Conn) => void
}

export const makeView = ({ out, settle }: ViewDeps) => {
  const failure = (c: Conn): TcpError => {
    const e = c.tcb.error
    return new TcpError({
      reason: e === "Refused" ? "Refused" : e === "Reset" ? "Reset" : e === "TimedOut" ? "TimedOut" : e === "Aborted" ? "Aborted" : "Closed"
    })
  }

  const kick = (c: Conn) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        M.poll(c.tcb, now, out)
        settle(c)
      })
    )

  const view = (c: Conn): TcpConnection => {
    const t = c.tcb
    const read = (maxBytes = 65536): Effect.Effect<Option.Option<Uint8Array>, TcpError> =>
      Effect.suspend(() => {
        const n = M.recvAvailable(t)
        if (n > 0) {
          const b = new Uint8Array(Math.min(n, maxBytes))
          const got = M.recv(t, b)
          c.received += got
          return Effect.as(kick(c), Option.some(got === b.length ? b : b.subarray(0, got)))
        }
        if (t.finReceived) return Effect.succeed(Option.none())
        if (t.state === "Closed") return t.error === undefined ? Effect.succeed(Option.none()) : Effect.fail(failure(c))
        return Effect.zipRight(c.readSignal.wait, read(maxBytes))
      })
    const tryWrite = (data: Uint8Array, start = 0, end = data.length): Effect.Effect<number, TcpError> =>
      Effect.suspend(() => {
        if (!M.maySend(t)) return Effect.fail(t.error !== undefined ? failure(c) : new TcpError({ reason: "Closed" }))
        const n = M.send(t, data, start, end)
        return n > 0 ? Effect.as(kick(c), n) : Effect.succeed(0)
      })
    const write = (data: Uint8Array, start = 0, end = data.length): Effect.Effect<void, TcpError> =>
      Effect.suspend(() => {
        if (start >= end) return Effect.void
        return Effect.flatMap(tryWrite(data, start, end), (n) =>
          n === 0 ? Effect.zipRight(c.writeSignal.wait, write(data, start, end)) : write(data, start + n, end)
        )
      })
    const awaitWritable: Effect.Effect<void, TcpError> = Effect.suspend(() => {
      if (!M.maySend(t)) return Effect.fail(t.error !== undefined ? failure(c) : new TcpError({ reason: "Closed" }))
      if (M.sendFree(t) >= t.cfg.sendBufBytes >>> 2) return Effect.void
      return c.writeSignal.wait
    })
    const awaitPeerFin: Effect.Effect<void, TcpError> = Effect.suspend(() => {
      if (t.finReceived) return Effect.void
      if (t.state === "Closed") return t.error === undefined ? Effect.void : Effect.fail(failure(c))
      return Effect.zipRight(c.stateSignal.wait, awaitPeerFin)
    })
    const awaitClosed: Effect.Effect<M.ErrorReason | undefined> = Effect.suspend(() => {
      if (c.removed || t.state === "TimeWait" || t.state === "Closed") return Effect.succeed(t.error)
      return Effect.zipRight(c.stateSignal.wait, awaitClosed)
    })
    return {
      id: c.id,
      localAddress: t.local.addr as IpAddress,
      localPort: t.local.port,
      remoteAddress: t.remote.addr as IpAddress,
      remotePort: t.remote.port,
      state: () => t.state,
      counters: () => t.counters,
      cwnd: () => t.cc.cwnd,
      bytesReceived: () => c.received,
      read,
      sink: (handler) => {
        const early = c.early
        c.early = []
        for (const b of early) handler(b, 0, b.length)
        c.handler = handler
      },
      awaitPeerFin,
      write,
      tryWrite,
      awaitWritable,
      wakeWriters: () => c.writeSignal.notify(),
      sendFree: () => M.sendFree(t),
      shutdownWrite: Effect.zipRight(
        Effect.sync(() => M.close(t)),
        kick(c)
      ),
      abort: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          M.abort(t, now, out)
          settle(c)
        })
      ),
      awaitClosed
    }
  }
  return { view, failure }
}
