// Example rows: CSV with an `input,output` header (RFC 4180: quoted fields may hold commas, quotes and
// newlines), or JSON Lines / a JSON list of {input, output} objects; and unlabeled real inputs
// (`parseInputs`).

export class CsvError extends Error {}

export function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false, i = 0;
  text = text.replace(/^\uFEFF/, '');
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i += 1; continue; }
      field += c; i += 1; continue;
    }
    if (c === '"' && field === '') { quoted = true; i += 1; continue; }
    if (c === ',') { row.push(field); field = ''; i += 1; continue; }
    if (c === '\n' || c === '\r') {
      row.push(field); field = '';
      if (row.some((v) => v !== '')) rows.push(row);
      row = [];
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      continue;
    }
    field += c; i += 1;
  }
  if (quoted) throw new CsvError('a quoted field is never closed');
  row.push(field);
  if (row.some((v) => v !== '')) rows.push(row);
  return rows;
}

// An output as the API takes it: text; an extraction's object or a tool call as its JSON text, null as ''.
function outputText(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value.trim() : JSON.stringify(value);
}

// The values of a JSON Lines text (one a line) or of one JSON list, each with where it is
// (`line 3`, `item 2`); `what` names what the list should hold.
function jsonItems(text, what) {
  if (text.trim().startsWith('[')) {
    let items;
    try { items = JSON.parse(text); } catch (err) { throw new CsvError(`not valid JSON: ${err.message}`); }
    if (!Array.isArray(items)) throw new CsvError(`expected a JSON list of ${what}`);
    return items.map((item, i) => [`item ${i + 1}`, item]);
  }
  const items = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    try { items.push([`line ${i + 1}`, JSON.parse(line)]); } catch (err) { throw new CsvError(`line ${i + 1} is not valid JSON: ${err.message}`); }
  });
  return items;
}

// JSON Lines (one {input, output} object a line) or one JSON list of them.
function parseJsonRows(text) {
  return jsonItems(text, '{"input", "output"} objects').map(([where, item]) => {
    if (!item || typeof item !== 'object' || Array.isArray(item) || typeof item.input !== 'string') {
      throw new CsvError(`${where}: expected an object with the keys "input" and "output"`);
    }
    return { input: item.input, output: outputText(item.output) };
  });
}

// Rows as [{input, output}]; the header names the columns (any order, extra columns ignored).
// Text that starts with `{` or `[` is read as JSON Lines or a JSON list instead.
export function parseExamples(text) {
  if (!text.trim()) return [];
  text = text.replace(/^\uFEFF/, '');
  if (/^\s*[[{]/.test(text)) return parseJsonRows(text);
  const rows = parseCsv(text);
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const inputAt = header.indexOf('input'), outputAt = header.indexOf('output');
  if (inputAt < 0 || outputAt < 0) throw new CsvError('the first line must be the header input,output');
  return rows.slice(1).map((row, i) => {
    if (row.length <= Math.max(inputAt, outputAt)) throw new CsvError(`line ${i + 2} has ${row.length} column(s); expected input and output`);
    return { input: row[inputAt], output: row[outputAt].trim() };
  });
}

// Unlabeled real inputs as a list of texts (blank ones skipped): a .txt file with one input a line,
// JSON Lines or a JSON list of {input} objects or of strings, or CSV whose header names an `input`
// column (other columns ignored). `name` is the file's name, which decides for .txt and .json files.
export function parseInputs(text, name = '') {
  text = text.replace(/^\uFEFF/, '');
  const lower = name.toLowerCase();
  let inputs;
  if (/\.(txt|log)$/.test(lower)) {
    inputs = text.split(/\r?\n/);
  } else if (/^\s*[[{"]/.test(text) || /\.(jsonl|json|ndjson)$/.test(lower)) {
    inputs = parseJsonInputs(text);
  } else {
    const rows = parseCsv(text);
    const at = (rows[0] || []).map((h) => h.trim().toLowerCase()).indexOf('input');
    if (at < 0) throw new CsvError('the first line must be a header naming an "input" column (or use a .txt file with one input a line)');
    inputs = rows.slice(1).map((row) => row[at] ?? '');
  }
  inputs = inputs.map((value) => value.trim()).filter(Boolean);
  if (!inputs.length) throw new CsvError('the file holds no inputs');
  return inputs;
}

function parseJsonInputs(text) {
  return jsonItems(text, 'texts or {"input"} objects').map(([where, item]) => {
    const value = item && typeof item === 'object' && !Array.isArray(item) ? item.input : item;
    if (typeof value !== 'string') throw new CsvError(`${where}: expected a text or an object with the key "input"`);
    return value;
  });
}
