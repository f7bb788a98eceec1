// Turns the per-run records of scripts/bench.sh into the bench table (markdown), prints it and, given a second
// argument, writes it there too, and the chart of the same records beside it (OUT.svg, bench/chart.mjs).
// Usage: node bench/report.mjs RAW.tsv [OUT.md]
// RAW.tsv columns: row mode run c2s_gbps s2c_gbps srv_cpu_pct host_pct bg_pct hwm_kb others_pct note
// (for mode "ping" the c2s column holds the RTT median in microseconds). Conditions come from BENCH_META_* variables.
import { readFileSync, writeFileSync } from "node:fs"
import { renderChart } from "./chart.mjs"

const [rawPath, outPath] = process.argv.slice(2)
if (rawPath === undefined) {
  process.stderr.write("usage: node bench/report.mjs RAW.tsv [OUT.md]\n")
  process.exit(2)
}
const env = (k, d = "") => process.env[`BENCH_META_${k}`] ?? d

const num = (s) => (s === undefined || s === "" ? undefined : Number(s))
const records = readFileSync(rawPath, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => {
    const [row, mode, run, c2s, s2c, cpu, host, bg, hwm, others, note, extra] = l.split("\t")
    return {
      row, mode, run: Number(run), c2s: num(c2s), s2c: num(s2c), cpu: num(cpu), host: num(host), bg: num(bg), hwmKb: num(hwm),
      others: num(others), note: note ?? "",
      // the under-attack records' key=value extras (scripts/bench-attack.sh)
      extra: Object.fromEntries((extra ?? "").split(" ").filter((kv) => kv.includes("=")).map((kv) => kv.split("=", 2)))
    }
  })

const defined = (xs) => xs.filter((x) => x !== undefined && Number.isFinite(x))
const median = (xs) => {
  const v = defined(xs).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const m = v.length >> 1
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}
const max = (xs) => (defined(xs).length === 0 ? undefined : Math.max(...defined(xs)))
const min = (xs) => (defined(xs).length === 0 ? undefined : Math.min(...defined(xs)))
const fmtG = (x) => (x === undefined ? "-" : x >= 10 ? x.toFixed(1) : x.toFixed(2))
const fmtI = (x) => (x === undefined ? "-" : String(Math.round(x)))
const fmtMB = (kb) => (kb === undefined ? "-" : String(Math.round(kb / 1024)))
const fmtRatio = (a, b) => (a === undefined || b === undefined || b === 0 ? "-" : (a / b).toFixed(2))

const ROW_LABEL = {
  kernel: "kernel `iperf -s`, veth (ceiling)",
  ours: "ours, TAP, offloads (default)",
  "ours-nooff": "ours, TAP, `--no-offload`",
  "ours-nopoll": "ours, TAP, `--busy-poll 0`",
  lwip: "lwIP 2.1.3 anchor, TAP",
  "c-sink": "C ACK sink + TSO (`tap_pump --ack --vnet`), TAP",
  "c-push": "C push with GSO (`tap_pump --tx --vnet`), TAP"
}
const ROW_ORDER = ["kernel", "ours", "ours-nooff", "ours-nopoll", "lwip", "c-sink", "c-push"]
const CELLS = [
  { mode: "c", label: "`-c`", pick: (r) => r.c2s },
  { mode: "p4", label: "`-P 4`", pick: (r) => r.c2s },
  { mode: "r", label: "`-r` c2s", pick: (r) => r.c2s },
  { mode: "r", label: "`-r` s2c", pick: (r) => r.s2c },
  { mode: "push", label: "push (server to client)", pick: (r) => r.c2s }
]

const idleMax = Number(env("IDLE_MAX", "20"))
// "*": in some run of the cell, the box was busier than the idle threshold just before the run (the idle wait timed
// out), or other sessions' processes used more than that threshold during it
const busy = (x) => x !== undefined && x > idleMax
const star = (rs) => (rs.some((r) => busy(r.bg) || busy(r.others)) ? "*" : "")
const rows = ROW_ORDER.filter((r) => records.some((x) => x.row === r))
const of = (row, mode) => records.filter((x) => x.row === row && x.mode === mode)
const lines = []
const out = (s = "") => lines.push(s)

