/**
 * The whole stack as one Layer over a `Nic`: Ethernet demux, interface address, ARP, IPv4, ICMP, UDP.
 * Upper layers (TCP, iperf, DHCP) stack on top of `Stack.layer` in the same way.
 */
import * as Layer from "effect/Layer"
import type { Ipv4Address, MacAddress } from "../protocols/address.js"
import * as Arp from "./Arp.js"
import * as Ethernet from "./Ethernet.js"
import * as Icmp from "./Icmp.js"
import * as Interface from "./Interface.js"
import * as Ipv4 from "./Ipv4.js"
import type { Nic } from "../nic/Nic.js"
import * as Udp from "./Udp.js"

export interface StackOptions {
  /** Static address; omit to start unconfigured (DHCP). */
  readonly address?: Interface.AddressConfig
  readonly staticArp?: ReadonlyArray<{ readonly ip: Ipv4Address; readonly mac: MacAddress }>
  readonly ethernet?: Ethernet.EthernetOptions
  readonly ipv4?: Ipv4.Ipv4Options
}

export type StackServices = Ethernet.Ethernet | Interface.Interface | Arp.Arp | Ipv4.Ipv4 | Icmp.Icmp | Udp.Udp

export const layer = (opts: StackOptions = {}): Layer.Layer<StackServices, never, Nic> => {
  const eth = Ethernet.layer(opts.ethernet)
  const iface = Interface.layer(opts.address ?? Interface.UNCONFIGURED)
  const link = Layer.merge(eth, iface)
  const arp = Arp.layer({ staticEntries: opts.staticArp ?? [] }).pipe(Layer.provideMerge(link))
  const ip = Ipv4.layer(opts.ipv4).pipe(Layer.provideMerge(arp))
  const transports = Layer.merge(Icmp.layer, Udp.layer).pipe(Layer.provideMerge(ip))
  return transports
}
