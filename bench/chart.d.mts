// Types of bench/chart.mjs, for the tests (test/bench/chart.test.ts).

/** One per-run record of scripts/bench.sh, as bench/report.mjs reads raw.tsv. */
export interface BenchRecord {
  readonly row: string
  readonly mode: string
  readonly run: number
  readonly c2s?: number | undefined
  readonly s2c?: number | undefined
  readonly cpu?: number | undefined
  readonly host?: number | undefined
  readonly bg?: number | undefined
  readonly hwmKb?: number | undefined
  readonly others?: number | undefined
  readonly note: string
  readonly extra: Readonly<Record<string, string>>
}

export interface ChartMeta {
  readonly start?: string | undefined
  readonly end?: string | undefined
  readonly commit?: string | undefined
  readonly uncommitted?: boolean | undefined
  readonly quick?: boolean | undefined
  readonly runs?: number | undefined
  readonly secs?: number | undefined
}

export interface ChartBar {
  readonly category: string
  readonly row: string
  readonly median: number
  readonly min: number
  readonly max: number
  readonly runs: number
  readonly label: string
  readonly range: string
  readonly description: string
}

export interface ChartPanel {
  readonly id: "throughput" | "ping" | "flood" | "attacks"
  readonly title: string
  readonly yTitle: string
  readonly xTitle: string
  readonly bars: ReadonlyArray<ChartBar>
  readonly wide?: boolean
  readonly target?: { readonly value: number; readonly label: string }
}

export declare const median: (xs: ReadonlyArray<number | undefined>) => number | undefined
export declare const fmt: (x: number) => string
export declare const recordsFromMarkdown: (text: string) => { records: Array<BenchRecord>; meta: ChartMeta }
export declare const chartPanels: (records: ReadonlyArray<BenchRecord>) => {
  panels: Array<ChartPanel>
  rows: Array<{ readonly row: string; readonly label: string; readonly color: string }>
}
export declare const chartSpec: (records: ReadonlyArray<BenchRecord>, meta?: ChartMeta) => Record<string, unknown>
export declare const renderChart: (records: ReadonlyArray<BenchRecord>, meta?: ChartMeta) => Promise<string>
