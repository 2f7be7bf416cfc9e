// CSV with an `input,output` header (RFC 4180: quoted fields may hold commas, quotes and newlines).

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

// Rows as [{input, output}]; the header names the columns (any order, extra columns ignored).
export function parseExamples(text) {
  if (!text.trim()) return [];
  const rows = parseCsv(text);
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const inputAt = header.indexOf('input'), outputAt = header.indexOf('output');
  if (inputAt < 0 || outputAt < 0) throw new CsvError('the first line must be the header input,output');
  return rows.slice(1).map((row, i) => {
    if (row.length <= Math.max(inputAt, outputAt)) throw new CsvError(`line ${i + 2} has ${row.length} column(s); expected input and output`);
    return { input: row[inputAt], output: row[outputAt].trim() };
  });
}
