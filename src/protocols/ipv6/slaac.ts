/**
 * Stateless address autoconfiguration (RFC 4862 §5.5) and the router solicitations that ask for it (RFC 4861
 * §6.3.7), for a host with one interface. Pure: time comes in as nowMs, actions go out through an array.
 *
 * Router solicitations: after a random delay of up to 1 s, up to 3 solicitations 4 s apart, stopped by the first
 * router advertisement (`onAdvertisement`).
 *
 * Addresses (§5.5.3), for each Prefix Information option of an advertisement:
 *   a. the autonomous flag must be set, b. the prefix must not be link-local, c. its preferred lifetime must not
 *   exceed its valid lifetime;
 *   d. a new prefix with a non-zero valid lifetime gets an address: the prefix and our interface identifier (the
 *      modified EUI-64 one, so 64-bit prefixes only: §5.5.3 d, RFC 4291 §2.5.1), handed to DAD by the shell
 *      ("Add"); at most `maxAddresses` of them;
 *   e. a known prefix refreshes its lifetimes, with the two-hour rule against a spoofed advertisement that would cut
 *      a valid lifetime short: a shorter valid lifetime is taken only when it is over two hours or longer than what
 *      remains; when two hours or less remain, it is ignored; otherwise the address keeps two hours.
 * An address whose valid lifetime ends is removed ("Remove"); one past its preferred lifetime is deprecated: it
 * stays usable for the connections that have it, and the shell prefers other sources.
 */
import { isLinkLocal, maskPrefix, withInterfaceId, type Ipv6Address } from "./address.js"

export interface SlaacConfig {
  readonly maxAddresses: number
  readonly maxSolicitations: number
  readonly solicitationIntervalMs: number
  readonly maxSolicitationDelayMs: number
}

/** RFC 4861 §10: MAX_RTR_SOLICITATIONS 3, RTR_SOLICITATION_INTERVAL 4 s, MAX_RTR_SOLICITATION_DELAY 1 s. */
export const DEFAULT_CONFIG: SlaacConfig = {
  maxAddresses: 4,
  maxSolicitations: 3,
  solicitationIntervalMs: 4000,
  maxSolicitationDelayMs: 1000
}

/** The prefix fields of a Prefix Information option (RFC 4861 §4.6.2) that autoconfiguration reads. */
export interface PrefixOption {
  readonly prefix: Ipv6Address
  readonly prefixLen: number
  readonly autonomous: boolean
  readonly validLifetimeS: number
  readonly preferredLifetimeS: number
}

export type SlaacAction =
  | { readonly _tag: "Solicit" }
  | { readonly _tag: "Add"; readonly address: Ipv6Address; readonly prefixLen: number }
  | { readonly _tag: "Remove"; readonly address: Ipv6Address }

/** Why an option formed no address (for the counters). */
export type SlaacIgnored =
  | "NotAutonomous"
  | "LinkLocalPrefix"
  | "PreferredOverValid"
  | "PrefixLength"
  | "TableFull"
  | "TwoHourRule"
  | "Duplicate"

export const INFINITE_LIFETIME = 0xffffffff
const TWO_HOURS_MS = 2 * 3600 * 1000
const IID_BITS = 64

interface Entry {
  readonly address: Ipv6Address
  readonly prefixLen: number
  validUntilMs: number
  preferredUntilMs: number
}

const untilMs = (nowMs: number, lifetimeS: number): number => (lifetimeS === INFINITE_LIFETIME ? Infinity : nowMs + lifetimeS * 1000)

export class Slaac {
  private readonly entries: Array<Entry> = []
  private solicitationsLeft: number
  private solicitAtMs: number
  /** Options that formed no address, by reason. */
  readonly ignored: Record<SlaacIgnored, number> = {
    NotAutonomous: 0,
    LinkLocalPrefix: 0,
    PreferredOverValid: 0,
    PrefixLength: 0,
    TableFull: 0,
    TwoHourRule: 0,
    Duplicate: 0
  }
  /** Addresses DAD found in use by another node: never formed again (bounded like the table). */
  private readonly duplicates: Array<Ipv6Address> = []

  constructor(
    private readonly cfg: SlaacConfig,
    /** Our interface identifier: an address whose low 64 bits are used (RFC 4291 appendix A, modified EUI-64). */
    private readonly interfaceId: Ipv6Address,
    nowMs: number,
    random: () => number,
    /** false: no router solicitations (only advertisements that come anyway are used). */
    solicit = true
  ) {
    this.solicitationsLeft = solicit ? cfg.maxSolicitations : 0
    this.solicitAtMs = solicit && cfg.maxSolicitations > 0 ? nowMs + Math.floor(random() * cfg.maxSolicitationDelayMs) : Infinity
  }

