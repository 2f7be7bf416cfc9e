// The new-task form. The API validates; its field errors are shown next to the fields.
import { api, ApiError } from '../api.js';
import { fill, h } from '../dom.js';
import { parseExamples, parseInputs, CsvError } from '../csv.js';
import { apiSchema, exportsFieldset, exportValues, jobFields, optionFieldsets, optionValues } from '../job_options.js';
import { liveEstimate } from '../estimate.js';

const TASK_TYPES = [
  ['', 'Let the teacher decide'],
  ['classification', 'Classification: one of a few labels'],
  ['extraction', 'Extraction: named fields pulled out of the text, as JSON'],
  ['qa', 'Question answering: a short answer'],
  ['tool_calling', 'Tool calling: a call to one of your functions, or none'],
];
const QA_MODES = [
  ['', 'Let the teacher decide'],
  ['open_book', 'Open book: each input holds a passage and its question'],
  ['closed_book', 'Closed book: a question alone'],
];
const FIELD_TYPES = ['string', 'number', 'integer', 'boolean', 'list'];
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// What the example boxes suggest for each task type.
const EXAMPLE_PLACEHOLDER = {
  '': 'input,output\n"Where is my parcel?",shipping',
  classification: 'input,output\n"Where is my parcel?",shipping',
  extraction: 'input,output\n"Table for 4 on Friday, name Ada","{""party_size"": 4, ""day"": ""Friday"", ""name"": ""Ada""}"\n\nor JSON Lines:\n{"input": "Table for 2 tonight", "output": {"party_size": 2, "day": "tonight", "name": null}}',
  qa: 'input,output\n"Context: The Eiffel Tower is in Paris. Question: Where is the Eiffel Tower?",Paris',
  tool_calling: 'input,output\n"Weather in Paris?","{""name"": ""get_weather"", ""arguments"": {""city"": ""Paris""}}"\n"Thanks!",\n\n(an empty output: no tool should be called)',
};
const TOOLS_PLACEHOLDER = '[{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",\n  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]';

function field(name, label, control, hint) {
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: `f-${name}` }, label, hint ? h('span', { class: 'hint' }, ` — ${hint}`) : null),
    control,
    h('div', { class: 'field-error', id: `e-${name}`, role: 'alert', hidden: true }));
}

// A text box that also takes a file: `accept` for the picker, `what` for its label.
function uploadField(name, label, hint, { accept, what, placeholder, rows }) {
  const area = h('textarea', { id: `f-${name}`, name, placeholder, rows, 'aria-describedby': `e-${name}` });
  const upload = h('input', { type: 'file', accept, 'aria-label': `Upload ${label} ${what}`, 'data-upload': name,
    onchange: async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      area.value = await file.text();
      area.dispatchEvent(new Event('change'));
    } });
  const box = field(name, label, area, hint);
  box.insertBefore(h('div', { class: 'small' }, `or upload a ${what} file: `, upload), box.querySelector('.field-error'));
  return box;
}

function csvField(name, label, hint) {
  return uploadField(name, label, hint, { accept: '.csv,text/csv,.jsonl,.json,application/json', what: 'CSV or JSON Lines',
    placeholder: EXAMPLE_PLACEHOLDER[''] });
}

