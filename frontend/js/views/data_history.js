// A job's data set revisions (who changed what, when), read from /api/jobs/{id}/data/revisions.
import { api } from '../api.js';
import { ago, fill, h } from '../dom.js';

const SHOWN_EDITS = 20;
const CHANGE_WORDS = [['updated', 'changed'], ['deleted', 'deleted'], ['restored', 'restored'], ['added', 'added']];

// "2 changed, 1 deleted" from a revision's change counts.
export function changeSummary(changes) {
  const parts = CHANGE_WORDS.filter(([key]) => changes?.[key]).map(([key, word]) => `${changes[key]} ${word}`);
  return parts.length ? parts.join(', ') : 'no change';
}

function clip(text, size = 80) {
  const s = text === null || text === undefined ? '' : String(text);
  return s.length > size ? `${s.slice(0, size - 1)}…` : s;
}

// One applied edit as a line: `row 5: "ham" → "spam"`.
export function describeEdit(edit) {
  const row = `row ${edit.index}`;
  if (edit.op === 'update') return `${row}: “${clip(edit.before)}” → “${clip(edit.after ?? edit.output)}”`;
  if (edit.op === 'delete') return `${row} deleted`;
  if (edit.op === 'restore') return `${row} restored`;
  if (edit.op === 'add') {
    const added = edit.after || edit;
    return `${edit.index === undefined ? 'a row' : row} added: “${clip(added.input)}” → “${clip(added.output)}” (${added.split || 'train'})`;
  }
  return `${row}: ${edit.op}`;
}

function revisionItem(revision) {
  const when = new Date(revision.created_at);
  const edits = revision.edits || [];
  return h('li', { 'data-revision': revision.number },
    h('strong', {}, `Revision ${revision.number}`), ' · ', revision.actor, ' · ',
    h('time', { datetime: revision.created_at, title: when.toLocaleString() }, ago(revision.created_at)), ' · ',
    changeSummary(revision.changes),
    edits.length ? h('ul', { class: 'small' },
      edits.slice(0, SHOWN_EDITS).map((e) => h('li', {}, describeEdit(e))),
      edits.length > SHOWN_EDITS ? h('li', { class: 'muted' }, `and ${edits.length - SHOWN_EDITS} more`) : null) : null);
}

// A folded "History" list that loads when opened and again on `refresh()` while open.
export function historyPanel(jobId) {
  const list = h('div', { id: 'revision-list' });
  const box = h('details', { id: 'data-history', class: 'history' },
    h('summary', {}, 'History'), list);
  const refresh = async () => {
    if (!box.open) return;
    try {
      const history = await api(`/api/jobs/${jobId}/data/revisions`);
      const items = [...history.items].sort((a, b) => b.number - a.number);
      fill(list, items.length
        ? h('ul', { class: 'revisions' }, items.map(revisionItem))
        : h('p', { class: 'empty' }, 'No edits yet: the data set is as curation wrote it (revision 0).'));
    } catch (err) {
      fill(list, h('div', { class: 'banner error' }, `Could not load the history: ${err.message}`));
    }
  };
  box.addEventListener('toggle', refresh);
  return { box, refresh };
}

// The data set's revision now (0: as curated), or null when it cannot be read.
export async function currentRevision(jobId) {
  try {
    return (await api(`/api/jobs/${jobId}/data/revisions`)).current;
  } catch {
    return null;
  }
}
