/**
 * The bench chart (bench/chart.mjs): rendered from a small fixture of per-run records, the SVG is parsed as XML and
 * read back: one bar per (mode, server row) with heights proportional to the medians, one range line per bar with
 * several runs, spanning min-max and standing on its bar, the axis titles with units, the date and commit in the title.
 * Then the path of `npm run bench`: bench/report.mjs on a raw.tsv writes the .svg beside the .md, and
 * `recordsFromMarkdown` reads the records back from that .md (what `node bench/chart.mjs X.md` draws from).
 */
import { DOMParser, onWarningStopParsing, type Document, type Element } from "@xmldom/xmldom"
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { type BenchRecord, recordsFromMarkdown, renderChart } from "../../bench/chart.mjs"

const ROOT = path.resolve(__dirname, "../..")

const rec = (row: string, mode: string, run: number, c2s?: number, s2c?: number, hwmMb?: number, extra: Record<string, string> = {}): BenchRecord => ({
  row, mode, run, c2s, s2c, cpu: 100, host: 150, bg: 1, hwmKb: hwmMb === undefined ? undefined : hwmMb * 1024, others: 0, note: "", extra
})
/** Three runs per cell: values in the order the bench interleaves them (not sorted), so the median is not the first. */
const runs = (row: string, mode: string, c2s: ReadonlyArray<number>, s2c?: ReadonlyArray<number>): Array<BenchRecord> =>
  c2s.map((v, i) => rec(row, mode, i + 1, v, s2c?.[i], 120))

// "picotcp" stands for a C anchor the chart does not know by name: it must still get bars and a colour of its own
const ROWS = ["kernel", "ours", "ours-nooff", "picotcp"] as const
/** (mode label, row) -> [runs] with the expected median first. */
const CELLS: Record<string, Record<(typeof ROWS)[number], { readonly median: number; readonly min: number; readonly max: number; readonly n: number }>> = {
  "-c": { kernel: { median: 15, min: 14, max: 17, n: 3 }, ours: { median: 16, min: 15.5, max: 18, n: 3 }, "ours-nooff": { median: 4, min: 3, max: 5, n: 3 }, picotcp: { median: 2, min: 1.5, max: 2.5, n: 3 } },
  "-P 4": { kernel: { median: 28, min: 27, max: 30, n: 3 }, ours: { median: 17, min: 16, max: 19, n: 3 }, "ours-nooff": { median: 3, min: 2.9, max: 3.2, n: 3 }, picotcp: { median: 1, min: 0.8, max: 1.2, n: 3 } },
  "-r c2s": { kernel: { median: 16.8, min: 15.8, max: 16.9, n: 3 }, ours: { median: 15.4, min: 14.7, max: 17.3, n: 3 }, "ours-nooff": { median: 4.2, min: 3, max: 4.3, n: 3 }, picotcp: { median: 3.1, min: 2.4, max: 3.4, n: 3 } },
  "-r s2c": { kernel: { median: 17.7, min: 16.1, max: 18.1, n: 3 }, ours: { median: 17.9, min: 16.6, max: 20.9, n: 3 }, "ours-nooff": { median: 2, min: 1.2, max: 2.1, n: 3 }, picotcp: { median: 2.8, min: 2.6, max: 2.9, n: 3 } },
  "-P 64": { kernel: { median: 26, min: 26, max: 26, n: 1 }, ours: { median: 0.8, min: 0.8, max: 0.8, n: 1 }, "ours-nooff": { median: 1.1, min: 1.1, max: 1.1, n: 1 }, picotcp: { median: 1.5, min: 1.5, max: 1.5, n: 1 } }
}
const RECORDS: ReadonlyArray<BenchRecord> = [
  ...runs("kernel", "c", [15, 14, 17]),
  ...runs("ours", "c", [16, 18, 15.5]),
  ...runs("ours-nooff", "c", [5, 4, 3]),
  ...runs("picotcp", "c", [2.5, 1.5, 2]),
  ...runs("kernel", "p4", [30, 28, 27]),
  ...runs("ours", "p4", [19, 16, 17]),
  ...runs("ours-nooff", "p4", [3, 3.2, 2.9]),
  ...runs("picotcp", "p4", [0.8, 1, 1.2]),
  ...runs("kernel", "r", [15.8, 16.8, 16.9], [18.1, 16.1, 17.7]),
  ...runs("ours", "r", [17.3, 15.4, 14.7], [16.6, 20.9, 17.9]),
  ...runs("ours-nooff", "r", [4.2, 3, 4.3], [2.1, 2, 1.2]),
  ...runs("picotcp", "r", [3.4, 3.1, 2.4], [2.6, 2.9, 2.8]),
  rec("kernel", "p64", 1, 26, undefined, 47),
  rec("ours", "p64", 1, 0.8, undefined, 181),
  rec("ours-nooff", "p64", 1, 1.1, undefined, 182),
  rec("picotcp", "p64", 1, 1.5, undefined, 4),
  rec("kernel", "ping", 1, 9),
  rec("ours", "ping", 1, 25),
  rec("ours-nooff", "ping", 1, 22),
  rec("picotcp", "ping", 1, 55),
  rec("kernel", "fl-base", 1, 16, undefined, 6),
  rec("kernel", "fl", 1, 13.5, undefined, 6, { ping_tx: "240", ping_rx: "240" }),
  rec("ours", "fl-base", 1, 13, undefined, 120),
  rec("ours", "fl", 1, 8.5, undefined, 148, { ping_tx: "240", ping_rx: "239" }),
  rec("ours", "atk-a", 1, undefined, undefined, 180, { opened: "1100", ct_ms: "0.69", served: "1", elapsed_s: "1.05" }),
  rec("ours", "atk-c", 1, undefined, undefined, 126, { sent: "300", ct_ms: "1.40", served: "1", elapsed_s: "1.04" })
]
const META = { start: "2026-12-07T05:00:12Z", end: "2026-12-07T05:07:40Z", commit: "abc1234", runs: 3, secs: 5 }

