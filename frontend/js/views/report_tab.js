// Teacher vs untuned vs tuned student on the same held-out rows, and the rows the student gets wrong.
import { api } from '../api.js';
import { fill, h, badge, bytes, percent, score, table } from '../dom.js';
import { MODEL_NAMES, confusionMatrix, modelComparison } from '../charts.js';
import { costsCard, exportsCard } from './exports_card.js';

const PAGE = 10;

export function reportTab(panel, jobId, snapshot) {
  const body = h('div', { id: 'report' }, h('p', { class: 'empty' }, 'Loading…'));
  panel.append(body);
  api(`/api/jobs/${jobId}/report`).then((report) => {
    const models = Object.keys(MODEL_NAMES).filter((m) => report[m]);
    if (!models.length) {
      fill(body, h('p', { class: 'empty' }, 'The report fills in as the models are scored: the teacher after the teacher check, the students after evaluation.'));
      return;
    }
    const reference = report.reference === 'validation' ? 'the validation split (no test set was given)' : 'your test set';
    const kind = reportKind(report, models);
    fill(body, 
      verdict(report),
      h('div', { class: 'card', 'data-kind': kind, id: 'scores' }, h('h2', { style: { marginTop: 0 } }, 'Scores'),
        h('p', { class: 'small muted' }, `On ${reference}: ${report[models[0]].n} rows, each model answering by the same rule. `,
          KIND_NOTE[kind]),
        modelComparison(report, COLUMNS[kind].filter(([key]) => CHARTED.includes(key))),
        sideBySide(report, models, kind)),
      kind === 'classification' ? [perLabel(report, models), confusionCard(report, models)] : null,
      kind === 'extraction' ? perField(report, models) : null,
      kind === 'tool_calling' ? mismatchesCard(report, models) : null,
      exportsCard(report), costsCard(report),
      report.student ? wrongExamples(jobId) : null);
  }).catch((err) => fill(body, h('div', { class: 'banner error' }, err.message)));
  return null;
}

const VERDICT_WHY = {
  reaches_teacher: 'the tuned student’s 95% interval reaches the teacher’s score: ready to deploy.',
  closed_gap: 'tuning closed at least 0.8 of the gap from the untuned student to the teacher: ready to deploy.',
  behind_teacher: 'the tuned student is behind the teacher beyond its 95% interval: try more examples, the curation levers or a larger student.',
};

function verdict(report) {
  if (!report.verdict) return h('div', { class: 'banner warn' }, 'No verdict yet: the students are scored in the evaluate stage.');
  const deploy = report.verdict === 'deploy';
  return h('div', { class: `banner ${deploy ? 'ok' : 'warn'}`, id: 'verdict' },
    h('strong', {}, 'Verdict: '), badge(report.verdict), ' ',
    VERDICT_WHY[report.verdict_reason] || (deploy ? 'ready to deploy.' : 'behind the teacher.'),
    report.closed != null ? h('span', { id: 'gap-closed' }, ` Gap closed: ${report.closed.toFixed(2)} of untuned → teacher.`) : null,
    report.ratio !== null ? h('span', {}, ` Tuned student / teacher accuracy: ${report.ratio.toFixed(2)}×.`) : null);
}

// What a report scores, from the keys each task type's rule adds (workers/scoring_types.py).
export function reportKind(report, models) {
  const entries = models.map((m) => report[m]);
  if (entries.some((r) => 'fields' in r || 'parse_rate' in r)) return 'extraction';
  if (entries.some((r) => 'valid_call_rate' in r || 'mismatches' in r)) return 'tool_calling';
  if (entries.some((r) => r.rule === 'qa' || 'f1' in r)) return 'qa';
  return 'classification';
}

