// The curated data set: label distribution, what curation dropped, and the rows page by page;
// while the data can still change, rows are edited in place and every save is a new revision.
import { api } from '../api.js';
import { fill, h, table } from '../dom.js';
import { hbars } from '../charts.js';
import { addRowForm, KEYS_HELP, rowsTable } from './data_edit.js';
import { changeSummary, historyPanel } from './data_history.js';

const PAGE = 20;
const DROP_REASONS = {
  invalid_output: 'the teacher’s answer did not fit the task',
  duplicate: 'same text as another row', near_duplicate: 'nearly the same as another row',
  test_overlap: 'too close to a test-set row', seed_overlap: 'too close to a seed example',
  over_budget: 'more than asked for', class_balance: 'trimmed to balance the labels',
};
const SHOWN = [['', 'all rows'], ['false', 'in the data set'], ['true', 'deleted']];

// `onRevision(n)` hears the data set's revision whenever a page shows it (null: not known).
export function dataTab(panel, jobId, { onRevision = () => {} } = {}) {
  const query = { label: '', deleted: '', offset: 0 };
  const state = { revision: null, total: 0, table: null, addForm: null };
  const summary = h('div', { class: 'row' });
  const filter = h('select', { id: 'label-filter', 'aria-label': 'Filter rows by label' });
  const shown = h('select', { id: 'deleted-filter', 'aria-label': 'Show deleted rows or not' },
    SHOWN.map(([value, text]) => h('option', { value }, text)));
  const revision = h('span', { id: 'data-revision', class: 'badge' });
  const notice = h('div', { id: 'data-editing' });
  const status = h('p', { id: 'data-save-status', class: 'small', role: 'status', 'aria-live': 'polite' });
  const labelOptions = h('datalist', { id: 'label-options' });
  const rows = h('div', { id: 'examples' });
  const pager = h('div', { class: 'pager' });
  const history = historyPanel(jobId);
  const addSlot = h('div', { id: 'add-row-slot' });
  panel.append(summary, h('div', { class: 'card' },
    h('div', { class: 'actions' }, h('h2', { style: { margin: 0, flex: 1 } }, 'Examples'), revision,
      h('label', { for: 'label-filter', style: { margin: 0 } }, 'Label'), filter,
      h('label', { for: 'deleted-filter', style: { margin: 0 } }, 'Show'), shown,
      h('a', { class: 'button secondary', href: `/api/jobs/${jobId}/dataset`, download: '' }, 'Download JSONL')),
    notice, status, rows, pager, history.box, labelOptions), addSlot);
  const say = (text) => { status.textContent = text; };

  const load = async ({ focus = null } = {}) => {
    const params = new URLSearchParams({ limit: PAGE, offset: query.offset });
    if (query.label) params.set('label', query.label);
    if (query.deleted) params.set('deleted', query.deleted);
    let page;
    try {
      page = await api(`/api/jobs/${jobId}/examples?${params}`);
    } catch (err) {
      fill(rows, h('div', { class: 'banner error' }, err.message));
      return null;
    }
    if (!page.items.length && query.offset > 0 && page.total > 0) {  // the last rows of the last page left it
      query.offset = Math.floor((page.total - 1) / PAGE) * PAGE;
      return load({ focus });
    }
    state.revision = page.revision ?? null;
    state.total = page.total;
    const editable = Boolean(page.editable);
    const labels = Object.keys(page.label_counts);
    renderSummary(summary, page);
    const choices = query.label && !labels.includes(query.label) ? [...labels, query.label] : labels;
    fill(filter, h('option', { value: '' }, 'all labels'), choices.map((l) => h('option', { value: l }, `${l} (${page.label_counts[l] || 0})`)));
    filter.value = query.label;
    shown.value = query.deleted;
    fill(labelOptions, labels.map((l) => h('option', { value: l })));
    revision.hidden = state.revision === null;
    revision.dataset.revision = String(state.revision);
    revision.textContent = state.revision ? `revision ${state.revision}` : 'revision 0 (as curated)';
    fill(notice, editable ? h('p', { class: 'small muted', id: 'data-keys-help' }, KEYS_HELP)
      : page.not_editable_reason ? h('div', { class: 'banner warn', id: 'data-not-editable' }, page.not_editable_reason) : null);
    onRevision(state.revision);

    const soft = page.items.some((r) => r.label_probs);
    state.table = rowsTable(page.items, {
      editable, labels, save, onEdge,
      detailTitle: soft ? 'Teacher’s soft labels' : 'Bucket',
      detail: (r) => (soft ? probs(r.label_probs) : h('span', { class: 'small muted' }, r.bucket || '')),
    });
    fill(rows, page.items.length ? state.table.el : h('p', { class: 'empty' }, 'No rows match.'));
    const end = Math.min(page.total, query.offset + PAGE);
    fill(pager,
      h('button', { type: 'button', class: 'secondary', disabled: query.offset === 0, onclick: () => turn(-1) && load() }, 'Previous'),
      h('span', { class: 'small', id: 'examples-range' }, page.total ? `${query.offset + 1}–${end} of ${page.total}` : '0 rows'),
      h('button', { type: 'button', class: 'secondary', disabled: end >= page.total, onclick: () => turn(1) && load() }, 'Next'));
    if (editable && !state.addForm) state.addForm = addSlot.appendChild(addRowForm(save, labels));
    if (state.addForm) state.addForm.hidden = !editable;
    if (focus !== null) state.table.focusRow(focus);
    return page;
  };

  const turn = (step) => {
    const offset = query.offset + step * PAGE;
    if (offset < 0 || offset >= state.total) return false;
    query.offset = offset;
    return true;
  };
  // The arrow keys go on to the next or previous page past the ends of this one.
  const onEdge = async (step) => {
    if (turn(step) && await load()) state.table.focusRow(step > 0 ? 'first' : 'last');
  };

  // A new row goes at the end of the data set: show the last page of all rows.
  const showLast = async () => {
    query.label = '';
    query.deleted = '';
    const page = await load();
    const last = page ? Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE) : query.offset;
    if (last !== query.offset) {
      query.offset = last;
      await load();
    }
  };

  // One edit, sent against the revision this page shows. Answers null once handled, or the
  // server's message for the row (a 422: the typed text stays for another try).
  async function save(edit) {
    say('Saving…');
    try {
      const result = await api(`/api/jobs/${jobId}/data/edits`, {
        method: 'POST', body: { base_revision: state.revision, edits: [edit] },
      });
      if (edit.op === 'add') await showLast();
      else await load({ focus: edit.index });
      say(`Saved (${changeSummary(result.changes)}): now revision ${result.revision}, ${result.rows} rows in the data set.`);
      history.refresh();
      return null;
    } catch (err) {
      if (err.code === 'data_changed' || err.code === 'data_not_editable') {
        await load();
        say(err.code === 'data_changed'
          ? `Not saved: the data changed meanwhile (someone else edited it), so the rows were reloaded at revision ${state.revision}. Make the change again.`
          : `Not saved: ${err.message}`);
        history.refresh();
        return null;
      }
      const message = err.message.replace(/^edits\[\d+\]: /, '');  // one edit per request: its place says nothing
      say(`Not saved: ${message}`);
      return message;
    }
  }

  filter.addEventListener('change', () => { query.label = filter.value; query.offset = 0; load(); });
  shown.addEventListener('change', () => { query.deleted = shown.value; query.offset = 0; load(); });
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
