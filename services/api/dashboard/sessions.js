// The Sessions panel (PRODUCT.md A3, D1): sessions newest first with cursor paging, and each
// row expanding into its event timeline, where an outbound click has a green dot and its
// destination URL.

import { isAbort } from './api.js';
import { append, byId, externalLink, h, setState } from './dom.js';
import { capitalise, clock, duration, fullNumber, fullTime, when } from './format.js';

const PAGE_SIZE = 25;
const CLICK_KINDS = { middle: 'middle click', modifier: 'click with a modifier key',
  keyboard: 'keyboard' };

// A conversion goal gets the star badge; a goal that is not a conversion is shown plainly.
function goalBadges(goals) {
  return goals.map((goal) => goal.is_conversion === false
    ? h('span', { class: 'goal-completed', title: 'Goal (not a conversion)' },
      `Goal: ${goal.name || 'a deleted goal'}`)
    : h('span', { class: 'conversion', title: 'Conversion goal' },
      h('span', { class: 'star', 'aria-hidden': 'true' }, '★'),
      `Converted: ${goal.name || 'a deleted goal'}`));
}

function eventItem(event, startMs) {
  const d = event.detail;
  const offset = clock(Date.parse(event.time) - startMs);
  let dot = 'dot-pageview';
  let title = 'Pageview';
  let body = [];
  if (event.kind === 'pageview') {
    body = [h('code', { class: 'path' }, d.path)];
  } else if (event.kind === 'click') {
    dot = 'dot-outbound';
    title = 'Outbound click';
    const extra = [d.asin && `ASIN ${d.asin}`, CLICK_KINDS[d.kind], d.page && `on ${d.page}`]
      .filter(Boolean).join(' · ');
    body = [
      d.text ? h('span', { class: 'link-text' }, `“${d.text}”`) : null,
      h('span', { class: 'destination' }, '→ ', externalLink(d.url, d.url, { class: 'url' })),
      extra ? h('span', { class: 'sub' }, extra) : null,
    ];
  } else if (event.kind === 'engagement') {
    dot = 'dot-engagement';
    title = 'Engagement';
    body = [h('span', { class: 'sub' },
      `Scrolled ${d.scroll}% · ${duration(d.visible_ms / 1000)} visible on `),
    h('code', { class: 'path' }, d.path)];
  } else {
    dot = 'dot-custom';
    title = `Custom event: ${d.name}`;
    const props = Object.entries(d.props || {}).map(([k, v]) => `${k}: ${v}`).join(' · ');
    body = [props ? h('span', { class: 'sub' }, props) : null];
  }
  const converted = event.goals.length > 0;
  return h('li', { class: `event event-${event.kind}${converted ? ' converted' : ''}`,
    dataset: { kind: event.kind } },
  h('span', { class: 'event-time', title: fullTime(event.time) }, offset),
  h('span', { class: `dot ${dot}`, 'aria-hidden': 'true' }),
  h('div', { class: 'event-body' },
    h('div', { class: 'event-title' }, title),
    h('div', { class: 'event-detail' }, body),
    converted ? h('div', { class: 'event-goals' }, goalBadges(event.goals)) : null));
}

function timelineView(answer) {
  const s = answer.session;
  const startMs = Date.parse(s.started_at);
  const about = [capitalise(s.device), s.browser, s.os, s.country].filter(Boolean).join(' · ');
  return [
    h('div', { class: 'timeline-meta' },
      h('span', {}, `Started ${fullTime(s.started_at)}`),
      about ? h('span', {}, about) : null,
      s.is_bounce ? h('span', { class: 'marker marker-bounce' }, 'Bounced') : null),
    h('ol', { class: 'timeline' }, answer.results.map((e) => eventItem(e, startMs))),
    answer.truncated
      ? h('p', { class: 'muted' }, 'Only the first 1,000 events are shown.') : null,
  ];
}

export function createSessions({ api, onError }) {
  const root = byId('sessions-view');
  const list = byId('sessions-list');
  const more = byId('sessions-more');
  const empty = byId('sessions-empty');
  let params = {};
  let cursor = null;
  let controller = null;

  async function toggle(item, button, panel, id) {
    const open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    item.classList.toggle('open', open);
    panel.hidden = !open;
    if (!open || panel.dataset.state === 'ready' || panel.dataset.state === 'loading') return;
    panel.replaceChildren(h('p', { class: 'muted' }, 'Loading the timeline…'));
    setState(panel, 'loading');
    try {
      const answer = await api.get(`/api/sessions/${encodeURIComponent(id)}/timeline`);
      panel.replaceChildren();
      append(panel, timelineView(answer));
      setState(panel, 'ready');
    } catch (error) {
      panel.replaceChildren(h('p', { class: 'error-text' }, error.message));
      setState(panel, 'error');
      onError(error);
    }
  }

  function row(s) {
    const panelId = `timeline-${s.session_id}`;
    const goals = s.goals.map((g) => g.name).filter(Boolean).join(', ');
    const markers = h('span', { class: 'cell markers' },
      s.has_clicked ? h('span', { class: 'marker marker-clicked', title: 'Clicked an outbound link' },
        h('span', { class: 'marker-dot', 'aria-hidden': 'true' }),
        h('span', { class: 'marker-label' }, 'Outbound')) : null,
      s.has_converted ? h('span', { class: 'marker marker-converted',
        title: goals ? `Converted: ${goals}` : 'Converted' },
      h('span', { 'aria-hidden': 'true' }, '★'), h('span', { class: 'marker-label' }, 'Converted'))
        : null);
    const button = h('button', { type: 'button', class: 'session-row', 'aria-expanded': 'false',
      'aria-controls': panelId },
    h('span', { class: 'cell time', title: fullTime(s.started_at) }, when(s.started_at)),
    h('span', { class: 'cell entry', title: `Entry ${s.entry_page} · exit ${s.exit_page}` },
      h('span', { class: 'chevron', 'aria-hidden': 'true' }), s.entry_page),
    h('span', { class: 'cell num pages', title: `${fullNumber(s.pageviews)} pageviews` },
      fullNumber(s.pageviews)),
    h('span', { class: 'cell num duration' }, duration(s.duration)),
    h('span', { class: 'cell device', title: [s.browser, s.os].filter(Boolean).join(' on ') },
      capitalise(s.device) || '—'),
    h('span', { class: 'cell source', title: s.source }, s.source === 'direct' ? 'Direct'
      : s.source || '—'),
    markers);
    const panel = h('div', { class: 'timeline-panel', id: panelId, hidden: true });
    const item = h('li', { class: 'session', dataset: { sessionId: s.session_id } }, button, panel);
    button.addEventListener('click', () => toggle(item, button, panel, s.session_id));
    return item;
  }

  async function fetchPage(first) {
    controller?.abort();
    controller = new AbortController();
    setState(root, 'loading');
    more.disabled = true;
    try {
      const query = { ...params, limit: PAGE_SIZE, cursor: first ? null : cursor };
      const answer = await api.get('/api/sessions', query, controller.signal);
      const rows = answer.results.map(row);
      if (first) list.replaceChildren(...rows);
      else list.append(...rows);
      cursor = answer.next_cursor;
      more.hidden = cursor === null;
      empty.hidden = list.children.length > 0;
      setState(root, 'ready');
    } catch (error) {
      if (isAbort(error)) return;
      setState(root, 'error', error.message);
      onError(error);
    } finally {
      more.disabled = false;
    }
  }

  more.addEventListener('click', () => fetchPage(false));

  function load(next) {
    params = next;
    cursor = null;
    return fetchPage(true);
  }

  return { load };
}
