// Training another student on a finished job's curated data (`from_job`: no teacher calls), and,
// on a job made that way, where its data came from.
import { api } from '../api.js';
import { fill, h } from '../dom.js';
import { apiSchema, exportsFieldset, exportValues } from '../job_options.js';

const FINISHED = ['succeeded', 'failed', 'canceled'];
// The form's controls and the training option each one sets (an API error on the option lands on it).
const CONTROL_OF = { student: 'rt-student', 'training.method': 'rt-lora', 'training.lora_r': 'rt-lora-r',
  'training.epochs': 'rt-epochs', 'training.batch_size': 'rt-batch-size', 'training.distillation': 'rt-distillation' };

export function canRetrain(snapshot) {
  return Boolean(snapshot) && FINISHED.includes(snapshot.status)
    && snapshot.stages.some((s) => s.name === 'curate' && s.status === 'succeeded');
}

// "Trained on the data of job X, revision N" for a job made with from_job; null otherwise.
export function dataSource(job) {
  const spec = job?.spec;
  if (!spec?.from_job) return null;
  const revision = spec.data_revision === null || spec.data_revision === undefined ? '' : `, revision ${spec.data_revision}`;
  return h('p', { class: 'small', id: 'source-job', 'data-source-job': spec.from_job, 'data-revision': spec.data_revision ?? '' },
    'Trained on the data of job ', h('a', { href: `#/jobs/${spec.from_job}`, id: 'source-job-link' }, h('code', {}, spec.from_job)),
    `${revision} (copied, no teacher calls).`);
}

function labelled(id, text, control, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, text, hint ? h('span', { class: 'hint' }, ` — ${hint}`) : null), control);
}

function option(value, text, selected) {
  return h('option', { value, selected: value === selected }, text);
}

// The request body: the form's choices over this job's other training options (learning rate,
// seed, …), so the new student differs from this one only in what the person changed.
function requestBody(jobId, form, training) {
  const value = (name) => form.elements[name].value;
  const options = { ...training, distillation: value('distillation'), batch_size: Number(value('batch_size')) };
  options.method = value('method') || null;
  options.epochs = value('epochs') === '' ? null : Number(value('epochs'));
  if (value('method') !== 'full') options.lora_r = Number(value('lora_r'));
  if (options.distillation !== 'on_policy') delete options.teacher_weights;
  const body = { from_job: jobId, training: Object.fromEntries(Object.entries(options).filter(([, v]) => v !== null && v !== undefined)) };
  if (value('student')) body.student = value('student');
  return { ...body, ...exportValues(form) };
}

function retrainForm(jobId, job, close) {
  const training = job.spec.training || {};
  const student = h('select', { id: 'rt-student', name: 'student' }, option(job.spec.student, `${job.spec.student} (this job’s)`, job.spec.student));
  const method = h('select', { id: 'rt-lora', name: 'method' },
    option('', 'automatic: on for students over 500M parameters', training.method || ''),
    option('lora', 'on (LoRA adapters)', training.method), option('full', 'off (full fine-tuning)', training.method));
  const rank = h('input', { type: 'number', id: 'rt-lora-r', name: 'lora_r', min: 1, max: 1024, step: 1, value: training.lora_r ?? 16 });
  const distillation = h('select', { id: 'rt-distillation', name: 'distillation' },
    option('soft_labels', 'soft labels: the teacher’s data and label probabilities', training.distillation || 'soft_labels'),
    option('on_policy', 'on-policy: needs the teacher’s weights and vocabulary', training.distillation));
  const error = h('div', { class: 'banner error', id: 'retrain-error', role: 'alert', tabindex: -1, hidden: true });
  const submit = h('button', { type: 'submit', id: 'retrain-submit' }, 'Start training');
  const exportsBox = h('div', { id: 'rt-exports' });
  const form = h('form', { class: 'card', id: 'retrain-form', novalidate: true, 'aria-labelledby': 'retrain-title' },
    h('h2', { id: 'retrain-title', style: { marginTop: 0 } }, 'Train another student on this data'),
    h('p', { class: 'small muted' }, 'A new job trains, evaluates and packages on a copy of this job’s curated data: no teacher calls'
      + (training.rounds === 2 ? ' but its second training round’s, which asks for new rows like the first model’s mistakes' : '')
      + '. Training options this form leaves out stay as in this job.'),
    error,
    h('div', { class: 'row' },
      labelled('rt-student', 'Student', student),
      labelled('rt-lora', 'LoRA', method, 'default: automatic'),
      labelled('rt-lora-r', 'LoRA rank', rank, 'default 16')),
    h('div', { class: 'row' },
      labelled('rt-epochs', 'Epochs', h('input', { type: 'number', id: 'rt-epochs', name: 'epochs', min: 0, step: 'any',
        placeholder: 'automatic', value: training.epochs ?? '' }), 'default: 3, more on a small data set'),
      labelled('rt-batch-size', 'Batch size', h('input', { type: 'number', id: 'rt-batch-size', name: 'batch_size', min: 1,
        max: 1024, step: 1, value: training.batch_size ?? 8 }), 'default 8'),
      labelled('rt-distillation', 'Distillation', distillation, 'default: soft labels')),
    exportsBox,
    h('div', { class: 'actions' }, submit,
      h('button', { type: 'button', class: 'secondary', id: 'retrain-cancel', onclick: close }, 'Cancel')));
  const lora = () => { rank.disabled = method.value === 'full'; };
  method.addEventListener('change', lora);
  lora();

  // This job's exports, checked; left out of the body (so kept as they are) if the schema does not load.
  apiSchema().then((doc) => fill(exportsBox, exportsFieldset(doc, job.spec.exports))).catch(() => {});

  api('/api/models').then((models) => {
    const others = models.students.filter((name) => name !== job.spec.student);
    student.append(...others.map((name) => option(name, name + (models.students[0] === name ? ' (default)' : ''), null)));
  }).catch((err) => { error.textContent = `Could not load the student list: ${err.message}`; error.hidden = false; });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    submit.disabled = true;
    try {
      const created = await api('/api/jobs', { method: 'POST', body: requestBody(jobId, form, training) });
      location.hash = `#/jobs/${created.id}`;
    } catch (err) {
      submit.disabled = false;
      error.textContent = err.message;
      error.hidden = false;
      for (const f of err.fields || []) document.getElementById(CONTROL_OF[f.field])?.setAttribute('aria-invalid', 'true');
      (form.querySelector('[aria-invalid="true"]') || error).focus();
    }
  });
  return form;
}

// The "Train another student" button for the job header and the box its form opens in (kept
// apart from the header, which is drawn again on every live update).
export function retrainAction(jobId) {
  const box = h('div', { id: 'retrain' });
  let form = null;
  const expanded = (open) => document.getElementById('train-another')?.setAttribute('aria-expanded', String(open));
  const close = () => {
    if (!form) return;
    form.remove();
    form = null;
    expanded(false);
    document.getElementById('train-another')?.focus();
  };
  const open = (job) => {
    form = box.appendChild(retrainForm(jobId, job, close));
    expanded(true);
    form.querySelector('select').focus();
  };
  const button = (state) => {
    if (!canRetrain(state.snapshot) || !state.job) {
      if (form) { form.remove(); form = null; }
      return null;
    }
    return h('button', { type: 'button', class: 'secondary', id: 'train-another', 'aria-expanded': String(Boolean(form)),
      'aria-controls': 'retrain', onclick: () => (form ? close() : open(state.job)) }, 'Train another student');
  };
  return { box, button };
}
