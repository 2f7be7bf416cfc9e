// Small charts drawn with HTML and SVG: no chart library, nothing to fetch.
import { h, svg, percent } from './dom.js';

export const MODEL_NAMES = { teacher: 'Teacher', base_student: 'Untuned student', student: 'Tuned student' };

// Horizontal bars: [{label, value, kind?}] scaled to `max` (default the largest value).
export function hbars(items, { max, format = String, name = 'Bar chart' } = {}) {
  const top = max ?? Math.max(1e-9, ...items.map((i) => i.value));
  return h('div', { class: 'hbars', role: 'list', 'aria-label': name },
    items.map((item) => [
      h('span', { role: 'listitem' }, item.label),
      h('div', { class: 'track', 'aria-hidden': 'true' },
        h('div', { class: `fill ${item.kind || ''}`, style: { width: `${Math.min(100, (100 * item.value) / top)}%` } })),
      h('span', { class: 'num small' }, format(item.value)),
    ]));
}

// Teacher vs untuned vs tuned student for each metric, bars side by side.
export function modelComparison(report, metrics = [['accuracy', 'Accuracy'], ['macro_f1', 'Macro-F1']]) {
  const models = Object.keys(MODEL_NAMES).filter((m) => report[m]);
  const legend = h('div', { class: 'legend' },
    models.map((m) => h('span', {}, h('i', { class: `fill ${m}`, style: { background: `var(--${m === 'base_student' ? 'base' : m})` } }), MODEL_NAMES[m])));
  const groups = metrics
    .filter(([key]) => models.some((m) => report[m][key] !== null && report[m][key] !== undefined))
    .map(([key, title]) => h('div', { class: 'field' }, h('div', { class: 'small muted' }, title),
      hbars(models.map((m) => ({ label: MODEL_NAMES[m], value: report[m][key] ?? 0, kind: m })),
            { max: 1, format: (v) => percent(v, 1), name: `${title} by model` })));
  return h('div', { class: 'chart', id: 'model-comparison' }, legend, groups);
}

// A line chart of `series` ([{name, points: [[x, y]], cls}]) with light grid lines.
export function lineChart(series, { xLabel = '', yLabel = '', width = 640, height = 240 } = {}) {
  const pad = { l: 48, r: 12, t: 10, b: 32 };
  const all = series.flatMap((s) => s.points);
  if (!all.length) return h('p', { class: 'empty' }, 'No points yet.');
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.min(0, ...ys), y1 = Math.max(...ys, y0 + 1e-6);
  const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  return h('div', { class: 'chart' }, svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${yLabel} by ${xLabel}` },
    ticks.map((t) => [svg('line', { class: 'grid', x1: pad.l, x2: width - pad.r, y1: sy(t), y2: sy(t) }),
                      svg('text', { x: pad.l - 6, y: sy(t) + 4, 'text-anchor': 'end' }, t.toFixed(2))]),
    svg('line', { class: 'axis', x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b }),
    svg('text', { x: pad.l, y: height - 8 }, `${xLabel} ${x0}`),
    svg('text', { x: width - pad.r, y: height - 8, 'text-anchor': 'end' }, `${x1}`),
    series.map((s) => svg('polyline', { class: `series ${s.cls || ''}`, points: s.points.map((p) => `${sx(p[0])},${sy(p[1])}`).join(' ') },
                          svg('title', {}, s.name)))));
}

// confusion[expected][predicted] as a table shaded by each row's share.
export function confusionMatrix(confusion, labels) {
  const predicted = [...labels, ...new Set(Object.values(confusion).flatMap((r) => Object.keys(r)).filter((k) => !labels.includes(k)))];
  return h('div', { class: 'table-wrap' }, h('table', { class: 'confusion', id: 'confusion' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'expected ↓ / predicted →'), predicted.map((p) => h('th', { scope: 'col' }, p)))),
    h('tbody', {}, labels.map((expected) => {
      const row = confusion[expected] || {};
      const total = Object.values(row).reduce((a, b) => a + b, 0) || 1;
      return h('tr', {}, h('th', { scope: 'row' }, expected), predicted.map((p) => {
        const n = row[p] || 0;
        const share = n / total;
        const hue = p === expected ? '36, 87, 197' : '179, 38, 30';
        return h('td', { style: { background: `rgba(${hue}, ${(share * 0.6).toFixed(2)})` }, title: `${n} of ${total}` }, n);
      }));
    }))));
}
