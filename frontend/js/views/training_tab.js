// The student's training: the loss curve, live while it trains.
import { fill, h, duration } from '../dom.js';
import { lineChart } from '../charts.js';

export function trainingTab(panel, snapshot) {
  const body = h('div', { class: 'card', id: 'training' });
  panel.append(body);
  const update = (snap) => {
    const stage = snap.stages.find((s) => s.name === 'train');
    const m = stage?.metrics || {};
    const history = m.loss_history || [];
    const series = [{ name: 'loss', points: history.map((e) => [e.step, e.loss]) }];
    if (history.some((e) => e.soft_label_kl !== undefined)) {
      series.push({ name: 'soft-label KL', cls: 'kl', points: history.filter((e) => e.soft_label_kl !== undefined).map((e) => [e.step, e.soft_label_kl]) });
    }
    const facts = [
      ['Steps', m.max_steps ? `${m.step ?? m.steps ?? 0} of ${m.max_steps}` : m.steps],
      ['Final training loss', m.train_loss], ['Method', m.plan?.method], ['Epochs', m.plan?.epochs],
      ['Examples', m.examples], ['Trainable parameters', m.trainable_parameters?.toLocaleString()],
      ['Tokens per second', m.tokens_per_second], ['Training time', m.train_runtime_s !== undefined ? duration(m.train_runtime_s) : undefined],
      ['Soft labels', m.soft_labels === undefined ? undefined : m.soft_labels ? 'yes (KL against the teacher)' : 'no'],
    ].filter(([, v]) => v !== undefined && v !== null);
    fill(body, 
      h('h2', { style: { marginTop: 0 } }, 'Loss', stage?.status === 'running' ? h('span', { class: 'small muted' }, ' — live') : null),
      history.length ? lineChart(series, { xLabel: 'step', yLabel: 'loss' }) : h('p', { class: 'empty' },
        stage?.status === 'pending' ? 'Training has not started yet.' : 'The first loss values arrive after the first logged steps.'),
      series.length > 1 ? h('div', { class: 'legend' }, h('span', {}, '— loss'), h('span', {}, '- - soft-label KL')) : null,
      facts.length ? h('dl', { class: 'row' }, facts.map(([k, v]) => h('div', {}, h('dt', { class: 'small muted' }, k), h('dd', { style: { margin: 0 } }, String(v))))) : null);
  };
  update(snapshot);
  const cleanup = () => {};
  cleanup.update = update;
  return cleanup;
}
