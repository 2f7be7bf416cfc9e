// One job: live header and stages (Server-Sent Events), then tabs for what it made.
import { api, watch } from '../api.js';
import { fill, h, ago, badge, duration, progressBar, table } from '../dom.js';
import { dataTab } from './data_tab.js';
import { currentRevision } from './data_history.js';
import { dataSource, retrainAction } from './retrain.js';
import { trainingTab } from './training_tab.js';
import { reportTab } from './report_tab.js';
import { artifactsTab } from './artifacts_tab.js';
import { playgroundTab } from './playground_tab.js';

const TABS = [
  ['overview', 'Overview'], ['data', 'Data'], ['training', 'Training'], ['report', 'Report'],
  ['artifacts', 'Artifacts'], ['playground', 'Playground'],
];

const TYPE_NAMES = { classification: 'classification', extraction: 'extraction', qa: 'question answering', tool_calling: 'tool calling' };

const STAGE_TEXT = {
  plan: 'the teacher plans the task', generate: 'the teacher writes inputs', label: 'the teacher labels them',
  curate: 'deduplicate, hold out, balance, split', teacher_check: 'the teacher on your test set',
  train: 'fine-tune the student', refine: 'a second round on new rows like its mistakes', evaluate: 'teacher vs untuned vs tuned student', package: 'model files to take home',
};

export function jobView(root, jobId, initialTab) {
  const state = { job: null, snapshot: null, tab: TABS.some(([t]) => t === initialTab) ? initialTab : 'overview', source: null };
  const header = h('div', { id: 'job-header' });
  const stages = h('ol', { class: 'stages', id: 'stages', 'aria-label': 'Stages' });
  const tabBar = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Job sections' });
  const panel = h('section', { id: 'tab-panel', role: 'tabpanel', tabindex: 0 });
  const live = h('p', { class: 'small muted', id: 'live-state', 'aria-live': 'polite' });
  const progressTitle = h('span', { class: 'small muted' });
  const progress = h('details', { class: 'card', id: 'progress', open: true },
    h('summary', {}, h('h2', { style: { display: 'inline', margin: 0 } }, 'Progress'), ' ', progressTitle), stages, live);
  state.retrain = retrainAction(jobId);
  root.append(header, state.retrain.box, progress, tabBar, panel);
  // "Train on this data (revision N)" follows the data tab's edits.
  state.dataRevision = null;
  state.onRevision = (revision) => {
    if (revision === state.dataRevision) return;
    state.dataRevision = revision;
    if (state.snapshot) renderHeader(header, state, { cancel, resume });
  };

  let tabCleanup = null;
  const showTab = (name, focus = false) => {
    state.tab = name;
    history.replaceState(null, '', `#/jobs/${jobId}/${name}`);
    for (const button of tabBar.children) button.setAttribute('aria-selected', String(button.dataset.tab === name));
    if (tabCleanup) tabCleanup();
    fill(panel, );
    tabCleanup = renderTab(panel, name, jobId, state) || null;
    if (focus) tabBar.querySelector(`[data-tab="${name}"]`).focus();
  };
  tabBar.append(...TABS.map(([name, label], i) => h('button', {
    type: 'button', role: 'tab', 'data-tab': name, id: `tab-${name}`, onclick: () => showTab(name),
    onkeydown: (e) => {  // arrow keys move between tabs, as in any tab list
      const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (step) showTab(TABS[(i + step + TABS.length) % TABS.length][0], true);
    },
  }, label)));

  const onSnapshot = (snapshot) => {
    const before = state.snapshot;
    state.snapshot = snapshot;
    renderHeader(header, state, { cancel, resume });
    renderStages(stages, snapshot);
    const active = snapshot.status === 'queued' || snapshot.status === 'running';
    // A finished job opens with its stages folded away (the tabs matter then); a running one shows them.
    if (!before && !active) progress.open = false;
    if (active && before && !(before.status === 'queued' || before.status === 'running')) progress.open = true;
    progressTitle.textContent = progressSummary(snapshot);
    live.textContent = snapshot.status === 'queued' || snapshot.status === 'running'
      ? `Live: updates as the job runs (last change ${new Date(snapshot.updated_at).toLocaleTimeString()}).` : '';
    // A stage that just finished changes what the data, report and artifacts tabs can show.
    const finished = (s) => (s ? s.stages.filter((x) => x.status === 'succeeded').map((x) => x.name).join() : '');
    if (!before || finished(before) !== finished(snapshot) || before.status !== snapshot.status) {
      showTab(state.tab);
      if (before) {  // the plan and the spec (e.g. `until` after a resume) live on the full job
        api(`/api/jobs/${jobId}`).then((job) => {
          state.job = job;
          renderHeader(header, state, { cancel, resume });
          if (state.tab === 'overview') showTab('overview');
        }).catch(() => {});
      }
    } else if (state.tab === 'training' && tabCleanup?.update) tabCleanup.update(snapshot);
  };

  const follow = () => {
    if (state.source) state.source.close();
    state.source = watch(`/api/jobs/${jobId}/events`, {
      job: onSnapshot,
      end: () => { state.source.close(); state.source = null; },
    });
  };

  const act = async (path) => {
    try {
      state.job = await api(`/api/jobs/${jobId}/${path}`, { method: 'POST' });
      onSnapshot({ ...state.job });
      follow();
    } catch (err) {
      showError(header, err);
    }
  };
  const cancel = () => act('cancel');
  const resume = () => act('resume');

  api(`/api/jobs/${jobId}`).then((job) => {
    state.job = job;
    onSnapshot(job);
    follow();
    if (job.spec?.until === 'data') currentRevision(jobId).then(state.onRevision);
  }).catch((err) => {
    fill(root, h('h1', {}, 'Job not found'), h('div', { class: 'banner error', role: 'alert' }, err.message),
      h('a', { href: '#/jobs' }, 'All jobs'));
  });

  return () => {
    if (state.source) state.source.close();
    if (tabCleanup) tabCleanup();
  };
}

