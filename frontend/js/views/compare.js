// Two or more finished jobs side by side (`#/compare?jobs=a,b`): their tuned students' scores with
// intervals, latency, size, training options and data; each pair's paired accuracy difference on
// the test rows they share; and the rows where the students differ.
import { api } from '../api.js';
import { fill, h, badge, bytes, duration, percent } from '../dom.js';
import { COLUMNS, withInterval } from './report_tab.js';

const ROWS = 100;
// [label, key in a compared job's options]; a row shows only when some job has a value.
const OPTIONS = [['Student', 'student'], ['Teacher', 'teacher'], ['Distillation', 'distillation'], ['Method', 'method'],
  ['LoRA rank', 'lora_r'], ['LoRA alpha', 'lora_alpha'], ['Epochs', 'epochs'], ['Batch size', 'batch_size'],
  ['Learning rate', 'learning_rate'], ['Max length', 'max_length'], ['Temperature', 'temperature'],
  ['Soft-label weight', 'soft_label_weight'], ['Seed', 'seed'], ['Examples asked', 'num_examples'],
  ['Examples trained', 'train_examples']];
const DATA = [['Data from', 'data_from'], ['Data revision', 'data_revision']];

export function jobNames(count) {
  return Array.from({ length: count }, (_, i) => String.fromCharCode(65 + i));
}

export function compareView(root, ids) {
  const body = h('div', { id: 'compare', 'data-jobs': ids }, h('p', { class: 'empty' }, 'Loading…'));
  root.append(h('h1', {}, 'Compare jobs'), body);
  api(`/api/compare?jobs=${encodeURIComponent(ids)}&limit=${ROWS}`).then((comparison) => {
    const names = jobNames(comparison.jobs.length);
    fill(body, sideBySide(comparison, names), rowsNote(comparison, names), pairsCard(comparison, names),
      differingCard(comparison, names));
  }).catch((err) => fill(body, h('div', { class: 'banner error', role: 'alert', id: 'compare-error' }, err.message, ' ',
    h('a', { href: '#/jobs' }, 'Pick finished jobs on the jobs list.'))));
  return null;
}

function value(v) {
  return v === null || v === undefined ? '–' : String(v);
}

function sideBySide(comparison, names) {
  const { jobs } = comparison;
  const differs = new Set(comparison.differing_options);
  const columns = COLUMNS[comparison.task_type] || COLUMNS.classification;
  const row = (key, label, cells) => h('tr', { 'data-row': key, 'data-differs': differs.has(key) || null },
    h('th', { scope: 'row' }, label, differs.has(key) ? h('span', { class: 'small muted', title: 'differs between the jobs' }, ' *') : null),
    cells.map((cell, i) => h('td', { 'data-job': jobs[i].id }, cell)));
  const rows = [
    ...columns.map(([key, title, format]) => row(key, title, jobs.map((j) => withInterval(j.scores, key, format)))),
    comparison.same_rows ? null : row('common_accuracy', 'Accuracy on the common rows', jobs.map((j) => percent(j.common_accuracy, 1))),
    row('latency_p50', 'Latency p50', jobs.map((j) => (j.scores.latency_ms?.p50 != null ? `${Math.round(j.scores.latency_ms.p50)} ms` : '–'))),
    row('latency_p95', 'Latency p95', jobs.map((j) => (j.scores.latency_ms?.p95 != null ? `${Math.round(j.scores.latency_ms.p95)} ms` : '–'))),
    row('size', 'Size', jobs.map((j) => bytes(j.scores.size_bytes))),
    row('verdict', 'Verdict', jobs.map((j) => (j.verdict ? badge(j.verdict) : '–'))),
    ...OPTIONS.filter(([, key]) => jobs.some((j) => j.options[key] != null))
      .map(([label, key]) => row(key, label, jobs.map((j) => value(j.options[key])))),
    ...DATA.filter(([, key]) => jobs.some((j) => j[key] != null))
      .map(([label, key]) => row(key, label, jobs.map((j) => (key === 'data_from' && j[key]
        ? h('a', { href: `#/jobs/${j[key]}` }, j[key].slice(0, 8)) : value(j[key]))))),
    row('train_time', 'Training time', jobs.map((j) => duration(j.train_seconds))),
  ];
  const head = h('tr', {}, h('th', { scope: 'col' }, 'Tuned student'), jobs.map((j, i) => h('th', { scope: 'col', 'data-job': j.id },
    h('a', { href: `#/jobs/${j.id}`, title: j.task }, `${names[i]} · ${j.id.slice(0, 8)}`),
    h('div', { class: 'small muted' }, j.task.length > 40 ? `${j.task.slice(0, 40)}…` : j.task))));
  return h('div', { class: 'card', id: 'compare-table' }, h('h2', { style: { marginTop: 0 } }, 'Side by side'),
    h('p', { class: 'small muted' }, 'Scores with their 95% intervals. * marks an option that differs between the jobs.'),
    h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows))));
}

