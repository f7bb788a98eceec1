/**
 * Effect Metrics in the Prometheus text exposition format (version 0.0.4), written directly from `Metric.snapshot`.
 *
 * Why not `@effect/opentelemetry` with the OpenTelemetry Prometheus exporter (issue 12 names it): that is two more
 * packages and an OTel SDK (meter provider, reader, its own HTTP server) to turn a list of counters and gauges into
 * a few hundred lines of text. effect 3.22 already gives the list (`Metric.snapshot`: name, description, tags and
 * state of every registered metric), and the text format is small and stable, so this module writes it and
 * `MetricsServer.ts` serves it over `node:http`. Nothing to install, nothing that could open a port we did not ask for.
 *
 * Mapping:
 * - an incremental counter (`Metric.counter(name, { incremental: true })`: Effect ignores any update that would lower
 *   it, as Stats' counters are made) becomes a Prometheus `counter`, its name with `_total` appended (the Prometheus
 *   and OpenMetrics naming rule for counters) unless it already ends so: `miniperf_link_rx_frames` is scraped as
 *   `miniperf_link_rx_frames_total`;
 * - any other Effect counter may go down (the runtime's `effect_fiber_active` does), which a Prometheus counter must
 *   never do, so it becomes a `gauge`, as does a gauge, each under its own name;
 * - a histogram becomes a `histogram` (`_bucket{le=...}` cumulative, `+Inf`, `_sum`, `_count`), a summary a `summary`
 *   (`{quantile=...}`, `_sum`, `_count`); frequencies have no Prometheus type and are left out;
 * - tags become labels; names and label names are reduced to the allowed characters (others become `_`), label
 *   values and help text are escaped as the format says (backslash, double quote in values, newline);
 * - every series of one name comes under one `# HELP` and `# TYPE` (the first description seen); a series whose kind
 *   differs from the first one of its name is left out, since one name has one type.
 * Output is sorted by name, then by labels, so two scrapes of the same values are byte for byte the same.
 */
import type * as MetricPair from "effect/MetricPair"
import * as MetricKeyType from "effect/MetricKeyType"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

export type PromType = "counter" | "gauge" | "histogram" | "summary"

/** Metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
export const metricName = (s: string): string => {
  const t = s.replace(/[^a-zA-Z0-9_:]/g, "_")
  return t === "" || /^[0-9]/.test(t) ? `_${t}` : t
}

/** Label names: `[a-zA-Z_][a-zA-Z0-9_]*` (names starting with `__` are reserved for Prometheus itself). */
export const labelName = (s: string): string => {
  let t = s.replace(/[^a-zA-Z0-9_]/g, "_")
  if (t === "" || /^[0-9]/.test(t)) t = `_${t}`
  return t.startsWith("__") ? `x${t}` : t
}

/** A label value inside double quotes: backslash, double quote and line feed escaped. */
export const escapeLabelValue = (s: string): string => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")

/** HELP text: backslash and line feed escaped (a double quote stays as it is). */
export const escapeHelp = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A sample value as Go's ParseFloat reads it: NaN, +Inf, -Inf, or the number. */
export const formatValue = (v: number | bigint): string => {
  if (typeof v === "bigint") return v.toString()
  if (Number.isNaN(v)) return "NaN"
  if (v === Infinity) return "+Inf"
  if (v === -Infinity) return "-Inf"
  return String(v)
}

const labelText = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`

interface Family {
  readonly type: PromType
  readonly help: string | undefined
  /** [sorting key (labels), lines] per series. */
  readonly series: Array<readonly [string, ReadonlyArray<string>]>
}

/** The exposition text for a snapshot (`Metric.snapshot`). Ends with a newline unless empty. */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const p of pairs) {
    const key = p.metricKey
    const state: unknown = p.metricState
    const base = metricName(key.name)
    const labels: Array<readonly [string, string]> = key.tags.map((t) => [labelName(t.key), t.value] as const)
    labels.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    const lt = labelText(labels)
    let type: PromType
    let name = base
    const lines: Array<string> = []
    if (MetricState.isCounterState(state)) {
      const kt: unknown = key.keyType
      if (MetricKeyType.isCounterKey(kt) && kt.incremental) {
        type = "counter"
        if (!name.endsWith("_total")) name = `${name}_total`
      } else {
        type = "gauge"
      }
      lines.push(`${name}${lt} ${formatValue(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      type = "gauge"
      lines.push(`${name}${lt} ${formatValue(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      type = "histogram"
      for (const [le, n] of state.buckets) {
        lines.push(`${name}_bucket${labelText([...labels, ["le", formatValue(le)]])} ${formatValue(n)}`)
      }
      if (!state.buckets.some(([le]) => le === Infinity)) {
        lines.push(`${name}_bucket${labelText([...labels, ["le", "+Inf"]])} ${formatValue(state.count)}`)
      }
      lines.push(`${name}_sum${lt} ${formatValue(state.sum)}`, `${name}_count${lt} ${formatValue(state.count)}`)
    } else if (MetricState.isSummaryState(state)) {
      type = "summary"
      for (const [q, v] of state.quantiles) {
        lines.push(`${name}${labelText([...labels, ["quantile", formatValue(q)]])} ${formatValue(Option.getOrElse(v, () => NaN))}`)
      }
      lines.push(`${name}_sum${lt} ${formatValue(state.sum)}`, `${name}_count${lt} ${formatValue(state.count)}`)
    } else {
      continue // a frequency: no Prometheus type for it
    }
    const f = families.get(name)
    if (f === undefined) {
      families.set(name, { type, help: Option.getOrUndefined(key.description), series: [[lt, lines]] })
    } else if (f.type === type) {
      f.series.push([lt, lines])
    }
  }
  const out: Array<string> = []
  for (const name of [...families.keys()].sort()) {
    const f = families.get(name)!
    if (f.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(f.help)}`)
    out.push(`# TYPE ${name} ${f.type}`)
    f.series.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    for (const [, lines] of f.series) out.push(...lines)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}
