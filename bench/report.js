// The human-readable table for a bench report (the JSON has everything).

const fmt = (v, digits = 0) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? '–'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (kb) => (kb === null || kb === undefined ? '–' : (kb / 1024).toFixed(0));
const signed = (v, digits) => (v === null || !Number.isFinite(v) ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`);

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const right = (i) => i >= 2 && i <= 10;
  return rows.map((r, n) => {
    const line = r
      .map((cell, i) => (right(i) ? String(cell).padStart(widths[i]) : String(cell).padEnd(widths[i])))
      .join('  ');
    return n === 0 ? `${line}\n${widths.map((w) => '─'.repeat(w)).join('  ')}` : line;
  });
}

function row(title, who, m, extra) {
  return [
    title,
    who,
    fmt(m.perSecond),
    fmt(m.p50Ms, 2),
    fmt(m.p99Ms, 2),
    fmt(m.ttfbP50Ms, 2),
    extra.ttfbAdded,
    fmt(m.cpuPerReqUs),
    `${fmt(m.proxyCorePct)}/${fmt(m.driverCorePct)}/${fmt(m.otherCorePct)}`,
    `${mb(m.rssBeforeKb)}→${mb(m.rssPeakKb)}`,
    extra.ratio,
    extra.target,
    extra.met,
    extra.reps ?? '',
  ];
}

export function printReport(report) {
  const out = [];
  const { machine, options, baseline } = report;
  out.push(
    `FailProxy bench — ${options.reps} rep(s) × ${options.durationMs / 1000} s, medians; node ${machine.node}, ${machine.cpus} cores` +
      `${machine.pinned ? ', proxy on core 0, load+upstream on core 1' : ', NOT pinned'}; baseline: bare ${baseline.client} pass-through` +
      (options.nodeArgs?.length ? `; FailProxy runs with node ${options.nodeArgs.join(' ')}` : ''),
  );
  out.push('');
  const rows = [
    [
      'scenario',
      'proxy',
      'req/s',
      'p50 ms',
      'p99 ms',
      'TTFB ms',
      '+TTFB',
      'CPU µs/req',
      'core% p/d/o',
      'RSS MB',
      '× bare',
      'target',
      'met',
      'reps',
    ],
  ];
  for (const s of report.summary) {
    const unit = s.hold ? `${s.title} (streams/s)` : s.title;
    if (s.bare)
      rows.push(
        row(unit, 'bare', s.bare, {
          ttfbAdded: '',
          ratio: s.hold ? `${fmt(s.bare.kbPerStream, 1)} KB/stream` : '',
          target: '',
          met: '',
        }),
      );
    let ratio = `${fmt(s.rpsRatio, 2)}× rps, ${fmt(s.cpuRatio, 2)}× cpu`;
    if (s.hold) ratio += `, ${fmt(s.failproxy.kbPerStream, 1)} KB/stream`;
    const target = s.targets.map((t) => t.label).join('; ');
    const met = s.targets.length === 0 ? '' : s.targets.every((t) => t.met) ? '✓' : '✗';
    const reps = `${s.repsUsed.length}/${s.repsMeasured}${s.contended ? '~' : ''}`;
    rows.push(
      row(s.bare ? '' : unit, 'failproxy', s.failproxy, {
        ttfbAdded: signed(s.ttfbAddedMs, 2),
        ratio,
        target,
        met,
        reps,
      }),
    );
  }
  out.push(...table(rows));
  out.push('');
  out.push('Targets (ratios to the bare pass-through, same run):');
  for (const s of report.summary) {
    for (const t of s.targets) {
      const unit = t.metric.endsWith('Ratio')
        ? '×'
        : t.metric === 'ttfbAddedMs'
          ? ' ms'
          : t.metric === 'kbPerStream'
            ? ' KB'
            : ' MB';
      const why =
        s.failedRequests > 0 ? ` (${s.failedRequests} failed requests)` : !s.checksOk ? ' (path check failed)' : '';
      const noisy = s.contended ? ` (~ no quiet rep: other processes used ${fmt(s.otherCorePct)}% of a core)` : '';
      out.push(`  ${t.met ? '✓' : '✗'} ${s.title}: ${t.label} — measured ${fmt(t.measured, 2)}${unit}${why}${noisy}`);
    }
  }
  const idle = report.summary.find((s) => s.hold)?.idleRssMb ?? report.summary[0]?.idleRssMb;
  if (idle) out.push(`  idle RSS: failproxy ${fmt(idle.failproxy, 0)} MB, bare ${fmt(idle.bare, 0)} MB`);
  out.push(
    `  reps = reps the medians use: those where other processes used ≤ ${report.options.maxOtherPct}% of a core (~ = none was that quiet, all are used;` +
      ' throughput ratios there are unreliable, CPU µs/req holds up better).',
  );
  const saturated = report.summary.filter((s) => s.bare && s.bare.driverCorePct > 90 && !s.hold);
  if (saturated.length) {
    out.push(
      `  note: load generator core ≥ 90% busy in ${saturated.map((s) => s.key).join(', ')}: the bare figure there may be capped by the driver, which flatters the ratio.`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