function resumable(state) {
  const { snapshot, job } = state;
  if (snapshot.status === 'failed' || snapshot.status === 'canceled') return 'Resume';
  if (snapshot.status === 'succeeded' && job?.spec?.until === 'data') {
    return state.dataRevision === null ? 'Train on this data' : `Train on this data (revision ${state.dataRevision})`;
  }
  return null;
}

function renderHeader(header, state, { cancel, resume }) {
  const { snapshot: job } = state;
  const active = job.status === 'queued' || job.status === 'running';
  const resumeLabel = resumable(state);
  fill(header, 
    h('h1', {}, job.task),
    h('div', { class: 'actions' },
      h('span', { id: 'job-status' }, badge(job.status)),
      h('span', { class: 'muted small' }, job.stage ? `stage ${job.stage} · ` : '', `${Math.round(job.progress * 100)}% · created ${ago(job.created_at)} · `,
        h('code', { title: 'Job id: also the model name for /v1/chat/completions' }, job.id)),
      h('span', { style: { flex: 1 } }),
      active ? h('button', { type: 'button', class: 'danger', id: 'cancel', onclick: cancel }, 'Cancel') : null,
      resumeLabel ? h('button', { type: 'button', id: 'resume', onclick: resume }, resumeLabel) : null,
      state.retrain?.button(state)),
    dataSource(state.job),
    job.status === 'queued' && job.queue_position ? h('p', { class: 'small muted', id: 'queue-place' },
      queuePlace(job.queue_position, job.expected_start_at)) : null,
    job.error ? h('div', { class: 'banner error', role: 'alert', id: 'job-error' }, h('strong', {}, job.error.code), ': ', job.error.message) : null,
    (job.warnings || []).map((w) => h('div', { class: 'banner warn' }, h('strong', {}, w.code), ': ', w.message)),
    h('div', { class: 'error-slot' }));
}

function queuePlace(position, expectedStart) {
  const place = position === 1 ? 'Next in line for a worker' : `Number ${position} in line for a worker`;
  if (!expectedStart) return `${place}.`;
  const wait = (new Date(expectedStart) - Date.now()) / 1000;
  return `${place}; expected to start ${wait > 30 ? `in about ${duration(wait)}` : 'shortly'} (${new Date(expectedStart).toLocaleTimeString()}).`;
}

function progressSummary(job) {
  const done = job.stages.filter((s) => s.status === 'succeeded').length;
  const started = job.stages.map((s) => s.started_at).filter(Boolean).sort()[0];
  const ended = job.finished_at && started ? ` in ${duration((new Date(job.finished_at) - new Date(started)) / 1000)}` : '';
  return `— ${done} of ${job.stages.length} stages done${job.status === 'succeeded' ? ended : ''}`;
}

// A running stage's items finished per minute (answers, training steps), e.g. ` · 12/min`.
function itemRate(stage) {
  const rate = stage.status === 'running' ? stage.items_per_min : null;
  if (rate === null || rate === undefined) return '';
  return ` · ${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/min`;
}

