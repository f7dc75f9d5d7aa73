// The dashboard's entry point: find the API key (URL fragment, else localStorage, else ask),
// then wire the period picker to the KPI row, the Content panel and the Sessions panel.

import { createApi, forgetKey, isKey, readKey, saveKey, takeKeyFromFragment } from './api.js';
import { byId } from './dom.js';
import { createGoals } from './goals.js';
import { createKpis } from './kpis.js';
import { createOutbound } from './outbound.js';
import { createPeriodPicker } from './period.js';
import { createSessions } from './sessions.js';

const app = byId('app');
const keyScreen = byId('key-screen');
const keyForm = byId('key-form');
const keyInput = byId('key-input');
const keyError = byId('key-error');
const notice = byId('notice');

function showKeyScreen(message = '') {
  app.hidden = true;
  document.body.classList.add('no-key');
  keyScreen.hidden = false;
  byId('key-cancel').hidden = !readKey();
  keyError.textContent = message;
  keyError.hidden = !message;
  keyInput.value = '';
  keyInput.focus();
}

function showNotice(message) {
  notice.textContent = message;
  notice.hidden = !message;
}

function start(key) {
  keyScreen.hidden = true;
  document.body.classList.remove('no-key');
  app.hidden = false;
  showNotice('');
  const api = createApi(key);
  const onError = (error) => {
    if (error.status === 401) {
      forgetKey();
      showKeyScreen('That API key was not accepted (unknown or revoked). Paste a valid key.');
    } else {
      showNotice(error.message);
    }
  };
  const onSite = (site) => {
    byId('site-name').textContent = site;
    document.title = `${site} · Clickport`;
  };
  const kpis = createKpis({ api, onError, onSite });
  const outbound = createOutbound({ api, onError });
  const sessions = createSessions({ api, onError });
  const goals = createGoals({ api, onError });
  const picker = createPeriodPicker({
    onChange(params) {
      showNotice('');
      kpis.load(params);
      outbound.load(params);
      sessions.load(params);
    },
  });
  picker.start();
  goals.load();
}

function setUpSubTabs() {
  const tabs = [...document.querySelectorAll('[data-subtab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      for (const other of tabs) {
        const selected = other === tab;
        other.setAttribute('aria-selected', String(selected));
        byId(other.getAttribute('aria-controls')).hidden = !selected;
      }
    });
  }
}

keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!isKey(key)) {
    keyError.textContent = 'An API key looks like ck_ followed by 32 letters, digits, - or _.';
    keyError.hidden = false;
    return;
  }
  saveKey(key);
  location.reload(); // a clean start: no panel keeps state from the previous key
});
byId('key-cancel').addEventListener('click', () => location.reload());
byId('change-key').addEventListener('click', () => showKeyScreen());
window.addEventListener('hashchange', () => {
  const key = takeKeyFromFragment();
  if (key) {
    saveKey(key);
    location.reload();
  }
});

setUpSubTabs();
const fromFragment = takeKeyFromFragment();
if (fromFragment) saveKey(fromFragment);
const key = fromFragment || readKey();
if (key) start(key);
else showKeyScreen();
