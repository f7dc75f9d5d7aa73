// The query API client (docs/api.md): every call sends the site's key in x-api-key and turns
// an error answer ({"error", "field"}) into an ApiError. The key itself lives in localStorage,
// and may arrive in the URL fragment (#key=ck_...), which browsers never send to a server.

const STORAGE_KEY = 'clickport.apiKey';
const KEY_PATTERN = /^ck_[A-Za-z0-9_-]{8,120}$/;

export class ApiError extends Error {
  constructor(status, message, field = null) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export function isKey(text) {
  return KEY_PATTERN.test(text);
}

export function readKey() {
  try {
    const key = localStorage.getItem(STORAGE_KEY) || '';
    return isKey(key) ? key : '';
  } catch {
    return '';
  }
}

export function saveKey(key) {
  try {
    localStorage.setItem(STORAGE_KEY, key);
  } catch {
    // Private mode or storage disabled: the key works for this page only.
  }
}

export function forgetKey() {
  try {
    localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored.
  }
}

// The key in "#key=ck_...", removed from the address bar so it is not shared or bookmarked.
export function takeKeyFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const key = fragment.get('key') || '';
  if (!fragment.has('key')) return '';
  history.replaceState(null, '', location.pathname + location.search);
  return isKey(key) ? key : '';
}

export function createApi(key) {
  async function request(method, path, { params, body, signal } = {}) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== '') {
        url.searchParams.set(name, value);
      }
    }
    const headers = { 'x-api-key': key, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await fetch(url, {
        method, headers, signal, credentials: 'omit', cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(0, 'Could not reach the Clickport server.');
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.error) || `The server answered ${response.status}.`;
      throw new ApiError(response.status, message, (data && data.field) || null);
    }
    return data;
  }

  return {
    get: (path, params, signal) => request('GET', path, { params, signal }),
    post: (path, body) => request('POST', path, { body }),
    put: (path, body) => request('PUT', path, { body }),
    del: (path) => request('DELETE', path),
  };
}

export function isAbort(error) {
  return error && error.name === 'AbortError';
}
