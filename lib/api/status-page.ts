/**
 * GET /api/ui — the status page: recent imports (source → targets, status, a progress bar in bytes, blobs, age,
 * error) and the last sync pass, refreshing itself while anything is queued or running. One HTML document, its
 * style and script inline under a per-response nonce; the Content-Security-Policy allows nothing else: no
 * external asset, no inline event handler, no style attribute, requests only to this origin. The script reads
 * the API with the key the page was opened with (`?code=` in Azure, sent as `x-functions-key`), writes every
 * value with textContent (an import's source or error text can never become markup), and never sends the key
 * anywhere but this origin (`Referrer-Policy: no-referrer`).
 */
import { randomBytes } from 'node:crypto';

/** Every directive a page needs is listed; `default-src 'none'` refuses the rest. */
export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const STYLE = `
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--run:#0969da;--wait:#9a6700;--mute:#6e7781;--line:#d0d7de}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;padding:.75rem 1rem;border-bottom:1px solid var(--line)}
h1{font-size:1.15rem;margin:0}h2{font-size:1rem;margin:1rem 1rem .5rem}#updated{color:var(--mute);font-size:.85rem}
main{max-width:60rem;margin:0 auto}ol{list-style:none;margin:0;padding:0 1rem}
li.import{border:1px solid var(--line);border-radius:8px;padding:.6rem .75rem;margin:0 0 .6rem;overflow-wrap:anywhere}
.top{display:flex;gap:.5rem;align-items:center;justify-content:space-between}.age{color:var(--mute);font-size:.85rem;white-space:nowrap}
.badge{font-size:.8rem;font-weight:600;padding:.05rem .5rem;border-radius:1rem;border:1px solid currentColor}
[data-status=succeeded] .badge{color:var(--ok)}[data-status=failed] .badge,[data-status=canceled] .badge{color:var(--bad)}
[data-status=running] .badge,[data-status=queued] .badge{color:var(--run)}[data-status=waiting] .badge{color:var(--wait)}
.route{margin:.3rem 0;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
progress{width:100%;height:.6rem}.numbers{display:flex;flex-wrap:wrap;gap:.25rem 1rem;color:var(--mute);font-size:.85rem}
.error{color:var(--bad);font-size:.9rem;margin-top:.3rem}#sync{margin:0 1rem 1rem;color:var(--mute)}#problem{color:var(--bad);margin:0 1rem}
@media (min-width:48rem){.route{font-size:.9rem}}
`;

/** The browser side; plain ES2017, no template literals (they would end the server's). */
const SCRIPT = `
(function () {
  var code = new URLSearchParams(location.search).get('code');
  var headers = code ? { 'x-functions-key': code } : {};
  var ACTIVE = { queued: 1, running: 1, waiting: 1 };
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  function mib(n) { return (n / 1048576).toFixed(1) + ' MiB'; }
  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 90 ? s + ' s ago' : s < 5400 ? Math.round(s / 60) + ' min ago' : s < 172800 ? Math.round(s / 3600) + ' h ago' : Math.round(s / 86400) + ' d ago';
  }
  function get(path) {
    return fetch(path, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status + (r.status === 401 ? ' (open this page with ?code=<function key>)' : ''));
      return r.json();
    });
  }
  function item(i) {
    var li = el('li', 'import'); li.dataset.id = i.id; li.dataset.status = i.status;
    var top = el('div', 'top'); top.append(el('span', 'badge', i.status + (i.stalled ? ' (stalled)' : '')), el('span', 'age', ago(i.createdAt)));
    var route = el('div', 'route', i.source + ' \\u2192 ' + (i.targets.length ? i.targets.join(', ') : '(by digest)'));
    var p = i.progress, bar = el('progress'); bar.max = Math.max(1, p.bytesTotal); bar.value = p.bytesCopied;
    bar.setAttribute('aria-label', 'bytes copied');
    var nums = el('div', 'numbers');
    nums.append(el('span', 'bytes', mib(p.bytesCopied) + ' of ' + mib(p.bytesTotal)), el('span', 'blobs', p.blobsDone + '/' + p.blobsTotal + ' blobs'));
    if (i.digest) nums.append(el('span', 'digest', i.digest.slice(0, 19) + '\\u2026'));
    li.append(top, route, bar, nums);
    if (i.error && i.status !== 'canceled') li.append(el('div', 'error', '[' + i.error.code + '] ' + i.error.message));
    return li;
  }
  function sync(r) {
    var s = document.getElementById('sync');
    s.textContent = !r ? 'No sync pass has run yet.' : 'Last sync pass ' + ago(r.finishedAt) + ': ' + r.rules + ' rule(s), ' + r.tagsSeen + ' tag(s) seen, '
      + r.enqueued.length + ' enqueued, ' + r.skipped.length + ' unchanged, ' + r.inProgress.length + ' in progress, ' + r.errors.length + ' error(s).';
  }
  function load() {
    Promise.all([get('imports?limit=25'), get('syncs/latest')]).then(function (res) {
      var list = document.getElementById('imports'), value = res[0] ? res[0].value : [];
      list.replaceChildren.apply(list, value.map(item));
      document.getElementById('empty').hidden = value.length > 0;
      sync(res[1]);
      document.getElementById('problem').textContent = '';
      var active = value.some(function (i) { return ACTIVE[i.status]; });
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + (active ? ', refreshing every 5 s' : '');
      document.body.dataset.state = 'ready';
      if (active) setTimeout(load, 5000);
    }).catch(function (err) {
      document.getElementById('problem').textContent = String(err.message || err);
      document.body.dataset.state = 'error';
      setTimeout(load, 15000);
    });
  }
  load();
})();
`;

export function statusPage(nonce = randomBytes(16).toString('base64')): {
  html: string;
  headers: Record<string, string>;
} {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,"><title>oci-import · imports</title>
<style nonce="${nonce}">${STYLE}</style></head>
<body data-state="loading"><header><h1>oci-import</h1><span id="updated">loading…</span></header>
<main><p id="problem" role="alert"></p><h2>Recent imports</h2><ol id="imports"></ol><p id="empty" hidden>No imports yet.</p>
<h2>Sync</h2><p id="sync">…</p></main>
<script nonce="${nonce}">${SCRIPT}</script></body></html>
`;
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': contentSecurityPolicy(nonce),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    },
  };
}
