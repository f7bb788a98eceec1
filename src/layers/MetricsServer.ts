/**
 * `--metrics HOST:PORT`: GET /metrics in the Prometheus text format (Prometheus.ts) from the Effect Metrics the `Stats`
 * layer keeps, served by `node:http` on a loopback address of the host. It is not on our TAP stack: a scraper on the
 * host reaches it, a peer on the link does not (the flag refuses any address outside 127.0.0.0/8 and ::1).
 *
 * Bounded like everything else: at most `maxConnections` sockets at once (more are closed by Node at accept), a request
 * must arrive whole within `requestTimeoutMs`, an idle keep-alive socket is closed after `keepAliveMs`, a body is
 * never read. Each scrape samples the layers' counters first (Stats.sample), so it is never staler than the scrape.
 * Only GET and HEAD of `/metrics` (a query string is ignored) are answered 200; other paths 404, other methods 405.
 *
 * Two steps, so that the program can take the port before it opens the TAP (a taken port is a bad command line, exit 2,
 * like a log file that cannot be opened): `listen` binds and answers 503 until `attach` gives it what to serve;
 * `layer` does both for an app that has its Stats already.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Runtime from "effect/Runtime"
import { printer } from "./Output.js"
import * as Prometheus from "./Prometheus.js"
import { Stats } from "./Stats.js"

export class MetricsServerError extends Data.TaggedError("MetricsServerError")<{
  readonly host: string
  readonly port: number
  /** The listen error, e.g. `listen EADDRINUSE: address already in use 127.0.0.1:9100`. */
  readonly message: string
  readonly code: string | undefined
}> {}

export interface MetricsServerOptions {
  readonly host: string
  /** 0 asks the kernel for a free port (tests); the bound one is in `MetricsServerShape.port`. */
  readonly port: number
  readonly maxConnections?: number
  readonly requestTimeoutMs?: number
  readonly keepAliveMs?: number
  /** Where the "Metrics on ..." line goes (default: Output). */
  readonly print?: (line: string) => void
}

export interface MetricsServerShape {
  readonly host: string
  readonly port: number
  /** The exposition text now (what a GET /metrics would get). */
  readonly scrape: Effect.Effect<string>
}

export class MetricsServer extends Context.Tag("@miniperf/MetricsServer")<MetricsServer, MetricsServerShape>() {}

export const DEFAULT_MAX_CONNECTIONS = 8
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000
export const DEFAULT_KEEP_ALIVE_MS = 5_000

const urlHost = (host: string): string => (host.includes(":") ? `[${host}]` : host)

export interface MetricsListenerShape {
  readonly host: string
  readonly port: number
  /** Serve this scrape from now on (until then GET /metrics is 503), and print the "Metrics on ..." line. */
  readonly attach: (scrape: Effect.Effect<string>) => Effect.Effect<void>
}

/** The bound socket of `--metrics`, before or after it has something to serve. */
export class MetricsListener extends Context.Tag("@miniperf/MetricsListener")<MetricsListener, MetricsListenerShape>() {}

/** Bind (scoped: closed with the scope); GET /metrics answers 503 until `attach`. */
export const listen = (opts: MetricsServerOptions) =>
  Effect.gen(function* () {
    const print = yield* printer(opts.print)
    const runtime = yield* Effect.runtime<never>()
    const runScrape = Runtime.runSync(runtime)
    const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    let source: Effect.Effect<string> | undefined

    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      req.resume() // a body is never used; let it drain
      const path = (req.url ?? "").split("?")[0]
      if (path !== "/metrics") {
        res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("not found: try /metrics\n")
        return
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end("method not allowed\n")
        return
      }
      if (source === undefined) {
        res.writeHead(503, { "Content-Type": "text/plain; charset=utf-8", "Retry-After": "1" }).end("starting: the stack is not up yet\n")
        return
      }
      let body: string
      try {
        body = runScrape(source)
      } catch (e) {
        res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" }).end(`scrape failed: ${String(e)}\n`)
        return
      }
      res.writeHead(200, { "Content-Type": Prometheus.CONTENT_TYPE, "Content-Length": Buffer.byteLength(body) })
      res.end(req.method === "HEAD" ? undefined : body)
    }

    const server = http.createServer(
      {
        requestTimeout: requestTimeoutMs,
        headersTimeout: requestTimeoutMs,
        keepAliveTimeout: opts.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
        // how often Node checks the two deadlines above (its default, 30 s, would make a 5 s deadline 35 s)
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(requestTimeoutMs / 2)))
      },
      handler
    )
    server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    server.maxHeadersCount = 64
    // a socket that says nothing at all is closed too (requestTimeout counts from the first byte of a request)
    server.setTimeout(requestTimeoutMs + (opts.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS))

    const port = yield* Effect.acquireRelease(
      Effect.async<number, MetricsServerError>((resume) => {
        const onError = (e: NodeJS.ErrnoException): void => {
          server.off("listening", onListening)
          resume(Effect.fail(new MetricsServerError({ host: opts.host, port: opts.port, message: e.message, code: e.code })))
        }
        const onListening = (): void => {
          server.off("error", onError)
          // later errors of a listening server (none expected) must not crash the process
          server.on("error", () => {})
          resume(Effect.succeed((server.address() as AddressInfo).port))
        }
        server.once("error", onError)
        server.once("listening", onListening)
        server.listen({ host: opts.host, port: opts.port, exclusive: true, ipv6Only: opts.host.includes(":") })
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    return MetricsListener.of({
      host: opts.host,
      port,
      attach: (scrape) =>
        Effect.sync(() => {
          source = scrape
          print(`Metrics on http://${urlHost(opts.host)}:${port}/metrics`)
        })
    })
  })

/** The scrape of the Stats layer: its numbers copied into the metrics first, then every Effect Metric as text. */
export const statsScrape = Effect.map(Stats, (stats) => Effect.zipRight(stats.sample, Effect.map(Metric.snapshot, Prometheus.render)))

/** Serve the Stats scrape on a listener bound earlier (`listen`). */
export const attachLayer: Layer.Layer<never, never, MetricsListener | Stats> = Layer.effectDiscard(
  Effect.gen(function* () {
    const l = yield* MetricsListener
    yield* l.attach(yield* statsScrape)
  })
)

/** Bind and serve at once (for an app whose Stats are already there). */
export const make = (opts: MetricsServerOptions) =>
  Effect.gen(function* () {
    const scrape = yield* statsScrape
    const l = yield* listen(opts)
    yield* l.attach(scrape)
    return MetricsServer.of({ host: l.host, port: l.port, scrape })
  })

export const layer = (opts: MetricsServerOptions): Layer.Layer<MetricsServer, MetricsServerError, Stats> => Layer.scoped(MetricsServer, make(opts))

export const listenerLayer = (opts: MetricsServerOptions): Layer.Layer<MetricsListener, MetricsServerError> =>
  Layer.scoped(MetricsListener, listen(opts))
