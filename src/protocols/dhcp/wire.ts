/**
 * DHCP messages (RFC 2131 §2, options per RFC 2132) over the BOOTP layout (RFC 951).
 *
 * `parse` checks the fixed header and then walks the options with every length checked against the
 * bytes present; it never throws. A known option with a wrong length or a nonsensical value (a
 * non-contiguous mask, a zero server id) is ignored and counted in `ignoredOptions`; an option whose
 * length runs past the end of the message makes the whole message `BadOption` (nothing after it can be
 * trusted). Option overload (52) is not honoured: options in `sname`/`file` are not read.
 */
import { readMac, writeMac, type Ipv4Address, type MacAddress } from "../address.js"
import { setU16, setU32, u16, u32 } from "../bytes.js"
import type { DropReason } from "../drop.js"

const F = {
  OP: 0,
  HTYPE: 1,
  HLEN: 2,
  HOPS: 3,
  XID: 4,
  SECS: 8,
  FLAGS: 10,
  CIADDR: 12,
  YIADDR: 16,
  SIADDR: 20,
  GIADDR: 24,
  CHADDR: 28,
  SNAME: 44,
  FILE: 108,
  MAGIC: 236,
  OPTIONS: 240
} as const

export const OPTIONS_OFFSET = F.OPTIONS
/** Many servers ignore BOOTP messages shorter than this (RFC 951's 300-byte minimum). */
export const MIN_MESSAGE_LEN = 300
export const MAGIC_COOKIE = 0x63825363
export const SERVER_PORT = 67
export const CLIENT_PORT = 68

export const OP_REQUEST = 1
export const OP_REPLY = 2
export const HTYPE_ETHERNET = 1
export const FLAG_BROADCAST = 0x8000

export const DHCPDISCOVER = 1
export const DHCPOFFER = 2
export const DHCPREQUEST = 3
export const DHCPDECLINE = 4
export const DHCPACK = 5
export const DHCPNAK = 6
export const DHCPRELEASE = 7

export const OPT_PAD = 0
export const OPT_SUBNET_MASK = 1
export const OPT_ROUTER = 3
export const OPT_REQUESTED_IP = 50
export const OPT_LEASE_TIME = 51
export const OPT_MESSAGE_TYPE = 53
export const OPT_SERVER_ID = 54
export const OPT_PARAM_LIST = 55
export const OPT_MESSAGE = 56
export const OPT_RENEWAL_TIME = 58
export const OPT_REBINDING_TIME = 59
export const OPT_CLIENT_ID = 61
export const OPT_END = 255

/** Lease time meaning "infinite" (RFC 2131 §3.3). */
export const INFINITE = 0xffffffff

/** One DHCP message, as much of it as this stack uses. Times are in seconds, as on the wire. */
export interface DhcpRepr {
  readonly op: number
  readonly xid: number
  readonly secs: number
  readonly flags: number
  readonly ciaddr: Ipv4Address
  readonly yiaddr: Ipv4Address
  readonly siaddr: Ipv4Address
  readonly giaddr: Ipv4Address
  readonly chaddr: MacAddress
  readonly messageType: number
  readonly serverId?: Ipv4Address
  readonly requestedIp?: Ipv4Address
  /** Prefix length derived from option 1 (only contiguous masks are accepted). */
  readonly prefix?: number
  /** First address of option 3. */
  readonly router?: Ipv4Address
  readonly leaseS?: number
  readonly renewalS?: number
  readonly rebindingS?: number
  readonly paramList?: ReadonlyArray<number>
  /** Option 61 as raw bytes. */
  readonly clientId?: Uint8Array
  /** Option 56 (error text a server may send with a NAK), printable ASCII only. */
  readonly message?: string
  /** Known options that were present but malformed and therefore ignored. */
  readonly ignoredOptions?: number
}

/** Prefix length of a contiguous mask, or undefined. */
export const maskToPrefix = (mask: number): number | undefined => {
  const m = mask >>> 0
  const inv = ~m >>> 0
  // contiguous: inverted mask is 2^k - 1
  if ((inv & (inv + 1)) !== 0) return undefined
  let p = 0
  for (let x = m; x !== 0; x = (x << 1) >>> 0) p++
  return p
}

