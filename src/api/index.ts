/**
 * MinIperf as a library: a userspace TCP/IP stack for Effect apps (design.md §1 "Embedded").
 *
 * Build the stack over a link (a TAP, a SimLink end, or any Nic wrapped by middleware), add TCP, and use
 * connections as `@effect/platform` Sockets:
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Socket as PlatformSocket } from "@effect/platform"
 * import { Nic, Socket, Stack, Tap, Tcp, ipv4, parseMac } from "miniperf"
 *
 * const link = Tap.layer({ name: "tap0", mac: parseMac("02:00:00:00:00:02")!, offload: true })
 * const stack = Tcp.layer().pipe(
 *   Layer.provideMerge(Stack.layer({ address: { address: ipv4(198, 51, 100, 2), prefix: 24, gateway: undefined } })),
 *   Layer.provide(link)
 * )
 *
 * // an echo server on port 7
 * const echo = Effect.gen(function* () {
 *   const server = yield* Socket.makeSocketServer({ port: 7 })
 *   yield* server.run((socket) => Effect.scoped(Effect.flatMap(socket.writer, (write) => socket.run(write))))
 * })
 *
 * // a client: send a line, print what comes back until the server's FIN
 * const client = Effect.gen(function* () {
 *   const socket = yield* Socket.connect("198.51.100.1", 5001)        // TcpError: Refused | TimedOut | NoRoute ...
 *   yield* Effect.scoped(Effect.flatMap(socket.writer, (write) => write("hello\n")))   // scope end = FIN
 *   yield* socket.run((bytes) => Effect.log(new TextDecoder().decode(bytes)))
 * }).pipe(Effect.scoped)
 *
 * Effect.runFork(Effect.provide(Effect.zip(echo, client, { concurrent: true }), stack))
 * ```
 *
 * `Socket.layerSocketServer({ port })` provides `@effect/platform`'s `SocketServer` instead; for tests,
 * `SimLink.make(opts)` gives two linked Nics (`Layer.succeed(Nic, link.a)`) with loss, delay, reordering,
 * duplication, corruption and a rate limit under TestClock.
 */
export * as Stack from "../layers/Stack.js"
export * as Tcp from "../layers/Tcp.js"
export * as Udp from "../layers/Udp.js"
export * as Socket from "./Socket.js"
export * as SimLink from "../nic/SimLink.js"
export * as Tap from "../nic/Tap.js"
export * as FaultInjector from "../nic/FaultInjector.js"
export * as Pcap from "../nic/Pcap.js"
export { Nic, NicError, type NicShape, type NicCaps } from "../nic/Nic.js"
export { Interface } from "../layers/Interface.js"
export { ipv4, parseIpv4, formatIpv4, parseMac, formatMac, mac, type Ipv4Address, type MacAddress } from "../protocols/address.js"
