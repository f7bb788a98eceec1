/**
 * Duplicate address detection (RFC 4862 §5.4) for our own addresses, as a pure machine: time in, actions
 * out. An address added is *tentative*: we join its solicited-node group (an MLDv2 report, sent again
 * once more a random moment later, RFC 3810 §6.1 with the default robustness 2), send `transmits`
 * solicitations for it from :: RetransTimer apart (§5.4.2), and if nothing answers for RetransTimer after
 * the last one it is *assigned*, announced with unsolicited advertisements (RFC 4861 §7.2.6). The first
 * report and probe wait a random 0..MAX_RTR_SOLICITATION_DELAY (§5.4.2: the first message after the
 * interface comes up).
 *
 * It is a duplicate when, while tentative, someone else probes for it (a solicitation from :: for it,
 * §5.4.3) or claims it (an advertisement for it, §5.4.4). A solicitation for it from a unicast source is
 * address resolution by a node that should not know it yet: ignored (§5.4.3), and never answered while
 * tentative (§5.4). Our own probes looped back by the link would look like someone else's: the shell drops
 * solicitations whose Ethernet source is our MAC before they get here.
 */
import type { Ipv6Address } from "./address.js"

export type DadState = "Tentative" | "Assigned" | "Duplicate"

export interface DadConfig {
  /** DupAddrDetectTransmits (§5.1): 0 turns DAD off (the address is assigned at once). */
  readonly transmits: number
  readonly retransTimerMs: number
  /** MAX_RTR_SOLICITATION_DELAY (RFC 4861 §10). */
  readonly maxStartDelayMs: number
  /** Unsolicited advertisements once assigned, RetransTimer apart (at most MAX_NEIGHBOR_ADVERTISEMENT, 3). */
  readonly announcements: number
  /** MLDv2 reports per join ([Robustness Variable]) and the interval their repeats are drawn from. */
  readonly reports: number
  readonly unsolicitedReportIntervalMs: number
}

export const DEFAULT_CONFIG: DadConfig = {
  transmits: 1,
  retransTimerMs: 1_000,
  maxStartDelayMs: 1_000,
  announcements: 1,
  reports: 2,
  unsolicitedReportIntervalMs: 1_000
}

export type DadAction =
  /** Send an MLDv2 report joining solicitedNode(address) (CHANGE_TO_EXCLUDE, no sources). */
  | { readonly _tag: "Report"; readonly address: Ipv6Address }
  /** Send the probe: a neighbour solicitation from :: to solicitedNode(address), target address, no link-layer option. */
  | { readonly _tag: "Probe"; readonly address: Ipv6Address }
  /** The address passed: usable from now on. */
  | { readonly _tag: "Assigned"; readonly address: Ipv6Address }
  /** Send an unsolicited advertisement for it to ff02::1 (override set, solicited clear, our MAC as target address). */
  | { readonly _tag: "Announce"; readonly address: Ipv6Address }
  /** Someone else has it: do not use it (§5.4.5; for a link-local address from our MAC, IPv6 should stop on the interface). */
  | { readonly _tag: "Duplicate"; readonly address: Ipv6Address }

interface Addr {
  state: DadState
  probesSent: number
  /** The next probe, or the end of DAD after the last one (Infinity when neither). */
  probeAtMs: number
  reportsLeft: number
  reportAtMs: number
  announcementsLeft: number
  announceAtMs: number
}

export class Dad {
  private readonly addrs = new Map<Ipv6Address, Addr>()

  /** `random` returns a number in [0, 1), like Math.random. */
  constructor(
    readonly config: DadConfig = DEFAULT_CONFIG,
    private readonly random: () => number = Math.random
  ) {}

  state(a: Ipv6Address): DadState | undefined {
    return this.addrs.get(a)?.state
  }
  isTentative(a: Ipv6Address): boolean {
    return this.addrs.get(a)?.state === "Tentative"
  }
  isAssigned(a: Ipv6Address): boolean {
    return this.addrs.get(a)?.state === "Assigned"
  }

