// API keys (admins): make one for an owner (shown once), list them, revoke one.
import { api } from '../api.js';
import { ago, fill, h } from '../dom.js';

export function keysView(root) {
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true });
  const made = h('div', { class: 'banner', role: 'status', id: 'new-key', hidden: true });
  const body = h('tbody', { id: 'key-rows' });
  const owner = h('input', { id: 'f-owner', name: 'owner', required: true, placeholder: 'alice' });
  const name = h('input', { id: 'f-name', name: 'name', placeholder: 'laptop, CI, …' });
  const admin = h('input', { id: 'f-admin', name: 'admin', type: 'checkbox' });
  const form = h('form', { class: 'card', id: 'new-key-form', novalidate: true },
    h('h2', {}, 'New key'),
    h('div', { class: 'field' }, h('label', { for: 'f-owner' }, 'Owner'), owner),
    h('div', { class: 'field' }, h('label', { for: 'f-name' }, 'Note'), name),
    h('div', { class: 'field' }, h('label', { class: 'checkbox' }, admin, ' Admin (sees and manages everyone’s jobs and keys)')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Make key')));

  function fail(err) {
    banner.textContent = err.message;
    banner.hidden = false;
  }

  async function load() {
    try {
      const { items } = await api('/api/keys');
      fill(body, ...items.map((key) => h('tr', { 'data-key': key.id },
        h('td', {}, String(key.id)), h('td', {}, key.owner), h('td', {}, key.admin ? 'admin' : ''),
        h('td', {}, h('code', {}, `${key.prefix}…`)), h('td', {}, key.name),
        h('td', { title: key.created_at }, ago(key.created_at)),
        h('td', {}, key.last_used_at ? ago(key.last_used_at) : 'never'),
        h('td', {}, key.revoked_at ? 'revoked' : h('button', { class: 'danger', type: 'button',
          'aria-label': `Revoke key ${key.id} of ${key.owner}`,
          onclick: async () => {
            try { await api(`/api/keys/${key.id}`, { method: 'DELETE' }); await load(); } catch (err) { fail(err); }
          } }, 'Revoke')))));
    } catch (err) { fail(err); }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    banner.hidden = true;
    try {
      const key = await api('/api/keys', { method: 'POST',
        body: { owner: owner.value.trim(), name: name.value.trim(), admin: admin.checked } });
      fill(made, `Key for ${key.owner} (shown once, copy it now): `, h('code', { id: 'made-key' }, key.key));
      made.hidden = false;
      owner.value = name.value = '';
      admin.checked = false;
      await load();
    } catch (err) { fail(err); }
  });

  root.append(h('h1', {}, 'API keys'), banner, made, form,
    h('div', { class: 'card table-wrap' }, h('table', { id: 'keys' },
      h('thead', {}, h('tr', {}, ['ID', 'Owner', 'Admin', 'Key', 'Note', 'Made', 'Used', ''].map((t) => h('th', { scope: 'col' }, t)))),
      body)));
  load();
  return () => {};
}
