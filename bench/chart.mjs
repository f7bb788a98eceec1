// The bench chart: an SVG beside the bench table, drawn from the same per-run records (bench/report.mjs), with vega
// (a devDependency: the chart is a bench tool, not part of the package). For each mode, one bar per server row: the
// bar is the median of the runs, the black line over it the range (min-max) when there was more than one run.
//
//   node bench/chart.mjs RESULTS.md [OUT.svg]   the chart of a saved result file, from its per-run table (default
//                                               OUT: the .md's path with .svg)
//
// Panels (each only when the records have it): throughput (-c, -P 4, -r c2s, -r s2c, -P 64, the C pusher's push) in Gbit/s; ping RTT in
// us; single-stream Gbit/s without and during a SYN flood; our peak RSS under the flood and the attacks of design.md §7.
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

// ---- records ----------------------------------------------------------------------------------------------------

const defined = (xs) => xs.filter((x) => x !== undefined && Number.isFinite(x))
export const median = (xs) => {
  const v = defined(xs).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const m = v.length >> 1
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}
const num = (s) => (s === undefined || s.trim() === "" || s.trim() === "-" ? undefined : Number(s))

/**
 * The records and the conditions of a result file written by bench/report.mjs, read back from its per-run table
 * (`<details>`) and its header. The per-run table rounds srv CPU % and VmHWM (to MB), and joins the note with the
 * key=value extras of the under-attack records; both are split apart again here.
 */
export const recordsFromMarkdown = (text) => {
  const lines = text.split("\n")
  const head = /^# MinIperf bench( \(quick mode\))?: (\S+) \.\. (\S+)/.exec(lines[0] ?? "")
  if (head === null) throw new Error("not a MinIperf bench result: the first line is not '# MinIperf bench: START .. END'")
  const software = lines.find((l) => l.startsWith("- software:")) ?? ""
  const method = lines.find((l) => l.startsWith("- method:")) ?? ""
  const runsSecs = /median of (\d+) run\(s\) x (\d+) s/.exec(method)
  const meta = {
    start: head[2],
    end: head[3],
    quick: head[1] !== undefined,
    commit: /commit (\w+)/.exec(software)?.[1],
    uncommitted: software.includes("uncommitted"),
    runs: runsSecs === null ? undefined : Number(runsSecs[1]),
    secs: runsSecs === null ? undefined : Number(runsSecs[2])
  }
  const from = lines.findIndex((l) => l.startsWith("<details><summary>per run"))
  if (from < 0) throw new Error("no per-run table (<details><summary>per run</summary>) in this file")
  const records = []
  for (const l of lines.slice(from + 1)) {
    if (l.startsWith("</details>")) break
    if (!l.startsWith("| ") || l.startsWith("| server ") || l.startsWith("|---")) continue
    const c = l.split("|").slice(1, -1).map((s) => s.trim())
    if (c.length < 11) throw new Error(`per-run line with ${c.length} cells, 11 expected: ${l}`)
    const [row, mode, run, c2s, s2c, cpu, hwmMb, host, bg, others, ...rest] = c
    const words = rest.join("|").split(" ").filter((w) => w !== "")
    const extra = Object.fromEntries(words.filter((w) => /^\w+=/.test(w)).map((w) => w.split("=", 2)))
    const mb = num(hwmMb)
    records.push({
      row, mode, run: Number(run), c2s: num(c2s), s2c: num(s2c), cpu: num(cpu), host: num(host), bg: num(bg),
      hwmKb: mb === undefined ? undefined : mb * 1024, others: num(others),
      note: words.filter((w) => !/^\w+=/.test(w)).join(" "), extra
    })
  }
  if (records.length === 0) throw new Error("the per-run table is empty")
  return { records, meta }
}

// ---- what is drawn -------------------------------------------------------------------------------------------------

const KNOWN_ROWS = [
  { row: "kernel", label: "kernel iperf -s (ceiling)", color: "#999999" },
  { row: "ours", label: "ours (offloads, default)", color: "#0072B2" },
  { row: "ours-nooff", label: "ours --no-offload", color: "#56B4E9" },
  { row: "ours-nopoll", label: "ours --busy-poll 0", color: "#009E73" },
  { row: "lwip", label: "lwIP 2.1.3 anchor", color: "#E69F00" },
  { row: "c-sink", label: "C ACK sink + TSO (reader limit)", color: "#CC79A7" },
  { row: "c-push", label: "C push + GSO (writer limit)", color: "#D55E00" }
]
// Okabe-Ito colours, told apart with the common colour-vision deficiencies; rows not listed above (other C
// anchors) take these in order
const SPARE_COLORS = ["#CC79A7", "#D55E00", "#F0E442", "#000000"]

