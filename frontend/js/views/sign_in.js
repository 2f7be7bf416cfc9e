// Sign-in: the key goes to POST /api/session once, which keeps it in an HttpOnly cookie; page
// scripts never hold it afterwards, and live streams (EventSource) carry it too.
import { api } from '../api.js';
import { h } from '../dom.js';

export function signInView(root, onSignedIn) {
  const input = h('input', { id: 'f-key', name: 'key', type: 'password', autocomplete: 'current-password',
    required: true, placeholder: 'vt_…', 'aria-describedby': 'e-key' });
  const error = h('div', { class: 'field-error', id: 'e-key', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow', id: 'sign-in', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste your API key. An admin makes keys with ', h('code', {}, 'vibetune keys create'),
      '; the first admin key is printed by ', h('code', {}, 'make up'), '.'),
    h('div', { class: 'field' }, h('label', { for: 'f-key' }, 'API key'), input, error),
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!input.value.trim()) {
      error.textContent = 'Enter your API key.';
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const me = await api('/api/session', { method: 'POST', body: { key: input.value.trim() } });
      input.value = '';
      onSignedIn(me);
    } catch (err) {
      error.textContent = err.status === 401 ? 'That key is unknown or revoked.' : err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  root.append(form);
  input.focus();
  return () => {};
}
