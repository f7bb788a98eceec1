/**
 * The DHCP client machine, state by state, with time as an input (the shell's TestClock tests are in
 * test/layers/dhcp.test.ts). Random is fixed at 0.5, so retransmissions have no jitter.
 */
import { describe, expect, it } from "vitest"
import { ipv4, mac, type MacAddress } from "../../../src/protocols/address.js"
import * as M from "../../../src/protocols/dhcp/machine.js"
import * as W from "../../../src/protocols/dhcp/wire.js"
import { LEASED, SERVER, reply, type ReplyOptions } from "./server.js"

const MAC = mac(0x0200, 0x00000002) as MacAddress
const BCAST = 0xffffffff

const sends = (out: ReadonlyArray<M.Action>) => out.filter((a): a is Extract<M.Action, { _tag: "Send" }> => a._tag === "Send")
const only = (out: ReadonlyArray<M.Action>) => {
  const s = sends(out)
  expect(s).toHaveLength(1)
  return s[0]!
}

/** Poll at `t`, returning what came out. */
const at = (c: M.Client, t: number): Array<M.Action> => {
  const out: Array<M.Action> = []
  M.poll(c, t, out)
  return out
}
const recv = (c: M.Client, m: W.DhcpRepr, t: number): Array<M.Action> => {
  const out: Array<M.Action> = []
  M.input(c, m, t, out)
  return out
}
/** Messages go through the codec both ways, as on the wire. */
const wire = (m: W.DhcpRepr): W.DhcpRepr => {
  const r = W.parse(W.encode(m))
  if (typeof r === "string") throw new Error(r)
  return r
}

/** A client bound at t=1000 ms with the given ACK options (OFFER at 500). */
const bound = (ack: ReplyOptions = {}, cfg: Partial<M.Config> = {}) => {
  const c = M.make(MAC, 0, () => 0.5, cfg)
  const d = only(at(c, 0))
  const req = only(recv(c, wire(reply(W.DHCPOFFER, d.msg)), 500))
  const out = recv(c, wire(reply(W.DHCPACK, req.msg, ack)), 1000)
  expect(c.state).toBe("Bound")
  return { c, out }
}

describe("DHCP machine: Init and Selecting", () => {
  it("sends a DISCOVER at once, broadcast from nothing, with client id and parameter list", () => {
    const c = M.make(MAC, 0, () => 0.5)
    expect(M.pollAt(c)).toBe(0)
    const s = only(at(c, 0))
    expect(s.dst).toBe(BCAST)
    expect(s.msg).toMatchObject({ op: W.OP_REQUEST, messageType: W.DHCPDISCOVER, ciaddr: 0, chaddr: MAC, xid: c.xid })
    expect(wire(s.msg).paramList).toEqual([1, 3, 51, 54, 58, 59])
    expect(Array.from(wire(s.msg).clientId!)).toEqual([1, 2, 0, 0, 0, 0, 2])
    expect(c.state).toBe("Selecting")
  })

  it("a lost OFFER: the DISCOVER is repeated after 4, 8, 16, 32, 64, 64 s with the same xid", () => {
    const c = M.make(MAC, 0, () => 0.5)
    at(c, 0)
    const xid = c.xid
    let t = 0
    for (const gap of [4000, 8000, 16_000, 32_000, 64_000, 64_000]) {
      expect(M.pollAt(c)).toBe(t + gap)
      expect(at(c, t + gap - 1)).toHaveLength(0)
      t += gap
      expect(only(at(c, t)).msg).toMatchObject({ messageType: W.DHCPDISCOVER, xid })
    }
    expect(c.counters.discoversOut).toBe(7)
  })

  it("retransmissions are jittered by at most ±1 s", () => {
    expect(M.backoffMs(M.make(MAC, 0, () => 0), 0)).toBe(3000)
    expect(M.backoffMs(M.make(MAC, 0, () => 0.999999), 0)).toBe(5000)
  })

  it("an OFFER is answered with a broadcast REQUEST naming the address and the server", () => {
    const c = M.make(MAC, 0, () => 0.5)
    const d = only(at(c, 0))
    const r = only(recv(c, wire(reply(W.DHCPOFFER, d.msg)), 700))
    expect(r.dst).toBe(BCAST)
    expect(r.msg).toMatchObject({ messageType: W.DHCPREQUEST, requestedIp: LEASED, serverId: SERVER, ciaddr: 0, xid: d.msg.xid })
    expect(c.state).toBe("Requesting")
  })

  it("ignores replies with another xid or MAC, OFFERs without a server id or with unusable addresses", () => {
    const c = M.make(MAC, 0, () => 0.5)
    const d = only(at(c, 0))
    expect(recv(c, wire(reply(W.DHCPOFFER, d.msg, { xid: d.msg.xid ^ 1 })), 1)).toHaveLength(0)
    expect(recv(c, wire({ ...reply(W.DHCPOFFER, d.msg), chaddr: mac(0x0200, 9) }), 1)).toHaveLength(0)
    expect(recv(c, wire(reply(W.DHCPOFFER, d.msg, { serverId: null })), 1)).toHaveLength(0)
    for (const bad of [ipv4(0, 0, 0, 9), ipv4(127, 0, 0, 1), ipv4(224, 0, 0, 1), ipv4(198, 51, 100, 0), ipv4(198, 51, 100, 255)]) {
      expect(recv(c, wire(reply(W.DHCPOFFER, d.msg, { yiaddr: bad })), 1)).toHaveLength(0)
    }
    expect(recv(c, wire(reply(W.DHCPACK, d.msg)), 1)).toHaveLength(0) // ACK while selecting
    expect(c.state).toBe("Selecting")
    expect(c.counters.ignoredIn).toBe(9)
  })
})

