/** Small helpers shared by the benchmarks: timing, percentiles, and a printed table with ratios. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface Sample {
  /** Per-operation times in milliseconds. */
  times: number[];
}

export function summarize(times: number[]): { mean: number; p50: number; p99: number; min: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const mean = sorted.reduce((s, t) => s + t, 0) / Math.max(1, sorted.length);
  return { mean, p50: percentile(sorted, 50), p99: percentile(sorted, 99), min: sorted[0] ?? NaN };
}

/** Times `op` `n` times after `warmup` runs; returns per-call milliseconds. */
export async function timeEach(n: number, op: () => Promise<unknown>, warmup = Math.min(50, n)): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await op();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await op();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times;
}

/** A row of per-call times (ms): the mean compared, p50, p99 and the count beside it. */
export function perCallRow(name: string, s: { mean: number; p50: number; p99: number }, n: number): Row {
  return { name, value: s.mean, unit: 'ms/call', extra: { p50: s.p50.toFixed(3), p99: s.p99.toFixed(3), n } };
}

export interface Row {
  name: string;
  /** The figure compared (lower is better unless `higherIsBetter`). */
  value: number;
  unit: string;
  /** Extra columns, printed as given. */
  extra?: Record<string, string | number>;
}

/**
 * Prints rows side by side; the ratio column divides each row's value by the baseline row's value.
 * `target` is printed for the reader, e.g. "≤ 1.10 vs raw".
 */
export function printTable(title: string, rows: Row[], baselineName: string, target?: string): void {
  const base = rows.find((r) => r.name === baselineName);
  console.log(`\n${title}${target ? `   (target: ${target})` : ''}`);
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.extra ?? {})))];
  const header = ['', 'value', 'ratio', ...extraKeys];
  const lines = rows.map((r) => [
    r.name,
    `${fmt(r.value)} ${r.unit}`,
    base ? `${(r.value / base.value).toFixed(3)}×` : '-',
    ...extraKeys.map((k) => String(r.extra?.[k] ?? '')),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const pad = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(pad(header));
  for (const l of lines) console.log(pad(l));
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(3);
  return v.toPrecision(3);
}

/** Every client calls query-status in a loop for `seconds`, all at once: each call's ms and the wall time in s. */
export async function callForSeconds(clients: readonly { execute(command: 'query-status'): Promise<unknown> }[], seconds: number): Promise<{ times: number[]; seconds: number }> {
  const times: number[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < end) {
        const s = performance.now();
        await c.execute('query-status');
        times.push(performance.now() - s);
      }
    }),
  );
  return { times, seconds: (performance.now() - t0) / 1000 };
}
