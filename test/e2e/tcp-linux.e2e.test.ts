/**
 * Our TCP against the Linux TCP stack (e2e, needs root and /dev/net/tun): our whole stack runs in this
 * process over a TAP whose kernel side sits in a fresh network namespace (test/support/netns.ts,
 * withTapInNetns). Us: 198.51.100.2/24; the kernel: 198.51.100.1/24 (RFC 5737). The kernel's side is a
 * small Node `net` program run with `ip netns exec` (a client that connects to us, or a server we connect
 * to). Both sides send 100 MB of random bytes at the same time, hash what they send and what they receive
 * (sha256), then FIN; the hashes must match crosswise. Each case runs with offloads on (virtio-net header,
 * checksum offload, TSO/GSO both ways) and off, and again through our FaultInjector (both directions: the
 * kernel sees the loss too): drop 2 % + corrupt 1 % with offloads off; with offloads on, drop 2 % (corruption
 * of offloaded frames is invisible to both stacks, see the KNOWN FAILING case). Live clock, every case bounded; the namespace and the
 * TAP are removed when the scope closes, also on failure or timeout; the child is killed by PID.
 */
import { expect } from "@effect/vitest"
import { it } from "@effect/vitest"
import { createHash, randomFillSync } from "node:crypto"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Nic, type NicShape } from "../../src/nic/Nic.js"
import * as Stack from "../../src/layers/Stack.js"
import * as Tcp from "../../src/layers/Tcp.js"
import * as FaultInjector from "../../src/nic/FaultInjector.js"
import { ipv4, parseMac } from "../../src/protocols/address.js"
import { describeRoot, withNetns, withTapInNetns } from "../support/netns.js"
import { runAny } from "../support/server.js"

const OUR_MAC = parseMac("02:00:00:00:00:02")!
const OUR_IP = ipv4(198, 51, 100, 2)
const KERNEL_IP = ipv4(198, 51, 100, 1)
const TOTAL = 100 * 1024 * 1024
const CHUNK = 256 * 1024

/**
 * The kernel's side, as a Node program: argv = mode ("client" | "server"), host, port, bytes. It sends
 * `bytes` random bytes, ends its side, reads until our FIN, and prints one JSON line with both hashes.
 */
const PEER = `
const net = require("node:net"), crypto = require("node:crypto")
const [mode, host, port, total] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
const run = (sock) => {
  const out = crypto.createHash("sha256"), inn = crypto.createHash("sha256")
  let received = 0, sent = 0
  sock.on("data", (d) => { inn.update(d); received += d.length })
  sock.on("end", () => {})
  sock.on("error", (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1) })
  sock.on("close", () => { console.log(JSON.stringify({ sent, received, sentSha: out.digest("hex"), receivedSha: inn.digest("hex") })); process.exit(0) })
  const pump = () => {
    while (sent < total) {
      const b = crypto.randomBytes(Math.min(262144, total - sent))
      out.update(b); sent += b.length
      if (!sock.write(b)) return sock.once("drain", pump)
    }
    sock.end()
  }
  pump()
}
// allowHalfOpen: without it Node ends its own side as soon as our FIN arrives, cutting its send short
if (mode === "client") { const s = net.connect({ host, port, allowHalfOpen: true }, () => run(s)); s.on("error", (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1) }) }
else { const srv = net.createServer({ allowHalfOpen: true }, (s) => { srv.close(); run(s) }); srv.listen(port, host, () => console.log("listening")) }
`

const stackOver = (nic: NicShape) =>
  Tcp.layer().pipe(
    Layer.provideMerge(Stack.layer({ address: { address: OUR_IP, prefix: 24, gateway: undefined } })),
    Layer.provide(Layer.succeed(Nic, nic))
  )

/** Our side of a transfer: send TOTAL random bytes (then FIN) while reading to the peer's FIN. */
const exchange = (c: Tcp.TcpConnection) =>
  Effect.gen(function* () {
    const send = Effect.gen(function* () {
      const h = createHash("sha256")
      const buf = new Uint8Array(CHUNK)
      let left = TOTAL
      while (left > 0) {
        const n = Math.min(CHUNK, left)
        randomFillSync(buf, 0, n)
        h.update(buf.subarray(0, n))
        yield* c.write(buf, 0, n)
        left -= n
      }
      yield* c.shutdownWrite
      return h.digest("hex")
    })
    const receive = Effect.gen(function* () {
      const h = createHash("sha256")
      let n = 0
      while (true) {
        const r = yield* c.read(CHUNK)
        if (Option.isNone(r)) break
        h.update(r.value)
        n += r.value.length
      }
      return { bytes: n, sha: h.digest("hex") }
    })
    const [sentSha, got] = yield* Effect.all([send, receive], { concurrency: 2 })
    return { sentSha, got }
  })

interface PeerResult {
  readonly sent: number
  readonly received: number
  readonly sentSha: string
  readonly receivedSha: string
}

