// Number, duration, time and change formatting. Pure functions (no DOM).

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const UNITS = [[1e9, 'B'], [1e6, 'M'], [1e3, 'k']];

// 999 -> "999", 12345 -> "12.3k", 4500000 -> "4.5M", 999999 -> "1M".
export function abbreviate(value) {
  const n = Number(value) || 0;
  const abs = Math.abs(n);
  if (abs < 1000) return fullNumber(n);
  const round = (x) => (x >= 100 ? Math.round(x) : Math.round(x * 10) / 10);
  let i = UNITS.findIndex(([size]) => abs >= size);
  let shown = round(abs / UNITS[i][0]);
  if (shown >= 1000 && i > 0) {
    i -= 1;
    shown = round(abs / UNITS[i][0]);
  }
  return `${n < 0 ? '-' : ''}${shown}${UNITS[i][1]}`;
}

// 1234.5 -> "1,234.5"; at most 2 decimals, none when whole.
export function fullNumber(value) {
  const n = Number(value) || 0;
  return Number.isInteger(n) ? integer.format(n)
    : n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function percent(value) {
  return `${fullNumber(value)}%`;
}

// Whole seconds -> "0s", "45s", "1m 5s", "2h 3m".
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

// Offset of an event from the session's start: "0:05", "12:40", "1:02:03".
export function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}`
    : `${minutes}:${seconds}`;
}

// Change from the previous period: {text, direction: 'up'|'down'|'flat'|'none', title}.
export function change(current, previous) {
  const now = Number(current) || 0;
  const before = Number(previous) || 0;
  if (before === 0) {
    return { text: '—', direction: 'none', title: 'No data in the previous period' };
  }
  const pct = Math.round(((now - before) / before) * 100);
  if (pct === 0) return { text: '0%', direction: 'flat', title: 'Same as the previous period' };
  const direction = pct > 0 ? 'up' : 'down';
  return { text: `${direction === 'up' ? '▲' : '▼'} ${Math.abs(pct)}%`, direction,
    title: `${pct > 0 ? '+' : ''}${pct}% vs the previous period` };
}

const sameDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const otherDay = new Intl.DateTimeFormat(undefined, {
  day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});
const otherYear = new Intl.DateTimeFormat(undefined, {
  day: 'numeric', month: 'short', year: 'numeric',
});
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

// A start time in the browser's time zone, short: "14:03", "3 Nov, 14:03", "3 Nov 2024".
export function when(iso, now = new Date()) {
  const date = new Date(iso);
  if (date.toDateString() === now.toDateString()) return sameDay.format(date);
  if (date.getFullYear() === now.getFullYear()) return otherDay.format(date);
  return otherYear.format(date);
}

export function fullTime(iso) {
  return full.format(new Date(iso));
}

// 'YYYY-MM-DD' of a local date, and the day after a 'YYYY-MM-DD' (for exclusive ends).
export function isoDay(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

export function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