const parse = (svg: string): Document => new DOMParser({ onError: onWarningStopParsing }).parseFromString(svg, "image/svg+xml")
const all = (el: Document | Element, tag: string): Array<Element> => Array.from(el.getElementsByTagName(tag))
/** The items of a named vega mark: the children of the <g> whose class names it. */
const items = (doc: Document, mark: string): Array<Element> => {
  const groups = all(doc, "g").filter((g) => (g.getAttribute("class") ?? "").split(" ").includes(mark))
  expect(groups.length, `mark ${mark}`).toBeLessThanOrEqual(1)
  return groups.length === 0 ? [] : Array.from(groups[0]!.childNodes).filter((n): n is Element => n.nodeType === 1)
}
/** A vega rect is a path "Mx,yhWvHh-WZ". */
const rect = (p: Element) => {
  const m = /^M(-?[\d.e+-]+),(-?[\d.e+-]+)h(-?[\d.e+-]+)v(-?[\d.e+-]+)h/.exec(p.getAttribute("d") ?? "")
  expect(m, `rect path ${p.getAttribute("d")}`).not.toBeNull()
  const [x, y, w, h] = m!.slice(1, 5).map(Number) as [number, number, number, number]
  return { x, y, w, h }
}
/** A vega rule is <line transform="translate(x,y)" x2 y2>. */
const line = (l: Element) => {
  const m = /translate\((-?[\d.e+-]+),(-?[\d.e+-]+)\)/.exec(l.getAttribute("transform") ?? "")
  expect(m).not.toBeNull()
  return { x: Number(m![1]), y: Number(m![2]), x2: Number(l.getAttribute("x2") ?? "0"), y2: Number(l.getAttribute("y2") ?? "0") }
}
/** "ours, -r c2s: 15.4 Gbit/s (...)" -> "ours, -r c2s" */
const key = (el: Element) => (el.getAttribute("aria-label") ?? "").split(":")[0]!

