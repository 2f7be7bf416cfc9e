// Teacher vs untuned vs tuned student on the same held-out rows, and the rows the student gets wrong.
import { api } from '../api.js';
import { fill, h, badge, bytes, percent, score, table } from '../dom.js';
import { MODEL_NAMES, confusionMatrix, modelComparison } from '../charts.js';

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
    fill(body, 
      verdict(report),
      h('div', { class: 'card' }, h('h2', { style: { marginTop: 0 } }, 'Scores'),
        h('p', { class: 'small muted' }, `On ${reference}: ${report[models[0]].n} rows, each model answering by the same rule.`),
        modelComparison(report),
        sideBySide(report, models)),
      perLabel(report, models),
      confusionCard(report, models),
      report.student ? wrongExamples(jobId) : null);
  }).catch((err) => fill(body, h('div', { class: 'banner error' }, err.message)));
  return null;
}

function verdict(report) {
  if (!report.verdict) return h('div', { class: 'banner warn' }, 'No verdict yet: the students are scored in the evaluate stage.');
  const deploy = report.verdict === 'deploy';
  return h('div', { class: `banner ${deploy ? 'ok' : 'warn'}`, id: 'verdict' },
    h('strong', {}, 'Verdict: '), badge(report.verdict), ' ',
    deploy ? 'the tuned student is within 5 points of the teacher: ready to deploy.'
      : 'the tuned student is more than 5 points behind the teacher: try more examples, more epochs or a larger student.',
    report.ratio !== null ? h('span', {}, ` Tuned student / teacher accuracy: ${report.ratio.toFixed(2)}×.`) : null);
}

function sideBySide(report, models) {
  return table(['Model', 'Accuracy', 'Macro-F1', 'Latency p50', 'Latency p95', 'Size'],
    models.map((m) => {
      const r = report[m];
      return [MODEL_NAMES[m], percent(r.accuracy, 1), score(r.macro_f1),
        r.latency_ms?.p50 != null ? `${Math.round(r.latency_ms.p50)} ms` : '–',
        r.latency_ms?.p95 != null ? `${Math.round(r.latency_ms.p95)} ms` : '–', bytes(r.size_bytes)];
    }), { numeric: [1, 2, 3, 4, 5] });
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