  /** The autoconfigured addresses, with whether each is still preferred at `nowMs`. */
  addresses(nowMs: number): ReadonlyArray<{ readonly address: Ipv6Address; readonly prefixLen: number; readonly preferred: boolean }> {
    return this.entries.map((e) => ({ address: e.address, prefixLen: e.prefixLen, preferred: e.preferredUntilMs > nowMs }))
  }

  has(a: Ipv6Address): boolean {
    return this.entries.some((e) => e.address === a)
  }

  /** Past its preferred lifetime (RFC 4862 §5.5.4): usable, but not chosen as a source for new traffic. */
  isDeprecated(a: Ipv6Address, nowMs: number): boolean {
    const e = this.entries.find((x) => x.address === a)
    return e !== undefined && e.preferredUntilMs <= nowMs
  }

  /** A router advertisement arrived: no more solicitations; each of its prefixes as §5.5.3 says. */
  onAdvertisement(prefixes: ReadonlyArray<PrefixOption>, nowMs: number, out: Array<SlaacAction>): void {
    this.solicitationsLeft = 0
    this.solicitAtMs = Infinity
    for (const p of prefixes) this.onPrefix(p, nowMs, out)
  }

  private onPrefix(p: PrefixOption, nowMs: number, out: Array<SlaacAction>): void {
    if (!p.autonomous) return void this.ignored.NotAutonomous++
    if (isLinkLocal(p.prefix)) return void this.ignored.LinkLocalPrefix++
    if (p.preferredLifetimeS > p.validLifetimeS) return void this.ignored.PreferredOverValid++
    if (p.prefixLen + IID_BITS !== 128) return void this.ignored.PrefixLength++
    const address = withInterfaceId(maskPrefix(p.prefix, p.prefixLen), this.interfaceId)
    const e = this.entries.find((x) => x.address === address)
    if (e === undefined) {
      if (p.validLifetimeS === 0) return
      if (this.duplicates.includes(address)) return void this.ignored.Duplicate++
      if (this.entries.length >= this.cfg.maxAddresses) return void this.ignored.TableFull++
      this.entries.push({
        address,
        prefixLen: p.prefixLen,
        validUntilMs: untilMs(nowMs, p.validLifetimeS),
        preferredUntilMs: untilMs(nowMs, p.preferredLifetimeS)
      })
      out.push({ _tag: "Add", address, prefixLen: p.prefixLen })
      return
    }
    e.preferredUntilMs = untilMs(nowMs, p.preferredLifetimeS)
    const received = untilMs(nowMs, p.validLifetimeS)
    const remaining = e.validUntilMs - nowMs
    if (received - nowMs > TWO_HOURS_MS || received > e.validUntilMs) e.validUntilMs = received
    else if (remaining <= TWO_HOURS_MS) this.ignored.TwoHourRule++
    else e.validUntilMs = nowMs + TWO_HOURS_MS
  }

  /** Solicitations due, addresses whose valid lifetime ended. */
  tick(nowMs: number, out: Array<SlaacAction>): void {
    if (this.solicitationsLeft > 0 && nowMs >= this.solicitAtMs) {
      out.push({ _tag: "Solicit" })
      this.solicitationsLeft--
      this.solicitAtMs = this.solicitationsLeft > 0 ? nowMs + this.cfg.solicitationIntervalMs : Infinity
    }
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!
      if (e.validUntilMs <= nowMs) {
        this.entries.splice(i, 1)
        out.push({ _tag: "Remove", address: e.address })
      }
    }
  }

  /** The next time `tick` has something to do; Infinity when nothing is scheduled. */
  nextDeadline(): number {
    let t = this.solicitAtMs
    for (const e of this.entries) if (e.validUntilMs < t) t = e.validUntilMs
    return t
  }

  /**
   * DAD found the address in use by another node (RFC 4862 §5.4.5): it leaves the table and is not formed again
   * from later advertisements (the node that has it would only be probed again and again).
   */
  duplicate(a: Ipv6Address): void {
    const i = this.entries.findIndex((e) => e.address === a)
    if (i < 0) return
    this.entries.splice(i, 1)
    if (this.duplicates.length >= this.cfg.maxAddresses) this.duplicates.shift()
    this.duplicates.push(a)
  }
}
