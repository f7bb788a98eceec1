/**
 * The connection table's resource model on its own: every count returns to zero whatever path a
 * connection leaves by, per-source bounds, TIME-WAIT recycling oldest first.
 */
import { describe, expect, it } from "vitest"
import * as M from "../../src/protocols/tcp/machine.js"
import * as W from "../../src/protocols/tcp/wire.js"
import { Conn, ConnTable, connKey, connKey6, type Listener, type TableStats } from "../../src/layers/tcp/Table.js"
import { parseIpv6 } from "../../src/protocols/ipv6/address.js"
import type { SeqNum } from "../../src/protocols/tcp/seq.js"

const stats = (): TableStats => ({
  connections: 0, established: 0, halfOpen: 0, timeWait: 0, timeWaitRecycled: 0, tableFullDrops: 0, perSourceRefusals: 0,
  memoryCommitted: 0, drops: {}
})
const limits = { maxConnections: 4, perSourceConnections: 3, maxHalfOpen: 10, perSourceHalfOpen: 2, maxTimeWait: 2 }
const out: M.Output = { segment: () => {}, deliver: () => {} }
const cfg = M.makeConfig({ sendBufBytes: 8192, recvBufBytes: 8192 })
const listener = (): Listener => ({ port: 80, backlog: 100, cfg, cfg6: cfg, accept: undefined as never, pending: 0, cookieAt: -Infinity, boundAt: -Infinity })

let id = 0
const halfOpen = (l: Listener, src: number, port: number): Conn => {
  const syn = W.make({ srcPort: port, dstPort: 80, seq: 1 as SeqNum, flags: W.SYN, mss: 1460 })
  const t = M.acceptSyn(cfg, syn, { addr: 1, port: 80 }, { addr: src, port }, 1000, 0, out)
  l.pending++
  return new Conn(++id, connKey(src, port), t, l)
}

