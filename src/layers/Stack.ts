/**
 * The whole stack as one Layer over a `Nic`: Ethernet demux, interface address, ARP, IPv4, ICMP, UDP.
 * Upper layers (TCP, iperf, DHCP) stack on top of `Stack.layer` in the same way.
 *
 * The address is given as the CLI's `-i` and `-g` take it, `{ address: "198.51.100.2/24", gateway: "198.51.100.1" }`,
 * and checked by the same code (config/KernelArgs.ts `checkStaticAddress`): a bad one fails the layer with a
 * `StackConfigError` before anything is built. An already parsed `AddressConfig` is taken as it is.
 */
import * as Data from "effect/Data"
import * as Layer from "effect/Layer"
import { checkStaticAddress } from "../config/KernelArgs.js"
import { formatIpv4, type Ipv4Address, type MacAddress } from "../protocols/address.js"
import * as Arp from "./Arp.js"
import * as Ethernet from "./Ethernet.js"
import * as Icmp from "./Icmp.js"
import * as Interface from "./Interface.js"
import * as Ipv4 from "./Ipv4.js"
import * as Ipv6 from "./Ipv6.js"
import * as Icmpv6 from "./Icmpv6.js"
import type { Nic } from "../nic/Nic.js"
import * as Udp from "./Udp.js"

export interface StackOptions {
  /**
   * Static address: "198.51.100.2/24" (IPv4/prefix, prefix 1..32, a host address of its subnet), or a parsed
   * `AddressConfig`. Omit it to start unconfigured (DHCP).
   */
  readonly address?: string | Interface.AddressConfig
  /** Default gateway, "198.51.100.1": inside the address's subnet and not the address itself. Needs `address`. */
  readonly gateway?: string
  readonly staticArp?: ReadonlyArray<{ readonly ip: Ipv4Address; readonly mac: MacAddress }>
  readonly ethernet?: Ethernet.EthernetOptions
  readonly ipv4?: Ipv4.Ipv4Options
  /**
   * IPv6 beside IPv4: absent or `{ enabled: false }` leaves it off (the layer is there, type 0x86dd stays
   * unknown and nothing is sent); the program turns it on unless `--no-ipv6`.
   */
  readonly ipv6?: Ipv6.Ipv6Options
}

/** Options with nothing left to check (no strings): a layer made from them cannot fail. */
export interface ParsedStackOptions extends StackOptions {
  readonly address?: Interface.AddressConfig
  readonly gateway?: never
}

export class StackConfigError extends Data.TaggedError("StackConfigError")<{
  readonly reason: "InvalidAddress" | "InvalidGateway" | "GatewayWithoutAddress"
  /** The value as given. */
  readonly value: string
  readonly detail: string
}> {
  override get message(): string {
    const what = this.reason === "InvalidAddress" ? "address" : "gateway"
    return `Stack: ${what} ${JSON.stringify(this.value)}: ${this.detail}`
  }
}

export type StackServices =
  | Ethernet.Ethernet
  | Interface.Interface
  | Arp.Arp
  | Ipv4.Ipv4
  | Icmp.Icmp
  | Udp.Udp
  | Ipv6.Ipv6
  | Icmpv6.Icmpv6

/** `opts.address` and `opts.gateway` -> the interface's configuration (undefined: unconfigured), or what is wrong. */
export const resolveAddress = (opts: StackOptions): Interface.AddressConfig | undefined | StackConfigError => {
  const { address, gateway } = opts
  if (address === undefined) {
    return gateway === undefined
      ? undefined
      : new StackConfigError({ reason: "GatewayWithoutAddress", value: gateway, detail: "a gateway needs a static address" })
  }
  if (typeof address !== "string") {
    if (gateway === undefined) return address
    if (address.gateway !== undefined) {
      const detail = `the address already names the gateway ${formatIpv4(address.gateway)}`
      return new StackConfigError({ reason: "InvalidGateway", value: gateway, detail })
    }
  }
  // a parsed address with a gateway string is checked as its string form would be
  const checked = checkStaticAddress(typeof address === "string" ? address : `${formatIpv4(address.address)}/${address.prefix}`, gateway)
  if ("field" in checked) {
    const reason = checked.field === "address" ? "InvalidAddress" : "InvalidGateway"
    return new StackConfigError({ reason, value: checked.value, detail: checked.message })
  }
  return { address: checked.address, prefix: checked.prefix, gateway: checked.gateway }
}

export function layer(opts?: ParsedStackOptions): Layer.Layer<StackServices, never, Nic>
export function layer(opts: StackOptions): Layer.Layer<StackServices, StackConfigError, Nic>
export function layer(opts: StackOptions = {}): Layer.Layer<StackServices, StackConfigError, Nic> {
  const address = resolveAddress(opts)
  if (address instanceof StackConfigError) return Layer.fail(address)
  const eth = Ethernet.layer(opts.ethernet)
  const iface = Interface.layer(address ?? Interface.UNCONFIGURED)
  const link = Layer.merge(eth, iface)
  const arp = Arp.layer({ staticEntries: opts.staticArp ?? [] }).pipe(Layer.provideMerge(link))
  const ip = Ipv4.layer(opts.ipv4).pipe(Layer.provideMerge(arp))
  const ip6 = Icmpv6.layer.pipe(Layer.provideMerge(Ipv6.layer(opts.ipv6 ?? { enabled: false })))
  const nets = ip6.pipe(Layer.provideMerge(ip))
  return Layer.merge(Icmp.layer, Udp.layer).pipe(Layer.provideMerge(nets))
}
