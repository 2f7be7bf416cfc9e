// The new-task form's training and curation options, built from the API's own OpenAPI document:
// each option's control, limits, default and help come from the schema the server validates with
// (app/specs.py), so the form lists every option and cannot drift from the server.
import { api } from './api.js';
import { h } from './dom.js';

export const OPTION_GROUPS = ['training', 'curation'];
// Names that read badly when spelled out from the key.
const LABELS = { lora_r: 'LoRA rank', lora_alpha: 'LoRA alpha', learning_rate: 'Learning rate' };

let documentPromise = null;

// The OpenAPI document, fetched once per page (again after a failure).
export function apiSchema() {
  documentPromise ||= api('/openapi.json').catch((err) => { documentPromise = null; throw err; });
  return documentPromise;
}

function resolve(doc, schema) {
  if (!schema?.$ref) return schema;
  return schema.$ref.split('/').slice(1).reduce((node, key) => node[key], doc);
}

// An option's schema without the `null` branch of an optional one.
function plain(prop) {
  const branch = (prop.anyOf || []).find((b) => b.type !== 'null');
  return branch ? { ...prop, ...branch } : prop;
}

export function defaultText(prop) {
  if (prop.default_text) return prop.default_text.replaceAll('`', '');
  return prop.default === undefined || prop.default === null ? '' : String(prop.default);
}

// The job body's own fields: `num_examples` and friends, with their defaults.
export function jobFields(doc) {
  return doc.components.schemas.JobCreate.properties;
}

// [{group, description, options: [[name, schema], ...]}] for the training and curation objects.
export function optionGroups(doc) {
  const job = jobFields(doc);
  return OPTION_GROUPS.map((group) => ({
    group, description: job[group].description,
    options: Object.entries(resolve(doc, job[group]).properties).map(([name, prop]) => [name, plain(prop)]),
  }));
}

function labelOf(name) {
  const text = LABELS[name] || name.replaceAll('_', ' ');
  return text[0].toUpperCase() + text.slice(1);
}

function optionControl(id, path, prop) {
  const common = { id, name: path, 'data-option': path, 'aria-describedby': `h-${path} e-${path}` };
  if (prop.type === 'boolean') {
    return h('input', { ...common, type: 'checkbox', checked: prop.default === true, 'data-default': String(prop.default) });
  }
  if (prop.enum) {
    return h('select', common, h('option', { value: '' }, `default (${defaultText(prop) || 'automatic'})`),
      prop.enum.map((value) => h('option', { value }, value)));
  }
  if (prop.type === 'integer' || prop.type === 'number') {
    const low = prop.minimum ?? prop.exclusiveMinimum;
    return h('input', { ...common, type: 'number', 'data-number': 'true', min: low, max: prop.maximum,
      step: prop.type === 'integer' ? 1 : 'any', placeholder: prop.default ?? 'automatic' });
  }
  return h('input', { ...common, type: 'text', placeholder: prop.default ?? 'automatic', autocomplete: 'off' });
}

// One option: its control, what it does with its default, and a place for the server's error.
function optionField(group, name, prop) {
  const path = `${group}.${name}`;
  const id = `f-${path}`;
  const control = optionControl(id, path, prop);
  const shown = defaultText(prop);
  const help = h('div', { class: 'hint option-help', id: `h-${path}` },
    (prop.description || '').replaceAll('`', ''), shown ? ` Default: ${shown}.` : '');
  const label = prop.type === 'boolean'
    ? h('label', { class: 'checkbox', for: id }, control, labelOf(name))
    : h('label', { for: id }, labelOf(name));
  return h('div', { class: 'field option', 'data-field': path }, label, prop.type === 'boolean' ? null : control, help,
    h('div', { class: 'field-error', id: `e-${path}`, role: 'alert', hidden: true }));
}

// The fieldsets of every training and curation option; an error about a whole group (two options
// that do not go together) shows under its description.
export function optionFieldsets(doc) {
  return optionGroups(doc).map(({ group, description, options }) =>
    h('fieldset', { class: 'field options', id: `${group}-options`, 'data-field': group },
      h('legend', {}, labelOf(group)),
      h('p', { class: 'hint' }, description),
      h('div', { class: 'field-error', id: `e-${group}`, role: 'alert', hidden: true }),
      h('div', { class: 'options-grid' }, options.map(([name, prop]) => optionField(group, name, prop)))));
}

// The `training` and `curation` objects of the body: only what the person set (a checkbox only
// when it differs from its default), so the server fills in the rest.
export function optionValues(form) {
  const out = {};
  for (const control of form.querySelectorAll('[data-option]')) {
    const [group, name] = control.dataset.option.split('.');
    let value;
    if (control.type === 'checkbox') {
      if (String(control.checked) === control.dataset.default) continue;
      value = control.checked;
    } else {
      const text = control.value.trim();
      if (!text) continue;
      value = control.dataset.number ? Number(text) : text;
    }
    (out[group] ||= {})[name] = value;
  }
  return out;
}

// What each GGUF export is, beside its checkbox (the formats themselves come from the schema).
const EXPORT_TEXT = {
  f16: 'half precision (always made: the others are quantized from it)',
  q8_0: '8-bit',
  q5_k_m: '5-bit k-quant',
  q4_k_m: '4-bit k-quant',
};

// The `exports` checkboxes, one per format the API takes: f16 checked and fixed, the others
// checked as in `chosen` (the API's default when not given).
export function exportsFieldset(doc, chosen) {
  const prop = jobFields(doc).exports;
  const picked = new Set(chosen || prop.default || []);
  const box = (name) => h('label', { class: 'checkbox', for: `f-exports-${name}` },
    h('input', { type: 'checkbox', id: `f-exports-${name}`, 'data-export': name, 'aria-describedby': 'h-exports e-exports',
      checked: name === 'f16' || picked.has(name), disabled: name === 'f16' }),
    h('code', {}, name), ` ${EXPORT_TEXT[name] || ''}`);
  return h('fieldset', { class: 'field options', id: 'exports-options', 'data-field': 'exports' },
    h('legend', {}, 'Exports'),
    h('p', { class: 'hint', id: 'h-exports' }, 'The GGUF files the model comes as, each made with llama.cpp’s quantizer '
      + 'and scored again in llama.cpp; the report and model card recommend the smallest that scores within the margin of f16.'),
    h('div', { class: 'field-error', id: 'e-exports', role: 'alert', hidden: true }),
    h('div', { class: 'options-grid' }, prop.items.enum.map(box)));
}

// The body's `exports`: every checked format; nothing while the checkboxes are not drawn yet.
export function exportValues(form) {
  const boxes = [...form.querySelectorAll('[data-export]')];
  return boxes.length ? { exports: boxes.filter((b) => b.checked).map((b) => b.dataset.export) } : {};
}
