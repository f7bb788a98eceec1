/**
 * Benchmark (not a test): bulk TCP transfer between two of our stacks joined by a SimLink, in one
 * process, on the live clock (no TestClock: this measures the CPU cost of the stack; the simulated
 * link has no delay, loss or rate limit).
 *
 *   npm run bench:tcp            = tsc -p bench/tsconfig.tcp-simlink.json && node dist/bench-tcp/bench/tcp-simlink.js
 *   node dist/bench-tcp/bench/tcp-simlink.js [MB per run, default 200] [runs, default 3]
 *
 * Two configurations: offloads off (1500-byte frames, checksums computed and verified in software)
 * and offloads on (TX checksum offload + TSO: up to 64 KB super-frames, RX trusts NEEDS_CSUM). In
 * each run A connects to B, writes MB megabytes with `TcpConnection.write` (256 KiB chunks from one
 * reused buffer; write copies into the send ring) and shuts down; B reads with `read` (buffer mode,
 * one copy per read into a fresh Uint8Array, as an application owning its data would) until FIN.
 *
 * Reported per configuration (median of the runs, and every run):
 * - MB/s (10^6 bytes per second of wall time, from connect to the last byte read).
 * - V8 heap bytes allocated per MB transferred. V8 has no cumulative allocation counter, so it is
 *   reconstructed from `v8.GCProfiler`: each GC reports the heap used before and after it. Between two
 *   GCs nothing is freed, so bytes allocated = sum over GCs of (used before GC k - used after GC k-1),
 *   plus (used at the end - used after the last GC), starting from the used size at the start. This is
 *   exact to the byte for objects on the V8 heap.
 * - External (ArrayBuffer backing store) bytes per MB: the same sum over `externalMemory`, which V8
 *   tracks for ArrayBuffers outside its heap (frames copied by the SimLink, read buffers, TX pool misses).
 *   Approximate: backing stores may be released by a concurrent sweeper between GCs, which would make
 *   this an undercount.
 * - GCs during the run by type (Scavenge = young generation, MarkSweepCompact = full) and total pause ms.
 */
import * as v8 from "node:v8"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { ipv4, type Ipv4Address } from "../src/protocols/address.js"
import { Nic, type NicShape } from "../src/nic/Nic.js"
import * as Stack from "../src/layers/Stack.js"
import * as Tcp from "../src/layers/Tcp.js"
import * as SimLink from "../src/nic/SimLink.js"

const A_IP = ipv4(198, 51, 100, 1)
const B_IP = ipv4(198, 51, 100, 2)

const MB = Number(process.argv[2] ?? "200")
const RUNS = Number(process.argv[3] ?? "3")
const BYTES = Math.round(MB * 1_000_000)
const CHUNK = 256 * 1024

interface GcSample {
  readonly gcType: string
  /** microseconds */
  readonly cost: number
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number; readonly externalMemory: number } }
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number; readonly externalMemory: number } }
}

interface RunResult {
  readonly mbps: number
  readonly heapPerMb: number
  readonly externalPerMb: number
  readonly gcs: Record<string, number>
  readonly gcPauseMs: number
}

const stackOver = (nic: NicShape, address: Ipv4Address) =>
  Tcp.layer().pipe(
    Layer.provideMerge(Stack.layer({ address: { address, prefix: 24, gateway: undefined } })),
    Layer.provide(Layer.succeed(Nic, nic))
  )

const transfer = (offload: boolean) =>
  Effect.gen(function* () {
    const link = yield* SimLink.make({ seed: 1, tso: offload, txChecksumOffload: offload, rxOffload: offload, wireLogSize: 0 })
    const a = yield* Layer.build(stackOver(link.a, A_IP))
    const b = yield* Layer.build(stackOver(link.b, B_IP))
    const conns = yield* Effect.flatMap(Tcp.Tcp, (t) => t.listen(5001)).pipe(Effect.provide(b))
    const chunk = new Uint8Array(CHUNK)
    for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 7) & 255
    const receiver = Effect.gen(function* () {
      const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
      let n = 0
      while (true) {
        const r = yield* c.read(65536)
        if (Option.isNone(r)) break
        n += r.value.length
      }
      return n
    })
    const sender = Effect.gen(function* () {
      const c = yield* Effect.flatMap(Tcp.Tcp, (t) => t.connect(B_IP, 5001)).pipe(Effect.provide(a))
      let left = BYTES
      while (left > 0) {
        const n = Math.min(left, CHUNK)
        yield* c.write(chunk, 0, n)
        left -= n
      }
      yield* c.shutdownWrite
    })
    const profiler = new v8.GCProfiler()
    const start = v8.getHeapStatistics()
    profiler.start()
    const t0 = performance.now()
    const rf = yield* Effect.fork(receiver)
    yield* Effect.scoped(sender)
    const got = yield* rf.await.pipe(Effect.flatMap((e) => e))
    const t1 = performance.now()
    const end = v8.getHeapStatistics()
    const stats = (profiler.stop()?.statistics ?? []) as ReadonlyArray<GcSample>
    if (got !== BYTES) return yield* Effect.dieMessage(`received ${got} of ${BYTES} bytes`)
    let heap = 0
    let ext = 0
    let prevHeap = start.used_heap_size
    let prevExt = start.external_memory
    const gcs: Record<string, number> = {}
    let pause = 0
    for (const s of stats) {
      heap += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - prevHeap)
      ext += Math.max(0, s.beforeGC.heapStatistics.externalMemory - prevExt)
      prevHeap = s.afterGC.heapStatistics.usedHeapSize
      prevExt = s.afterGC.heapStatistics.externalMemory
      gcs[s.gcType] = (gcs[s.gcType] ?? 0) + 1
      pause += s.cost / 1000
    }
    heap += Math.max(0, end.used_heap_size - prevHeap)
    ext += Math.max(0, end.external_memory - prevExt)
    const mb = BYTES / 1e6
    return { mbps: mb / ((t1 - t0) / 1000), heapPerMb: heap / mb, externalPerMb: ext / mb, gcs, gcPauseMs: pause } satisfies RunResult
  }).pipe(Effect.scoped)

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]!
}
const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`

const main = Effect.gen(function* () {
  console.log(`tcp-simlink: ${MB} MB A -> B per run, ${RUNS} runs per configuration, node ${process.version}`)
  for (const offload of [false, true]) {
    // one warm-up run (JIT), not reported
    yield* transfer(offload)
    const runs: Array<RunResult> = []
    for (let i = 0; i < RUNS; i++) runs.push(yield* transfer(offload))
    const label = offload ? "offloads on (TSO + csum)" : "offloads off (1500 B frames)"
    console.log(
      `${label}: ${median(runs.map((r) => r.mbps)).toFixed(1)} MB/s, heap ${kb(median(runs.map((r) => r.heapPerMb)))}/MB, ` +
        `external ${kb(median(runs.map((r) => r.externalPerMb)))}/MB`
    )
    for (const r of runs) {
      console.log(
        `  run: ${r.mbps.toFixed(1)} MB/s  heap ${kb(r.heapPerMb)}/MB  external ${kb(r.externalPerMb)}/MB  ` +
          `GCs ${JSON.stringify(r.gcs)} pause ${r.gcPauseMs.toFixed(1)} ms`
      )
    }
  }
})

Effect.runPromise(main).catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
