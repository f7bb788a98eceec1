/**
 * End-to-end tests of the TAP addon and Tap.make (need root: namespaces and TAP devices).
 * Each test opens a TAP, moves its kernel side into a fresh namespace as 198.51.100.1/24 and talks
 * to the Linux kernel through it: ARP request -> ARP reply, UDP from the namespace with and
 * without checksum offload, TX counters, and the error reasons of open().
 */
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { NicShape } from "../../src/nic/Nic.js"
import { formatMac, ipv4, parseMac, writeIpv4, type MacAddress } from "../../src/protocols/address.js"
import { setU16 } from "../../src/protocols/bytes.js"
import * as Cs from "../../src/protocols/checksum.js"
import { PLAIN, VNET_F_NEEDS_CSUM, plainFrame, type Frame } from "../../src/nic/Frame.js"
import * as Tap from "../../src/nic/Tap.js"
import { describeRoot, run, uniqueIfName, withNetns, withTapInNetns } from "../support/netns.js"

const OUR_MAC = parseMac("02:00:00:00:00:02")!
const OUR_IP = [198, 51, 100, 2] as const
const KERNEL_IP = [198, 51, 100, 1] as const

const putMac = (b: Uint8Array, o: number, m: MacAddress): void => {
  const s = formatMac(m).split(":")
  for (let i = 0; i < 6; i++) b[o + i] = parseInt(s[i]!, 16)
}

/** A hand-built ARP request "who has 198.51.100.1? tell 198.51.100.2", padded to 60 bytes. */
const arpRequest = (): Uint8Array => {
  const b = new Uint8Array(60)
  b.fill(0xff, 0, 6)
  putMac(b, 6, OUR_MAC)
  b.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01], 12)
  putMac(b, 22, OUR_MAC)
  b.set(OUR_IP, 28)
  b.set(KERNEL_IP, 38)
  return b
}

const isArpReplyToUs = (f: Uint8Array): boolean =>
  f.length >= 42 &&
  f[12] === 0x08 &&
  f[13] === 0x06 &&
  f[20] === 0 &&
  f[21] === 2 &&
  f[28] === 198 && f[29] === 51 && f[30] === 100 && f[31] === 1 &&
  f[38] === 198 && f[39] === 51 && f[40] === 100 && f[41] === 2

const isUdpToUs = (f: Uint8Array): boolean =>
  f.length >= 42 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 17 && f[33] === 2

/** Waits (live clock, bounded) for the first received frame matching `pred`; returns a copy. */
const firstFrame = (nic: NicShape, pred: (b: Uint8Array) => boolean) =>
  nic.rx.pipe(
    Stream.mapConcat((batch) => batch.filter((f) => pred(f.data)).map((f): Frame => ({ data: f.data.slice(), meta: f.meta }))),
    Stream.take(1),
    Stream.runCollect,
    Effect.map((c) => Chunk.unsafeHead(c)),
    Effect.timeoutFail({
      duration: "5 seconds",
      onTimeout: () => new Error("no matching frame within 5 s")
    })
  )

const arpExchange = (opts: { vnetHdr: boolean; offload: boolean }) =>
  Effect.gen(function* () {
    const ns = yield* withNetns("tap")
    const nic = yield* withTapInNetns(ns, { mac: OUR_MAC, vnetHdr: opts.vnetHdr, offload: opts.offload })
    expect(nic.caps.rxOffload).toBe(opts.offload)
    expect(nic.caps.tso).toBe(opts.offload)
    expect(nic.caps.maxTxFrame).toBe(opts.offload ? 65549 : 1514)
    const reply = yield* Effect.fork(firstFrame(nic, isArpReplyToUs))
    yield* Effect.sleep("50 millis") // let the rx stream start polling (the TAP queues frames anyway)
    yield* nic.tx([plainFrame(arpRequest())])
    const f = yield* reply.await.pipe(Effect.flatten)
    // the reply is addressed to our MAC and carries no offload metadata
    expect(formatMac(Number.parseInt(Buffer.from(f.data.subarray(0, 6)).toString("hex"), 16))).toBe("02:00:00:00:00:02")
    expect(f.meta).toBe(PLAIN)
    expect(nic.stats.txFrames).toBe(1)
    expect(nic.stats.txBytes).toBe(60)
    expect(nic.stats.txDropped).toBe(0)
    expect(nic.stats.rxFrames).toBeGreaterThanOrEqual(1)
    const ls = yield* ns.linkStats(nic.name)
    expect(ls.rxPackets).toBe(1) // the kernel side received our one ARP request
    expect(ls.txPackets).toBeGreaterThanOrEqual(1)
  })

