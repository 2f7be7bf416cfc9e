// The upfront estimate next to the new-task form's submit button: POST /api/jobs/estimate with the
// body the form would submit, asked again a moment after each change. When the server cannot
// estimate (an incomplete form, an error), the line just goes away.
import { api } from './api.js';

// A time in round figures: `40 s`, `14 min`, `2 h 5 min` (as the CLI prints it).
export function roughDuration(seconds) {
  const total = Math.max(0, Math.round(seconds || 0));
  if (total < 60) return `${Math.max(1, total)} s`;
  const minutes = Math.round(total / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
}

// `about 14 min: generate 3 min, label 4 min, …`
export function estimateText(estimate) {
  const stages = (estimate.stages || []).map((s) => `${s.name} ${roughDuration(s.seconds)}`).join(', ');
  return `about ${roughDuration(estimate.total_seconds)}${stages ? `: ${stages}` : ''}`;
}

// Keep `el` showing the estimate of `bodyOf()` (null: nothing to estimate yet). Returns
// `schedule`, to call on every change, and `stop`.
export function liveEstimate(el, bodyOf, delay = 600) {
  let timer = null;
  let asked = 0;
  let gone = false;  // the server has no estimate route: stop asking
  const hide = () => { el.hidden = true; el.textContent = ''; el.removeAttribute('title'); };
  const ask = async () => {
    const body = bodyOf();
    const mine = ++asked;
    if (!body || gone) { hide(); return; }
    try {
      const estimate = await api('/api/jobs/estimate', { method: 'POST', body });
      if (mine !== asked) return;  // a newer change is being estimated
      el.textContent = estimateText(estimate);
      if (estimate.basis) el.title = `Based on ${estimate.basis}`;
      el.hidden = false;
    } catch (err) {
      if (err.status === 404 || err.status === 405) gone = true;
      if (mine === asked) hide();
    }
  };
  hide();
  return {
    schedule() { clearTimeout(timer); timer = setTimeout(ask, delay); },
    stop() { clearTimeout(timer); gone = true; },
  };
}
