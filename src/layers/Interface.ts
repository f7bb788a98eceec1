/**
 * The interface's IPv4 configuration: address, prefix and gateway. Static from `-i`/`-g`, or set and
 * cleared by the DHCP client. Plain mutable state read on the hot path; changes are announced to
 * subscribers (ARP sends a gratuitous announcement, TCP ends connections when an address goes away).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { IPV4_ANY, prefixMask, sameSubnet, type Ipv4Address } from "../protocols/address.js"

export interface AddressConfig {
  /** 0.0.0.0 while unconfigured (DHCP not bound yet). */
  readonly address: Ipv4Address
  readonly prefix: number
  /** Absent (or undefined) when there is none: off-subnet destinations are unreachable then. */
  readonly gateway?: Ipv4Address | undefined
}

export const UNCONFIGURED: AddressConfig = { address: IPV4_ANY, prefix: 0, gateway: undefined }

export interface InterfaceShape {
  readonly current: () => AddressConfig
  readonly set: (c: AddressConfig) => void
  readonly onChange: (f: (c: AddressConfig, previous: AddressConfig) => void) => void
  /** True for our address, the limited broadcast and the subnet's directed broadcast. */
  readonly acceptsDestination: (dst: number) => boolean
  readonly isBroadcast: (dst: number) => boolean
  /** Next hop for a destination: itself on the subnet, the gateway otherwise, undefined when unroutable. */
  readonly nextHop: (dst: number) => Ipv4Address | undefined
}

export class Interface extends Context.Tag("@miniperf/Interface")<Interface, InterfaceShape>() {}

export const make = (initial: AddressConfig): InterfaceShape => {
  let cur = initial
  const listeners: Array<(c: AddressConfig, p: AddressConfig) => void> = []
  const isBroadcast = (dst: number): boolean => {
    if (dst === 0xffffffff) return true
    if (cur.address === 0 || cur.prefix >= 31) return false
    const bcast = (cur.address | ~prefixMask(cur.prefix)) >>> 0
    return dst === bcast
  }
  return {
    current: () => cur,
    set: (c) => {
      const prev = cur
      cur = c
      for (const l of listeners) l(c, prev)
    },
    onChange: (f) => void listeners.push(f),
    isBroadcast,
    acceptsDestination: (dst) => dst === cur.address || isBroadcast(dst),
    nextHop: (dst) => {
      if (dst === 0xffffffff) return dst as Ipv4Address
      if (cur.address === 0) return undefined
      if (sameSubnet(dst, cur.address, cur.prefix)) return dst as Ipv4Address
      return cur.gateway
    }
  }
}

export const layer = (initial: AddressConfig): Layer.Layer<Interface> => Layer.effect(Interface, Effect.sync(() => make(initial)))
