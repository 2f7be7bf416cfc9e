// The new-task form. The API validates; its field errors are shown next to the fields.
import { api, ApiError } from '../api.js';
import { fill, h } from '../dom.js';
import { parseExamples, CsvError } from '../csv.js';

function field(name, label, control, hint) {
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: `f-${name}` }, label, hint ? h('span', { class: 'hint' }, ` — ${hint}`) : null),
    control,
    h('div', { class: 'field-error', id: `e-${name}`, role: 'alert', hidden: true }));
}

function csvField(name, label, hint) {
  const area = h('textarea', { id: `f-${name}`, name, placeholder: 'input,output\n"Where is my parcel?",shipping', 'aria-describedby': `e-${name}` });
  const upload = h('input', { type: 'file', accept: '.csv,text/csv', 'aria-label': `Upload ${label} CSV`, 'data-upload': name,
    onchange: async (e) => { const file = e.target.files[0]; if (file) area.value = await file.text(); } });
  const box = field(name, label, area, hint);
  box.insertBefore(h('div', { class: 'small' }, 'or upload a CSV file: ', upload), box.querySelector('.field-error'));
  return box;
}

export function newTaskView(root) {
  const teacher = h('select', { id: 'f-teacher', name: 'teacher' });
  const students = h('datalist', { id: 'student-options' });
  const student = h('input', { type: 'text', id: 'f-student', name: 'student', list: 'student-options',
    placeholder: 'a listed student, a local folder or a hub id' });
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit' }, 'Start tuning');

  const form = h('form', { class: 'card', novalidate: true },
    banner,
    field('task', 'Task', h('textarea', { id: 'f-task', name: 'task', required: true, rows: 3,
      placeholder: 'Sort support tickets into billing, shipping and technical', 'aria-describedby': 'e-task' }),
      'what the model should do, in plain words'),
    field('labels', 'Labels', h('input', { type: 'text', id: 'f-labels', name: 'labels', placeholder: 'billing, shipping, technical',
      'aria-describedby': 'e-labels' }), 'comma separated; leave empty for extraction or question answering'),
    h('div', { class: 'row' },
      csvField('examples', 'Seed examples', 'optional; they guide the teacher'),
      csvField('test_set', 'Test set', 'optional; held out, the models are scored on it')),
    h('div', { class: 'row' },
      field('teacher', 'Teacher', teacher),
      field('student', 'Student', h('div', {}, student, students)),
      field('num_examples', 'Training examples', h('input', { type: 'number', id: 'f-num_examples', name: 'num_examples',
        value: 200, min: 1, step: 1, 'aria-describedby': 'e-num_examples' }), 'how many the teacher makes')),
    h('details', { class: 'field' }, h('summary', {}, 'Training options'),
      h('div', { class: 'row' },
        field('training.method', 'Method', h('select', { id: 'f-training.method', name: 'training.method' },
          h('option', { value: '' }, 'automatic (full up to 500M parameters, else LoRA)'), h('option', { value: 'full' }, 'full fine-tuning'), h('option', { value: 'lora' }, 'LoRA'))),
        field('training.epochs', 'Epochs', h('input', { type: 'number', id: 'f-training.epochs', name: 'training.epochs', min: 0, step: 'any', placeholder: 'automatic' })),
        field('training.learning_rate', 'Learning rate', h('input', { type: 'number', id: 'f-training.learning_rate', name: 'training.learning_rate', min: 0, step: 'any', placeholder: 'automatic' })),
        field('training.soft_label_weight', 'Soft-label weight', h('input', { type: 'number', id: 'f-training.soft_label_weight', name: 'training.soft_label_weight', min: 0, max: 1, step: 'any', placeholder: '0.5' })))),
    h('div', { class: 'field' }, h('label', { class: 'checkbox' },
      h('input', { type: 'checkbox', name: 'until', value: 'data', id: 'f-until' }),
      'Stop after the data, so I can review it before training')),
    h('div', { class: 'actions' }, submit));

  root.append(h('h1', {}, 'New task'),
    h('p', { class: 'muted' }, 'Describe a task. The teacher model writes and labels training data, a small student model learns it, and you get a report and the model files.'),
    form);
  document.getElementById('f-task').focus();

  api('/api/models').then((models) => {
    fill(teacher, ...models.teachers.map((name, i) => h('option', { value: name }, name + (i === 0 ? ' (default)' : ''))));
    fill(students, ...models.students.map((name) => h('option', { value: name })));
    student.placeholder = `${models.students[0]} (default), or a local folder or hub id`;
  }).catch((err) => showBanner(banner, `Could not load the model list: ${err.message}`));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, banner);
    let body;
    try {
      body = requestBody(new FormData(form));
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      showFieldError(form, err.field, err.message);
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Submitting…';
    try {
      const job = await api('/api/jobs', { method: 'POST', body });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      submit.disabled = false;
      submit.textContent = 'Start tuning';
      if (!(err instanceof ApiError)) throw err;
      const placed = err.fields.filter((f) => showFieldError(form, f.field, f.message));
      if (placed.length < err.fields.length || !err.fields.length) showBanner(banner, err.message);
    }
  });
  return () => {};
}

class FieldError extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

function requestBody(data) {
  const body = { task: data.get('task') };
  const labels = data.get('labels').split(',').map((l) => l.trim()).filter(Boolean);
  if (labels.length) body.labels = labels;
  for (const name of ['examples', 'test_set']) {
    try {
      const rows = parseExamples(data.get(name));
      if (rows.length) body[name] = rows;
    } catch (err) {
      if (err instanceof CsvError) throw new FieldError(name, `CSV: ${err.message}`);
      throw err;
    }
  }
  if (data.get('teacher')) body.teacher = data.get('teacher');
  if (data.get('student').trim()) body.student = data.get('student').trim();
  const count = data.get('num_examples');
  if (count !== '') body.num_examples = Number(count);
  if (data.get('until') === 'data') body.until = 'data';
  const training = {};
  for (const key of ['method', 'epochs', 'learning_rate', 'soft_label_weight']) {
    const value = data.get(`training.${key}`);
    if (value) training[key] = key === 'method' ? value : Number(value);
  }
  if (Object.keys(training).length) body.training = training;
  return body;
}

// The form field an API error names: `test_set.3.output` belongs to `test_set`.
function fieldFor(form, name) {
  const parts = String(name || '').split('.');
  for (let n = parts.length; n > 0; n -= 1) {
    const box = form.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
    if (box) return { box, detail: parts.slice(n).join('.') };
  }
  return null;
}

function showFieldError(form, name, message) {
  const found = fieldFor(form, name);
  if (!found) return false;
  const el = found.box.querySelector('.field-error');
  const text = found.detail ? `${found.detail.replace(/^(\d+)/, 'row $1')}: ${message}` : message;
  el.textContent = el.hidden ? text : `${el.textContent}; ${text}`;
  el.hidden = false;
  const control = found.box.querySelector('input, textarea, select');
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    if (!form.querySelector('[aria-invalid="true"]:focus')) control.focus();
  }
  const details = found.box.closest('details');
  if (details) details.open = true;
  return true;
}

function clearErrors(form, banner) {
  for (const el of form.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  banner.hidden = true;
}

function showBanner(banner, message) {
  banner.textContent = message;
  banner.hidden = false;
}
