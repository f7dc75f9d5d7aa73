// The Goals sub-tab and the goal editor (PRODUCT.md G1-G5, A5): list, create, edit and delete
// goals through /api/goals. The API validates; its message and the field it names are shown
// on the form as they come.

import { byId, h, setState } from './dom.js';

const TYPES = { click: 'Outbound click', pageview: 'Pageview', custom: 'Custom event' };
const FIELDS = {
  click: { domain: 'Domain', url: 'URL', text: 'Link text', title: 'Link title', asin: 'ASIN' },
  pageview: { path: 'Page path' },
  custom: { name: 'Event name' },
};
const OPERATORS = {
  equals: 'is', not_equals: 'is not', contains: 'contains', not_contains: 'does not contain',
  starts_with: 'starts with', ends_with: 'ends with', is_empty: 'is empty',
  is_not_empty: 'is not empty',
};
const VALUELESS = new Set(['is_empty', 'is_not_empty']);
const CONFIRM_MS = 4000;

function options(labels, selected) {
  return Object.entries(labels).map(([value, label]) => h('option',
    { value, selected: value === selected }, label));
}

function describe(goal) {
  if (!goal.conditions.length) return `Every ${TYPES[goal.type].toLowerCase()}`;
  const joiner = goal.logic === 'any' ? ' or ' : ' and ';
  return goal.conditions.map((c) => {
    const field = FIELDS[goal.type][c.field] || c.field;
    return VALUELESS.has(c.operator) ? `${field} ${OPERATORS[c.operator]}`
      : `${field} ${OPERATORS[c.operator]} “${c.value}”`;
  }).join(joiner).replace(/^./, (first) => first.toUpperCase());
}

function createEditor({ api, onSaved }) {
  const dialog = byId('goal-dialog');
  const form = byId('goal-form');
  const heading = byId('goal-dialog-title');
  const conditions = byId('goal-conditions');
  const error = byId('goal-error');
  const controls = { name: byId('goal-name'), type: byId('goal-type'), logic: byId('goal-logic'),
    is_conversion: byId('goal-conversion') };
  let editing = null;

  function type() {
    return controls.type.value;
  }

  function conditionRow(condition = {}) {
    const fields = FIELDS[type()];
    const field = fields[condition.field] ? condition.field : Object.keys(fields)[0];
    const operator = h('select', { class: 'cond-operator', 'aria-label': 'Operator' },
      options(OPERATORS, condition.operator || 'contains'));
    const value = h('input', { class: 'cond-value', 'aria-label': 'Value', maxlength: 500,
      value: condition.value || '', placeholder: 'value', autocomplete: 'off' });
    const sync = () => {
      value.disabled = VALUELESS.has(operator.value);
      if (value.disabled) value.value = '';
    };
    operator.addEventListener('change', sync);
    sync();
    const li = h('li', { class: 'condition' },
      h('select', { class: 'cond-field', 'aria-label': 'Field' }, options(fields, field)),
      operator, value,
      h('button', { type: 'button', class: 'icon-button', title: 'Remove this condition',
        'aria-label': 'Remove this condition', onclick: () => li.remove() }, '×'));
    return li;
  }

  function clearErrors() {
    error.textContent = '';
    error.hidden = true;
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  // The control an API error's field names: name, type, logic, conditions[1].value, ...
  function controlOf(field) {
    const match = /^conditions\[(\d+)\]\.?(field|operator|value)?/.exec(field || '');
    if (!match) return controls[field] || null;
    const li = conditions.children[Number(match[1])];
    return li ? li.querySelector(`.cond-${match[2] || 'value'}`) : null;
  }

  function showError(err) {
    error.textContent = err.message.replace(/^invalid goal: /, '');
    error.hidden = false;
    const control = controlOf(err.field);
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      control.focus();
    }
  }

  function body() {
    return {
      name: controls.name.value,
      type: type(),
      logic: controls.logic.value,
      is_conversion: controls.is_conversion.checked,
      conditions: [...conditions.children].map((li) => ({
        field: li.querySelector('.cond-field').value,
        operator: li.querySelector('.cond-operator').value,
        value: li.querySelector('.cond-value').value,
      })),
    };
  }

  function open(goal = null) {
    editing = goal;
    heading.textContent = goal ? 'Edit goal' : 'New goal';
    controls.name.value = goal ? goal.name : '';
    controls.type.value = goal ? goal.type : 'click';
    controls.logic.value = goal ? goal.logic : 'all';
    controls.is_conversion.checked = goal ? goal.is_conversion : true;
    conditions.replaceChildren(...(goal ? goal.conditions : [{}]).map(conditionRow));
    clearErrors();
    dialog.showModal();
    controls.name.focus();
  }

  controls.type.addEventListener('change', () => {
    const kept = [...conditions.children].map((li) => ({
      operator: li.querySelector('.cond-operator').value,
      value: li.querySelector('.cond-value').value,
    }));
    conditions.replaceChildren(...kept.map(conditionRow));
  });
  byId('goal-add-condition').addEventListener('click', () => {
    conditions.append(conditionRow());
    conditions.lastElementChild.querySelector('.cond-value').focus();
  });
  byId('goal-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('input', (event) => event.target.removeAttribute('aria-invalid'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const saved = editing ? await api.put(`/api/goals/${encodeURIComponent(editing.id)}`, body())
        : await api.post('/api/goals', body());
      dialog.close();
      onSaved(saved);
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
    }
  });

  return { open };
}

export function createGoals({ api, onError }) {
  const root = byId('goals-view');
  const list = byId('goals-list');
  const empty = byId('goals-empty');
  const editor = createEditor({ api, onSaved: () => load() });

  function deleteButton(goal) {
    let timer = null;
    const button = h('button', { type: 'button', class: 'button small danger-quiet' }, 'Delete');
    button.addEventListener('click', async () => {
      if (!timer) { // first click arms, second click deletes (no blocking confirm())
        button.textContent = 'Confirm delete';
        button.classList.add('armed');
        timer = setTimeout(() => {
          timer = null;
          button.textContent = 'Delete';
          button.classList.remove('armed');
        }, CONFIRM_MS);
        return;
      }
      clearTimeout(timer);
      button.disabled = true;
      try {
        await api.del(`/api/goals/${encodeURIComponent(goal.id)}`);
        await load();
      } catch (err) {
        button.disabled = false;
        onError(err);
      }
    });
    return button;
  }

  function item(goal) {
    return h('li', { class: 'goal', dataset: { goalId: goal.id } },
      h('div', { class: 'goal-main' },
        h('div', { class: 'goal-name' }, goal.name,
          h('span', { class: 'badge' }, TYPES[goal.type]),
          goal.is_conversion ? h('span', { class: 'badge badge-conversion' }, 'Conversion') : null),
        h('div', { class: 'goal-rule' }, describe(goal))),
      h('div', { class: 'goal-actions' },
        h('button', { type: 'button', class: 'button small', onclick: () => editor.open(goal) },
          'Edit'),
        deleteButton(goal)));
  }

  async function load() {
    setState(root, 'loading');
    try {
      const answer = await api.get('/api/goals');
      list.replaceChildren(...answer.results.map(item));
      empty.hidden = answer.results.length > 0;
      setState(root, 'ready');
    } catch (err) {
      setState(root, 'error', err.message);
      onError(err);
    }
  }

  byId('goal-new').addEventListener('click', () => editor.open());
  return { load };
}