const prefixToMask = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)

const readAddr = (b: Uint8Array, o: number): Ipv4Address => u32(b, o) as Ipv4Address

/** True when `b` holds the fixed header and the magic cookie. */
export const checkLen = (b: Uint8Array): boolean => b.length >= F.OPTIONS && u32(b, F.MAGIC) === MAGIC_COOKIE

export const parse = (b: Uint8Array): DhcpRepr | DropReason => {
  if (b.length < F.OPTIONS) return "Truncated"
  if (u32(b, F.MAGIC) !== MAGIC_COOKIE) return "Malformed"
  const op = b[F.OP]!
  if (op !== OP_REQUEST && op !== OP_REPLY) return "Malformed"
  if (b[F.HTYPE] !== HTYPE_ETHERNET || b[F.HLEN] !== 6) return "Unsupported"
  let messageType = 0
  let serverId: Ipv4Address | undefined
  let requestedIp: Ipv4Address | undefined
  let prefix: number | undefined
  let router: Ipv4Address | undefined
  let leaseS: number | undefined
  let renewalS: number | undefined
  let rebindingS: number | undefined
  let paramList: Array<number> | undefined
  let clientId: Uint8Array | undefined
  let message: string | undefined
  let ignored = 0
  let o: number = F.OPTIONS
  while (o < b.length) {
    const code = b[o]!
    if (code === OPT_PAD) {
      o++
      continue
    }
    if (code === OPT_END) break
    if (o + 1 >= b.length) return "BadOption"
    const len = b[o + 1]!
    const v = o + 2
    if (v + len > b.length) return "BadOption"
    switch (code) {
      case OPT_MESSAGE_TYPE:
        if (len === 1 && b[v]! >= DHCPDISCOVER && b[v]! <= DHCPRELEASE) messageType = b[v]!
        else ignored++
        break
      case OPT_SUBNET_MASK: {
        const p = len === 4 ? maskToPrefix(u32(b, v)) : undefined
        if (p !== undefined && p > 0) prefix = p
        else ignored++
        break
      }
      case OPT_ROUTER:
        if (len >= 4 && len % 4 === 0 && u32(b, v) !== 0) router = readAddr(b, v)
        else ignored++
        break
      case OPT_SERVER_ID:
        if (len === 4 && u32(b, v) !== 0) serverId = readAddr(b, v)
        else ignored++
        break
      case OPT_REQUESTED_IP:
        if (len === 4) requestedIp = readAddr(b, v)
        else ignored++
        break
      case OPT_LEASE_TIME:
        if (len === 4) leaseS = u32(b, v)
        else ignored++
        break
      case OPT_RENEWAL_TIME:
        if (len === 4) renewalS = u32(b, v)
        else ignored++
        break
      case OPT_REBINDING_TIME:
        if (len === 4) rebindingS = u32(b, v)
        else ignored++
        break
      case OPT_PARAM_LIST:
        paramList = Array.from(b.subarray(v, v + len))
        break
      case OPT_CLIENT_ID:
        if (len >= 2) clientId = b.slice(v, v + len)
        else ignored++
        break
      case OPT_MESSAGE: {
        let s = ""
        for (let i = 0; i < len; i++) {
          const c = b[v + i]!
          if (c === 0) break
          s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?"
        }
        message = s
        break
      }
      default:
        break // unknown options pass by
    }
    o = v + len
  }
  if (messageType === 0) return "Malformed"
  return {
    op,
    xid: u32(b, F.XID),
    secs: u16(b, F.SECS),
    flags: u16(b, F.FLAGS),
    ciaddr: readAddr(b, F.CIADDR),
    yiaddr: readAddr(b, F.YIADDR),
    siaddr: readAddr(b, F.SIADDR),
    giaddr: readAddr(b, F.GIADDR),
    chaddr: readMac(b, F.CHADDR),
    messageType,
    ...(serverId !== undefined ? { serverId } : {}),
    ...(requestedIp !== undefined ? { requestedIp } : {}),
    ...(prefix !== undefined ? { prefix } : {}),
    ...(router !== undefined ? { router } : {}),
    ...(leaseS !== undefined ? { leaseS } : {}),
    ...(renewalS !== undefined ? { renewalS } : {}),
    ...(rebindingS !== undefined ? { rebindingS } : {}),
    ...(paramList !== undefined ? { paramList } : {}),
    ...(clientId !== undefined ? { clientId } : {}),
    ...(message !== undefined ? { message } : {}),
    ...(ignored > 0 ? { ignoredOptions: ignored } : {})
  }
}

