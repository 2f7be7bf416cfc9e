// The job list, kept current by one Server-Sent Events stream for the whole list.
import { watch } from '../api.js';
import { fill, h, ago, badge, progressBar } from '../dom.js';

export function jobsView(root) {
  const body = h('tbody', { id: 'job-rows' }, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'Loading…')));
  const count = h('span', { class: 'muted small' });
  root.append(
    h('div', { class: 'actions', style: { justifyContent: 'space-between' } }, h('h1', {}, 'Jobs ', count),
      h('a', { class: 'button', href: '#/new' }, 'New task')),
    h('div', { class: 'card table-wrap' }, h('table', { id: 'jobs' },
      h('thead', {}, h('tr', {}, ['Task', 'Status', 'Stage', 'Progress', 'Age'].map((t, i) =>
        h('th', { scope: 'col', class: i === 4 ? 'hide-sm' : null }, t)))),
      body)));

  const source = watch('/api/events/jobs?limit=50', {
    jobs: ({ items, total }) => {
      count.textContent = total ? `(${total})` : '';
      if (!items.length) {
        fill(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No jobs yet. ', h('a', { href: '#/new' }, 'Describe a task'), ' to start one.')));
        return;
      }
      fill(body, ...items.map((job) => h('tr', { 'data-job': job.id },
        h('td', {}, h('a', { href: `#/jobs/${job.id}` }, job.task.length > 90 ? `${job.task.slice(0, 90)}…` : job.task)),
        h('td', {}, badge(job.status), job.error ? h('div', { class: 'small muted' }, job.error.code) : null),
        h('td', {}, job.stage || '–'),
        h('td', {}, progressBar(job.progress, `progress of ${job.task}`), h('span', { class: 'small' }, `${Math.round(job.progress * 100)}%`)),
        h('td', { class: 'hide-sm', title: new Date(job.created_at).toLocaleString() }, ago(job.created_at)))));
    },
  });
  return () => source.close();
}