// Extraction fields: rows of name, description, type and "must appear in the text" (span), added and removed.
function fieldsEditor() {
  const rows = h('div', { class: 'field-rows', id: 'field-rows' });
  const relabel = () => [...rows.children].forEach((row, i) => {
    row.dataset.index = String(i);
    for (const [cls, what] of [['fr-name', 'name'], ['fr-description', 'description'], ['fr-type', 'type'], ['fr-span', 'must appear in the text'], ['fr-remove', 'remove']]) {
      row.querySelector(`.${cls}`).setAttribute('aria-label', `Field ${i + 1} ${what}`);
    }
  });
  const addRow = (focus = false) => {
    const name = h('input', { type: 'text', class: 'fr-name', placeholder: 'party_size', autocomplete: 'off', spellcheck: 'false' });
    const row = h('div', { class: 'field-row', 'data-field-row': true },
      name,
      h('input', { type: 'text', class: 'fr-description', placeholder: 'how many people the table is for' }),
      h('select', { class: 'fr-type' }, FIELD_TYPES.map((t) => h('option', { value: t }, t))),
      h('label', { class: 'checkbox small', title: 'The value must occur in the input text (strings and lists); other values are dropped.' },
        h('input', { type: 'checkbox', class: 'fr-span', checked: true }), 'in the text'),
      h('button', { type: 'button', class: 'secondary fr-remove', onclick: () => {
        row.remove();
        if (!rows.children.length) addRow();
        relabel();
      } }, 'Remove'));
    rows.append(row);
    relabel();
    if (focus) name.focus();
  };
  addRow();
  const box = h('fieldset', { class: 'field fields-editor', 'data-field': 'fields', id: 'fields-editor', 'aria-describedby': 'e-fields' },
    h('legend', {}, 'Fields', h('span', { class: 'hint' }, ' — what to pull out of each text; leave empty and the teacher proposes them')),
    h('div', { class: 'field-row field-row-head small muted', 'aria-hidden': 'true' },
      h('span', {}, 'Name'), h('span', {}, 'Description'), h('span', {}, 'Type'), h('span', {}, 'Span'), h('span')),
    rows,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', id: 'add-field', onclick: () => addRow(true) }, 'Add field')),
    h('div', { class: 'field-error', id: 'e-fields', role: 'alert', hidden: true }));
  return box;
}

// The fields the editor holds, as the API takes them; rows left empty are skipped. The editor
// remembers which row each sent field came from, so that `fields.N.…` errors land on their row.
function editorFields(form) {
  const out = [];
  const seen = new Set();
  const editor = form.querySelector('[data-field="fields"]');
  editor.sentRows = [];
  for (const row of form.querySelectorAll('[data-field-row]')) {
    const name = row.querySelector('.fr-name').value.trim();
    const description = row.querySelector('.fr-description').value.trim();
    if (!name && !description) continue;
    const at = editor.sentRows.push(Number(row.dataset.index)) - 1;
    if (!name) throw new FieldError(`fields.${at}.name`, 'give the field a name');
    if (!FIELD_NAME.test(name) || name.length > 64) {
      throw new FieldError(`fields.${at}.name`, `"${name}" is not a field name: letters, digits and _, not starting with a digit`);
    }
    if (seen.has(name)) throw new FieldError(`fields.${at}.name`, `"${name}" is already a field`);
    seen.add(name);
    out.push({ name, description, type: row.querySelector('.fr-type').value, span: row.querySelector('.fr-span').checked });
  }
  return out;
}

// Unlabeled real inputs from a file (CSV with an `input` column, JSON Lines, or text with one a line),
// kept on the box as `inputs`; a file that cannot be read says why under the picker.
function realInputsField() {
  const summary = h('span', { id: 'inputs-summary', class: 'small muted', role: 'status' }, 'none chosen');
  const picker = h('input', { type: 'file', id: 'f-inputs', accept: '.csv,.jsonl,.json,.txt,text/csv,text/plain,application/json',
    'aria-describedby': 'inputs-summary e-inputs' });
  const clear = h('button', { type: 'button', class: 'secondary', id: 'clear-inputs', hidden: true }, 'Clear');
  const box = h('div', { class: 'field', 'data-field': 'inputs' },
    h('label', { for: 'f-inputs' }, 'Real inputs', h('span', { class: 'hint' },
      ' — optional; unlabeled inputs from production (CSV with an input column, JSON Lines, or a .txt file with one a line): the teacher labels them for training and writes new inputs like them')),
    h('div', { class: 'actions' }, picker, summary, clear),
    h('div', { class: 'field-error', id: 'e-inputs', role: 'alert', hidden: true }));
  const use = (inputs, text) => {
    box.inputs = inputs;
    summary.textContent = text;
    clear.hidden = !inputs.length;
    box.dispatchEvent(new Event('change', { bubbles: true }));  // the estimate follows
  };
  picker.addEventListener('change', async () => {
    clearFieldError(box);
    const file = picker.files[0];
    if (!file) return;
    try {
      const inputs = parseInputs(await file.text(), file.name);
      use(inputs, `${inputs.length} input${inputs.length === 1 ? '' : 's'} from ${file.name}`);
    } catch (err) {
      if (!(err instanceof CsvError)) throw err;
      picker.value = '';
      use([], 'none chosen');
      const el = box.querySelector('.field-error');
      el.textContent = `${file.name}: ${err.message}`;
      el.hidden = false;
      picker.setAttribute('aria-invalid', 'true');
    }
  });
  clear.addEventListener('click', () => { picker.value = ''; clearFieldError(box); use([], 'none chosen'); picker.focus(); });
  box.inputs = [];
  return box;
}

