// Shared helpers for the Node client tests: the target server (from the environment), the
// admin API, and a minimal browser (manual cookie jar, no automatic redirects) that fills in
// Portcullis's login and consent HTML forms the way a person would.

import { randomBytes } from 'node:crypto';

export const ISSUER = mustEnv('PORTCULLIS_TEST_ISSUER').replace(/\/+$/, '');
export const ADMIN = mustEnv('PORTCULLIS_TEST_ADMIN').replace(/\/+$/, '');
export const ADMIN_KEY = mustEnv('PORTCULLIS_TEST_ADMIN_KEY');

function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run these tests through scripts/test, or start ` +
      '`portcullis serve` and export PORTCULLIS_TEST_ISSUER, PORTCULLIS_TEST_ADMIN and PORTCULLIS_TEST_ADMIN_KEY');
  }
  return v;
}

export function uid(tag) {
  return `${tag}-${randomBytes(6).toString('hex')}`;
}

export async function admin(method, path, body) {
  const res = await fetch(`${ADMIN}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Registers an MCP server resource served (for its metadata) on the issuer's origin. */
export async function createResource(scopes = ['mcp:tools', 'mcp:read']) {
  const uri = `${ISSUER}/${uid('mcp')}`;
  await admin('POST', '/admin/resources', { uri, scopes, name: 'Node test MCP server' });
  return uri;
}

export async function createUser() {
  const username = uid('node-user');
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const created = await admin('POST', '/admin/users', { username, password });
  return { username, password, id: created.id };
}

function unescapeHtml(s) {
  return s
    .replace(/&quot;|&#34;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x2f;/gi, '/')
    .replace(/&amp;/g, '&');
}

/** The `<input name=... value=...>` fields of an HTML page. */
export function formInputs(html) {
  const out = {};
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const name = /\bname\s*=\s*"([^"]*)"/i.exec(tag) ?? /\bname\s*=\s*'([^']*)'/i.exec(tag);
    const value = /\bvalue\s*=\s*"([^"]*)"/i.exec(tag) ?? /\bvalue\s*=\s*'([^']*)'/i.exec(tag);
    if (name) out[unescapeHtml(name[1])] = value ? unescapeHtml(value[1]) : '';
  }
  return out;
}

/** A browser: cookies kept by hand, redirects returned rather than followed. */
export class Browser {
  constructor() {
    this.jar = new Map();
  }

  async request(url, init = {}) {
    const headers = new Headers(init.headers ?? {});
    if (this.jar.size) {
      headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    headers.set('accept', 'text/html');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const body = await res.text();
    const location = res.headers.get('location');
    return { status: res.status, headers: res.headers, body, location: location ? new URL(location, url) : null, url };
  }

  async get(url) {
    return this.request(url);
  }

  async post(url, fields) {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** Follows redirects that stay on the issuer's origin. */
  async followLocal(res) {
    const origin = new URL(ISSUER).origin;
    for (let i = 0; i < 5 && res.location && res.status >= 300 && res.status < 400 && res.location.origin === origin; i++) {
      res = await this.get(res.location.href);
    }
    return res;
  }

  /**
   * Drives an authorization request through login and consent and returns the URL the
   * server redirects to (the client's redirect URI with code, state and iss).
   */
  async authorize(authorizationUrl, user, decision = 'approve') {
    let page = await this.followLocal(await this.get(String(authorizationUrl)));
    let inputs = formInputs(page.body);
    if ('password' in inputs) {
      if (page.status !== 200) throw new Error(`login page: ${page.status} ${page.body.slice(0, 300)}`);
      page = await this.followLocal(await this.post(`${ISSUER}/oauth/login`, {
        request: inputs.request ?? '',
        csrf: inputs.csrf ?? '',
        username: user.username,
        password: user.password,
      }));
      inputs = formInputs(page.body);
    }
    if (page.status !== 200 || !page.body.includes('decision')) {
      throw new Error(`expected the consent page, got ${page.status}: ${page.body.slice(0, 300)}`);
    }
    const res = await this.post(`${ISSUER}/oauth/consent`, {
      request: inputs.request ?? '',
      csrf: inputs.csrf ?? '',
      decision,
    });
    if (!(res.status >= 300 && res.status < 400) || !res.location) {
      throw new Error(`expected a redirect to the client after consent, got ${res.status}: ${res.body.slice(0, 300)}`);
    }
    return res.location;
  }
}