  /**
   * Start DAD for `a` at `nowMs`; `delayed`: the first report and probe wait a random 0..maxStartDelayMs
   * (true for the first messages after the interface comes up). Adding an address again does nothing.
   */
  add(a: Ipv6Address, nowMs: number, out: Array<DadAction>, delayed = true): void {
    if (this.addrs.has(a)) return
    const startMs = nowMs + (delayed ? Math.floor(this.random() * this.config.maxStartDelayMs) : 0)
    this.addrs.set(a, {
      state: "Tentative",
      probesSent: 0,
      probeAtMs: this.config.transmits === 0 ? nowMs : startMs,
      reportsLeft: this.config.reports,
      reportAtMs: startMs,
      announcementsLeft: this.config.announcements,
      announceAtMs: Infinity
    })
    this.tick(nowMs, out)
  }

  remove(a: Ipv6Address): void {
    this.addrs.delete(a)
  }

  /**
   * A neighbour solicitation for `target`. Returns true when `target` is one of our tentative addresses
   * (the shell must not answer it); a probe from :: for it makes it a duplicate.
   */
  onSolicitation(target: Ipv6Address, fromUnspecified: boolean, out: Array<DadAction>): boolean {
    const s = this.addrs.get(target)
    if (s === undefined || s.state !== "Tentative") return false
    if (fromUnspecified) this.duplicate(target, s, out)
    return true
  }

  /** A neighbour advertisement for `target`: a duplicate when it is tentative. Returns true when `target` is ours at all. */
  onAdvertisement(target: Ipv6Address, out: Array<DadAction>): boolean {
    const s = this.addrs.get(target)
    if (s === undefined) return false
    if (s.state === "Tentative") this.duplicate(target, s, out)
    return true
  }

  tick(nowMs: number, out: Array<DadAction>): void {
    const c = this.config
    for (const [a, s] of this.addrs) {
      if (s.state === "Duplicate") continue
      if (s.reportsLeft > 0 && s.reportAtMs <= nowMs) {
        out.push({ _tag: "Report", address: a })
        s.reportsLeft--
        s.reportAtMs = s.reportsLeft > 0 ? nowMs + Math.floor(this.random() * c.unsolicitedReportIntervalMs) : Infinity
      }
      if (s.state === "Tentative" && s.probeAtMs <= nowMs) {
        if (s.probesSent < c.transmits) {
          out.push({ _tag: "Probe", address: a })
          s.probesSent++
          s.probeAtMs = nowMs + c.retransTimerMs
        } else {
          s.state = "Assigned"
          s.probeAtMs = Infinity
          s.announceAtMs = nowMs
          out.push({ _tag: "Assigned", address: a })
        }
      }
      if (s.state === "Assigned" && s.announcementsLeft > 0 && s.announceAtMs <= nowMs) {
        out.push({ _tag: "Announce", address: a })
        s.announcementsLeft--
        s.announceAtMs = s.announcementsLeft > 0 ? nowMs + c.retransTimerMs : Infinity
      }
    }
  }

  /** The earliest time `tick` has something to do, or undefined. */
  nextDeadline(): number | undefined {
    let t = Infinity
    for (const s of this.addrs.values()) {
      if (s.state === "Duplicate") continue
      t = Math.min(t, s.reportsLeft > 0 ? s.reportAtMs : Infinity, s.probeAtMs, s.announcementsLeft > 0 ? s.announceAtMs : Infinity)
    }
    return t === Infinity ? undefined : t
  }

  private duplicate(a: Ipv6Address, s: Addr, out: Array<DadAction>): void {
    s.state = "Duplicate"
    s.probeAtMs = Infinity
    s.reportsLeft = 0
    out.push({ _tag: "Duplicate", address: a })
  }
}