// Pasted or uploaded tools: a JSON list of OpenAI function tools, {"tools": [...]}, or one tool.
export function readTools(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FieldError('tools', `not valid JSON: ${err.message}`);
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    if ('tools' in value) value = value.tools;
    else if ('function' in value || value.type === 'function') value = [value];
  }
  if (!Array.isArray(value)) {
    throw new FieldError('tools', 'expected a JSON list of tools: [{"type": "function", "function": {"name", "description", "parameters"}}, …]');
  }
  if (!value.length) throw new FieldError('tools', 'give at least one tool');
  return value;
}

export function newTaskView(root) {
  const teacher = h('select', { id: 'f-teacher', name: 'teacher' });
  const students = h('datalist', { id: 'student-options' });
  const student = h('input', { type: 'text', id: 'f-student', name: 'student', list: 'student-options',
    placeholder: 'a listed student, a local folder or a hub id' });
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit' }, 'Start tuning');
  const taskType = h('select', { id: 'f-task_type', name: 'task_type', 'aria-describedby': 'e-task_type' },
    TASK_TYPES.map(([value, text]) => h('option', { value }, text)));
  const labelsBox = field('labels', 'Labels', h('input', { type: 'text', id: 'f-labels', name: 'labels', placeholder: 'billing, shipping, technical',
    'aria-describedby': 'e-labels' }), 'comma separated; leave empty and the teacher proposes them');
  const fieldsBox = fieldsEditor();
  const toolsBox = uploadField('tools', 'Tools', 'the functions the student may call, in OpenAI’s tool format',
    { accept: '.json,application/json', what: 'JSON', placeholder: TOOLS_PLACEHOLDER, rows: 6 });
  toolsBox.append(h('label', { class: 'checkbox', title: 'The student reads the tools offered with each request from its prompt, so clients may send a different tool list each time (as BFCL does). Off: the tools are learned into its weights and requests need no tool list.' },
    h('input', { type: 'checkbox', name: 'tools_in_prompt', value: 'true', id: 'f-tools_in_prompt' }),
    'Tools sent with each request (the student reads them from its prompt)'));
  const examplesBox = csvField('examples', 'Seed examples', 'optional; they guide the teacher');
  const testBox = csvField('test_set', 'Test set', 'optional; held out, the models are scored on it');
  const qaModeBox = field('qa_mode', 'Question answering mode', h('select', { id: 'f-qa_mode', name: 'qa_mode', 'aria-describedby': 'e-qa_mode' },
    QA_MODES.map(([value, text]) => h('option', { value }, text))), 'where the answers come from');
  const inputsBox = realInputsField();
  const numExamples = h('input', { type: 'number', id: 'f-num_examples', name: 'num_examples', min: 1, step: 1,
    'aria-describedby': 'e-num_examples' });
  const advanced = h('div', { id: 'advanced-options' }, h('p', { class: 'muted small' }, 'Loading the options…'));
  const estimateEl = h('span', { id: 'estimate', class: 'muted small', role: 'status', 'aria-live': 'polite', hidden: true });

  const form = h('form', { class: 'card', novalidate: true },
    banner,
    field('task', 'Task', h('textarea', { id: 'f-task', name: 'task', required: true, rows: 3,
      placeholder: 'Sort support tickets into billing, shipping and technical', 'aria-describedby': 'e-task' }),
      'what the model should do, in plain words'),
    field('task_type', 'Task type', taskType, 'what kind of answer the student learns to give'),
    qaModeBox, labelsBox, fieldsBox, toolsBox,
    h('div', { class: 'row' }, examplesBox, testBox),
    inputsBox,
    h('div', { class: 'row' },
      field('teacher', 'Teacher', teacher),
      field('student', 'Student', h('div', {}, student, students)),
      field('num_examples', 'Training examples', numExamples, 'how many the teacher makes')),
    h('details', { class: 'field advanced', id: 'advanced' },
      h('summary', {}, 'Advanced: training, curation and export options'), advanced),
    h('div', { class: 'field' }, h('label', { class: 'checkbox' },
      h('input', { type: 'checkbox', name: 'until', value: 'data', id: 'f-until' }),
      'Stop after the data, so I can review it before training')),
    h('div', { class: 'actions' }, submit, estimateEl));

  // Only the inputs of the chosen task type are shown (and sent).
  const applyType = () => {
    const type = taskType.value;
    labelsBox.hidden = !(type === '' || type === 'classification');
    qaModeBox.hidden = type !== 'qa';
    fieldsBox.hidden = type !== 'extraction';
    toolsBox.hidden = type !== 'tool_calling';
    for (const box of [examplesBox, testBox]) box.querySelector('textarea').placeholder = EXAMPLE_PLACEHOLDER[type];
    form.dataset.taskType = type;
  };
  taskType.addEventListener('change', applyType);
  applyType();

  // Pasted or uploaded tools are checked for JSON syntax as soon as they are left.
  const toolsArea = toolsBox.querySelector('textarea');
  toolsArea.addEventListener('change', () => {
    clearFieldError(toolsBox);
    if (!toolsArea.value.trim()) return;
    try { readTools(toolsArea.value); } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      showFieldError(form, err.field, err.message, { focus: false });
    }
  });

  root.append(h('h1', {}, 'New task'),
    h('p', { class: 'muted' }, 'Describe a task. The teacher model writes and labels training data, a small student model learns it, and you get a report and the model files.'),
    form);
  document.getElementById('f-task').focus();

  api('/api/models').then((models) => {
    fill(teacher, ...models.teachers.map((name, i) => h('option', { value: name }, name + (i === 0 ? ' (default)' : ''))));
    fill(students, ...models.students.map((name) => h('option', { value: name })));
    student.placeholder = `${models.students[0]} (default), or a local folder or hub id`;
  }).catch((err) => showBanner(banner, `Could not load the model list: ${err.message}`));

  // Every option, its default and help, from the API's own schema; the estimate follows each change.
  const estimate = liveEstimate(estimateEl, () => {
    try {
      const body = requestBody(new FormData(form), form);
      return body.task && body.task.trim() ? body : null;
    } catch (err) {
      if (err instanceof FieldError) return null;
      throw err;
    }
  });
  form.addEventListener('input', estimate.schedule);
  form.addEventListener('change', estimate.schedule);
  apiSchema().then((doc) => {
    const count = jobFields(doc).num_examples;
    numExamples.placeholder = String(count.default);
    if (!numExamples.value) numExamples.value = String(count.default);
    fill(advanced, ...optionFieldsets(doc), exportsFieldset(doc));
    estimate.schedule();
  }).catch((err) => fill(advanced, h('p', { class: 'banner error' }, `Could not load the options: ${err.message}`)));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, banner);
    let body;
    try {
      body = requestBody(new FormData(form), form);
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
      const errors = apiFieldErrors(err.fields);
      const placed = errors.filter((f) => showFieldError(form, f.field, f.message));
      if (placed.length < errors.length || !errors.length) showBanner(banner, err.message);
    }
  });
  return () => estimate.stop();
}

