// The node's REST API. Every refusal comes back as `{"error":{"code","message"}}`; the message
// is written for people, so the console shows it as it is.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, raw = false): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    if (typeof body === 'string') {
      (init.headers as Record<string, string>)['content-type'] = 'text/plain';
      init.body = body;
    } else {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, 'offline', 'The node cannot be reached. Check the network and try again.');
  }
  const text = await res.text();
  if (!res.ok) {
    let code = 'error';
    let message = `${res.status} ${res.statusText}`;
    try {
      const j = JSON.parse(text);
      if (j?.error?.message) {
        code = j.error.code ?? code;
        message = j.error.message;
      }
    } catch {
      if (text) message = text.slice(0, 300);
    }
    throw new ApiError(res.status, code, message);
  }
  if (raw) return text as T;
  return (text ? JSON.parse(text) : null) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => api<T>('POST', path, body);
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = <T>(path: string) => api<T>('DELETE', path);