const THROUGHPUT = [
  { mode: "c", label: "-c", pick: (r) => r.c2s },
  { mode: "p4", label: "-P 4", pick: (r) => r.c2s },
  { mode: "r", label: "-r c2s", pick: (r) => r.c2s },
  { mode: "r", label: "-r s2c", pick: (r) => r.s2c },
  { mode: "p64", label: "-P 64", pick: (r) => r.c2s },
  { mode: "push", label: "push s2c", pick: (r) => r.c2s }
]
// "|" breaks an axis label into lines
const ATTACKS = [
  { mode: "fl", label: "SYN flood|(hping3)" },
  { mode: "atk-a", label: "a. 1100|idle conns" },
  { mode: "atk-b", label: "b. 1024|iperf3 cookies" },
  { mode: "atk-c", label: "c. 300|spoofed SYNs" }
]
const RSS_MAX_MB = 250

export const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
// us and MB are whole numbers in the table; Gbit/s as the table writes them
const fmtIn = (unit, x) => (unit === "Gbit/s" ? fmt(x) : String(Math.round(x)))

const bar = (category, row, values, unit) => {
  const v = defined(values)
  if (v.length === 0) return undefined
  const m = median(v)
  const lo = Math.min(...v)
  const hi = Math.max(...v)
  return {
    category, row, median: m, min: lo, max: hi, runs: v.length, label: fmtIn(unit, m), range: `${fmtIn(unit, lo)}-${fmtIn(unit, hi)} ${unit}`,
    description: `${row}, ${category.replace("|", " ")}: ${fmtIn(unit, m)} ${unit}` +
      `${v.length > 1 ? ` (median of ${v.length} runs, ${fmtIn(unit, lo)}-${fmtIn(unit, hi)})` : ""}`
  }
}

/** The panels (pure): for each, its categories (x), the rows (colours) and one bar per (category, row) present. */
export const chartPanels = (records) => {
  const known = KNOWN_ROWS.map((k) => k.row)
  const rowOrder = [...known, ...[...new Set(records.map((r) => r.row))].filter((r) => !known.includes(r))]
  const of = (row, mode) => records.filter((x) => x.row === row && x.mode === mode)
  const present = (bars) => bars.filter((b) => b !== undefined)
  const panels = []

  const tBars = present(THROUGHPUT.flatMap((c) => rowOrder.map((row) => bar(c.label, row, of(row, c.mode).map(c.pick), "Gbit/s"))))
  // a mode measured once (-P 64) among modes with several runs says so under its bars
  if (tBars.some((b) => b.runs > 1)) {
    for (const cat of new Set(tBars.map((b) => b.category))) {
      const bs = tBars.filter((b) => b.category === cat)
      if (bs.every((b) => b.runs === 1)) for (const b of bs) b.category = `${cat}|(1 run)`
    }
  }
  if (tBars.length > 0) {
    panels.push({
      id: "throughput", title: "Throughput: real iperf 2.1.8 client to the server", yTitle: "Gbit/s (client goodput)",
      xTitle: "iperf mode", bars: tBars, wide: true
    })
  }
  const pBars = present(rowOrder.map((row) => bar("ping", row, of(row, "ping").map((r) => r.c2s), "us")))
  if (pBars.length > 0) {
    panels.push({ id: "ping", title: "Ping RTT (lower is better)", yTitle: "RTT median, us", xTitle: "ping -i 0.002, median per-reply time", bars: pBars })
  }
  const fBars = present(
    [
      { mode: "fl-base", label: "unflooded" },
      { mode: "fl", label: "during the flood" }
    ].flatMap((c) => rowOrder.map((row) => bar(c.label, row, of(row, c.mode).map((r) => r.c2s), "Gbit/s")))
  )
  if (fBars.length > 0) {
    panels.push({ id: "flood", title: "-c under a SYN flood", yTitle: "Gbit/s (client goodput)", xTitle: "one run each", bars: fBars })
  }
  const aBars = present(
    ATTACKS.map((a) => {
      const rs = of("ours", a.mode)
      const b = bar(a.label, "ours", rs.map((r) => (r.hwmKb === undefined ? undefined : r.hwmKb / 1024)), "MB")
      if (b === undefined) return undefined
      const ct = Number(rs[0]?.extra?.ct_ms)
      return Number.isFinite(ct) ? { ...b, description: `${b.description}; new client connected in ${ct} ms` } : b
    })
  )
  if (aBars.length > 0) {
    panels.push({
      id: "attacks", title: "Ours under attack: peak RSS", yTitle: "peak RSS (VmHWM), MB", xTitle: "attack (design.md §7)", bars: aBars,
      target: { value: RSS_MAX_MB, label: `target <= ${RSS_MAX_MB} MB` }
    })
  }
  const used = rowOrder.filter((r) => panels.some((p) => p.bars.some((b) => b.row === r)))
  let spare = 0
  const rows = used.map((row) => {
    const k = KNOWN_ROWS.find((x) => x.row === row)
    return k ?? { row, label: row, color: SPARE_COLORS[spare++ % SPARE_COLORS.length] }
  })
  return { panels, rows }
}

