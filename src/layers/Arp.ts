/**
 * ARP (RFC 826) over the Ethernet layer: answers requests for our address, learns senders, resolves next
 * hops for IPv4 with a bounded queue of packets waiting for an answer, announces our address with a
 * gratuitous ARP at start and whenever it changes, and keeps static entries (`-a`) that never expire.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { MAC_BROADCAST, MAC_ZERO, writeMac, type Ipv4Address, type MacAddress } from "../protocols/address.js"
import * as ArpWire from "../protocols/arp/wire.js"
import { ArpCache, DEFAULT_CONFIG, type ArpCacheConfig } from "../protocols/arp/cache.js"
import { checkSender } from "../protocols/arp/sender.js"
import * as Eth from "../protocols/ethernet/wire.js"
import { PLAIN, type Frame } from "../nic/Frame.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Ethernet } from "./Ethernet.js"
import { Interface } from "./Interface.js"

export interface ArpStats {
  requestsIn: number
  repliesIn: number
  requestsOut: number
  repliesOut: number
  /** IPv4 packets dropped while waiting: queue full, or no answer after the retries. */
  pendingDrops: number
  readonly drops: DropCounts
}

export interface ArpShape {
  /**
   * Send a complete Ethernet frame (source MAC and EtherType filled, destination left to us) to the
   * next hop `ip`: at once when its MAC is known, or after resolution (the frame is kept until then).
   */
  readonly output: (frame: Frame, ip: Ipv4Address) => void
  readonly lookup: (ip: Ipv4Address) => MacAddress | undefined
  readonly cacheSize: () => number
  /** Frames queued waiting for an ARP reply (a gauge for Stats). */
  readonly pendingFrames: () => number
  readonly entries: () => ReadonlyArray<{ readonly ip: Ipv4Address; readonly mac: MacAddress; readonly isStatic: boolean }>
  readonly announce: Effect.Effect<void>
  readonly stats: ArpStats
}

export class Arp extends Context.Tag("@miniperf/Arp")<Arp, ArpShape>() {}

export interface ArpOptions {
  readonly staticEntries?: ReadonlyArray<{ readonly ip: Ipv4Address; readonly mac: MacAddress }>
  readonly cache?: Partial<ArpCacheConfig>
}

export const make = (opts: ArpOptions = {}) =>
  Effect.gen(function* () {
    const eth = yield* Ethernet
    const iface = yield* Interface
    const cache = new ArpCache<Frame>({ ...DEFAULT_CONFIG, ...opts.cache })
    for (const e of opts.staticEntries ?? []) cache.addStatic(e.ip, e.mac)
    const stats: ArpStats = { requestsIn: 0, repliesIn: 0, requestsOut: 0, repliesOut: 0, pendingDrops: 0, drops: {} }

    const sendArp = (op: number, dstMac: number, targetMac: number, targetIp: number, senderIp: number): void => {
      const b = new Uint8Array(Eth.HEADER_LEN + ArpWire.PACKET_LEN)
      Eth.emitFields(b, dstMac, eth.mac, Eth.ETHERTYPE_ARP)
      ArpWire.emit(
        {
          op,
          senderMac: eth.mac,
          senderIp: senderIp as Ipv4Address,
          targetMac: targetMac as MacAddress,
          targetIp: targetIp as Ipv4Address
        },
        b.subarray(Eth.HEADER_LEN)
      )
      eth.send({ data: b, meta: PLAIN })
      if (op === ArpWire.OP_REQUEST) stats.requestsOut++
      else stats.repliesOut++
    }

    const request = (ip: Ipv4Address): void => sendArp(ArpWire.OP_REQUEST, MAC_BROADCAST, MAC_ZERO, ip, iface.current().address)

    const deliver = (frames: ReadonlyArray<Frame>, mac: MacAddress): void => {
      for (const f of frames) {
        writeMac(f.data, 0, mac)
        eth.send(f)
      }
    }

    eth.register(Eth.ETHERTYPE_ARP, (frame, nowMs) => {
      const r = ArpWire.parse(Eth.payload(frame.data))
      if (typeof r === "string") {
        countDrop(stats.drops, r)
        return
      }
      if (r.op === ArpWire.OP_REQUEST) stats.requestsIn++
      else stats.repliesIn++
      const cfg = iface.current()
      const our = cfg.address
      const sender = checkSender(r, our, cfg.prefix)
      if (sender === "Probe") return // probes (RFC 5227) teach nothing
      if (sender === "MartianSource") {
        // never learned, never answered: see protocols/arp/sender.ts
        countDrop(stats.drops, "MartianSource")
        return
      }
      const forUs = our !== 0 && r.targetIp === our
      // RFC 826 merge: refresh an existing entry from any packet; add new entries only from packets for us.
      // (learn leaves a static entry as it is; packets waiting for it go to the static MAC)
      if (forUs || cache.hasEntry(r.senderIp)) {
        const mac = cache.isStatic(r.senderIp) ? (cache.lookup(r.senderIp, nowMs) ?? r.senderMac) : r.senderMac
        deliver(cache.learn(r.senderIp, r.senderMac, nowMs), mac)
      }
      if (forUs && r.op === ArpWire.OP_REQUEST) sendArp(ArpWire.OP_REPLY, r.senderMac, r.senderMac, r.senderIp, our)
    })

    const output = (frame: Frame, ip: Ipv4Address): void => {
      if (ip === 0xffffffff || iface.isBroadcast(ip)) {
        writeMac(frame.data, 0, MAC_BROADCAST)
        eth.send(frame)
        return
      }
      const now = eth.nowMs()
      const mac = cache.lookup(ip, now)
      if (mac !== undefined) {
        writeMac(frame.data, 0, mac)
        eth.send(frame)
        return
      }
      if (cache.enqueue(ip, frame, now) === "QueueFull") {
        stats.pendingDrops++
        return
      }
      if (cache.shouldRequest(ip, now)) request(ip)
    }

    const announce = Effect.sync(() => {
      const a = iface.current().address
      if (a !== 0) sendArp(ArpWire.OP_REQUEST, MAC_BROADCAST, MAC_ZERO, a, a)
    }).pipe(Effect.zipRight(eth.flush))

    iface.onChange((c, p) => {
      if (c.address !== 0 && c.address !== p.address) sendArp(ArpWire.OP_REQUEST, MAC_BROADCAST, MAC_ZERO, c.address, c.address)
    })

    // Retries, give-ups and expiry: a once-a-second sweep, plus the retry deadline when sooner.
    yield* Effect.gen(function* () {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const due = cache.nextDeadline()
        const waitMs = due === undefined ? 1000 : Math.max(1, Math.min(1000, due - now))
        yield* Effect.sleep(Duration.millis(waitMs))
        const t = yield* Clock.currentTimeMillis
        const { retry, failed } = cache.tick(t)
        stats.pendingDrops += failed.length
        for (const ip of retry) if (cache.shouldRequest(ip, t)) request(ip)
        if (retry.length > 0) yield* eth.flush
      }
    }).pipe(Effect.forkScoped)

    yield* announce

    return Arp.of({
      output,
      lookup: (ip) => cache.lookup(ip, eth.nowMs()),
      cacheSize: () => cache.size,
      pendingFrames: () => cache.pendingPackets,
      entries: () => cache.entriesSnapshot(),
      announce,
      stats
    })
  })

export const layer = (opts: ArpOptions = {}): Layer.Layer<Arp, never, Ethernet | Interface> => Layer.scoped(Arp, make(opts))