class FieldError extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

function requestBody(data, form) {
  const type = data.get('task_type') || '';
  const body = { task: data.get('task') };
  if (type) body.task_type = type;
  if (type === '' || type === 'classification') {
    const labels = data.get('labels').split(',').map((l) => l.trim()).filter(Boolean);
    if (labels.length) body.labels = labels;
  }
  if (type === 'extraction') {
    const fields = editorFields(form);
    if (fields.length) body.fields = fields;
  }
  if (type === 'qa' && data.get('qa_mode')) body.qa_mode = data.get('qa_mode');
  if (type === 'tool_calling') {
    const text = data.get('tools');
    if (!text.trim()) throw new FieldError('tools', 'paste or upload the tools the student may call (a JSON list)');
    body.tools = readTools(text);
    if (data.get('tools_in_prompt')) body.tools_in_prompt = true;
  }
  for (const name of ['examples', 'test_set']) {
    const text = data.get(name);
    try {
      const rows = parseExamples(text);
      if (rows.length) body[name] = rows;
    } catch (err) {
      if (err instanceof CsvError) throw new FieldError(name, `${/^\s*[[{]/.test(text) ? 'JSON' : 'CSV'}: ${err.message}`);
      throw err;
    }
  }
  const inputs = form.querySelector('[data-field="inputs"]').inputs || [];
  if (inputs.length) body.inputs = inputs;
  if (data.get('teacher')) body.teacher = data.get('teacher');
  if (data.get('student').trim()) body.student = data.get('student').trim();
  const count = data.get('num_examples');
  if (count !== '') body.num_examples = Number(count);
  if (data.get('until') === 'data') body.until = 'data';
  return { ...body, ...optionValues(form), ...exportValues(form) };
}