// The score columns of each task type: [key, title, format]; `accuracy` is every type's headline.
export const COLUMNS = {
  classification: [['accuracy', 'Accuracy', 'percent'], ['macro_f1', 'Macro-F1', 'score']],
  extraction: [['accuracy', 'Exact match', 'percent'], ['macro_f1', 'Field macro-F1', 'score'],
    ['micro_f1', 'Field micro-F1', 'score'], ['parse_rate', 'Parsed', 'percent']],
  qa: [['accuracy', 'Exact match (EM)', 'percent'], ['f1', 'F1', 'score']],
  tool_calling: [['accuracy', 'Accuracy', 'percent'], ['call_accuracy', 'Call accuracy', 'percent'],
    ['valid_call_rate', 'Valid calls', 'percent'], ['no_call_accuracy', 'No-call accuracy', 'percent']],
};
const CHARTED = ['accuracy', 'macro_f1', 'f1', 'call_accuracy', 'no_call_accuracy'];
const KIND_NOTE = {
  classification: '',
  extraction: 'Exact match: the whole JSON object is right; field scores count each value.',
  qa: 'Exact match and token F1 as in SQuAD (case, punctuation and articles ignored).',
  tool_calling: 'A call counts when its function and arguments match; valid calls are those that parse and fit the tool’s schema; no-call accuracy is on the rows that needed no call.',
};

function metric(r, key) {
  return key === 'micro_f1' ? r.micro?.f1 : r[key];
}

// A score with its 95% interval when the report has one (`accuracy_ci95`, `macro_f1_ci95`, ...).
export function withInterval(r, key, format) {
  const show = (v) => (format === 'percent' ? percent(v, 1) : score(v));
  const ci = r[`${key}_ci95`];
  const value = show(metric(r, key));
  return ci ? h('span', {}, value, h('span', { class: 'small muted ci' }, ` (${show(ci[0])}–${show(ci[1])})`)) : value;
}

function sideBySide(report, models, kind = 'classification') {
  const columns = COLUMNS[kind];
  return h('div', { id: 'side-by-side' }, table(['Model', ...columns.map(([, title]) => title), 'Latency p50', 'Latency p95', 'Size'],
    models.map((m) => {
      const r = report[m];
      return [MODEL_NAMES[m], ...columns.map(([key, , format]) => withInterval(r, key, format)),
        r.latency_ms?.p50 != null ? `${Math.round(r.latency_ms.p50)} ms` : '–',
        r.latency_ms?.p95 != null ? `${Math.round(r.latency_ms.p95)} ms` : '–', bytes(r.size_bytes)];
    }), { numeric: columns.map((_, i) => i + 1).concat([columns.length + 1, columns.length + 2, columns.length + 3]) }));
}

// Extraction: precision, recall and F1 of each field, for each model.
function perField(report, models) {
  const names = [...new Set(models.flatMap((m) => Object.keys(report[m].fields || {})))].sort();
  if (!names.length) return null;
  const rows = (name) => models.map((m) => report[m].fields?.[name]?.n).find((n) => n !== undefined);
  const head = h('thead', {},
    h('tr', {}, h('th', { scope: 'col', rowspan: 2 }, 'Field'), h('th', { scope: 'col', rowspan: 2, class: 'num' }, 'Rows'),
      models.map((m) => h('th', { scope: 'colgroup', colspan: 3, class: 'group' }, MODEL_NAMES[m]))),
    h('tr', {}, models.map(() => ['Precision', 'Recall', 'F1'].map((t) => h('th', { scope: 'col', class: 'num' }, t)))));
  const body = h('tbody', {}, names.map((name) => h('tr', { 'data-field-name': name },
    h('td', {}, h('code', {}, name)),
    h('td', { class: 'num' }, rows(name) ?? '–'),
    models.map((m) => ['precision', 'recall', 'f1'].map((k) => h('td', { class: 'num', 'data-model': m, 'data-metric': k },
      score(report[m].fields?.[name]?.[k])))))));
  return h('div', { class: 'card', id: 'per-field' }, h('h2', { style: { marginTop: 0 } }, 'Per field'),
    h('p', { class: 'small muted' }, 'Rows: test rows where the field has a value. A list counts each of its items.'),
    h('div', { class: 'table-wrap' }, h('table', {}, head, body)));
}

function rowCount(n) {
  return n === undefined || n === null ? '– rows' : `${n} row${n === 1 ? '' : 's'}`;
}

function callText(call) {
  if (!call) return 'no call';
  if (typeof call === 'object' && 'name' in call) return `${call.name}(${JSON.stringify(call.arguments ?? {})})`;
  return JSON.stringify(call);
}

