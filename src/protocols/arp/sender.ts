/**
 * What the sender fields of a received ARP packet may teach us, decided before the cache or a reply
 * sees them (design.md §7: a peer may spoof anything on the link).
 *
 * - "Probe": sender IP 0.0.0.0, an address conflict probe (RFC 5227 §2.1.1). It names no host to learn
 *   or answer; not an error either, so the caller ignores it without counting.
 * - "MartianSource": a sender IP no host may use (isMartianSource: broadcast, our directed broadcast,
 *   multicast, loopback, class E, 0/8, or our own address, which is someone claiming it), or a
 *   multicast/broadcast sender MAC. Learning either would send our unicast traffic to a group or to a
 *   broadcast (a reflector); answering would reply to it.
 */
import { isMartianSource, isMulticastMac } from "../address.js"
import type { ArpRepr } from "./wire.js"

export type SenderVerdict = "Ok" | "Probe" | "MartianSource"

export const checkSender = (r: ArpRepr, ourAddr: number, prefix: number): SenderVerdict => {
  if (r.senderIp === 0) return "Probe"
  if (isMulticastMac(r.senderMac) || isMartianSource(r.senderIp, ourAddr, prefix)) return "MartianSource"
  return "Ok"
}