/** Bytes the options of `r` take, END included. */
const optionsLen = (r: DhcpRepr): number => {
  let n = 3 + 1 // message type + END
  if (r.serverId !== undefined) n += 6
  if (r.requestedIp !== undefined) n += 6
  if (r.prefix !== undefined) n += 6
  if (r.router !== undefined) n += 6
  if (r.leaseS !== undefined) n += 6
  if (r.renewalS !== undefined) n += 6
  if (r.rebindingS !== undefined) n += 6
  if (r.paramList !== undefined) n += 2 + Math.min(255, r.paramList.length)
  if (r.clientId !== undefined) n += 2 + Math.min(255, r.clientId.length)
  if (r.message !== undefined) n += 2 + Math.min(255, r.message.length)
  return n
}

/** Size `emit` writes: header, options, padded to MIN_MESSAGE_LEN. */
export const bufferLen = (r: DhcpRepr): number => Math.max(MIN_MESSAGE_LEN, F.OPTIONS + optionsLen(r))

/** Writes `r` into `b` (exactly `bufferLen(r)` bytes, zeroed by the caller or not: every byte is written). */
export const emit = (r: DhcpRepr, b: Uint8Array): void => {
  b.fill(0, 0, b.length)
  b[F.OP] = r.op
  b[F.HTYPE] = HTYPE_ETHERNET
  b[F.HLEN] = 6
  b[F.HOPS] = 0
  setU32(b, F.XID, r.xid)
  setU16(b, F.SECS, Math.min(0xffff, r.secs))
  setU16(b, F.FLAGS, r.flags)
  setU32(b, F.CIADDR, r.ciaddr)
  setU32(b, F.YIADDR, r.yiaddr)
  setU32(b, F.SIADDR, r.siaddr)
  setU32(b, F.GIADDR, r.giaddr)
  writeMac(b, F.CHADDR, r.chaddr)
  setU32(b, F.MAGIC, MAGIC_COOKIE)
  let o: number = F.OPTIONS
  const u8 = (code: number, v: number): void => {
    b[o] = code
    b[o + 1] = 1
    b[o + 2] = v
    o += 3
  }
  const w32 = (code: number, v: number): void => {
    b[o] = code
    b[o + 1] = 4
    setU32(b, o + 2, v)
    o += 6
  }
  const bytes = (code: number, v: ArrayLike<number>): void => {
    const n = Math.min(255, v.length)
    b[o] = code
    b[o + 1] = n
    for (let i = 0; i < n; i++) b[o + 2 + i] = v[i]!
    o += 2 + n
  }
  u8(OPT_MESSAGE_TYPE, r.messageType)
  if (r.clientId !== undefined) bytes(OPT_CLIENT_ID, r.clientId)
  if (r.requestedIp !== undefined) w32(OPT_REQUESTED_IP, r.requestedIp)
  if (r.serverId !== undefined) w32(OPT_SERVER_ID, r.serverId)
  if (r.leaseS !== undefined) w32(OPT_LEASE_TIME, r.leaseS)
  if (r.renewalS !== undefined) w32(OPT_RENEWAL_TIME, r.renewalS)
  if (r.rebindingS !== undefined) w32(OPT_REBINDING_TIME, r.rebindingS)
  if (r.prefix !== undefined) w32(OPT_SUBNET_MASK, prefixToMask(r.prefix))
  if (r.router !== undefined) w32(OPT_ROUTER, r.router)
  if (r.paramList !== undefined) bytes(OPT_PARAM_LIST, r.paramList)
  if (r.message !== undefined) bytes(OPT_MESSAGE, Array.from(r.message, (c) => c.charCodeAt(0) & 0xff))
  b[o] = OPT_END
}

/** Allocates and emits. */
export const encode = (r: DhcpRepr): Uint8Array => {
  const b = new Uint8Array(bufferLen(r))
  emit(r, b)
  return b
}