describe("DHCP machine: Requesting", () => {
  it("ACK binds: address, prefix, gateway, lease times", () => {
    const { c, out } = bound()
    expect(out).toEqual([
      {
        _tag: "Bind",
        renewed: false,
        lease: { address: LEASED, prefix: 24, gateway: SERVER, serverId: SERVER, leaseS: 120, t1S: 60, t2S: 105, infinite: false, acquiredAtMs: 1000 }
      }
    ])
    expect(M.pollAt(c)).toBe(61_000)
  })

  it("a lost ACK: the REQUEST is repeated with back-off, then the client starts over after 4", () => {
    const c = M.make(MAC, 0, () => 0.5)
    const d = only(at(c, 0))
    recv(c, wire(reply(W.DHCPOFFER, d.msg)), 0)
    expect(only(at(c, 4000)).msg.messageType).toBe(W.DHCPREQUEST)
    expect(only(at(c, 12_000)).msg.messageType).toBe(W.DHCPREQUEST)
    expect(only(at(c, 28_000)).msg.messageType).toBe(W.DHCPREQUEST)
    expect(c.counters.requestsOut).toBe(4)
    const restart = only(at(c, 60_000))
    expect(restart.msg.messageType).toBe(W.DHCPDISCOVER)
    expect(c.state).toBe("Selecting")
    expect(c.counters.restarts).toBe(1)
  })

  it("an ACK for another address or from another server is ignored", () => {
    const c = M.make(MAC, 0, () => 0.5)
    const d = only(at(c, 0))
    const r = only(recv(c, wire(reply(W.DHCPOFFER, d.msg)), 0))
    expect(recv(c, wire(reply(W.DHCPACK, r.msg, { yiaddr: ipv4(198, 51, 100, 51) })), 1)).toHaveLength(0)
    expect(recv(c, wire(reply(W.DHCPACK, r.msg, { serverId: ipv4(198, 51, 100, 9) })), 1)).toHaveLength(0)
    expect(c.state).toBe("Requesting")
  })

  it("NAK: back to Init, a new DISCOVER after the restart delay", () => {
    const c = M.make(MAC, 0, () => 0.5)
    const d = only(at(c, 0))
    const r = only(recv(c, wire(reply(W.DHCPOFFER, d.msg)), 0))
    expect(recv(c, wire(reply(W.DHCPNAK, r.msg)), 100)).toEqual([])
    expect(c.state).toBe("Init")
    expect(M.pollAt(c)).toBe(2100)
    expect(at(c, 2099)).toHaveLength(0)
    expect(only(at(c, 2100)).msg.messageType).toBe(W.DHCPDISCOVER)
    expect(c.counters.naksIn).toBe(1)
  })
})