const bgAll = defined(records.map((r) => r.bg))
out(`# MinIperf bench${env("QUICK") === "1" ? " (quick mode)" : ""}: ${env("START")} .. ${env("END")}`)
out()
out(`- machine: ${env("MACHINE")}`)
out(`- software: ${env("VERSIONS")}`)
out(
  `- method: real iperf 2.1.8 client (\`-f m\`), each cell the median of ${env("RUNS")} run(s) x ${env("SECS")} s, runs of one mode ` +
    `interleaved across the servers, each run on a fresh server and fresh namespaces; TAP kernel side MTU 1500, txqueuelen ${env("TXQLEN")}; ` +
    `client-side TCP congestion control ${env("CC", "not recorded")}`
)
out(
  `- load: load average ${env("LOAD_START")} at start, ${env("LOAD_END")} at end; box busy in the 1 s before each run ` +
    `(200 = both cores; runs wait for <= ${env("IDLE_MAX")}): median ${fmtI(median(bgAll))}, max ${fmtI(max(bgAll))}`
)
if (env("LWIP_NOTE") !== "") out(`- ${env("LWIP_NOTE")}`)
if (env("PUMP_NOTE") !== "") out(`- ${env("PUMP_NOTE")}`)
if (env("NOTE") !== "") out(`- note: ${env("NOTE")}`)
const hasCells = records.some((r) => CELLS.some((c) => c.mode === r.mode))
if (hasCells) {
out()
out("| server | mode | Gbit/s | min-max | x kernel | srv CPU % | peak RSS MB | host % | bg % | others % |")
out("|---|---|--:|---|--:|--:|--:|--:|--:|--:|")
}
for (const row of rows) {
  for (const cell of CELLS) {
    const rs = of(row, cell.mode)
    if (rs.length === 0) continue
    const vals = rs.map(cell.pick)
    const med = median(vals)
    const kmed = median(of("kernel", cell.mode).map(cell.pick))
    const n = defined(vals).length
    out(
      `| ${ROW_LABEL[row]} | ${cell.label} | ${fmtG(med)}${star(rs)} | ${n === 0 ? "-" : `${fmtG(min(vals))}-${fmtG(max(vals))}`}` +
        `${n < rs.length ? ` (${n}/${rs.length} runs)` : ""} | ${row === "kernel" ? "1.00" : fmtRatio(med, kmed)} | ` +
        `${fmtI(median(rs.map((r) => r.cpu)))} | ${fmtMB(max(rs.map((r) => r.hwmKb)))} | ${fmtI(median(rs.map((r) => r.host)))} | ` +
        `${fmtI(max(rs.map((r) => r.bg)))} | ${fmtI(max(rs.map((r) => r.others)))} |`
    )
  }
}

const p64 = rows.filter((r) => of(r, "p64").length > 0)
if (p64.length > 0) {
  out()
  out(`\`-P 64\` (${env("P64_RUNS", "1")} run(s) x ${env("SECS")} s; median and min-max):`)
  out()
  out("| server | Gbit/s | min-max | x kernel | srv CPU % | peak RSS MB | bg % | others % |")
  out("|---|--:|---|--:|--:|--:|--:|--:|")
  const k = median(of("kernel", "p64").map((r) => r.c2s))
  for (const row of p64) {
    const rs = of(row, "p64")
    const g = median(rs.map((r) => r.c2s))
    const hwm = max(rs.map((r) => r.hwmKb))
    const vals = rs.map((r) => r.c2s)
    out(
      `| ${ROW_LABEL[row]} | ${fmtG(g)}${star(rs)} | ${fmtG(min(vals))}-${fmtG(max(vals))} | ${row === "kernel" ? "1.00" : fmtRatio(g, k)} | ` +
        `${fmtI(median(rs.map((r) => r.cpu)))} | ${fmtMB(hwm)} | ${fmtI(max(rs.map((r) => r.bg)))} | ${fmtI(max(rs.map((r) => r.others)))} |`
    )
  }
}

const pings = rows.filter((r) => of(r, "ping").length > 0)
if (pings.length > 0) {
  out()
  out(`Ping RTT median (${env("PINGS")} pings, \`ping -i 0.002\`, per-reply times):`)
  out()
  out("| server | RTT median us | x kernel | bg % | others % |")
  out("|---|--:|--:|--:|--:|")
  const k = median(of("kernel", "ping").map((r) => r.c2s))
  for (const row of pings) {
    const rs = of(row, "ping")
    const us = median(rs.map((r) => r.c2s))
    const note = rs.map((r) => r.note).filter((s) => s !== "").join("; ")
    out(`| ${ROW_LABEL[row]} | ${fmtI(us)}${star(rs)}${note ? ` (${note})` : ""} | ${row === "kernel" ? "1.00" : fmtRatio(us, k)} | ${fmtI(max(rs.map((r) => r.bg)))} | ${fmtI(max(rs.map((r) => r.others)))} |`)
  }
}

