// The exported files, each run in llama.cpp on the evaluation rows, and the cost per million requests.
import { h, bytes, percent, table } from '../dom.js';

const signed = (v) => (v == null ? '–' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)} pts`);
const money = (v) => (v == null ? '–' : `$${v.toFixed(2)}`);

function interval(ci) {
  return ci ? h('span', { class: 'small muted ci' }, ` (${percent(ci[0], 1)}–${percent(ci[1], 1)})`) : null;
}

function chatLine(check) {
  if (!check || !check.conversations) return null;
  const n = check.conversations;
  const parts = [];
  if (check.llama_cpp) parts.push(`llama.cpp ${check.llama_cpp.equal}/${n}`);
  if (check.ollama) parts.push(`Ollama ${check.ollama.equal}/${n}`);
  if (check.token_ids_equal != null) parts.push(`token ids ${check.token_ids_equal}/${n}`);
  if (check.stop) parts.push(check.stop.ends_answer ? 'stop strings end the answer' : 'stop strings do not end the answer');
  return h('p', { class: `banner ${check.ok ? 'ok' : 'warn'}`, id: 'chat-format-check' },
    h('strong', {}, check.ok ? 'Chat format checked byte for byte: ' : 'Chat format mismatch: '),
    `prompts equal to the tokenizer’s — ${parts.join(', ')}.`);
}

export function exportsCard(report) {
  const files = report.exports || [];
  if (!files.length) return null;
  return h('div', { class: 'card', id: 'exports' }, h('h2', { style: { marginTop: 0 } }, 'Exported files, run in llama.cpp'),
    h('p', { class: 'small muted' }, `Each file answered the same ${files[0].n} rows in llama.cpp’s server (its own chat template, greedy), scored by the same rule. `,
      'Change is against the tuned student’s free answers in transformers; same is the share of identical answers.'),
    table(['File', 'Type', 'Accuracy', 'Change', 'Same', 'Tokens/s', 'Size', ''],
      files.map((f) => [h('code', {}, f.name), f.export, h('span', {}, percent(f.accuracy, 1), interval(f.accuracy_ci95)),
        signed(f.change), percent(f.same_answers, 0), f.tokens_per_second == null ? '–' : f.tokens_per_second.toFixed(0),
        bytes(f.size_bytes),
        f.name === report.recommended_export ? h('strong', { class: 'recommended' }, 'recommended')
          : (f.flagged ? h('span', { class: 'flagged' }, 'below the margin') : '')]),
      { numeric: [2, 3, 4, 5, 6] }),
    chatLine(report.chat_format_check));
}

export function costsCard(report) {
  const rows = report.costs?.rows || [];
  if (!rows.length) return null;
  const saving = report.costs.teacher_over_cheapest_student;
  return h('div', { class: 'card', id: 'costs' }, h('h2', { style: { marginTop: 0 } }, 'Cost per million requests'),
    table(['Model', 'Runtime', 'Device', '$/hour', 'Latency p50', '$ per 1M requests', 'Size'],
      rows.map((r) => [r.model, r.runtime, r.device, r.price_per_hour == null ? '–' : r.price_per_hour.toFixed(3),
        r.latency_p50_ms == null ? '–' : `${Math.round(r.latency_p50_ms)} ms`, money(r.cost_per_million),
        r.size_gb == null ? '–' : `${r.size_gb.toFixed(2)} GB`]),
      { numeric: [3, 4, 5, 6] }),
    h('p', { class: 'small muted' }, 'One request at a time at the configured device-hour prices (batching lowers every line).',
      saving ? ` The teacher costs ${saving}× the cheapest student.` : ''));
}