describe("DHCP machine: lease times", () => {
  const cfg = M.DEFAULT_CONFIG
  it("T1 and T2 from the server when 0 < T1 < T2 < lease", () => {
    expect(M.leaseTimes(cfg, 1000, 300, 600)).toEqual({ leaseS: 1000, t1S: 300, t2S: 600, infinite: false })
  })
  it("falls back to 0.5 and 0.875 of the lease when T1 >= T2, T2 >= lease, or zero", () => {
    const d = { leaseS: 1000, t1S: 500, t2S: 875, infinite: false }
    expect(M.leaseTimes(cfg, 1000, 700, 600)).toEqual(d)
    expect(M.leaseTimes(cfg, 1000, 900, 800)).toEqual(d)
    expect(M.leaseTimes(cfg, 1000, 0, 0)).toEqual(d)
    expect(M.leaseTimes(cfg, 1000, 300, 2000)).toEqual({ leaseS: 1000, t1S: 300, t2S: 875, infinite: false })
    expect(M.leaseTimes(cfg, 1000, undefined, undefined)).toEqual(d)
  })
  it("no lease time: the default; tiny lease: the minimum; 0xffffffff: infinite", () => {
    expect(M.leaseTimes(cfg, undefined, undefined, undefined).leaseS).toBe(3600)
    expect(M.leaseTimes(cfg, 0, undefined, undefined)).toEqual({ leaseS: 10, t1S: 5, t2S: 8, infinite: false })
    expect(M.leaseTimes(cfg, W.INFINITE, undefined, undefined).infinite).toBe(true)
  })
  it("an infinite lease never renews", () => {
    const { c } = bound({ leaseS: W.INFINITE })
    expect(M.pollAt(c)).toBe(Infinity)
    expect(at(c, 1e12)).toHaveLength(0)
  })
  it("a malformed mask falls back to the natural prefix; a router outside the subnet is not used", () => {
    const { out } = bound({ prefix: null, router: ipv4(203, 0, 113, 1) })
    expect(out[0]).toMatchObject({ _tag: "Bind", lease: { prefix: 24, gateway: undefined } })
  })
})