// ---- issue 13 targets: every ratio from this run -------------------------------------------------------------
{
  const med = (row, mode, pick = (r) => r.c2s) => median(of(row, mode).map(pick))
  const s2c = (r) => r.s2c
  const targets = []
  const ratio = (what, a, b, op, bound, fmt = fmtG) =>
    targets.push({ what, a: fmt(a), b: fmt(b), r: a === undefined || b === undefined || b === 0 ? undefined : a / b, op, bound })
  ratio("single stream (`-c`), ours : C ACK sink", med("ours", "c"), med("c-sink", "c"), ">=", 0.9)
  ratio("`-r` server to client, ours : C push with GSO", med("ours", "r", s2c), med("c-push", "push"), ">=", 0.6)
  ratio("`-P 64` : our single stream", med("ours", "p64"), med("ours", "c"), ">=", 0.8)
  ratio(`\`-P 64\` worst of ${of("ours", "p64").length} runs : their median`, min(of("ours", "p64").map((r) => r.c2s)), med("ours", "p64"), ">=", 0.7)
  for (const [mode, label, pick] of [["c", "`-c`"], ["p4", "`-P 4`"], ["r", "`-r` c2s"], ["r", "`-r` s2c", s2c], ["p64", "`-P 64`"]]) {
    ratio(`\`--no-offload\` ${label} : lwIP`, med("ours-nooff", mode, pick), med("lwip", mode, pick), ">=", 1.5)
  }
  ratio("ping RTT median, ours : kernel (us)", med("ours", "ping"), med("kernel", "ping"), "<=", 2.5, fmtI)
  const rss = max(of("ours", "p64").map((r) => r.hwmKb))
  ratio("peak RSS at `-P 64` : 200 MB (MB)", rss === undefined ? undefined : rss / 1024, 200, "<=", 1, fmtI)
  const shown = targets.filter((t) => t.r !== undefined)
  if (shown.length > 0) {
    out()
    out("Targets of issue 13 (medians of this run; a target whose reference row was not measured is left out):")
    out()
    out("| target | ours | reference | ratio | bound | |")
    out("|---|--:|--:|--:|--:|---|")
    for (const t of shown) {
      const met = t.op === ">=" ? t.r >= t.bound : t.r <= t.bound
      out(`| ${t.what} | ${t.a} | ${t.b} | ${t.r.toFixed(2)} | ${t.op} ${t.bound} | ${met ? "met" : "NOT met"} |`)
    }
  }
}

// ---- under attack (scripts/bench-attack.sh; design.md §7) ---------------------------------------------------
const RSS_MAX_MB = 250
const rssOk = (kb) => (kb === undefined ? "-" : kb <= RSS_MAX_MB * 1024 ? "met" : "NOT met")
const floodRows = ["kernel", "ours"].filter((r) => of(r, "fl").length > 0)
if (floodRows.length > 0) {
  out()
  out(`Under a SYN flood (\`hping3 --flood -S -a 198.51.100.3 -p 5001\` from a second address of the client side, whose kernel resets our SYN-ACKs; one client run each: ${env("SECS")} s unflooded, then ${env("SECS")} s + 1 s with the flood started after its first second, the rate taken over the flooded seconds; a \`ping -i 0.02\` beside it):`)
  out()
  out("| server | unflooded Gbit/s | during the flood Gbit/s | kept | ping lost during the flood | peak RSS MB | targets: kept >= 50 %, ping loses nothing, RSS <= 250 MB |")
  out("|---|--:|--:|--:|--:|--:|---|")
  for (const row of floodRows) {
    const b = median(of(row, "fl-base").map((r) => r.c2s))
    const fr = of(row, "fl")
    const f = median(fr.map((r) => r.c2s))
    const tx = Number(fr[0]?.extra.ping_tx)
    const rx = Number(fr[0]?.extra.ping_rx)
    const lost = Number.isFinite(tx) && Number.isFinite(rx) ? tx - rx : undefined
    const kept = b !== undefined && f !== undefined && b > 0 ? f / b : undefined
    const hwm = max(fr.map((r) => r.hwmKb))
    const tg =
      row === "ours"
        ? [
            `kept ${kept !== undefined && kept >= 0.5 ? "met" : "NOT met"}`,
            `ping ${lost === 0 ? "met" : "NOT met"}`,
            `RSS ${rssOk(hwm)}`
          ].join(", ")
        : ""
    const note = fr.map((r) => r.note).filter((x) => x !== "").join("; ")
    out(
      `| ${ROW_LABEL[row]} | ${fmtG(b)}${star(of(row, "fl-base"))} | ${f !== undefined && f > 0 && f < 0.1 ? `${(f * 1000).toPrecision(3)} Mbit/s` : fmtG(f)}${star(fr)}${note ? ` (${note})` : ""} | ${kept === undefined ? "-" : `${Math.round(kept * 100)} %`} | ` +
        `${lost === undefined ? "-" : `${lost}/${tx}`} | ${fmtMB(hwm)} | ${tg} |`
    )
  }
}
const ATTACKS = [
  { mode: "atk-a", label: "a. 1100 silent connections held (4 zero bytes each)", served1s: true },
  { mode: "atk-b", label: "b. 1024 garbage iperf3 cookies to 5201", served1s: false },
  { mode: "atk-c", label: "c. 300 SYNs from on-link sources that never answer ARP", served1s: false }
]
const atks = ATTACKS.filter((a) => of("ours", a.mode).length > 0)
if (atks.length > 0) {
  out()
  out("Ours under the attacks of design.md §7 (fresh server each; then a real `iperf -c -e -t 1`: its connect time `ct` and whether data went through):")
  out()
  out("| attack | attack size | new client: connect ms | served | client elapsed s | peak RSS MB | targets: RSS <= 250 MB; a: served within 1 s |")
  out("|---|--:|--:|---|--:|--:|---|")
  for (const a of atks) {
    const r = of("ours", a.mode)[0]
    const x = r.extra
    const ct = Number(x.ct_ms)
    const served = x.served === "1"
    const size = x.opened !== undefined ? `${x.opened} opened` : x.sent !== undefined ? `${x.sent} sent` : "-"
    const tg = [`RSS ${rssOk(r.hwmKb)}`]
    if (a.served1s) tg.push(`served within 1 s ${served && Number.isFinite(ct) && ct < 1000 ? "met" : "NOT met"}`)
    out(
      `| ${a.label} | ${size} | ${Number.isFinite(ct) ? ct.toFixed(1) : "-"} | ${served ? "yes" : "no"} | ${x.elapsed_s ?? "-"} | ${fmtMB(r.hwmKb)} | ` +
        `${tg.join(", ")}${r.note ? ` (${r.note})` : ""} |`
    )
  }
}