// ---- the vega spec -------------------------------------------------------------------------------------------------

const WIDTH = 760
const GAP = 56
const TALL = 230
const SHORT = 170

const panelSpec = (p, x, y, width, height, rows) => {
  const categories = [...new Set(p.bars.map((b) => b.category))]
  const rowsHere = rows.filter((r) => p.bars.some((b) => b.row === r.row)).map((r) => r.row)
  const top = Math.max(...p.bars.map((b) => b.max), p.target?.value ?? 0)
  const data = `${p.id}_bars`
  const xPos = { scale: "x", field: "category", offset: { scale: "inner", field: "row" } }
  const center = { ...xPos, offset: { signal: `scale('inner', datum.row) + bandwidth('inner') / 2` } }
  const marks = [
    // the panel's title, at the same height in every panel of a line (a group title would move with the axis extent)
    {
      type: "text", name: `${p.id}_title`, aria: false,
      encode: {
        enter: {
          x: { value: 0 }, y: { value: -16 }, text: { value: p.title }, fontSize: { value: 12 }, fontWeight: { value: "bold" },
          baseline: { value: "bottom" }, fill: { value: "#000" }
        }
      }
    },
    {
      type: "rect", name: `${p.id}_bar`, from: { data },
      encode: {
        enter: {
          x: xPos, width: { scale: "inner", band: 1 }, y: { scale: "y", field: "median" }, y2: { scale: "y", value: 0 },
          fill: { scale: "color", field: "row" }, description: { field: "description" }
        }
      }
    },
    {
      type: "rule", name: `${p.id}_range`, from: { data: `${p.id}_ranged` },
      encode: {
        enter: {
          x: center, y: { scale: "y", field: "min" }, y2: { scale: "y", field: "max" }, stroke: { value: "#1a1a1a" },
          strokeWidth: { value: 1.5 },
          description: { signal: "datum.row + ', ' + replace(datum.category, '|', ' ') + ': runs from ' + datum.range" }
        }
      }
    },
    ...["min", "max"].map((end) => ({
      type: "rule", name: `${p.id}_range_${end}`, from: { data: `${p.id}_ranged` }, aria: false,
      encode: {
        enter: {
          x: { ...center, offset: { signal: `scale('inner', datum.row) + bandwidth('inner') / 2 - 4` } },
          x2: { ...center, offset: { signal: `scale('inner', datum.row) + bandwidth('inner') / 2 + 4` } },
          y: { scale: "y", field: end }, stroke: { value: "#1a1a1a" }, strokeWidth: { value: 1.5 }
        }
      }
    })),
    {
      type: "text", name: `${p.id}_value`, from: { data }, aria: false,
      encode: {
        enter: {
          x: center, y: { scale: "y", field: "max", offset: -3 }, align: { value: "center" }, baseline: { value: "bottom" },
          text: { field: "label" }, fontSize: { value: 9 }, fill: { value: "#333" }
        }
      }
    }
  ]
  if (p.target !== undefined) {
    marks.push(
      {
        type: "rule", name: `${p.id}_target`, aria: false,
        encode: {
          enter: {
            x: { value: 0 }, x2: { field: { group: "width" } }, y: { scale: "y", value: p.target.value }, stroke: { value: "#D55E00" },
            strokeDash: { value: [4, 3] }
          }
        }
      },
      {
        type: "text", aria: false,
        encode: {
          enter: {
            x: { field: { group: "width" } }, y: { scale: "y", value: p.target.value, offset: -3 }, align: { value: "right" },
            baseline: { value: "bottom" }, text: { value: p.target.label }, fontSize: { value: 9 }, fill: { value: "#D55E00" }
          }
        }
      }
    )
  }
  return {
    type: "group", name: p.id,
    encode: { enter: { x: { value: x }, y: { value: y }, width: { value: width }, height: { value: height } } },
    // the group's own size, so that its axes' grid lines and its scales' ranges stay inside it
    signals: [
      { name: "width", value: width },
      { name: "height", value: height }
    ],
    data: [
      { name: data, values: p.bars },
      { name: `${p.id}_ranged`, source: data, transform: [{ type: "filter", expr: "datum.runs > 1" }] }
    ],
    scales: [
      { name: "x", type: "band", domain: categories, range: [0, width], paddingInner: 0.2, paddingOuter: 0.1 },
      { name: "inner", type: "band", domain: rowsHere, range: { signal: "[0, bandwidth('x')]" }, paddingInner: 0.08 },
      { name: "y", type: "linear", domain: [0, top * 1.1], range: [height, 0], nice: true, zero: true }
    ],
    axes: [
      {
        orient: "bottom", scale: "x", title: p.xTitle, titleFontSize: 10, titleFontWeight: "normal", labelFontSize: 10,
        labelLimit: 0, labels: !(categories.length === 1 && rowsHere.length > 1),
        encode: { labels: { update: { text: { signal: "split(datum.value, '|')" } } } }
      },
      { orient: "left", scale: "y", title: p.yTitle, grid: true, gridOpacity: 0.4, tickCount: 5, labelFontSize: 10 }
    ],
    marks
  }
}

