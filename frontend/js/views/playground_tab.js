// Try the tuned student through the service's OpenAI-compatible endpoint.
import { ApiError } from '../api.js';
import { h } from '../dom.js';

export function playgroundTab(panel, jobId) {
  const history = [];
  const log = h('div', { class: 'chat', id: 'chat', 'aria-live': 'polite' });
  const input = h('textarea', { id: 'prompt', rows: 3, placeholder: 'Type an input the way your users would…', 'aria-label': 'Message to the student' });
  const send = h('button', { type: 'submit' }, 'Send');
  const keep = h('input', { type: 'checkbox', id: 'keep-history' });
  const form = h('form', { class: 'card' },
    h('p', { class: 'small muted' }, 'The student learned the task itself, so send just the input. The same call works from any OpenAI client: base URL ',
      h('code', {}, `${location.origin}/v1`), ', model ', h('code', {}, jobId), '.'),
    log, h('div', { class: 'field' }, input),
    h('div', { class: 'actions' }, send, h('label', { class: 'checkbox', for: 'keep-history' }, keep, 'Keep the conversation (multi-turn)')));
  panel.append(form);
  input.focus();

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (!keep.checked) { history.length = 0; log.replaceChildren(); }
    history.push({ role: 'user', content: text });
    log.append(h('div', { class: 'msg user' }, text));
    const pending = h('div', { class: 'msg assistant muted' }, '…');
    log.append(pending);
    send.disabled = true;
    try {
      pending.textContent = '';
      const answer = await streamCompletion({ model: jobId, messages: history, max_tokens: 128, temperature: 0 },
        (piece) => { pending.textContent += piece; });
      history.push({ role: 'assistant', content: answer });
      pending.className = 'msg assistant';
      pending.textContent = answer;
      input.value = '';
    } catch (err) {
      history.pop();
      pending.className = 'banner error';
      pending.textContent = err.message;
    } finally {
      send.disabled = false;
      input.focus();
    }
  });
  return null;
}

// POST /v1/chat/completions with `stream: true`: calls `onPiece` with each piece of text as the
// student writes it, and resolves to the whole answer.
async function streamCompletion(body, onPiece) {
  const response = await fetch('/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }),
  });
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch { /* keep the status */ }
    throw new ApiError(response.status, payload?.error);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '', answer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const events = buffer.split('\n\n');
    buffer = events.pop();
    for (const event of events) {
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
      if (!data || data === '[DONE]') continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(500, chunk.error);
      const delta = chunk.choices?.[0]?.delta || {};
      // A tool-calling student's call arrives whole as `tool_calls`: shown (and kept in the
      // history) as the call text the student wrote, {"name": ..., "arguments": {...}}.
      const calls = (delta.tool_calls || []).map((call) =>
        `{"name": ${JSON.stringify(call.function.name)}, "arguments": ${call.function.arguments}}`);
      const piece = (delta.content || '') + calls.join('\n');
      if (piece) { answer += piece; onPiece(piece); }
    }
  }
  return answer;
}
