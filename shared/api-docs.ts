import type { Env, Hono } from 'hono';
import { type OpenApiOptions, openApiDocument } from './openapi.ts';

/**
 * `GET /openapi.json` (the OpenAPI 3.1 document of `shared/openapi.ts`) and
 * `GET /docs`, a self-contained API reference page that renders it in the
 * browser: no CDN, no build step, no assets beyond the one HTML response,
 * so it works on Node and Workers alike. Both are open (no token). The page
 * shows each operation's parameters with their rules, and an example request
 * and response (curl with `$STRATA_TOKEN`, as `npm start` prints it).
 */
export function mountApiDocs<E extends Env>(app: Hono<E>, options: OpenApiOptions): void {
  const document = openApiDocument(options);
  app.get('/openapi.json', (c) => c.json(document));
  app.get('/docs', (c) => c.html(docsPage));
}

const docsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Strata API reference</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #1d2330; color: #fff; padding: 1.2rem 2rem; }
  header h1 { margin: 0; font-size: 1.4rem; }
  main { max-width: 960px; margin: 0 auto; padding: 1rem 2rem 3rem; }
  .op { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; margin: 1rem 0; padding: .8rem 1rem; }
  .method { display: inline-block; min-width: 4.5rem; font-weight: 700; text-transform: uppercase; }
  .get { color: #0a7d3b; } .put { color: #9a6700; } .post { color: #0b5cad; } .delete { color: #b42318; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
  pre { background: #f0f2f5; padding: .6rem; overflow-x: auto; border-radius: 4px; }
  table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .2rem .5rem; border-bottom: 1px solid #eee; }
  .status { font-weight: 600; }
  details summary { cursor: pointer; margin: .4rem 0; font-weight: 600; }
</style>
</head>
<body>
<header><h1 id="title">Strata API reference</h1><div id="version"></div></header>
<main><p id="description">Loading /openapi.json…</p><div id="ops"></div></main>
<script>
(async () => {
  const spec = await (await fetch('openapi.json')).json();
  const el = (tag, attrs = {}, ...children) => {
    const e = document.createElement(tag);
    Object.assign(e, attrs);
    for (const c of children) e.append(c);
    return e;
  };
  const resolve = (s) => (s && s.$ref ? spec.components.schemas[s.$ref.split('/').pop()] : s);
  const rule = (schema, description) => {
    const parts = [];
    if (description) parts.push(description);
    else if (schema) {
      if (schema.type) parts.push(schema.type);
      if (schema.minimum !== undefined) parts.push('≥ ' + schema.minimum);
      if (schema.maximum !== undefined) parts.push('≤ ' + schema.maximum);
      if (schema.pattern) parts.push('matches ' + schema.pattern);
      if (schema.enum) parts.push('one of ' + schema.enum.join(', '));
    }
    return parts.join('; ');
  };
  const origin = location.origin;
  const curl = (method, path, params, body, security) => {
    let url = path;
    const query = [];
    for (const p of params) {
      if (p.in === 'path') url = url.replace('{' + p.name + '}', encodeURIComponent(p.example ?? p.name));
      else if (p.in === 'query' && p.example !== undefined) query.push(p.name + '=' + encodeURIComponent(p.example));
    }
    const parts = ['curl -i'];
    if (method !== 'get') parts.push('-X ' + method.toUpperCase());
    if (!(security && security.length === 0)) parts.push('-H "Authorization: Bearer $STRATA_TOKEN"');
    if (body) {
      parts.push("-H 'Content-Type: " + body.type + "'");
      const text = typeof body.example === 'string' ? body.example : JSON.stringify(body.example);
      parts.push("--data-binary '" + text.replace(/'/g, "'\\''") + "'");
    }
    parts.push("'" + origin + url + (query.length ? '?' + query.join('&') : '') + "'");
    return parts.join(' \\\n    ');
  };
  document.getElementById('title').textContent = spec.info.title;
  document.getElementById('version').textContent = 'version ' + spec.info.version + ' · OpenAPI ' + spec.openapi;
  document.getElementById('description').textContent = spec.info.description;
  const ops = document.getElementById('ops');
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of ['get', 'put', 'post', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const box = el('section', { className: 'op', id: op.operationId });
      box.append(el('h2', {}, el('span', { className: 'method ' + method, textContent: method }), el('code', { textContent: path })));
      box.append(el('p', { textContent: op.summary || '' }));
      const params = [...(item.parameters || []), ...(op.parameters || [])];
      if (params.length) {
        const t = el('table', {}, el('tr', {}, el('th', { textContent: 'parameter' }), el('th', { textContent: 'in' }), el('th', { textContent: 'rule' }), el('th', { textContent: 'example' })));
        for (const p of params) t.append(el('tr', {}, el('td', {}, el('code', { textContent: p.name })), el('td', { textContent: p.in }), el('td', { textContent: rule(p.schema, p.description) }), el('td', {}, el('code', { textContent: p.example === undefined ? '' : String(p.example) }))));
        box.append(t);
      }
      let body;
      if (op.requestBody) {
        for (const [type, media] of Object.entries(op.requestBody.content)) {
          const d = el('details', {}, el('summary', { textContent: 'Request body · ' + type + ' (schema)' }));
          if (media.schema) d.append(el('pre', { textContent: JSON.stringify(resolve(media.schema), null, 2) }));
          box.append(d);
          if (body === undefined && media.example !== undefined) body = { type, example: media.example };
        }
      }
      box.append(el('h3', { textContent: 'Example' }), el('pre', { className: 'example', textContent: curl(method, path, params, body, op.security) }));
      const r = el('table', {}, el('tr', {}, el('th', { textContent: 'status' }), el('th', { textContent: 'meaning' }), el('th', { textContent: 'example' })));
      for (const [status, res] of Object.entries(op.responses)) {
        const media = res.content ? Object.values(res.content)[0] : undefined;
        const ex = media && media.example !== undefined ? (typeof media.example === 'string' ? media.example : JSON.stringify(media.example)) : '';
        r.append(el('tr', {}, el('td', { className: 'status', textContent: status }), el('td', { textContent: res.description }), el('td', {}, el('code', { textContent: ex }))));
      }
      box.append(el('h3', { textContent: 'Responses' }), r);
      ops.append(box);
    }
  }
  document.body.dataset.rendered = String(ops.children.length);
})().catch((e) => { document.getElementById('description').textContent = 'Could not load the API description: ' + e; });
</script>
</body>
</html>`;