// The API's field errors, placed where the form can show them:
// - pydantic names each branch of a union (`fields.list[FieldSpec].0.name`, `fields.dict[str,any]`); the
//   form sends lists, so only that branch's errors are kept, without the tag;
// - a problem with the whole body (`body`) that names an input (`…needs \`tools\``) goes next to it
//   (a row's problem comes at its own place, `test_set.3.output`).
export function apiFieldErrors(fields) {
  const out = [];
  for (const f of fields || []) {
    const parts = String(f.field || '').split('.');
    const tag = parts.findIndex((p) => /^[a-z][a-z-]*\[.*\]$/.test(p));
    if (tag >= 0) {
      if (!parts[tag].startsWith('list[')) continue;
      parts.splice(tag, 1);
    }
    let error = { field: parts.join('.'), message: String(f.message || '') };
    if (error.field === 'body') {
      const named = ['tools', 'fields', 'labels'].find((n) => error.message.includes(`\`${n}\``));
      if (named) error = { field: named, message: error.message };
    }
    out.push(error);
  }
  return out.length ? out : (fields || []);
}

// The form field an API error names: `test_set.3.output` belongs to `test_set`.
function fieldFor(form, name) {
  const parts = String(name || '').split('.');
  for (let n = parts.length; n > 0; n -= 1) {
    const box = form.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
    if (box && !box.hidden) return { box, detail: parts.slice(n).join('.') };
  }
  return null;
}

// `tools.1.function.name: …; tools.2.type: …` is one line per location.
function errorLines(name, message) {
  const parts = message.split('; ');
  return parts.length > 1 && parts.every((p) => p.startsWith(`${name}.`) || p.startsWith(`${name}[`)) ? parts.join('\n') : message;
}

function showFieldError(form, name, message, { focus = true } = {}) {
  const found = fieldFor(form, name);
  if (!found) return false;
  const { box, detail } = found;
  const el = box.querySelector('.field-error');
  let control = box.querySelector('input, textarea, select');
  let text;
  const row = /^(\d+)(?:\.(\w+))?/.exec(detail);
  if (box.dataset.field === 'fields' && row) {  // one row of the fields editor
    const at = box.sentRows?.[Number(row[1])] ?? Number(row[1]);
    const rowEl = box.querySelectorAll('[data-field-row]')[at];
    control = rowEl?.querySelector(`.fr-${row[2] || 'name'}`) || control;
    text = `field ${at + 1}${row[2] ? ` ${row[2]}` : ''}: ${message}`;
  } else if (row) {
    text = `row ${row[1]}${row[2] ? `, ${row[2]}` : ''}: ${message}`;
  } else {
    text = detail ? `${detail}: ${message}` : errorLines(box.dataset.field, message);
  }
  el.textContent = el.hidden ? text : `${el.textContent}\n${text}`;
  el.hidden = false;
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    if (focus && !form.querySelector('[aria-invalid="true"]:focus')) control.focus();
  }
  const details = box.closest('details');
  if (details) details.open = true;
  return true;
}

function clearFieldError(box) {
  const el = box.querySelector('.field-error');
  el.hidden = true;
  el.textContent = '';
  for (const control of box.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
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
