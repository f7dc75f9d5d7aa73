// The date range picker (PRODUCT.md A6): the named periods or a custom range. The choice is
// kept in the page's query string (?period=7d, or ?from=...&to=... with both days included)
// so a reload or a shared link shows the same range; the API's `to` is exclusive, so the
// picker sends the day after the last one shown.

import { byId } from './dom.js';
import { isoDay, nextDay } from './format.js';

const NAMED = ['today', 'yesterday', '7d', '30d', '90d', '12m', 'all'];
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DEFAULT = '30d';

export function createPeriodPicker({ onChange }) {
  const select = byId('period');
  const custom = byId('custom-range');
  const from = byId('period-from');
  const to = byId('period-to');
  const form = byId('period-form');

  function readUrl() {
    const query = new URLSearchParams(location.search);
    const [a, b] = [query.get('from'), query.get('to')];
    if (DAY.test(a || '') && DAY.test(b || '') && a <= b) return { from: a, to: b };
    const period = query.get('period');
    return { period: NAMED.includes(period) ? period : DEFAULT };
  }

  function writeUrl(choice) {
    const query = new URLSearchParams(choice);
    if (choice.period === DEFAULT) query.delete('period');
    const search = query.toString();
    history.replaceState(null, '', location.pathname + (search ? `?${search}` : ''));
  }

  // What the API is asked for.
  function apiParams(choice) {
    return choice.period ? { period: choice.period } : { from: choice.from, to: nextDay(choice.to) };
  }

  function show(choice) {
    select.value = choice.period || 'custom';
    custom.hidden = Boolean(choice.period);
    if (choice.from) {
      from.value = choice.from;
      to.value = choice.to;
    }
  }

  function choose(choice) {
    show(choice);
    writeUrl(choice);
    onChange(apiParams(choice));
  }

  select.addEventListener('change', () => {
    if (select.value !== 'custom') {
      choose({ period: select.value });
      return;
    }
    custom.hidden = false;
    if (!from.value || !to.value) {
      const today = new Date();
      to.value = isoDay(today);
      from.value = isoDay(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29));
    }
    from.focus();
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    to.setCustomValidity(from.value && to.value && from.value > to.value
      ? 'The last day must not be before the first.' : '');
    if (!form.reportValidity()) return;
    choose({ from: from.value, to: to.value });
  });
  to.addEventListener('input', () => to.setCustomValidity(''));

  // The first load: the range from the address bar.
  function start() {
    const choice = readUrl();
    show(choice);
    onChange(apiParams(choice));
  }

  return { start };
}