const udpFromKernel = (opts: { offload: boolean }) =>
  Effect.gen(function* () {
    const ns = yield* withNetns("udp")
    const nic = yield* withTapInNetns(ns, {
      mac: OUR_MAC,
      offload: opts.offload,
      vnetHdr: true,
      neighbors: [["198.51.100.2", "02:00:00:00:00:02"]]
    })
    const got = yield* Effect.fork(firstFrame(nic, isUdpToUs))
    yield* Effect.sleep("50 millis")
    yield* ns.exec("bash", ["-c", "echo hello-tap > /dev/udp/198.51.100.2/9"])
    const f = yield* got.await.pipe(Effect.flatten)
    const udpCsum = (f.data[40]! << 8) | f.data[41]!
    if (opts.offload) {
      // checksum offload on: the kernel leaves the UDP checksum partial and says where it goes
      expect(f.meta.flags & VNET_F_NEEDS_CSUM).toBe(VNET_F_NEEDS_CSUM)
      expect(f.meta.csumStart).toBe(34)
      expect(f.meta.csumOffset).toBe(6)
    } else {
      expect(f.meta).toBe(PLAIN)
      expect(udpCsum).not.toBe(0)
    }
  })

describeRoot("TAP e2e (namespace, kernel peer)", () => {
  it.scopedLive("ARP request out, kernel ARP reply in (no vnet header)", () => arpExchange({ vnetHdr: false, offload: false }))
  it.scopedLive("ARP request out, kernel ARP reply in (vnet header, no offload)", () =>
    arpExchange({ vnetHdr: true, offload: false }))
  it.scopedLive("ARP request out, kernel ARP reply in (vnet header + offload)", () =>
    arpExchange({ vnetHdr: true, offload: true }))
  it.scopedLive("UDP from the kernel arrives with NEEDS_CSUM meta when offload is on", () => udpFromKernel({ offload: true }))
  it.scopedLive("UDP from the kernel arrives complete with a vnet header but no offload", () =>
    udpFromKernel({ offload: false }))

  it.scopedLive("TX with vnet header: the kernel honours NEEDS_CSUM (partial UDP checksum) only when the meta says so", () =>
    Effect.gen(function* () {
      const ns = yield* withNetns("txcs")
      const nic = yield* withTapInNetns(ns, { mac: OUR_MAC, offload: true })
      expect(nic.caps.txChecksumOffload).toBe(true)
      const link = yield* ns.ip(["-j", "link", "show", "dev", nic.name])
      const kernelMac = parseMac((JSON.parse(link.stdout) as Array<{ address: string }>)[0]!.address)!
      const src = ipv4(198, 51, 100, 2)
      const dst = ipv4(198, 51, 100, 1)
      const udpLen = 8 + 8
      const b = new Uint8Array(14 + 20 + udpLen)
      putMac(b, 0, kernelMac)
      putMac(b, 6, OUR_MAC)
      setU16(b, 12, 0x0800)
      b.set([0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0], 14)
      setU16(b, 16, 20 + udpLen)
      writeIpv4(b, 26, src)
      writeIpv4(b, 30, dst)
      setU16(b, 24, Cs.finish(Cs.sum(b, 14, 34)))
      setU16(b, 34, 40000)
      setU16(b, 36, 9) // nobody listens: a good datagram counts as NoPorts, a bad one as InCsumErrors
      setU16(b, 38, udpLen)
      b.set(new TextEncoder().encode("partial!"), 42)
      // CHECKSUM_PARTIAL convention: the field holds the folded pseudo-header sum, not complemented
      setU16(b, 40, Cs.fold(Cs.pseudoV4(src, dst, 17, udpLen)))
      const partial = { flags: VNET_F_NEEDS_CSUM, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 6 }
      const udpCounters = ns.exec("cat", ["/proc/net/snmp"]).pipe(
        Effect.map((r) => {
          const lines = r.stdout.split("\n").filter((l) => l.startsWith("Udp:"))
          const names = lines[0]!.split(/\s+/)
          const values = lines[1]!.split(/\s+/).map(Number)
          return (name: string) => values[names.indexOf(name)]!
        })
      )
      // the kernel handles a TAP write in softirq context: wait (bounded) until it has counted it
      const countedUpTo = (n: number) =>
        udpCounters.pipe(
          Effect.filterOrFail(
            (c) => c("NoPorts") + c("InCsumErrors") >= n,
            () => new Error("UDP counters did not move within 5 s")
          ),
          Effect.retry({ schedule: Schedule.spaced("10 millis"), times: 500 })
        )
      yield* nic.tx([{ data: b, meta: partial }])
      const after1 = yield* countedUpTo(1)
      expect(after1("NoPorts")).toBe(1)
      expect(after1("InCsumErrors")).toBe(0)
      yield* nic.tx([{ data: b, meta: PLAIN }]) // same bytes without NEEDS_CSUM: a bad checksum
      const after2 = yield* countedUpTo(2)
      expect(after2("NoPorts")).toBe(1)
      expect(after2("InCsumErrors")).toBe(1)
      expect(nic.stats.txFrames).toBe(2)
    }))

  it.scopedLive("a full rx buffer drops whole batches (counted) and never overwrites a borrowed frame", () =>
    Effect.gen(function* () {
      const ns = yield* withNetns("drop")
      // ring = (2 * 1 + 2) * 4 = 16 slots: small enough that a leak of rejected batches would overwrite
      const nic = yield* Tap.make({ name: uniqueIfName("mt"), mac: OUR_MAC, rxBatch: 4, rxBufferBatches: 1 })
      yield* run("ip", ["link", "set", "dev", nic.name, "netns", ns.name])
      yield* ns.ip(["link", "set", "dev", nic.name, "txqueuelen", "10000"])
      yield* ns.ip(["addr", "add", "198.51.100.1/24", "dev", nic.name])
      yield* ns.ip(["link", "set", "dev", nic.name, "up"])
      yield* ns.ip(["neigh", "replace", "198.51.100.2", "lladdr", "02:00:00:00:00:02", "dev", nic.name, "nud", "permanent"])
      const first = yield* Deferred.make<{ readonly kept: ReadonlyArray<Frame>; readonly copies: ReadonlyArray<Uint8Array> }>()
      let batches = 0
      yield* Effect.forkScoped(
        Stream.runForEach(nic.rx, (batch) =>
          Effect.gen(function* () {
            batches++
            if (batches > 1) return
            const copies = batch.map((f) => f.data.slice())
            // hold the first batch while the kernel sends a burst: the buffer fills and batches drop
            yield* ns.exec("bash", ["-c", "for i in $(seq 1 300); do echo pkt-$i > /dev/udp/198.51.100.2/9; done"])
            yield* Deferred.succeed(first, { kept: batch, copies })
          })
        )
      )
      yield* Effect.sleep("50 millis")
      yield* ns.exec("bash", ["-c", "echo first > /dev/udp/198.51.100.2/9"])
      const { copies, kept } = yield* Deferred.await(first).pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("no first batch") })
      )
      for (const [i, f] of kept.entries()) expect(f.data).toEqual(copies[i])
      // every frame the kernel handed to us was either delivered or counted as dropped
      const settled = Effect.gen(function* () {
        const ls = yield* ns.linkStats(nic.name)
        return ls.txPackets === nic.stats.rxFrames + nic.stats.rxDropped && ls.txPackets >= 301
      })
      yield* settled.pipe(
        Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("20 millis") }),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("counters did not settle") })
      )
      expect(nic.stats.rxDropped).toBeGreaterThan(0)
      expect(nic.stats.rxFrames).toBeGreaterThan(0)
    }))

  it.scopedLive("busy polling: the process keeps polling while frames come, and sleeps again once the link is quiet", () =>
    Effect.gen(function* () {
      const ns = yield* withNetns("spin")
      const window = 300 // ms of quiet before the poll loop sleeps again
      const nic = yield* withTapInNetns(ns, {
        mac: OUR_MAC,
        busyPollUs: window * 1000,
        neighbors: [["198.51.100.2", "02:00:00:00:00:02"]]
      })
      let udp = 0
      yield* Effect.forkScoped(
        Stream.runForEach(nic.rx, (batch) =>
          Effect.sync(() => {
            for (const f of batch) if (f.data.length >= 34 && f.data[12] === 0x08 && f.data[13] === 0x00 && f.data[23] === 17) udp++
          })
        )
      )
      // CPU time of this process (user + system, ms) while `during` runs
      const cpuOver = <A, E, R>(during: Effect.Effect<A, E, R>) =>
        Effect.gen(function* () {
          const c0 = process.cpuUsage()
          yield* during
          const c = process.cpuUsage(c0)
          return (c.user + c.system) / 1000
        })
      yield* Effect.sleep("100 millis")
      const quietBefore = yield* cpuOver(Effect.sleep("500 millis"))
      // 20 datagrams 10 ms apart: each one arrives while the loop is still polling from the one before
      const busy = yield* cpuOver(ns.exec("bash", ["-c", "for i in $(seq 1 20); do echo spin-$i > /dev/udp/198.51.100.2/9; sleep 0.01; done"]))
      yield* Effect.sleep(`${window + 200} millis`)
      const quietAfter = yield* cpuOver(Effect.sleep("500 millis"))
      expect(udp).toBe(20)
      // polling costs a core while traffic flows (the exec itself takes >= 200 ms of wall time)...
      expect(busy).toBeGreaterThan(100)
      // ...and nothing once the window has passed: the loop sleeps in epoll again
      expect(quietAfter).toBeLessThan(100)
      expect(quietBefore).toBeLessThan(100)
    }))

  it.scopedLive("the SYN filter (a BPF program in the kernel): a listed source's bare SYNs pass one in 64, everything else passes; a level drops a share of others' SYNs; removing it lets all through", () =>
    Effect.gen(function* () {
      const ns = yield* withNetns("synf")
      const nic = yield* withTapInNetns(ns, { mac: OUR_MAC, neighbors: [["198.51.100.2", "02:00:00:00:00:02"]] })
      const filter = nic.synFilter!
      expect(filter.keepShift).toBe(6)
      // received TCP segments to us, by the source's last octet and "bare SYN" or not
      const seen = new Map<string, number>()
      yield* Effect.forkScoped(
        Stream.runForEach(nic.rx, (batch) =>
          Effect.sync(() => {
            for (const { data: f } of batch) {
              if (f.length < 54 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 6) continue
              const key = `${f[29]}:${(f[47]! & 0x17) === 0x02 ? "syn" : "other"}`
              seen.set(key, (seen.get(key) ?? 0) + 1)
            }
          })
        )
      )
      const count = (src: string, kind: string) => seen.get(`${src}:${kind}`) ?? 0
      // n segments from `src` (spoofed on the kernel side; raw socket), 250 us apart; waits for the last to arrive
      const send = (src: string, flags: string, n: number) =>
        Effect.gen(function* () {
          const before = nic.stats.rxFrames
          yield* ns.exec("bash", ["-c", `hping3 -q ${flags} -p 5001 -a 198.51.100.${src} -c ${n} -i u250 198.51.100.2 >/dev/null 2>&1; true`])
          yield* Effect.sleep("200 millis")
          return nic.stats.rxFrames - before
        })
      yield* Effect.sleep("50 millis")

      expect(filter.set([ipv4(198, 51, 100, 3)], 0)).toBe(true)
      yield* send("3", "-S", 640)
      yield* send("3", "-A", 100)
      yield* send("1", "-S", 100)
      // 640 with p = 1/64: mean 10; 0 has probability e^-10, more than 40 practically none
      expect(count("3", "syn")).toBeGreaterThan(0)
      expect(count("3", "syn")).toBeLessThan(40)
      expect(count("3", "other")).toBe(100) // ACKs pass
      expect(count("1", "syn")).toBe(100) // unlisted sources pass

      // level 32/64: about half of unlisted sources' bare SYNs dropped (400: mean 200, sd 10)
      expect(filter.set([], 32)).toBe(true)
      yield* send("1", "-S", 400)
      expect(count("1", "syn") - 100).toBeGreaterThan(120)
      expect(count("1", "syn") - 100).toBeLessThan(280)

      // removed: everything passes again
      expect(filter.set([], 0)).toBe(true)
      const before = count("3", "syn")
      yield* send("3", "-S", 50)
      expect(count("3", "syn") - before).toBe(50)
    }))

  it.scopedLive("a second concurrent rx consumer fails with reason Read", () =>
    Effect.gen(function* () {
      const ns = yield* withNetns("rx2")
      const nic = yield* withTapInNetns(ns, { mac: OUR_MAC })
      yield* Effect.forkScoped(Stream.runDrain(nic.rx))
      yield* Effect.sleep("20 millis")
      const e = yield* Effect.flip(Stream.runDrain(nic.rx))
      expect(e.reason).toBe("Read")
    }))

  it.scopedLive("open errors: bad name -> Open, missing device node -> NoDevice", () =>
    Effect.gen(function* () {
      const tooLong = yield* Effect.flip(Tap.make({ name: "x".repeat(20), mac: OUR_MAC }))
      expect(tooLong.reason).toBe("Open")
      const slash = yield* Effect.flip(Tap.make({ name: "bad/name", mac: OUR_MAC }))
      expect(slash.reason).toBe("Open")
      const noDev = yield* Effect.flip(
        Tap.make({ name: uniqueIfName("mt"), mac: OUR_MAC, devicePath: "/nonexistent/net/tun" })
      )
      expect(noDev.reason).toBe("NoDevice")
      expect(noDev.message).toContain("modprobe tun")
    }))

  it.scopedLive("without CAP_NET_ADMIN: creating fails (-> Permission), attaching to an owned persistent TAP works", () =>
    Effect.gen(function* () {
      const ns = yield* withNetns("perm")
      const owned = uniqueIfName("mp")
      yield* ns.ip(["tuntap", "add", "dev", owned, "mode", "tap", "user", "65534"])
      // This machine's /dev/net/tun is mode 0600; a private world-accessible node (same major/minor
      // 10:200) stands in for a distribution's default 0666 /dev/net/tun.
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(path.join(tmpdir(), "mpx-tun-"))),
        (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
      )
      chmodSync(dir, 0o755)
      const node = path.join(dir, "tun")
      yield* run("mknod", ["-m", "666", node, "c", "10", "200"])
      // a copy of the addon the unprivileged user can read (the checkout may sit in a 0700 directory)
      const addonPath = path.join(dir, "tap.node")
      copyFileSync(path.resolve("build/Release/tap.node"), addonPath)
      chmodSync(addonPath, 0o644)
      const script = (name: string, devPath: string) =>
        `const a=require(${JSON.stringify(addonPath)});` +
        `try{const r=a.open(${JSON.stringify(name)},{vnetHdr:false,offload:false,path:${JSON.stringify(devPath)}});` +
        `console.log(JSON.stringify({ok:true,name:r.name}));a.close(r.fd)}` +
        `catch(e){console.log(JSON.stringify({ok:false,code:e.code,message:e.message}))}`
      const asNobody = (name: string, devPath: string) =>
        ns
          .exec("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script(name, devPath)])
          .pipe(Effect.map((r) => JSON.parse(r.stdout) as { ok: boolean; code?: string; name?: string; message?: string }))
      // the machine's node: not even open() is allowed
      const noNode = yield* asNobody(uniqueIfName("mq"), "/dev/net/tun")
      expect(noNode.ok).toBe(false)
      expect(["EACCES", "EPERM"]).toContain(noNode.code)
      // an accessible node, but creating a TAP needs CAP_NET_ADMIN: TUNSETIFF says EPERM
      const denied = yield* asNobody(uniqueIfName("mq"), node)
      expect(denied.ok).toBe(false)
      expect(denied.code).toBe("EPERM")
      expect(denied.message).toContain("ip tuntap add")
      for (const code of [noNode.code!, denied.code!]) {
        expect(Tap.openError("x", Object.assign(new Error(code), { code })).reason).toBe("Permission")
      }
      // attaching to a persistent TAP owned by the user works without privileges
      const attached = yield* asNobody(owned, node)
      expect(attached).toEqual({ ok: true, name: owned })
    }))
})
