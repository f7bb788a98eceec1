import { describe, expect, it } from "vitest"
import { IPV4_ANY, MAC_BROADCAST, parseIpv4, parseMac, type Ipv4Address, type MacAddress } from "../../../src/protocols/address.js"
import { checkSender } from "../../../src/protocols/arp/sender.js"
import { OP_REQUEST, type ArpRepr } from "../../../src/protocols/arp/wire.js"

const US = parseIpv4("198.51.100.2")!
const PEER_MAC = parseMac("02:00:00:00:00:01")!
const req = (senderIp: string, senderMac: MacAddress = PEER_MAC): ArpRepr => ({
  op: OP_REQUEST,
  senderMac,
  senderIp: parseIpv4(senderIp)!,
  targetMac: 0 as MacAddress,
  targetIp: US as Ipv4Address
})

describe("ARP checkSender", () => {
  it("an ordinary neighbour is Ok", () => {
    expect(checkSender(req("198.51.100.1"), US, 24)).toBe("Ok")
    expect(checkSender(req("203.0.113.7"), US, 24)).toBe("Ok")
  })

  it("sender 0.0.0.0 is a probe (RFC 5227), whatever else it says", () => {
    expect(checkSender(req("0.0.0.0"), US, 24)).toBe("Probe")
    expect(checkSender(req("0.0.0.0"), IPV4_ANY, 0)).toBe("Probe")
  })

  it("a martian sender IP, our own address included, is refused", () => {
    for (const ip of ["198.51.100.255", "255.255.255.255", "224.0.0.251", "127.0.0.1", "240.0.0.9", "0.0.0.7", "198.51.100.2"]) {
      expect(checkSender(req(ip), US, 24), ip).toBe("MartianSource")
    }
  })

  it("a multicast or broadcast sender MAC is refused even with a good sender IP", () => {
    expect(checkSender(req("198.51.100.1", MAC_BROADCAST), US, 24)).toBe("MartianSource")
    expect(checkSender(req("198.51.100.1", parseMac("01:00:5e:00:00:fb")!), US, 24)).toBe("MartianSource")
    expect(checkSender(req("198.51.100.1", parseMac("33:33:00:00:00:01")!), US, 24)).toBe("MartianSource")
  })
})
