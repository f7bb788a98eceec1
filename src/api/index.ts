/**
 * MinIperf as a library (`import ... from "miniperf"`): a userspace TCP/IP stack for Effect apps (design.md §1 "Embedded").
 *
 * A host is layers over a link: `Stack.layer({ address: "198.51.100.2/24", gateway: "198.51.100.1" })` (Ethernet,
 * ARP, IPv4, ICMP, UDP) over a `Nic` (`Tap.layer`, or an end of `SimLink.make` with `Layer.succeed(Nic, link.a)`,
 * optionally wrapped by `Pcap.layer` or `FaultInjector.layer`), then `Tcp.layer()` on top; TCP connections are
 * `@effect/platform` Sockets (`Socket.connect`, `Socket.layerSocketServer`). `Iperf.layer`, `Iperf3.layer`,
 * `Dhcp.layer` and `Stats.layer` are the servers, the DHCP client and the metrics the `miniperf` program runs; their
 * console lines go to the `Output` service when one is provided (else stdout). `MetricsServer.layer` serves those metrics
 * on a loopback address in the Prometheus text format (`Prometheus.render` writes it from any `Metric.snapshot`).
 *
 * Worked examples, compiled and run by the tests (test/package/pack.test.ts): examples/echo.ts (the README's
 * "Use as a library": two hosts on a SimLink, an echo SocketServer and a client) and examples/http-echo.ts (an
 * `@effect/platform` HttpServer on our TCP).
 */
export * as Stack from "../layers/Stack.js"
export * as Tcp from "../layers/Tcp.js"
export * as Udp from "../layers/Udp.js"
export * as Iperf from "../layers/Iperf.js"
export * as Iperf3 from "../layers/Iperf3.js"
export * as Dhcp from "../layers/Dhcp.js"
export * as Stats from "../layers/Stats.js"
export * as MetricsServer from "../layers/MetricsServer.js"
export * as Prometheus from "../layers/Prometheus.js"
export * as Output from "../layers/Output.js"
export * as Socket from "./Socket.js"
export * as SimLink from "../nic/SimLink.js"
export * as Tap from "../nic/Tap.js"
export * as FaultInjector from "../nic/FaultInjector.js"
export * as Pcap from "../nic/Pcap.js"
export { Nic, NicError, type NicShape, type NicCaps } from "../nic/Nic.js"
export { Interface, type AddressConfig } from "../layers/Interface.js"
export { ipv4, parseIpv4, formatIpv4, parseMac, formatMac, mac, type Ipv4Address, type MacAddress } from "../protocols/address.js"
export { parseIp, formatIp, type IpAddress } from "../protocols/ipAddress.js"
export { parseIpv6, formatIpv6, type Ipv6Address } from "../protocols/ipv6/address.js"
export { VERSION } from "../version.js"
