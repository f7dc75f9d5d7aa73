// The Outbound sub-tab (PRODUCT.md A2, D1): destination domains by unique clicks from
// GET /api/outbound-links; a domain opens its URLs (?domain=). The API's order is kept.

import { isAbort } from './api.js';
import { byId, externalLink, h, safeHref, setState } from './dom.js';
import { abbreviate, fullNumber } from './format.js';

function count(value, what) {
  return h('td', { class: 'num', title: `${fullNumber(value)} ${what}` }, abbreviate(value));
}

// A domain as DNS has it. The API sends internationalised domains in punycode; the URL parser
// writes any Unicode host (a row stored before that) the same way.
function asciiHost(domain) {
  try {
    return new URL(`http://${domain}/`).hostname;
  } catch {
    return domain;
  }
}

// What a destination is, for a row of the API: the label to show (punycode), the tooltip
// (with the Unicode form of an internationalised domain) and the look-alike warning.
function destination(row) {
  const shown = asciiHost(row.domain);
  const lookalike = row.mixed_script || row.confusable;
  const why = row.mixed_script ? 'mixes letters of different scripts'
    : 'is written in letters that look like Latin ones';
  const tip = !row.idn ? shown
    : lookalike ? `Look-alike domain: ${shown} is “${row.unicode}”, which ${why}`
      : `${shown} is the internationalised domain “${row.unicode}”`;
  // The spaces keep the parts apart when the text is copied.
  const label = [
    lookalike ? [h('span', { class: 'lookalike', role: 'img', 'aria-label': 'Look-alike domain',
      title: tip }, '⚠'), ' '] : null,
    shown,
    row.idn && !lookalike ? [' ', h('span', { class: 'idn-unicode' }, row.unicode)] : null,
  ];
  return { shown, tip, label, lookalike };
}

// The light bar behind a row, as wide as its share of the top row's unique clicks.
function bar(value, max) {
  const el = h('span', { class: 'bar', 'aria-hidden': 'true' });
  el.style.width = `${max ? Math.max(1, (value / max) * 100) : 0}%`;
  return el;
}

export function createOutbound({ api, onError }) {
  const root = byId('outbound-view');
  const crumbs = byId('outbound-crumbs');
  const table = byId('outbound-table');
  const empty = byId('outbound-empty');
  let params = {};
  let domain = null;
  let shownDomain = null; // destination(row) of the domain drilled into
  let controller = null;

  function domainRow(row, max) {
    const dest = destination(row);
    const open = h('button', { type: 'button', class: 'row-link', onclick: () => drill(row),
      title: `${dest.tip} · show its URLs` }, dest.label);
    const marked = dest.lookalike ? 'is-lookalike' : null;
    return h('tr', { dataset: { domain: row.domain }, class: marked },
      h('td', { class: 'label' }, bar(row.unique_clicks, max), open),
      count(row.clicks, 'clicks'), count(row.unique_clicks, 'unique clicks (sessions)'));
  }

  function urlRow(row, max) {
    const text = row.example_text
      ? h('span', { class: 'sub', title: 'Link text of the latest click' }, row.example_text)
      : null;
    // The URL as the browser writes it: its host in punycode, as in the domain rows.
    const shown = safeHref(row.url) ?? row.url;
    return h('tr', { dataset: { url: row.url } },
      h('td', { class: 'label' }, bar(row.unique_clicks, max),
        h('span', { class: 'stack' }, externalLink(row.url, shown, { class: 'url' }), text)),
      count(row.clicks, 'clicks'), count(row.unique_clicks, 'unique clicks (sessions)'));
  }

  function renderCrumbs() {
    if (domain === null) {
      crumbs.replaceChildren(h('span', { class: 'muted' }, 'Destinations by unique clicks'));
      return;
    }
    crumbs.replaceChildren(
      h('button', { type: 'button', class: 'back', onclick: () => drill(null) },
        '← All destinations'),
      h('span', { class: 'crumb', dataset: { crumb: 'domain' }, title: shownDomain.tip },
        shownDomain.label));
  }

  function render(rows) {
    const max = Math.max(0, ...rows.map((r) => r.unique_clicks));
    const head = h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, domain === null ? 'Destination' : 'URL'),
      h('th', { scope: 'col', class: 'num' }, 'Clicks'),
      h('th', { scope: 'col', class: 'num', title: 'Distinct sessions that clicked' },
        'Unique')));
    const body = h('tbody', {}, rows.map((row) => (domain === null
      ? domainRow(row, max) : urlRow(row, max))));
    table.replaceChildren(head, body);
    table.hidden = rows.length === 0;
    empty.hidden = rows.length !== 0;
    empty.textContent = domain === null ? 'No outbound clicks in this period.'
      : `No clicks to ${shownDomain.shown} in this period.`;
  }

  async function refresh() {
    controller?.abort();
    controller = new AbortController();
    renderCrumbs();
    setState(root, 'loading');
    try {
      const query = domain === null ? params : { ...params, domain };
      const answer = await api.get('/api/outbound-links', query, controller.signal);
      render(answer.results);
      setState(root, 'ready');
    } catch (error) {
      if (isAbort(error)) return;
      setState(root, 'error', error.message);
      onError(error);
    }
  }

  function drill(row) {
    domain = row === null ? null : row.domain;
    shownDomain = row === null ? null : destination(row);
    return refresh();
  }

  function load(next) {
    params = next;
    return refresh();
  }

  return { load };
}
