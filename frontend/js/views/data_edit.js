// Editing the curated rows in place: a row's output edited where it is shown, rows deleted and
// restored, a row added, all from the keyboard too. Every change goes to `save(edit)`, which
// answers null once it is handled (saved, or the page reloaded) or the message to show beside it.
import { fill, h } from '../dom.js';

export const KEYS_HELP = 'Keys: ↑/↓ or j/k move between rows, Enter edits the output (Enter saves, Escape cancels), Delete removes the row.';

function outputView(row) {
  return h('strong', {}, row.output ?? '');
}

// The editor of a row's output: a line (with the labels offered) for a label, a box otherwise.
function outputControl(row, labels) {
  const attrs = { class: 'output-editor', 'aria-label': `New output for row ${row.index}`, 'aria-describedby': `row-error-${row.index}` };
  const control = labels.length
    ? h('input', { ...attrs, type: 'text', list: 'label-options', autocomplete: 'off' })
    : h('textarea', { ...attrs, rows: 3 });
  control.value = row.output ?? '';
  return control;
}

function rowError(cell, index, message) {
  let el = cell.querySelector('.row-error');
  if (!el) el = cell.appendChild(h('div', { class: 'field-error row-error', id: `row-error-${index}`, role: 'alert' }));
  el.textContent = message;
}

function rowButtons(row) {
  if (row.deleted) return h('button', { type: 'button', class: 'secondary', 'data-action': 'restore', 'aria-label': `Restore row ${row.index}` }, 'Restore');
  return [
    h('button', { type: 'button', class: 'secondary', 'data-action': 'edit', 'aria-label': `Edit the output of row ${row.index}` }, 'Edit'),
    h('button', { type: 'button', class: 'danger', 'data-action': 'delete', 'aria-label': `Delete row ${row.index}` }, 'Delete'),
  ];
}

// The row's number, and whether a person changed, added or deleted it.
function rowNumber(row) {
  const edited = row.edited
    ? h('span', { class: 'badge edited', title: row.teacher_output !== undefined ? `The teacher answered: ${row.teacher_output}` : 'Added by a person' },
      row.teacher_output !== undefined ? 'edited' : 'added')
    : null;
  return [String(row.index), edited ? h('div', {}, edited) : null, row.deleted ? h('div', {}, h('span', { class: 'badge canceled' }, 'deleted')) : null];
}

/**
 * The table of a page of rows. `detail(row)` is the fourth column (soft labels or bucket);
 * `onEdge(step)` is called when the focus would leave the page (+1 past the last row, -1 before the first).
 * Returns the element and `focusRow(index | 'first' | 'last')`.
 */
