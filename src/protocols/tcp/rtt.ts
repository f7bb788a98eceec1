/**
 * RFC 6298 retransmission-timeout estimator. It owns `rtoMs`, which backs off on expiry and stays
 * backed off until a new valid sample arrives (smoltcp #1023: the RTO must not live in the timer).
 * Karn's rule is applied by the caller (only samples from segments not retransmitted, or from
 * timestamps, are fed in).
 */
export class RttEstimator {
  srttMs = 0
  rttvarMs = 0
  rtoMs: number
  hasSample = false
  constructor(
    readonly initialRtoMs: number,
    readonly minRtoMs: number,
    readonly maxRtoMs: number
  ) {
    this.rtoMs = initialRtoMs
  }

  /** §2.2 / §2.3: a new measurement R. */
  sample(rMs: number): void {
    const r = Math.max(0, rMs)
    if (!this.hasSample) {
      this.srttMs = r
      this.rttvarMs = r / 2
      this.hasSample = true
    } else {
      // beta = 1/4, alpha = 1/8
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - r)
      this.srttMs = 0.875 * this.srttMs + 0.125 * r
    }
    // G (clock granularity) = 1 ms
    const rto = this.srttMs + Math.max(1, 4 * this.rttvarMs)
    this.rtoMs = Math.min(this.maxRtoMs, Math.max(this.minRtoMs, Math.ceil(rto)))
  }

  /** §5.5: the timer expired, double the RTO (kept until the next sample). */
  backoff(): void {
    this.rtoMs = Math.min(this.maxRtoMs, this.rtoMs * 2)
  }
}
