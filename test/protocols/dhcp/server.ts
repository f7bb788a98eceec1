/** A scripted DHCP server's replies, for machine and layer tests (RFC 5737 addresses). */
import { ipv4, type Ipv4Address } from "../../../src/protocols/address.js"
import * as W from "../../../src/protocols/dhcp/wire.js"

export const SERVER = ipv4(198, 51, 100, 1)
export const LEASED = ipv4(198, 51, 100, 50)

export interface ReplyOptions {
  readonly yiaddr?: Ipv4Address
  readonly serverId?: Ipv4Address | null
  readonly prefix?: number | null
  readonly router?: Ipv4Address | null
  readonly leaseS?: number | null
  readonly renewalS?: number
  readonly rebindingS?: number
  readonly xid?: number
}

/** A reply of `type` to the client request `req`. Defaults: 198.51.100.50/24, gw .1, lease 120 s. */
export const reply = (type: number, req: W.DhcpRepr, o: ReplyOptions = {}): W.DhcpRepr => {
  const serverId = o.serverId === undefined ? SERVER : o.serverId
  const prefix = o.prefix === undefined ? 24 : o.prefix
  const router = o.router === undefined ? SERVER : o.router
  const leaseS = o.leaseS === undefined ? 120 : o.leaseS
  const nak = type === W.DHCPNAK
  return {
    op: W.OP_REPLY,
    xid: o.xid ?? req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: 0 as Ipv4Address,
    yiaddr: nak ? (0 as Ipv4Address) : (o.yiaddr ?? (req.ciaddr !== 0 ? req.ciaddr : LEASED)),
    siaddr: 0 as Ipv4Address,
    giaddr: 0 as Ipv4Address,
    chaddr: req.chaddr,
    messageType: type,
    ...(serverId !== null ? { serverId } : {}),
    ...(!nak && prefix !== null ? { prefix } : {}),
    ...(!nak && router !== null ? { router } : {}),
    ...(!nak && leaseS !== null ? { leaseS } : {}),
    ...(!nak && o.renewalS !== undefined ? { renewalS: o.renewalS } : {}),
    ...(!nak && o.rebindingS !== undefined ? { rebindingS: o.rebindingS } : {})
  }
}
