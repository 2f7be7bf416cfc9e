// The REST API as the dashboard uses it: one place that turns error envelopes into ApiError.

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `request failed (${status})`);
    this.status = status;
    this.code = error?.code || `http_${status}`;
    this.fields = error?.fields || [];
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { code: 'unreachable', message: 'The vibetune server cannot be reached.' });
  }
  if (response.status === 401 && path !== '/api/session') {
    window.dispatchEvent(new CustomEvent('vibetune:signed-out'));  // the key was revoked, or never given
  }
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch { /* not JSON: keep the status */ }
    throw new ApiError(response.status, payload?.error);
  }
  return response.status === 204 ? null : response.json();
}

// Follow a Server-Sent Events stream; returns the EventSource so the caller can close it.
// The browser reconnects by itself after a drop; every event is a whole snapshot.
export function watch(path, handlers) {
  const source = new EventSource(path);
  for (const [event, handler] of Object.entries(handlers)) {
    source.addEventListener(event, (e) => handler(JSON.parse(e.data)));
  }
  return source;
}