export function rowsTable(items, { editable, labels, detail, detailTitle, save, onEdge }) {
  const tbody = h('tbody', {});
  const headers = ['Row', 'Input', 'Output', detailTitle, 'Split', editable ? 'Edit' : null].filter(Boolean);
  const el = h('div', { class: 'table-wrap' }, h('table', { class: editable ? 'editable' : null, 'aria-describedby': editable ? 'data-keys-help' : null },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))), tbody));

  const byIndex = new Map(items.map((row) => [row.index, row]));
  // One save at a time: a second Enter or Delete while one is on its way would race it.
  let busy = false;
  const send = async (edit) => {
    busy = true;
    try { return await save(edit); } finally { busy = false; }
  };
  const rows = () => [...tbody.rows];
  const current = (tr) => {
    for (const other of rows()) {
      const on = other === tr;
      other.tabIndex = on ? 0 : -1;
      for (const button of other.querySelectorAll('button')) button.tabIndex = on ? 0 : -1;
    }
  };
  const focusRow = (which) => {
    const all = rows();
    // A row that left the page (deleted while only live rows are shown) hands the focus to the next one.
    const tr = which === 'first' ? all[0] : which === 'last' ? all[all.length - 1]
      : all.find((r) => Number(r.dataset.rowIndex) >= which) || all[all.length - 1];
    if (!tr) return false;
    current(tr);
    tr.focus();
    return true;
  };

  const closeEditors = () => {
    for (const cell of tbody.querySelectorAll('[data-output].editing')) {
      cell.classList.remove('editing');
      fill(cell, outputView(byIndex.get(Number(cell.closest('tr').dataset.rowIndex))));
    }
  };

  const startEdit = (tr) => {
    const row = byIndex.get(Number(tr.dataset.rowIndex));
    const cell = tr.querySelector('[data-output]');
    if (!editable || row.deleted || cell.classList.contains('editing')) return;
    closeEditors();
    const control = outputControl(row, labels);
    const saveButton = h('button', { type: 'button', 'data-action': 'save' }, 'Save');
    const cancel = () => { closeEditors(); focusRow(row.index); };
    const commit = async () => {
      if (busy) return undefined;
      if (control.value.trim() === String(row.output ?? '').trim()) return cancel();
      saveButton.disabled = true;
      const problem = await send({ op: 'update', index: row.index, output: control.value });
      if (!problem || !control.isConnected) return;
      saveButton.disabled = false;
      rowError(cell, row.index, problem);
      control.setAttribute('aria-invalid', 'true');
      control.focus();
    };
    control.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Escape') { e.preventDefault(); cancel(); }
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); commit(); }
    });
    saveButton.addEventListener('click', commit);
    cell.classList.add('editing');
    fill(cell, control, h('div', { class: 'actions' }, saveButton,
      h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel', onclick: cancel }, 'Cancel')));
    control.focus();
    if (control.select) control.select();
  };

  const remove = async (tr, op) => {
    if (busy) return;
    const row = byIndex.get(Number(tr.dataset.rowIndex));
    const problem = await send({ op, index: row.index });
    if (problem && tr.isConnected) rowError(tr.querySelector('[data-output]'), row.index, problem);
  };

  tbody.append(...items.map((row) => h('tr', {
    'data-row-index': row.index, 'data-deleted': row.deleted ? 'true' : 'false', class: row.deleted ? 'deleted' : null,
    tabindex: editable ? -1 : null,
  },
  h('td', { class: 'num-cell' }, rowNumber(row)),
  h('td', {}, h('div', { class: 'text-cell' }, row.input)),
  h('td', { 'data-output': true, class: editable && !row.deleted ? 'output-cell' : null,
    title: editable && !row.deleted ? 'Click to edit' : null }, outputView(row)),
  h('td', {}, detail(row)),
  h('td', {}, row.split),
  editable ? h('td', { class: 'row-actions' }, rowButtons(row)) : null)));
  if (!editable) return { el, focusRow: () => false };
  current(rows()[0]);

  tbody.addEventListener('focusin', (e) => { const tr = e.target.closest('tr'); if (tr) current(tr); });
  tbody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    const action = e.target.closest('button')?.dataset.action;
    if (!tr || action === 'save' || action === 'cancel') return;
    if (action === 'edit' || (!action && e.target.closest('[data-output]'))) startEdit(tr);
    else if (action === 'delete' || action === 'restore') remove(tr, action);
  });
  tbody.addEventListener('keydown', (e) => {
    const tr = e.target;
    if (!(tr instanceof HTMLTableRowElement) || e.altKey || e.ctrlKey || e.metaKey) return;  // typing, or on a button
    const all = rows();
    const at = all.indexOf(tr);
    const move = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[e.key];
    if (move) {
      e.preventDefault();
      const next = all[at + move];
      if (next) focusRow(Number(next.dataset.rowIndex));
      else onEdge(move);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      focusRow(e.key === 'Home' ? 'first' : 'last');
    } else if (e.key === 'Enter') {
      e.preventDefault();
      startEdit(tr);
    } else if ((e.key === 'Delete' || e.key === 'Backspace') && tr.dataset.deleted === 'false') {
      e.preventDefault();
      remove(tr, 'delete');
    }
  });
  return { el, focusRow };
}

// The "Add a row" form. It keeps what was typed until the row is saved.
export function addRowForm(save, labels) {
  const input = h('textarea', { id: 'add-input', name: 'input', rows: 2, required: true, 'aria-describedby': 'add-error' });
  const output = labels.length
    ? h('input', { type: 'text', id: 'add-output', name: 'output', list: 'label-options', autocomplete: 'off', 'aria-describedby': 'add-error' })
    : h('textarea', { id: 'add-output', name: 'output', rows: 2, 'aria-describedby': 'add-error' });
  const split = h('select', { id: 'add-split', name: 'split' }, ['train', 'validation'].map((s) => h('option', { value: s }, s)));
  const error = h('div', { class: 'field-error', id: 'add-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', id: 'add-row' }, 'Add row');
  const labelled = (id, text, control) => h('div', { class: 'field' }, h('label', { for: id }, text), control);
  const form = h('form', { class: 'card', id: 'add-row-form', novalidate: true, 'aria-labelledby': 'add-row-title' },
    h('h2', { id: 'add-row-title', style: { marginTop: 0 } }, 'Add a row'),
    h('div', { class: 'row' }, labelled('add-input', 'Input', input), labelled('add-output', 'Output', output),
      h('div', { class: 'field', style: { flex: '0 1 10rem' } }, h('label', { for: 'add-split' }, 'Split'), split)),
    error, h('div', { class: 'actions' }, button));
  const problem = (message, control) => {
    error.textContent = message;
    error.hidden = false;
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    for (const control of [input, output]) control.removeAttribute('aria-invalid');
    if (!input.value.trim()) return problem('Give the row an input.', input);
    button.disabled = true;
    const message = await save({ op: 'add', input: input.value, output: output.value, split: split.value });
    button.disabled = false;
    if (message) return problem(message, output);
    input.value = '';
    output.value = '';
    input.focus();
  });
  return form;
}
