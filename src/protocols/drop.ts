/**
 * Why a received frame was dropped. Codecs return one of these strings instead of a record; shells count
 * them per reason. Strings are interned, so the drop path allocates nothing.
 */
export type DropReason =
  | "Truncated"
  | "BadVersion"
  | "BadHeaderLength"
  | "BadLength"
  | "BadChecksum"
  | "BadOption"
  | "Unsupported"
  | "NotForUs"
  | "Fragment"
  | "TtlExpired"
  | "NoRoute"
  | "NoListener"
  | "QueueFull"
  | "ReassemblyLimit"
  | "Malformed"
  /** Source address no host may use (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7): broadcast, multicast, 0, loopback, class E, ours. */
  | "MartianSource"
  /** Overlapping fragments: the whole datagram is dropped (RFC 5722's rule, applied to IPv4 as Linux does). */
  | "FragmentOverlap"
  /** A segment for a listening port without SYN, ACK or RST (FIN/NULL/Xmas probes; RFC 9293 §3.10.7.2). */
  | "ProbeToListener"
  /** Refused by a per-source-address cap. */
  | "PerSourceLimit"
  /** Refused because a table (connections, streams, ...) is full and nothing could be evicted. */
  | "TableFull"
  /** A TCP or UDP port of zero (no host sends from or to it). */
  | "BadPort"
  /** Past a rate limit (SYNs answered with cookies per source and in all). */
  | "RateLimited"
  /** An ACK that matched no connection and carried no valid SYN cookie. */
  | "BadCookie"
  /** IPv6: past a bound on the extension header chain (headers, bytes, options, padding; limits RFC 8504 lets a node set). */
  | "ExtHeaderLimit"
  /** IPv6: an option we do not know whose type says "discard" (RFC 8200 §4.2, action bits 01, 10, 11). */
  | "UnknownOption"
  /** IPv6: a next header we do not process, or hop-by-hop options anywhere but first (RFC 8200 §4). */
  | "UnknownNextHeader"
  /** IPv6: a routing header with segments left; we route nothing (RFC 8200 §4.4). */
  | "RoutingHeader"
  /** IPv6: a type 0 routing header with segments left (RFC 5095 deprecates it; kept apart: it is an attack signature). */
  | "RoutingType0"
  /** IPv6: a first fragment without the whole header chain through the upper-layer header (RFC 8200 §4.5, RFC 7112). */
  | "IncompleteChain"
  /** IPv6: next header 59, nothing follows (RFC 8200 §4.7). */
  | "NoNextHeader"
  /** Neighbor Discovery: hop limit not 255, so it came from off the link (RFC 4861 §6.1, §7.1). */
  | "BadHopLimit"
  /** Neighbor Discovery: a message failing the other validity checks of RFC 4861 §6.1 and §7.1. */
  | "NdInvalid"
  /** IPv6: address resolution failed; the packets that waited for it are dropped (RFC 4861 §7.3.3, ICMPv6 code 3). */
  | "AddressUnreachable"

export const isDrop = (x: unknown): x is DropReason => typeof x === "string"