const parsePeer = (stdout: string): PeerResult => {
  const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop()
  if (line === undefined) throw new Error(`the peer printed no result: ${stdout}`)
  const j = JSON.parse(line) as PeerResult & { error?: string }
  if (j.error !== undefined) throw new Error(`the peer failed: ${j.error}`)
  return j
}

interface Case {
  readonly offload: boolean
  /** FaultInjector on both directions: drop 2 %, and corrupt 1 % unless `corrupt` is false. */
  readonly faults: boolean
  readonly corrupt?: boolean
  readonly direction: "kernel connects to us" | "we connect to the kernel"
}

const runCase = (c: Case) =>
  Effect.gen(function* () {
    const ns = yield* withNetns("tcpl")
    const tap = yield* withTapInNetns(ns, { mac: OUR_MAC, offload: c.offload })
    expect(tap.caps.tso).toBe(c.offload)
    const counters = FaultInjector.makeCounters()
    const nic = c.faults ? FaultInjector.wrap(tap, { seed: 42, dropRate: 0.02, corruptRate: c.corrupt === false ? 0 : 0.01, counters }) : tap
    const ctx = yield* Layer.build(stackOver(nic))
    const tcp = Context.get(ctx, Tcp.Tcp)
    const t0 = performance.now()
    let ours: { sentSha: string; got: { bytes: number; sha: string } }
    let peer: PeerResult
    if (c.direction === "kernel connects to us") {
      const conns = yield* tcp.listen(5001)
      const child = yield* Effect.fork(runAny("ip", ["netns", "exec", ns.name, "node", "-e", PEER, "client", "198.51.100.2", "5001", String(TOTAL)], 150))
      const conn = yield* Stream.runHead(conns).pipe(
        Effect.flatMap(Effect.orDie),
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the kernel did not connect") })
      )
      ours = yield* exchange(conn)
      yield* conn.awaitClosed
      peer = parsePeer((yield* Fiber.join(child)).stdout)
    } else {
      const child = yield* ns.spawn("node", ["-e", PEER, "server", "198.51.100.1", "5002", String(TOTAL)])
      let out = ""
      child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
      const exited = Effect.async<void>((resume) => {
        if (child.exitCode !== null) resume(Effect.void)
        else child.once("exit", () => resume(Effect.void))
      })
      yield* Effect.gen(function* () {
        while (!out.includes("listening")) yield* Effect.sleep("20 millis")
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the kernel's server did not start") }))
      const conn = yield* tcp.connect(KERNEL_IP, 5002)
      ours = yield* exchange(conn)
      yield* exited
      peer = parsePeer(out)
    }
    const seconds = (performance.now() - t0) / 1000
    console.log(
      `tcp-linux ${c.direction}, offloads ${c.offload ? "on" : "off"}${c.faults ? `, drop 2%${c.corrupt === false ? "" : " corrupt 1%"}` : ""}: ` +
        `100 MB each way in ${seconds.toFixed(1)} s` +
        (c.faults ? `; faults rx ${JSON.stringify(counters.rx)} tx ${JSON.stringify(counters.tx)}` : "")
    )
    expect(peer.sent).toBe(TOTAL)
    expect(peer.received).toBe(TOTAL)
    expect(ours.got.bytes).toBe(TOTAL)
    expect(peer.receivedSha).toBe(ours.sentSha)
    expect(ours.got.sha).toBe(peer.sentSha)
    if (c.faults) {
      expect(counters.rx.dropped + counters.tx.dropped).toBeGreaterThan(0)
      if (c.corrupt !== false) expect(counters.rx.corrupted + counters.tx.corrupted).toBeGreaterThan(0)
    }
  }).pipe(Effect.timeoutFail({ duration: "170 seconds", onTimeout: () => new Error("case did not finish within 170 s") }))

describeRoot("TCP against the Linux TCP stack over a TAP (100 MB each way, sha256)", () => {
  const directions = ["kernel connects to us", "we connect to the kernel"] as const
  for (const direction of directions) {
    for (const offload of [true, false]) {
      it.scopedLive(`${direction}, offloads ${offload ? "on" : "off"}`, () => runCase({ offload, faults: false, direction }), 180_000)
    }
    it.scopedLive(`${direction}, offloads off, FaultInjector drop 2% corrupt 1%`, () => runCase({ offload: false, faults: true, direction }), 180_000)
    it.scopedLive(`${direction}, offloads on, FaultInjector drop 2%`, () => runCase({ offload: true, faults: true, corrupt: false, direction }), 180_000)
    // The injector corrupts offloaded frames as a wire would: checksum completed first, offload flags cleared
    // (GSO super-frames it would corrupt are dropped), so the receiver detects every flipped byte.
    it.scopedLive(`${direction}, offloads on, FaultInjector drop 2% corrupt 1%`, () => runCase({ offload: true, faults: true, direction }), 180_000)
  }
})
