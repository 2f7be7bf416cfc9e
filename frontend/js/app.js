// The dashboard: a hash router over three views. Each view returns a cleanup function that
// closes its live streams when the person navigates away.
import { api } from './api.js';
import { newTaskView } from './views/new_task.js';
import { jobsView } from './views/jobs.js';
import { jobView } from './views/job.js';

const main = document.getElementById('main');
let cleanup = null;

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  main.replaceChildren();
  const [, section, id, tab] = (location.hash || '#/jobs').split('/');
  for (const link of document.querySelectorAll('[data-nav]')) {
    link.toggleAttribute('aria-current', false);
    if (link.dataset.nav === (section || 'jobs') && !id) link.setAttribute('aria-current', 'page');
  }
  if (section === 'new') cleanup = newTaskView(main);
  else if (section === 'jobs' && id) cleanup = jobView(main, decodeURIComponent(id), tab);
  else cleanup = jobsView(main);
}

async function showHealth() {
  const el = document.getElementById('health');
  try {
    const health = await api('/health');
    el.textContent = health.status === 'ok' ? 'service ok' : `degraded: database ${health.database}, queue ${health.broker}, teacher ${health.teacher}`;
  } catch (err) {
    el.textContent = err.status === 503 ? 'service degraded' : 'service unreachable';
  }
}

window.addEventListener('hashchange', route);
route();
showHealth();