out()
out(
  "Columns: Gbit/s is the iperf client's report (`[SUM]` for `-P`); `-r` is iperf's tradeoff test, c2s then s2c on a new connection. " +
    "srv CPU % is utime+stime of the server process over the client run (100 = one core, median of the runs); for the kernel row " +
    "that is the `iperf -s` process only, the kernel's own TCP work in softirq is not in it. peak RSS is VmHWM of the server " +
    "process after the run (max of the runs). host % is the busy share of the whole box during the run (200 = both cores: the client, " +
    "the kernel and the server share them). bg % is the busy share in the 1 s before the run (worst of the runs). others % is the CPU " +
    "that user-space processes outside the bench (other sessions) used during the run, children they reaped included, kernel " +
    `threads not (worst of the runs). A figure marked * had at least one run with bg % or others % above ${idleMax}: the bounded ` +
    "idle wait timed out or another session started meanwhile, so read it with care."
)
const notes = records.filter((r) => r.note !== "" && r.mode !== "ping" && !r.mode.startsWith("fl") && !r.mode.startsWith("atk"))
if (notes.length > 0) {
  out()
  out("Run notes: " + notes.map((r) => `${r.row} ${r.mode} run ${r.run}: ${r.note}`).join("; "))
}
out()
out("<details><summary>per run</summary>")
out()
out("| server | mode | run | c2s Gbit/s (ping: us) | s2c Gbit/s | srv CPU % | VmHWM MB | host % | bg % | others % | note |")
out("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
for (const r of records) {
  out(
    `| ${r.row} | ${r.mode} | ${r.run} | ${r.c2s ?? "-"} | ${r.s2c ?? "-"} | ${fmtI(r.cpu)} | ${fmtMB(r.hwmKb)} | ${fmtI(r.host)} | ` +
      `${fmtI(r.bg)} | ${fmtI(r.others)} | ${[r.note, ...Object.entries(r.extra).map(([k, v]) => `${k}=${v}`)].filter((x) => x !== "").join(" ")} |`
  )
}
out()
out("</details>")

const text = lines.join("\n") + "\n"
process.stdout.write(text)
if (outPath !== undefined) {
  writeFileSync(outPath, text)
  const svgPath = outPath.replace(/\.md$/, "") + ".svg"
  const versions = env("VERSIONS")
  const meta = {
    start: env("START"), end: env("END"), quick: env("QUICK") === "1", commit: /commit (\w+)/.exec(versions)?.[1],
    uncommitted: versions.includes("uncommitted"), runs: Number(env("RUNS", "0")) || undefined, secs: Number(env("SECS", "0")) || undefined
  }
  try {
    writeFileSync(svgPath, await renderChart(records, meta))
  } catch (e) {
    // the table is the result; a chart that cannot be drawn (vega, a devDependency, missing) does not lose it
    process.stderr.write(`chart not written: ${e instanceof Error ? e.message : String(e)}\n`)
  }
}