// Tool calling: the rows a model got wrong (as the scorer kept them), expected and predicted side by side.
function mismatchesCard(report, models) {
  const withRows = models.filter((m) => report[m].mismatches);
  if (!withRows.length) return null;
  const choose = h('select', { id: 'mismatch-model', 'aria-label': 'Mismatches of' },
    withRows.map((m) => h('option', { value: m, selected: m === withRows[withRows.length - 1] }, MODEL_NAMES[m])));
  const holder = h('div');
  const draw = () => {
    const r = report[choose.value];
    const list = r.mismatches || [];
    const wrong = r.n - r.correct;
    fill(holder,
      h('p', { class: 'small muted' }, `${rowCount(r.n_call)} needed a call, ${rowCount(r.n_no_call)} none. `,
        list.length < wrong ? `The first ${list.length} of ${wrong} wrong rows:` : ''),
      list.length ? table(['Row', 'Expected', 'Predicted', 'Why'], list.map((x) => [
        x.index,
        h('code', { class: 'call' }, callText(x.expected)),
        x.predicted === null || x.predicted === undefined ? h('em', {}, 'no answer') : h('code', { class: 'call' }, x.predicted || '(empty)'),
        x.reason]), { numeric: [0] })
        : h('p', { class: 'empty' }, 'Every call was right.'));
  };
  choose.addEventListener('change', draw);
  draw();
  return h('div', { class: 'card', id: 'mismatches' }, h('div', { class: 'actions' }, h('h2', { style: { margin: 0, flex: 1 } }, 'Calls that did not match'), choose), holder);
}

function perLabel(report, models) {
  const labels = Object.keys(report[models[0]].per_label || {});
  if (!labels.length) return null;
  const headers = ['Label', 'Rows', ...models.map((m) => `${MODEL_NAMES[m]} F1`)];
  if (report.student) headers.push('Tuned precision', 'Tuned recall');
  return h('div', { class: 'card', id: 'per-label' }, h('h2', { style: { marginTop: 0 } }, 'Per label'),
    table(headers, labels.map((label) => {
      const cells = [label, report[models[0]].per_label[label].n, ...models.map((m) => score(report[m].per_label[label]?.f1))];
      if (report.student) cells.push(score(report.student.per_label[label]?.precision), score(report.student.per_label[label]?.recall));
      return cells;
    }), { numeric: [1, 2, 3, 4, 5, 6] }));
}

function confusionCard(report, models) {
  const labels = Object.keys(report[models[0]].per_label || {});
  if (!labels.length) return null;
  const choose = h('select', { id: 'confusion-model', 'aria-label': 'Confusion matrix of' },
    models.map((m) => h('option', { value: m, selected: m === models[models.length - 1] }, MODEL_NAMES[m])));
  const holder = h('div');
  const draw = () => fill(holder, confusionMatrix(report[choose.value].confusion || {}, labels));
  choose.addEventListener('change', draw);
  draw();
  return h('div', { class: 'card' }, h('div', { class: 'actions' }, h('h2', { style: { margin: 0, flex: 1 } }, 'Confusion matrix'), choose), holder);
}

function wrongExamples(jobId) {
  const holder = h('div');
  const pager = h('div', { class: 'pager' });
  let offset = 0;
  const load = async () => {
    const page = await api(`/api/jobs/${jobId}/predictions?wrong=student&limit=${PAGE}&offset=${offset}`);
    fill(holder, page.items.length ? table(['Input', 'Expected', 'Tuned student', 'Teacher'],
      page.items.map((r) => [h('div', { class: 'text-cell' }, r.input), h('strong', {}, r.expected),
        h('span', { title: r.student_text || '' }, r.student ?? '(no valid answer)'), r.teacher ?? '–']))
      : h('p', { class: 'empty' }, 'The tuned student got every row right.'));
    const end = Math.min(page.total, offset + PAGE);
    fill(pager, 
      h('button', { type: 'button', class: 'secondary', disabled: offset === 0, onclick: () => { offset -= PAGE; load(); } }, 'Previous'),
      h('span', { class: 'small' }, page.total ? `${offset + 1}–${end} of ${page.total} wrong` : ''),
      h('button', { type: 'button', class: 'secondary', disabled: end >= page.total, onclick: () => { offset += PAGE; load(); } }, 'Next'));
  };
  load().catch((err) => fill(holder, h('div', { class: 'banner error' }, err.message)));
  return h('div', { class: 'card', id: 'wrong-examples' }, h('h2', { style: { marginTop: 0 } }, 'What the tuned student gets wrong'), holder, pager);
}
