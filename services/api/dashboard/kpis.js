// The KPI row (PRODUCT.md A4, D1): eight cards from GET /api/kpis, each with its change
// against the previous period of equal length.

import { isAbort } from './api.js';
import { byId, h, setState } from './dom.js';
import { abbreviate, change, duration, fullNumber, percent } from './format.js';

const CARDS = [
  { key: 'visitors', label: 'Visitors', kind: 'count' },
  { key: 'pageviews', label: 'Pageviews', kind: 'count' },
  { key: 'views_per_visit', label: 'Views/Visit', kind: 'decimal' },
  { key: 'bounce_rate', label: 'Bounce', kind: 'percent', lowerIsBetter: true },
  { key: 'conversions', label: 'Conversions', kind: 'count' },
  { key: 'conversion_rate', label: 'Conv. Rate', kind: 'percent' },
  { key: 'avg_duration', label: 'Duration', kind: 'duration' },
  { key: 'avg_scroll', label: 'Scroll', kind: 'percent' },
];

// [shown, full] text of a value.
function display(kind, value) {
  if (kind === 'count') return [abbreviate(value), fullNumber(value)];
  if (kind === 'percent') return [percent(value), percent(value)];
  if (kind === 'duration') return [duration(value), `${fullNumber(value)} seconds`];
  return [fullNumber(value), fullNumber(value)];
}

function card(spec, now, before) {
  const [shown, full] = display(spec.kind, now);
  const [, previous] = display(spec.kind, before);
  const delta = change(now, before);
  let tone = 'neutral';
  if (delta.direction === 'up' || delta.direction === 'down') {
    const better = (delta.direction === 'up') !== Boolean(spec.lowerIsBetter);
    tone = better ? 'good' : 'bad';
  }
  return h('div', { class: 'kpi', dataset: { kpi: spec.key } },
    h('div', { class: 'kpi-label' }, spec.label),
    h('div', { class: 'kpi-value', title: `${spec.label}: ${full}` }, shown),
    h('div', { class: `kpi-change ${tone}`, dataset: { direction: delta.direction },
      title: `${delta.title} (previous: ${previous})` }, delta.text));
}

export function createKpis({ api, onError, onSite }) {
  const root = byId('kpis');
  let controller = null;

  function skeleton() {
    root.replaceChildren(...CARDS.map((spec) => h('div', { class: 'kpi', dataset: { kpi: spec.key } },
      h('div', { class: 'kpi-label' }, spec.label),
      h('div', { class: 'kpi-value placeholder' }, '–'),
      h('div', { class: 'kpi-change neutral' }, ' '))));
  }

  async function load(params) {
    controller?.abort();
    controller = new AbortController();
    if (!root.children.length) skeleton();
    setState(root, 'loading');
    try {
      const report = await api.get('/api/kpis', params, controller.signal);
      onSite(report.site);
      root.replaceChildren(...CARDS.map((spec) => card(
        spec, report.results[spec.key], report.previous[spec.key])));
      setState(root, 'ready');
    } catch (error) {
      if (isAbort(error)) return;
      setState(root, 'error');
      onError(error);
    }
  }

  return { load };
}