describe("the chart of a full run", async () => {
  const svg = await renderChart(RECORDS, META)
  const doc = parse(svg)

  it("is an SVG document that parses as XML, with a size", () => {
    expect(doc.documentElement?.tagName).toBe("svg")
    expect(Number(doc.documentElement?.getAttribute("width"))).toBeGreaterThan(700)
    expect(Number(doc.documentElement?.getAttribute("height"))).toBeGreaterThan(300)
    expect(() => parse(svg.replace("</svg>", ""))).toThrow() // the parser does reject a broken document
  })

  it("one throughput bar per (mode, row), its height proportional to the median", () => {
    const bars = items(doc, "throughput_bar")
    expect(bars.length).toBe(Object.keys(CELLS).length * ROWS.length)
    const seen = new Set<string>()
    const perUnit: Array<number> = []
    for (const mode of Object.keys(CELLS)) {
      for (const row of ROWS) {
        const el = bars.filter((b) => key(b) === `${row}, ${mode}`)
        expect(el.length, `${row} ${mode}`).toBe(1)
        seen.add(key(el[0]!))
        const { h } = rect(el[0]!)
        perUnit.push(h / CELLS[mode]![row].median)
      }
    }
    expect(seen.size).toBe(bars.length)
    // one linear scale from zero: pixels per Gbit/s the same for every bar
    for (const k of perUnit) expect(k).toBeCloseTo(perUnit[0]!, 6)
    // and so the heights sort as the medians do
    const byHeight = [...bars].sort((a, b) => rect(a).h - rect(b).h).map(key)
    const byMedian = Object.entries(CELLS)
      .flatMap(([mode, rs]) => ROWS.map((row) => ({ k: `${row}, ${mode}`, m: rs[row].median })))
      .sort((a, b) => a.m - b.m)
      .map((x) => x.k)
    expect(byHeight).toEqual(byMedian)
  })

  it("a min-max range line on each bar with several runs, none on a single run", () => {
    const bars = items(doc, "throughput_bar")
    const ranges = items(doc, "throughput_range")
    const multi = Object.entries(CELLS).flatMap(([mode, rs]) => ROWS.filter((r) => rs[r].n > 1).map((row) => ({ mode, row, c: rs[row] })))
    expect(ranges.length).toBe(multi.length)
    expect(items(doc, "throughput_range_min").length).toBe(multi.length) // the caps
    expect(items(doc, "throughput_range_max").length).toBe(multi.length)
    const b0 = rect(bars.find((b) => key(b) === "kernel, -c")!)
    const perUnit = b0.h / CELLS["-c"]!.kernel.median
    for (const { mode, row, c } of multi) {
      const r = ranges.filter((x) => key(x) === `${row}, ${mode}`)
      expect(r.length, `${row} ${mode}`).toBe(1)
      const l = line(r[0]!)
      const b = rect(bars.find((x) => key(x) === `${row}, ${mode}`)!)
      expect(l.x).toBeCloseTo(b.x + b.w / 2, 6) // on its bar
      expect(l.x2).toBe(0)
      expect(-l.y2).toBeCloseTo((c.max - c.min) * perUnit, 6) // spans min..max
      expect(l.y).toBeCloseTo(b.y + b.h - c.min * perUnit, 6) // starting at min
    }
    expect(ranges.some((x) => key(x).includes("-P 64"))).toBe(false)
  })

  it("axis titles with units, the date and commit in the title, a legend entry per row", () => {
    const axisTitles = all(doc, "g")
      .filter((g) => (g.getAttribute("class") ?? "").includes("role-axis-title"))
      .flatMap((g) => all(g, "text").map((t) => t.textContent))
    expect(axisTitles).toEqual(expect.arrayContaining(["Gbit/s (client goodput)", "iperf mode", "RTT median, us", "peak RSS (VmHWM), MB"]))
    const texts = all(doc, "text").map((t) => t.textContent ?? "")
    expect(texts.some((t) => t.includes("2026-12-07 05:00 UTC") && t.includes("commit abc1234"))).toBe(true)
    const legend = all(doc, "g")
      .filter((g) => (g.getAttribute("class") ?? "").includes("role-legend-label"))
      .flatMap((g) => all(g, "text").map((t) => t.textContent))
    expect(legend).toEqual(["kernel iperf -s (ceiling)", "ours (offloads, default)", "ours --no-offload", "picotcp"])
  })

  it("each row one colour, all different; the row the chart does not know gets its own", () => {
    const bars = items(doc, "throughput_bar")
    const fills = new Map<string, Set<string>>()
    for (const b of bars) {
      const row = key(b).split(",")[0]!
      fills.set(row, (fills.get(row) ?? new Set()).add(b.getAttribute("fill") ?? ""))
    }
    expect([...fills.keys()].sort()).toEqual([...ROWS].sort())
    for (const s of fills.values()) expect(s.size).toBe(1)
    expect(new Set([...fills.values()].map((s) => [...s][0])).size).toBe(ROWS.length)
  })

  it("ping, flood and attack panels: a bar per measured figure, in proportion; the 250 MB line", () => {
    const ping = items(doc, "ping_bar")
    expect(ping.map(key)).toEqual(ROWS.map((r) => `${r}, ping`))
    const ph = ping.map((p) => rect(p).h)
    const pv = [9, 25, 22, 55]
    ph.forEach((h, i) => expect(h / pv[i]!).toBeCloseTo(ph[0]! / pv[0]!, 6))
    const flood = items(doc, "flood_bar").map(key)
    expect(flood).toEqual(["kernel, unflooded", "ours, unflooded", "kernel, during the flood", "ours, during the flood"])
    const atk = items(doc, "attacks_bar")
    expect(atk.map(key)).toEqual(["ours, SYN flood (hping3)", "ours, a. 1100 idle conns", "ours, c. 300 spoofed SYNs"])
    expect(atk[1]!.getAttribute("aria-label")).toContain("connected in 0.69 ms")
    expect(rect(atk[1]!).h / 180).toBeCloseTo(rect(atk[2]!).h / 126, 6)
    expect(items(doc, "attacks_target").length).toBe(1)
    expect(items(doc, "ping_range").length + items(doc, "flood_range").length + items(doc, "attacks_range").length).toBe(0)
  })
})

