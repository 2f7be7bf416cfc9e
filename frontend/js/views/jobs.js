// The job list, kept current by one Server-Sent Events stream for the whole list. Finished jobs
// can be ticked and compared side by side (`#/compare?jobs=a,b`).
import { watch } from '../api.js';
import { fill, h, ago, badge, progressBar } from '../dom.js';

const MAX_COMPARED = 8;

export function jobsView(root) {
  const body = h('tbody', { id: 'job-rows' }, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Loading…')));
  const count = h('span', { class: 'muted small' });
  const selected = new Set();  // kept across the stream's redraws
  const compare = h('button', { type: 'button', class: 'secondary', id: 'compare-selected', disabled: true,
    title: `Tick 2 to ${MAX_COMPARED} finished jobs to compare them`,
    onclick: () => { location.hash = `#/compare?jobs=${[...selected].join(',')}`; } }, 'Compare selected');
  const refresh = () => {
    compare.disabled = selected.size < 2 || selected.size > MAX_COMPARED;
    compare.textContent = selected.size ? `Compare selected (${selected.size})` : 'Compare selected';
  };
  const pick = (job) => h('input', { type: 'checkbox', 'data-compare': job.id, 'aria-label': `Compare ${job.task.slice(0, 60)}`,
    checked: selected.has(job.id), onchange: (e) => { if (e.target.checked) selected.add(job.id); else selected.delete(job.id); refresh(); } });
  root.append(
    h('div', { class: 'actions', style: { justifyContent: 'space-between' } }, h('h1', {}, 'Jobs ', count),
      h('div', { class: 'actions' }, compare, h('a', { class: 'button', href: '#/new' }, 'New task'))),
    h('div', { class: 'card table-wrap' }, h('table', { id: 'jobs' },
      h('thead', {}, h('tr', {}, ['', 'Task', 'Status', 'Stage', 'Progress', 'Age'].map((t, i) =>
        h('th', { scope: 'col', class: i === 5 ? 'hide-sm' : null, style: i === 0 ? { width: '1%' } : null }, i === 0 ? h('span', { class: 'small muted' }, 'Compare') : t)))),
      body)));

  const source = watch('/api/events/jobs?limit=50', {
    jobs: ({ items, total }) => {
      count.textContent = total ? `(${total})` : '';
      const finished = new Set(items.filter((job) => job.status === 'succeeded').map((job) => job.id));
      for (const id of selected) if (!finished.has(id)) selected.delete(id);
      refresh();
      if (!items.length) {
        fill(body, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No jobs yet. ', h('a', { href: '#/new' }, 'Describe a task'), ' to start one.')));
        return;
      }
      fill(body, ...items.map((job) => h('tr', { 'data-job': job.id },
        h('td', {}, finished.has(job.id) ? pick(job) : null),
        h('td', {}, h('a', { href: `#/jobs/${job.id}` }, job.task.length > 90 ? `${job.task.slice(0, 90)}…` : job.task)),
        h('td', {}, badge(job.status), job.error ? h('div', { class: 'small muted' }, job.error.code) : null),
        h('td', {}, job.stage || '–'),
        h('td', {}, progressBar(job.progress, `progress of ${job.task}`), h('span', { class: 'small' }, `${Math.round(job.progress * 100)}%`)),
        h('td', { class: 'hide-sm', title: new Date(job.created_at).toLocaleString() }, ago(job.created_at)))));
    },
  });
  return () => source.close();
}
