// The files a job made, with sizes and checksums, and the whole bundle in one download.
import { api } from '../api.js';
import { fill, h, bytes, table } from '../dom.js';

export function artifactsTab(panel, jobId) {
  const body = h('div', { class: 'card', id: 'artifacts' }, h('p', { class: 'empty' }, 'Loading…'));
  panel.append(body);
  api(`/api/jobs/${jobId}/artifacts`).then(({ items }) => {
    if (!items.length) {
      fill(body, h('p', { class: 'empty' }, 'No files yet: the data set appears after curation, the model after packaging.'));
      return;
    }
    const total = items.reduce((a, i) => a + i.size, 0);
    fill(body, 
      h('div', { class: 'actions' }, h('h2', { style: { margin: 0, flex: 1 } }, `${items.length} files, ${bytes(total)}`),
        h('a', { class: 'button', id: 'download-bundle', href: `/api/jobs/${jobId}/bundle`, download: `${jobId}.tar` }, 'Download everything (.tar)')),
      h('p', { class: 'small muted' }, 'The archive holds every file and SHA256SUMS: check it with ', h('code', {}, 'sha256sum -c SHA256SUMS'),
        '. Run the model with Ollama (', h('code', {}, 'ollama create mymodel -f Modelfile'), '), vLLM or transformers (the ', h('code', {}, 'model/'), ' folder).'),
      table(['File', 'Size', 'SHA-256', ''], items.map((a) => [
        h('span', { class: 'mono' }, a.name), bytes(a.size), h('code', { class: 'sha', title: 'SHA-256' }, a.sha256),
        h('a', { class: 'button secondary', href: a.url, download: a.name.split('/').pop(), 'aria-label': `Download ${a.name}` }, 'Download'),
      ]), { numeric: [1] }));
  }).catch((err) => fill(body, h('div', { class: 'banner error' }, err.message)));
  return null;
}