describe("a run with one run per cell (BENCH_QUICK)", () => {
  it("has bars and no range lines", async () => {
    const doc = parse(await renderChart(RECORDS.filter((r) => r.run === 1), { ...META, quick: true, runs: 1 }))
    expect(items(doc, "throughput_bar").length).toBe(Object.keys(CELLS).length * ROWS.length)
    expect(items(doc, "throughput_range").length).toBe(0)
    expect(all(doc, "text").some((t) => (t.textContent ?? "").includes("(1 run)"))).toBe(false)
  })
})

describe("from the bench to the files: bench/report.mjs, then bench/chart.mjs on the .md", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "miniperf-chart-"))
  afterAll(() => rmSync(tmp, { recursive: true, force: true }))
  const cell = (x: number | undefined) => (x === undefined ? "" : String(x))
  const raw = RECORDS.map((r) =>
    [r.row, r.mode, r.run, cell(r.c2s), cell(r.s2c), cell(r.cpu), cell(r.host), cell(r.bg), cell(r.hwmKb), cell(r.others), r.note,
      Object.entries(r.extra).map(([k, v]) => `${k}=${v}`).join(" ")].join("\t")
  ).join("\n") + "\n"

  it("report.mjs writes X.svg beside X.md; the .md's per-run table gives back the records and the same bars", async () => {
    writeFileSync(path.join(tmp, "raw.tsv"), raw)
    const md = path.join(tmp, "20261207T050740Z.md")
    const env = {
      ...process.env, BENCH_META_START: META.start, BENCH_META_END: META.end, BENCH_META_RUNS: "3", BENCH_META_SECS: "5",
      BENCH_META_VERSIONS: "node v20.20.2, iperf version 2.1.8, commit abc1234"
    }
    execFileSync(process.execPath, [path.join(ROOT, "bench/report.mjs"), path.join(tmp, "raw.tsv"), md], { env, stdio: "pipe" })
    const svgPath = path.join(tmp, "20261207T050740Z.svg")
    expect(existsSync(svgPath)).toBe(true)
    const fromReport = parse(readFileSync(svgPath, "utf8"))

    const { records, meta } = recordsFromMarkdown(readFileSync(md, "utf8"))
    expect(meta).toMatchObject({ start: META.start, end: META.end, commit: "abc1234", runs: 3, secs: 5, quick: false })
    expect(records.map((r) => [r.row, r.mode, r.run, r.c2s, r.s2c])).toEqual(RECORDS.map((r) => [r.row, r.mode, r.run, r.c2s, r.s2c]))
    expect(records.find((r) => r.mode === "atk-a")?.extra).toEqual({ opened: "1100", ct_ms: "0.69", served: "1", elapsed_s: "1.05" })
    expect(records.find((r) => r.mode === "atk-a")?.hwmKb).toBe(180 * 1024)

    execFileSync(process.execPath, [path.join(ROOT, "bench/chart.mjs"), md, path.join(tmp, "again.svg")], { stdio: "pipe" })
    const fromMd = parse(readFileSync(path.join(tmp, "again.svg"), "utf8"))
    for (const mark of ["throughput_bar", "throughput_range", "ping_bar", "flood_bar", "attacks_bar"]) {
      expect(items(fromMd, mark).map((e) => e.getAttribute("d") ?? e.getAttribute("transform")), mark).toEqual(
        items(fromReport, mark).map((e) => e.getAttribute("d") ?? e.getAttribute("transform"))
      )
    }
  })

  it("recordsFromMarkdown refuses a file that is not a bench result", () => {
    expect(() => recordsFromMarkdown("# Something else\n")).toThrow(/not a MinIperf bench result/)
    expect(() => recordsFromMarkdown("# MinIperf bench: 2026-12-07T05:00:12Z .. 2026-12-07T05:07:40Z\n\nno table\n")).toThrow(/per-run table/)
  })
})