describe("DHCP machine: Bound, Renewing, Rebinding", () => {
  it("at T1 renews by unicast to the server (ciaddr set, no server id); the ACK extends the lease", () => {
    const { c } = bound()
    expect(at(c, 60_999)).toHaveLength(0)
    const r = only(at(c, 61_000))
    expect(c.state).toBe("Renewing")
    expect(r.dst).toBe(SERVER)
    expect(r.msg).toMatchObject({ messageType: W.DHCPREQUEST, ciaddr: LEASED })
    expect(r.msg.serverId).toBeUndefined()
    expect(r.msg.requestedIp).toBeUndefined()
    const out = recv(c, wire(reply(W.DHCPACK, r.msg)), 61_500)
    expect(out).toEqual([{ _tag: "Bind", renewed: true, lease: expect.objectContaining({ address: LEASED, acquiredAtMs: 61_500 }) }])
    expect(c.state).toBe("Bound")
    expect(M.pollAt(c)).toBe(121_500)
    expect(c.counters.renewals).toBe(1)
  })

  it("no answer while renewing: repeats after half the time to T2 (at least 10 s), broadcasts at T2, drops the address at expiry and starts over", () => {
    const { c } = bound()
    at(c, 61_000) // REQUEST #1, T2 at 106 s: next at 61 + 22.5 s
    expect(M.pollAt(c)).toBe(83_500)
    expect(only(at(c, 83_500)).dst).toBe(SERVER)
    expect(M.pollAt(c)).toBe(94_750) // half of 22.5 s = 11.25 s
    expect(only(at(c, 94_750)).dst).toBe(SERVER)
    expect(M.pollAt(c)).toBe(104_750) // 5.6 s left is below the 10 s minimum
    expect(only(at(c, 104_750)).dst).toBe(SERVER)
    expect(M.pollAt(c)).toBe(106_000) // the next one would be after T2: T2 comes first
    const rb = only(at(c, 106_000))
    expect(c.state).toBe("Rebinding")
    expect(rb.dst).toBe(BCAST)
    expect(rb.msg).toMatchObject({ messageType: W.DHCPREQUEST, ciaddr: LEASED })
    expect(M.pollAt(c)).toBe(116_000)
    expect(only(at(c, 116_000)).dst).toBe(BCAST)
    const exp = at(c, 121_000)
    expect(exp[0]).toEqual({ _tag: "Unbind", reason: "Expired", address: LEASED })
    expect(exp[1]).toMatchObject({ _tag: "Send", dst: BCAST, msg: { messageType: W.DHCPDISCOVER, ciaddr: 0 } })
    expect(c.state).toBe("Selecting")
    expect(c.lease).toBeUndefined()
    expect(c.counters).toMatchObject({ renewals: 1, rebinds: 1, expiries: 1 })
  })

  it("a clock jump past expiry goes straight from Bound to a new DISCOVER", () => {
    const { c } = bound()
    const out = at(c, 10_000_000)
    expect(out.map((a) => a._tag)).toEqual(["Unbind", "Send"])
  })

  it("an ACK while rebinding, from another server, is taken", () => {
    const { c } = bound()
    at(c, 61_000)
    at(c, 106_000)
    const other = ipv4(198, 51, 100, 3)
    const r = only(at(c, 116_000))
    const out = recv(c, wire(reply(W.DHCPACK, r.msg, { serverId: other })), 117_000)
    expect(out[0]).toMatchObject({ _tag: "Bind", renewed: true, lease: { serverId: other } })
  })

  it("NAK while renewing drops the address and starts over", () => {
    const { c } = bound()
    const r = only(at(c, 61_000))
    const out = recv(c, wire(reply(W.DHCPNAK, r.msg)), 61_100)
    expect(out).toEqual([{ _tag: "Unbind", reason: "Nak", address: LEASED }])
    expect(c.state).toBe("Init")
  })

  it("replies while Bound are ignored; a new address on renewal is not 'renewed'", () => {
    const { c } = bound()
    expect(recv(c, wire(reply(W.DHCPACK, { ...only(at(M.make(MAC, 0, () => 0.5), 0)).msg, xid: c.xid })), 2000)).toHaveLength(0)
    const r = only(at(c, 61_000))
    const out = recv(c, wire(reply(W.DHCPACK, r.msg, { yiaddr: ipv4(198, 51, 100, 51) })), 61_100)
    expect(out[0]).toMatchObject({ _tag: "Bind", renewed: false, lease: { address: ipv4(198, 51, 100, 51) } })
  })

  it("release: a DHCPRELEASE to the server while bound, nothing otherwise", () => {
    const { c } = bound()
    const r = M.release(c, 5000)
    expect(r).toMatchObject({ _tag: "Send", dst: SERVER, msg: { messageType: W.DHCPRELEASE, ciaddr: LEASED, serverId: SERVER } })
    expect(M.release(M.make(MAC, 0), 0)).toBeUndefined()
  })

  it("counts messages with malformed options (the rest of the message still counts)", () => {
    const c = M.make(MAC, 0, () => 0.5)
    const d = only(at(c, 0))
    const b = W.encode(reply(W.DHCPOFFER, d.msg))
    // turn the lease option's length into 2 (then 2 stray bytes follow as an unknown option)
    let i = 240
    while (!(b[i] === 51 && b[i + 1] === 4 && b[i + 5] === 120)) i++
    b[i + 1] = 2
    const m = W.parse(b)
    if (typeof m === "string") throw new Error(m)
    expect(m.ignoredOptions).toBe(1)
    expect(recv(c, m, 1)).toHaveLength(1)
    expect(c.counters.badOptionsIn).toBe(1)
    expect(c.state).toBe("Requesting")
  })
})
