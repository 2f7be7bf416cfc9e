// The curated data set: label distribution, what curation dropped, and the rows page by page.
import { api } from '../api.js';
import { fill, h, table } from '../dom.js';
import { hbars } from '../charts.js';

const PAGE = 20;
const DROP_REASONS = {
  invalid_output: 'the teacher’s answer did not fit the task',
  duplicate: 'same text as another row', near_duplicate: 'nearly the same as another row',
  test_overlap: 'too close to a test-set row', seed_overlap: 'too close to a seed example',
  over_budget: 'more than asked for', class_balance: 'trimmed to balance the labels',
};

export function dataTab(panel, jobId) {
  const query = { label: '', offset: 0 };
  const summary = h('div', { class: 'row' });
  const filter = h('select', { id: 'label-filter', 'aria-label': 'Filter rows by label' });
  const rows = h('div', { id: 'examples' });
  const pager = h('div', { class: 'pager' });
  panel.append(summary, h('div', { class: 'card' },
    h('div', { class: 'actions' }, h('h2', { style: { margin: 0, flex: 1 } }, 'Examples'),
      h('label', { for: 'label-filter', style: { margin: 0 } }, 'Label'), filter,
      h('a', { class: 'button secondary', href: `/api/jobs/${jobId}/dataset`, download: '' }, 'Download JSONL')),
    rows, pager));

  let first = true;
  const load = async () => {
    const params = new URLSearchParams({ limit: PAGE, offset: query.offset });
    if (query.label) params.set('label', query.label);
    let page;
    try {
      page = await api(`/api/jobs/${jobId}/examples?${params}`);
    } catch (err) {
      fill(rows, h('div', { class: 'banner error' }, err.message));
      return;
    }
    if (first) {
      first = false;
      renderSummary(summary, page);
      const labels = Object.keys(page.label_counts);
      fill(filter, h('option', { value: '' }, `all (${page.total})`),
        ...labels.map((l) => h('option', { value: l }, `${l} (${page.label_counts[l]})`)));
    }
    const soft = page.items.some((r) => r.label_probs);
    fill(rows, page.items.length ? table(
      ['#', 'Input', 'Output', soft ? 'Teacher’s soft labels' : 'Bucket', 'Split'],
      page.items.map((r) => [r.index + 1, h('div', { class: 'text-cell' }, r.input), h('strong', {}, r.output),
        soft ? probs(r.label_probs) : h('span', { class: 'small muted' }, r.bucket || ''), r.split])) : h('p', { class: 'empty' }, 'No rows match.'));
    const end = Math.min(page.total, query.offset + PAGE);
    fill(pager, 
      h('button', { type: 'button', class: 'secondary', disabled: query.offset === 0, onclick: () => { query.offset -= PAGE; load(); } }, 'Previous'),
      h('span', { class: 'small', id: 'examples-range' }, page.total ? `${query.offset + 1}–${end} of ${page.total}` : '0 rows'),
      h('button', { type: 'button', class: 'secondary', disabled: end >= page.total, onclick: () => { query.offset += PAGE; load(); } }, 'Next'));
  };
  filter.addEventListener('change', () => { query.label = filter.value; query.offset = 0; load(); });
  load();
  return null;
}

function probs(labelProbs) {
  const sorted = Object.entries(labelProbs || {}).sort((a, b) => b[1] - a[1]);
  return h('div', { class: 'probs' }, sorted.map(([label, p], i) =>
    h('span', { class: `prob ${i === 0 ? 'top' : ''}` }, `${label} ${(p * 100).toFixed(0)}%`)));
}

function renderSummary(summary, page) {
  const counts = Object.entries(page.label_counts);
  const dropped = Object.entries(page.dropped).filter(([, n]) => n > 0);
  const droppedTotal = dropped.reduce((a, [, n]) => a + n, 0);
  fill(summary, 
    h('div', { class: 'card', id: 'label-chart' }, h('h2', { style: { marginTop: 0 } }, 'Label distribution'),
      counts.length ? hbars(counts.map(([label, n]) => ({ label, value: n })), { name: 'Rows per label' }) : h('p', { class: 'empty' }, 'No labels (not a classification task).'),
      h('p', { class: 'small muted' }, Object.entries(page.split_counts).map(([s, n]) => `${n} ${s}`).join(' · '))),
    h('div', { class: 'card', id: 'curation' }, h('h2', { style: { marginTop: 0 } }, 'Curation'),
      h('p', {}, page.input_rows !== null ? `${page.input_rows} labeled rows in, ${Object.values(page.split_counts).reduce((a, b) => a + b, 0)} kept, ${droppedTotal} dropped.` : ''),
      dropped.length ? table(['Dropped because', 'Rows'], dropped.map(([reason, n]) => [DROP_REASONS[reason] ? `${DROP_REASONS[reason]} (${reason})` : reason, n]), { numeric: [1] })
        : h('p', { class: 'muted' }, 'Nothing was dropped.')));
}
