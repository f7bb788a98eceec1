/**
 * Frames out of the TCP layer: segments the machine emits (checksum completed by the NIC when it
 * offloads, TSO super-frames described in the virtio metadata), segments without a connection (RSTs
 * for closed ports, SYN-ACKs carrying cookies), and in-order payload delivered to a connection's sink or
 * kept until the application installs one.
 *
 * The family is the remote address's type (a number for IPv4, a string for IPv6), looked at once per
 * segment: IPv6 segments get the IPv6 pseudo-header, their frame from the Ipv6 layer (the TCP header at
 * L4_OFFSET6) and, with offloads, partial checksums and VIRTIO_NET_HDR_GSO_TCPV6 super-frames.
 */
import type { Ipv4Address } from "../../protocols/address.js"
import * as Cs from "../../protocols/checksum.js"
import type { Ipv6Address } from "../../protocols/ipv6/address.js"
import * as Ip from "../../protocols/ipv4/wire.js"
import * as Ip6 from "../../protocols/ipv6/wire.js"
import * as M from "../../protocols/tcp/machine.js"
import * as W from "../../protocols/tcp/wire.js"
import { PLAIN, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_TCPV6, type VnetMeta } from "../../nic/Frame.js"
import type { NicCaps } from "../../nic/Nic.js"
import { L4_OFFSET, type Ipv4Shape } from "../Ipv4.js"
import { L4_OFFSET6, type Ipv6Shape } from "../Ipv6.js"
import type { TcpStats } from "./Api.js"
import type { ConnTable } from "./Table.js"

/** Meta of a segment whose TCP checksum the NIC completes (virtio NEEDS_CSUM), no segmentation. */
const CSUM_ONLY: VnetMeta = Object.freeze({
  flags: VNET_F_NEEDS_CSUM,
  gsoType: 0,
  hdrLen: 0,
  gsoSize: 0,
  csumStart: L4_OFFSET,
  csumOffset: W.CHECKSUM_OFFSET
})
const CSUM_ONLY6: VnetMeta = Object.freeze({ ...CSUM_ONLY, csumStart: L4_OFFSET6 })

export interface TcpOutput {
  /** The machine's output: segments to frames, payload to the connection. */
  readonly out: M.Output
  /** A segment of no connection (always checksummed in software); `local` is our address it answers from (IPv6). */
  readonly sendBare: (repr: W.TcpRepr, remote: number | string, local: number | string) => void
}

/**
 * The virtio metadata of one outgoing segment: none without offload; the family's one shared record when the NIC only
 * checksums it; a record of its own for a TSO frame (gso_size = the MSS).
 */
const txMeta = (
  offload: boolean,
  payloadLen: number,
  mss: number,
  headerLen: number,
  l4Offset: number,
  csumOnly: VnetMeta,
  gsoType: number
): VnetMeta =>
  !offload
    ? PLAIN
    : payloadLen <= mss
      ? csumOnly
      : { flags: VNET_F_NEEDS_CSUM, gsoType, hdrLen: l4Offset + headerLen, gsoSize: mss, csumStart: l4Offset, csumOffset: W.CHECKSUM_OFFSET }

export const makeOutput = (ip: Ipv4Shape, ip6: Ipv6Shape, caps: NicCaps, stats: TcpStats, table: ConnTable, earlyLimit: number): TcpOutput => {
  const segment6 = (tcb: M.Tcb, repr: W.TcpRepr): void => {
    const hl = W.headerLen(repr)
    const l4Len = hl + repr.payloadLen
    const f = ip6.alloc(l4Len)
    if (repr.payloadLen > 0) M.copyPayload(tcb, repr.seq, repr.payloadLen, f, L4_OFFSET6 + hl)
    const src = tcb.local.addr as Ipv6Address
    const dst = tcb.remote.addr as Ipv6Address
    const offload = caps.txChecksumOffload
    W.emit(repr, f.subarray(L4_OFFSET6, L4_OFFSET6 + l4Len), Cs.pseudoV6(src, dst, Ip6.NH_TCP, l4Len), !offload)
    const meta = txMeta(offload, repr.payloadLen, tcb.sndMss, hl, L4_OFFSET6, CSUM_ONLY6, VNET_GSO_TCPV6)
    stats.segmentsOut++
    if ((repr.flags & W.RST) !== 0) stats.resetsOut++
    ip6.send(f, src, dst, Ip6.NH_TCP, l4Len, { meta })
  }

  const out: M.Output = {
    segment(tcb, repr) {
      if (typeof tcb.remote.addr !== "number") return segment6(tcb, repr)
      const hl = W.headerLen(repr)
      const l4Len = hl + repr.payloadLen
      const f = ip.alloc(l4Len)
      if (repr.payloadLen > 0) M.copyPayload(tcb, repr.seq, repr.payloadLen, f, L4_OFFSET + hl)
      const src = ip.address()
      const dst = tcb.remote.addr as Ipv4Address
      const pseudo = Cs.pseudoV4(src, dst, Ip.PROTO_TCP, l4Len)
      const offload = caps.txChecksumOffload
      W.emit(repr, f.subarray(L4_OFFSET, L4_OFFSET + l4Len), pseudo, !offload)
      const meta = txMeta(offload, repr.payloadLen, tcb.sndMss, hl, L4_OFFSET, CSUM_ONLY, VNET_GSO_TCPV4)
      stats.segmentsOut++
      if ((repr.flags & W.RST) !== 0) stats.resetsOut++
      ip.send(f, dst, Ip.PROTO_TCP, l4Len, { meta, dontFragment: true })
    },
    deliver(tcb, buf, start, end) {
      const c = table.ofTcb(tcb)
      if (c === undefined) return
      c.received += end - start
      if (c.handler !== undefined) {
        c.handler(buf, start, end)
      } else if (c.earlyBytes < earlyLimit) {
        const n = Math.min(end - start, earlyLimit - c.earlyBytes)
        c.early.push(buf.slice(start, start + n))
        c.earlyBytes += n
      }
    }
  }

  const sendBare = (repr: W.TcpRepr, remote: number | string, local: number | string): void => {
    const hl = W.headerLen(repr)
    if (typeof remote !== "number") {
      const src = local as Ipv6Address
      const f6 = ip6.alloc(hl)
      W.emit(repr, f6.subarray(L4_OFFSET6, L4_OFFSET6 + hl), Cs.pseudoV6(src, remote as Ipv6Address, Ip6.NH_TCP, hl), true)
      stats.segmentsOut++
      if ((repr.flags & W.RST) !== 0) stats.resetsOut++
      ip6.send(f6, src, remote as Ipv6Address, Ip6.NH_TCP, hl)
      return
    }
    const f = ip.alloc(hl)
    W.emit(repr, f.subarray(L4_OFFSET, L4_OFFSET + hl), Cs.pseudoV4(ip.address(), remote, Ip.PROTO_TCP, hl), true)
    stats.segmentsOut++
    if ((repr.flags & W.RST) !== 0) stats.resetsOut++
    ip.send(f, remote as Ipv4Address, Ip.PROTO_TCP, hl)
  }
  return { out, sendBare }
}