const utc = (iso) => (iso === undefined ? "?" : iso.replace("T", " ").replace(/:\d\dZ$/, " UTC"))

/** The vega spec (pure). meta: { start, end, commit, uncommitted, quick, runs, secs } as far as known. */
export const chartSpec = (records, meta = {}) => {
  const { panels, rows } = chartPanels(records)
  if (panels.length === 0) throw new Error("no records to draw")
  const marks = []
  let y = 0
  const wide = panels.filter((p) => p.wide)
  for (const p of wide) {
    marks.push(panelSpec(p, 0, y, WIDTH, TALL, rows))
    y += TALL + GAP + 24
  }
  // the others two to a line, each half the width
  const small = panels.filter((p) => !p.wide)
  const w = (WIDTH - GAP) / 2
  small.forEach((p, i) => {
    marks.push(panelSpec(p, (i % 2) * (w + GAP), y, w, SHORT, rows))
    if (i % 2 === 1 || i === small.length - 1) y += SHORT + GAP + 30
  })
  const height = y - GAP - 30
  const runs =
    meta.runs === undefined ? "" : wide.length > 0 ? `${meta.runs} run(s) x ${meta.secs} s per cell; ` : `one ${meta.secs} s client run per figure; `
  return {
    $schema: "https://vega.github.io/schema/vega/v6.json",
    width: WIDTH, height, padding: 12, autosize: "pad", background: "white",
    title: {
      text: `MinIperf bench${meta.quick ? " (quick)" : ""}, ${utc(meta.start)}, commit ${meta.commit ?? "?"}${meta.uncommitted ? " + uncommitted" : ""}`,
      // two short lines: without a canvas, vega estimates text widths generously and would widen the picture
      subtitle: [`${runs}bar = median of the runs,`, "black line = min-max of the runs (none for a single run)"],
      anchor: "start", fontSize: 14, subtitleFontSize: 11, offset: 10
    },
    scales: [{ name: "color", type: "ordinal", domain: rows.map((r) => r.row), range: rows.map((r) => r.color) }],
    legends: [
      {
        fill: "color", orient: "top", direction: "horizontal", title: null, labelFontSize: 11, labelLimit: 0, symbolType: "square",
        columns: 3, columnPadding: 16, rowPadding: 4, gridAlign: "each",
        encode: { labels: { update: { text: { signal: `${JSON.stringify(Object.fromEntries(rows.map((r) => [r.row, r.label])))}[datum.value]` } } } }
      }
    ],
    marks
  }
}

/** The chart as SVG text. */
export const renderChart = async (records, meta = {}) => {
  const vega = await import("vega")
  const view = new vega.View(vega.parse(chartSpec(records, meta)), { renderer: "none" })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

// ---- node bench/chart.mjs RESULTS.md [OUT.svg] ---------------------------------------------------------------------

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [mdPath, outArg] = process.argv.slice(2)
  if (mdPath === undefined || !mdPath.endsWith(".md")) {
    process.stderr.write("usage: node bench/chart.mjs bench/results/RESULT.md [OUT.svg]\n")
    process.exit(2)
  }
  const { records, meta } = recordsFromMarkdown(readFileSync(mdPath, "utf8"))
  const out = outArg ?? mdPath.replace(/\.md$/, ".svg")
  writeFileSync(out, await renderChart(records, meta))
  process.stdout.write(`chart written to ${out}\n`)
}