function showError(header, err) {
  header.querySelector('.error-slot').replaceChildren(h('div', { class: 'banner error', role: 'alert' }, err.message));
}

function renderStages(list, job) {
  fill(list, ...job.stages.map((stage) => {
    const pace = stage.status === 'running'
      ? (stage.eta_seconds !== null && stage.eta_seconds !== undefined ? `about ${duration(stage.eta_seconds)} left` : 'starting…')
      : stage.started_at && stage.finished_at ? `took ${duration((new Date(stage.finished_at) - new Date(stage.started_at)) / 1000)}` : '';
    return h('li', { class: 'stage', 'data-stage': stage.name, 'data-status': stage.status },
      h('div', {}, h('strong', {}, stage.name), h('div', { class: 'small muted hide-sm' }, STAGE_TEXT[stage.name] || '')),
      h('div', {}, badge(stage.status)),
      h('div', {}, progressBar(stage.progress, `${stage.name} progress`),
        h('div', { class: 'small muted' }, stage.total ? `${stage.done} of ${stage.total}` : '', itemRate(stage), stage.error ? ` · ${stage.error}` : '')),
      h('div', { class: 'small' }, pace));
  }));
}

function stageDone(state, name) {
  return state.snapshot.stages.some((s) => s.name === name && s.status === 'succeeded');
}

function waiting(what) {
  return h('p', { class: 'empty' }, what);
}

function renderTab(panel, name, jobId, state) {
  const plan = state.job?.plan;
  if (name === 'overview') {
    panel.append(overview(state.job, plan));
    return null;
  }
  if (name === 'data') {
    if (!stageDone(state, 'curate')) return void panel.append(waiting('The data set appears here once the curate stage has run.'));
    return dataTab(panel, jobId, { onRevision: state.onRevision });
  }
  if (name === 'training') {
    if (!state.snapshot.stages.some((s) => s.name === 'train')) return void panel.append(waiting('This job stops after its data. Use “Train on this data” to go on.'));
    return trainingTab(panel, state.snapshot);
  }
  if (name === 'report') return reportTab(panel, jobId, state.snapshot);
  if (name === 'artifacts') return artifactsTab(panel, jobId);
  if (name === 'playground') {
    if (!stageDone(state, 'package') && !stageDone(state, 'train')) return void panel.append(waiting('The playground opens once the student is trained.'));
    return playgroundTab(panel, jobId);
  }
  return null;
}

function overview(job, plan) {
  if (!job) return waiting('Loading…');
  const spec = job.spec;
  const type = spec.task_type || plan?.task_type;
  const facts = [
    ['Task type', type ? `${TYPE_NAMES[type] || type}${spec.task_type ? '' : ' (the teacher’s choice)'}` : 'the teacher decides'],
    ['Teacher', spec.teacher], ['Student', spec.student], ['Training examples asked for', spec.num_examples],
    ['Seed examples', spec.examples.length], ['Test set rows', spec.test_set.length], ['Stops after', spec.until],
  ];
  return h('div', { class: 'card', id: 'overview' },
    h('dl', { class: 'row' }, facts.map(([k, v]) => h('div', {}, h('dt', { class: 'small muted' }, k), h('dd', { style: { margin: 0 } }, String(v))))),
    spec.fields?.length ? [h('h2', {}, 'Fields'), table(['Name', 'Description', 'Type', 'In the text'],
      spec.fields.map((f) => [h('code', {}, f.name), f.description || '–', f.type, f.span ? 'yes' : 'no']))] : null,
    spec.tools?.length ? [h('h2', {}, 'Tools'), table(['Function', 'Description', 'Arguments'],
      spec.tools.map((t) => [h('code', {}, t.function?.name), t.function?.description || '–',
        Object.keys(t.function?.parameters?.properties || {}).join(', ') || '–']))] : null,
    plan ? [
      h('h2', {}, 'The teacher’s plan'),
      h('p', {}, h('strong', {}, plan.task_type), plan.instruction ? ` — ${plan.instruction}` : ''),
      plan.labels?.length ? h('ul', {}, plan.labels.map((l) => h('li', {}, h('strong', {}, l.name), l.description ? `: ${l.description}` : ''))) : null,
      plan.topics?.length ? h('p', { class: 'small muted' }, 'Topics: ', plan.topics.join(', ')) : null,
    ] : h('p', { class: 'muted' }, 'The plan appears once the teacher has read the task.'));
}