function rowsNote(comparison, names) {
  const { jobs, common_rows: common } = comparison;
  const sizes = jobs.map((j, i) => `${names[i]} ${j.rows}`).join(', ');
  const text = comparison.same_rows ? `Every job was scored on the same ${common} test rows.`
    : common ? `The jobs share ${common} test rows (${sizes}); the differences below are on those rows.`
      : `The jobs share no test rows (${sizes}): only their own scores can be compared.`;
  return h('div', { class: `banner ${comparison.same_rows ? 'ok' : 'warn'}`, id: 'compare-rows-note',
                    'data-same-rows': String(comparison.same_rows), 'data-common-rows': common }, text);
}

function signed(v) {
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${(Math.abs(v) * 100).toFixed(1)} pts`;
}

function pairsCard(comparison, names) {
  if (!comparison.common_rows) return null;
  const name = Object.fromEntries(comparison.jobs.map((j, i) => [j.id, names[i]]));
  const meaning = (p) => {
    const ci = p.difference_ci95;
    if (ci && ci[0] > 0) return `${name[p.b]} is ahead`;
    if (ci && ci[1] < 0) return `${name[p.a]} is ahead`;
    return 'the rows cannot tell them apart';
  };
  return h('div', { class: 'card', id: 'compare-pairs' }, h('h2', { style: { marginTop: 0 } }, 'Accuracy differences'),
    h('p', { class: 'small muted' }, 'On the common rows, with a paired bootstrap 95% interval (the rows are resampled together for both students).'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Pair', 'Difference', '95% interval', 'Rows only one got right', 'Reading']
        .map((t, i) => h('th', { scope: 'col', class: i && i < 4 ? 'num' : null }, t)))),
      h('tbody', {}, comparison.pairs.map((p) => h('tr', { 'data-pair': `${p.a},${p.b}` },
        h('td', {}, `${name[p.b]} − ${name[p.a]}`),
        h('td', { class: 'num' }, p.difference === null ? '–' : signed(p.difference)),
        h('td', { class: 'num' }, p.difference_ci95 ? `${signed(p.difference_ci95[0])} to ${signed(p.difference_ci95[1])}` : '–'),
        h('td', { class: 'num' }, `${name[p.a]} ${p.a_only_right} · ${name[p.b]} ${p.b_only_right}`),
        h('td', {}, meaning(p))))))));
}

function answerCell(answer, job) {
  return h('td', { 'data-job': job.id, 'data-correct': String(answer.correct) },
    answer.answer === null ? h('em', {}, 'no answer') : h('code', { class: 'call' }, answer.answer || '(empty)'), ' ',
    h('span', { class: `badge ${answer.correct ? 'succeeded' : 'failed'}` }, answer.correct ? 'right' : 'wrong'));
}

function differingCard(comparison, names) {
  if (!comparison.common_rows) return null;
  const { differing: rows, differing_total: total, jobs } = comparison;
  const count = h('p', { class: 'small muted', id: 'compare-differing-count', 'data-total': total },
    total ? `${total} common row${total === 1 ? '' : 's'} where the students’ answers or their correctness differ${rows.length < total ? `; the first ${rows.length} shown` : ''}.`
      : 'The students answer every common row alike.');
  return h('div', { class: 'card', id: 'compare-differing' }, h('h2', { style: { marginTop: 0 } }, 'Rows where they differ'), count,
    rows.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, 'Row'), h('th', { scope: 'col' }, 'Input'),
        h('th', { scope: 'col' }, 'Expected'), names.map((n) => h('th', { scope: 'col' }, n)))),
      h('tbody', {}, rows.map((r) => h('tr', { 'data-row-index': r.index },
        h('td', { class: 'num' }, r.index), h('td', {}, h('div', { class: 'text-cell' }, r.input)),
        h('td', {}, h('strong', {}, value(r.expected))),
        r.answers.map((a, i) => answerCell(a, jobs[i]))))))) : null);
}
