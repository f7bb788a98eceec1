/**
 * Congestion control behind one interface: NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438).
 * All sizes in bytes. The machine decides when recovery starts and ends (dup ACKs, SACK, RTO);
 * the controller only owns cwnd/ssthresh.
 */
export interface CongestionControl {
  readonly name: "newreno" | "cubic"
  cwnd: number
  ssthresh: number
  /** New data acknowledged outside recovery. */
  onAck(ackedBytes: number, nowMs: number, srttMs: number, mss: number): void
  /** Fast retransmit: enter loss recovery (sets ssthresh and cwnd). */
  onEnterRecovery(nowMs: number, flightBytes: number, mss: number): void
  /** Full ACK of the recovery point. */
  onExitRecovery(nowMs: number, mss: number): void
  /** Retransmission timeout. */
  onRto(nowMs: number, flightBytes: number, mss: number): void
}

export const initialWindow = (mss: number): number => Math.min(10 * mss, Math.max(2 * mss, 14600)) // RFC 6928

export class NewReno implements CongestionControl {
  readonly name = "newreno" as const
  cwnd: number
  ssthresh = Number.MAX_SAFE_INTEGER
  private acc = 0
  constructor(mss: number) {
    this.cwnd = initialWindow(mss)
  }
  onAck(acked: number, _now: number, _srtt: number, mss: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, mss) // RFC 5681 §3.1 slow start (appropriate byte counting, L=1)
    } else {
      this.acc += acked // congestion avoidance: +1 MSS per cwnd of data acked
      if (this.acc >= this.cwnd) {
        this.acc -= this.cwnd
        this.cwnd += mss
      }
    }
  }
  onEnterRecovery(_now: number, flight: number, mss: number): void {
    this.ssthresh = Math.max(flight >>> 1, 2 * mss)
    this.cwnd = this.ssthresh
    this.acc = 0
  }
  onExitRecovery(_now: number, _mss: number): void {
    this.cwnd = this.ssthresh
  }
  onRto(_now: number, flight: number, mss: number): void {
    this.ssthresh = Math.max(flight >>> 1, 2 * mss)
    this.cwnd = mss
    this.acc = 0
  }
}

/** RFC 9438 constants. */
const C = 0.4
const BETA = 0.7
const ALPHA_AIMD = (3 * (1 - BETA)) / (1 + BETA)

export class Cubic implements CongestionControl {
  readonly name = "cubic" as const
  cwnd: number
  ssthresh = Number.MAX_SAFE_INTEGER
  /** Segments. */
  private wMax = 0
  private k = 0
  private epochStart = -1
  private wEst = 0
  private acc = 0
  constructor(mss: number) {
    this.cwnd = initialWindow(mss)
  }
  onAck(acked: number, now: number, srtt: number, mss: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, mss)
      return
    }
    const cwndSeg = this.cwnd / mss
    if (this.epochStart < 0) {
      // §4.2: start of a congestion-avoidance epoch
      this.epochStart = now
      if (this.wMax <= cwndSeg) {
        this.k = 0
        this.wMax = cwndSeg
      } else {
        this.k = Math.cbrt((this.wMax - cwndSeg) / C)
      }
      this.wEst = cwndSeg
    }
    const t = (now - this.epochStart + srtt) / 1000
    const target0 = C * (t - this.k) ** 3 + this.wMax
    const target = Math.max(cwndSeg, Math.min(target0, 1.5 * cwndSeg))
    // §4.3 Reno-friendly region
    this.wEst += (ALPHA_AIMD * (acked / mss)) / cwndSeg
    if (this.wEst > target) {
      this.acc += acked
      if (this.acc >= this.cwnd) {
        this.acc -= this.cwnd
        this.cwnd += mss
      }
      return
    }
    // §4.4/4.5: cwnd += (target - cwnd)/cwnd per acked segment
    this.cwnd += Math.max(0, ((target - cwndSeg) / cwndSeg) * mss * (acked / mss))
  }
  private reduce(mss: number): void {
    const cwndSeg = this.cwnd / mss
    // §4.7 fast convergence
    this.wMax = cwndSeg < this.wMax ? (cwndSeg * (1 + BETA)) / 2 : cwndSeg
    this.ssthresh = Math.max(Math.round(this.cwnd * BETA), 2 * mss)
    this.epochStart = -1
    this.acc = 0
  }
  onEnterRecovery(_now: number, _flight: number, mss: number): void {
    this.reduce(mss)
    this.cwnd = this.ssthresh
  }
  onExitRecovery(_now: number, _mss: number): void {
    this.cwnd = this.ssthresh
  }
  onRto(_now: number, _flight: number, mss: number): void {
    this.reduce(mss)
    this.cwnd = mss
  }
}

export const make = (name: "newreno" | "cubic", mss: number): CongestionControl =>
  name === "cubic" ? new Cubic(mss) : new NewReno(mss)
