// The dashboard: a hash router over its views, behind a sign-in. Each view returns a cleanup
// function that closes its live streams when the person navigates away.
import { api } from './api.js';
import { fill, h } from './dom.js';
import { newTaskView } from './views/new_task.js';
import { jobsView } from './views/jobs.js';
import { jobView } from './views/job.js';
import { compareView } from './views/compare.js';
import { keysView } from './views/keys.js';
import { signInView } from './views/sign_in.js';

const main = document.getElementById('main');
const account = document.getElementById('account');
let cleanup = null;
let me = null;

function show(view) {
  if (cleanup) cleanup();
  main.replaceChildren();
  cleanup = view(main);
}

function route() {
  if (!me) return;
  const [path, query = ''] = (location.hash || '#/jobs').split('?');
  const [, section, id, tab] = path.split('/');
  for (const link of document.querySelectorAll('[data-nav]')) {
    link.toggleAttribute('aria-current', false);
    if (link.dataset.nav === (section || 'jobs') && !id) link.setAttribute('aria-current', 'page');
  }
  if (section === 'new') show(newTaskView);
  else if (section === 'keys' && me.admin) show(keysView);
  else if (section === 'jobs' && id) show((root) => jobView(root, decodeURIComponent(id), tab));
  else if (section === 'compare') show((root) => compareView(root, new URLSearchParams(query).get('jobs') || ''));
  else show(jobsView);
}

function signedIn(who) {
  me = who;
  document.getElementById('nav-keys').hidden = !me.admin;
  fill(account, h('span', { id: 'who' }, me.owner, me.admin ? ' (admin)' : ''),
    me.auth ? h('button', { class: 'secondary', type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out') : null);
  route();
}

function signedOut() {
  if (!me && main.querySelector('#sign-in')) return;
  me = null;
  document.getElementById('nav-keys').hidden = true;
  account.replaceChildren();
  show((root) => signInView(root, signedIn));
}

async function signOut() {
  try { await api('/api/session', { method: 'DELETE' }); } finally { signedOut(); }
}

async function start() {
  try {
    signedIn(await api('/api/me'));
  } catch (err) {
    if (err.status === 401) signedOut();
    else fill(main, h('div', { class: 'banner error', role: 'alert' }, err.message));
  }
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
window.addEventListener('vibetune:signed-out', signedOut);
start();
showHealth();
