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

export const isDrop = (x: unknown): x is DropReason => typeof x === "string"