describe("ConnTable", () => {
  it("counts live, half-open and committed memory, and every count returns to zero on removal (twice is harmless)", () => {
    const s = stats()
    const table = new ConnTable(limits, s)
    const l = listener()
    const c = halfOpen(l, 7, 1000)
    table.insert(c)
    expect(s).toMatchObject({ connections: 1, halfOpen: 1, memoryCommitted: 0 }) // half-open: nothing committed
    expect(table.find(80, connKey(7, 1000))).toBe(c)
    expect(table.halfOpenFull(l, 7)).toBe(false)
    const d = halfOpen(l, 7, 1001)
    table.insert(d)
    expect(table.halfOpenFull(l, 7)).toBe(true) // 2 per source
    expect(table.halfOpenFull(l, 8)).toBe(false)
    expect(s).toMatchObject({ connections: 2, halfOpen: 2, memoryCommitted: 0 })
    expect(table.established(c)).toBe(true) // its rings are committed now
    expect(table.established(c)).toBe(false) // once
    expect(s).toMatchObject({ connections: 2, halfOpen: 1, memoryCommitted: 16384 })
    expect(table.committedBy(7)).toBe(16384)
    expect(table.halfOpenFull(l, 7)).toBe(false)
    table.remove(c)
    table.remove(c)
    expect(s).toMatchObject({ connections: 1, halfOpen: 1, memoryCommitted: 0 })
    expect(table.committedBy(7)).toBe(0)
    expect(l.pending).toBe(1)
    expect(table.find(80, connKey(7, 1000))).toBeUndefined()
    table.remove(d) // removed half-open: it had committed nothing, and nothing goes negative
    expect(s).toMatchObject({ connections: 0, halfOpen: 0, memoryCommitted: 0 })
    expect(l.pending).toBe(0)
  })

  it("commits what the rings are at establishment (resized), and an active open or a cookie connection when inserted", () => {
    const s = stats()
    const table = new ConnTable(limits, s)
    const l = listener()
    const c = halfOpen(l, 7, 1000)
    table.insert(c)
    expect(M.resizeRings(c.tcb, 4096, 4096)).toBe(true) // the receive ring keeps the SYN-ACK's 8192
    table.established(c)
    expect(s.memoryCommitted).toBe(4096 + 8192)
    const a = new Conn(++id, connKey(9, 80), M.connect(cfg, { addr: 1, port: 40000 }, { addr: 9, port: 80 }, 1, 0, out), undefined)
    table.insert(a)
    expect(a.tcb.state).toBe("SynSent")
    expect(s.memoryCommitted).toBe(4096 + 8192 + 16384)
    expect(table.established(a)).toBe(false) // committed already
    expect(s.memoryCommitted).toBe(4096 + 8192 + 16384)
    const ack = W.make({ srcPort: 1002, dstPort: 80, seq: 101 as SeqNum, ack: 2001 as SeqNum, flags: W.ACK })
    const k = new Conn(++id, connKey(8, 1002), M.acceptCookie(cfg, cfg, ack, { addr: 1, port: 80 }, { addr: 8, port: 1002 }, 1460, 0), l)
    l.pending++ // as the shell does for a cookie connection
    table.insert(k)
    expect(k.tcb.state).toBe("Established")
    expect(s).toMatchObject({ halfOpen: 0, memoryCommitted: 4096 + 8192 + 2 * 16384 })
    expect(table.established(k)).toBe(false)
    for (const x of [a, c, k]) table.remove(x)
    expect(s.memoryCommitted).toBe(0)
  })

  it("admits up to the per-source and total bounds, counting each refusal by reason", () => {
    const s = stats()
    const table = new ConnTable(limits, s)
    const l = listener()
    for (let i = 0; i < 3; i++) table.insert(halfOpen(l, 7, 2000 + i))
    expect(table.admitLive(7)).toBe(false)
    expect(table.admitLive(8)).toBe(true)
    table.insert(halfOpen(l, 8, 2000))
    expect(table.admitLive(9)).toBe(false)
    expect(s).toMatchObject({ perSourceRefusals: 1, tableFullDrops: 1, drops: { PerSourceLimit: 1, TableFull: 1 } })
  })

  it("TIME-WAIT leaves the live counts, is bounded, and recycles the oldest first", () => {
    const s = stats()
    const table = new ConnTable(limits, s)
    const l = listener()
    const cs = [0, 1, 2].map((i) => halfOpen(l, 7, 3000 + i))
    for (const c of cs) {
      table.insert(c)
      table.established(c)
      c.accepted = true
      l.pending--
      c.tcb.state = "TimeWait"
      table.enterTimeWait(c)
    }
    expect(s).toMatchObject({ connections: 0, halfOpen: 0, timeWait: 2, timeWaitRecycled: 1, memoryCommitted: 0 })
    expect(cs[0]!.removed).toBe(true)
    expect(cs[1]!.removed || cs[2]!.removed).toBe(false)
    expect(table.admitLive(7)).toBe(true) // TIME-WAIT does not count against the per-source bound
    for (const c of cs) table.remove(c)
    expect(s).toMatchObject({ connections: 0, halfOpen: 0, timeWait: 0, memoryCommitted: 0 })
  })

  it("IPv6 sources count by their /64 (one host may take any address of it); another /64 is another source", () => {
    const s = stats()
    const table = new ConnTable(limits, s)
    const l = listener()
    const a1 = parseIpv6("2001:db8:0:1::1")!
    const a2 = parseIpv6("2001:db8:0:1::ffff:2")!
    const other = parseIpv6("2001:db8:0:2::1")!
    const open6 = (src: string, port: number): Conn => {
      const syn = W.make({ srcPort: port, dstPort: 80, seq: 1 as SeqNum, flags: W.SYN, mss: 1440 })
      const t = M.acceptSyn(cfg, syn, { addr: parseIpv6("2001:db8::2")!, port: 80 }, { addr: src, port }, 1000, 0, out)
      l.pending++
      return new Conn(++id, connKey6(src, port), t, l)
    }
    const c1 = open6(a1, 1000)
    table.insert(c1)
    table.insert(open6(a2, 1000))
    expect(table.find(80, connKey6(a1, 1000))).toBe(c1)
    expect(table.find(80, connKey6(a2, 1000))).not.toBe(c1)
    // 2 half-open per source: both addresses of 2001:db8:0:1::/64 used them up, the other /64 has its own
    expect(table.halfOpenFull(l, parseIpv6("2001:db8:0:1::3")!)).toBe(true)
    expect(table.halfOpenFull(l, other)).toBe(false)
    table.insert(open6(a1, 1001))
    // 3 live per source
    expect(table.admitLive(parseIpv6("2001:db8:0:1:aaaa::9")!)).toBe(false)
    expect(s.perSourceRefusals).toBe(1)
    expect(table.admitLive(other)).toBe(true)
    // an IPv4 key never finds an IPv6 connection
    expect(table.find(80, connKey(0x20010db8, 1000))).toBeUndefined()
    for (const c of [...table.all(true)]) table.remove(c)
    expect(s).toMatchObject({ connections: 0, halfOpen: 0, memoryCommitted: 0 })
  })
})
