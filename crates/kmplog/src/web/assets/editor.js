// kmplog web console, the queue editor: the buses and requests of the
// configuration file from GET /api/config, edited here as a list of edits
// (add, rename, remove, move, set fields, add or remove a bus) that the
// logger makes to the file itself (PUT /api/config), keeping its comments
// and layout, and then applies without a restart. Each change is checked
// by the logger as it is made (POST /api/config/check): its mistakes show
// at their fields in the words of `kmplog check`, and Save stays off while
// one remains. The page saves against the version it loaded, so a file
// edited by hand meanwhile is not overwritten (409). Uses el(), apiFetch()
// and getJson() of app.js.
'use strict';

const METHODS = [
  ['once', 'Once'],
  ['polling', 'Polling'],
  ['at', 'At times'],
  ['cron', 'Cron'],
  ['event', 'Event'],
];
const UNITS = ['ms', 's', 'min', 'h'];
// The meter's loggers a request may backfill from by itself: `backfill`.
const BACKFILLS = [['', 'Off'], ['hourly', 'Hourly'], ['daily', 'Daily']];
const MAX_ITEMS = 8;
// The keys of a request whose mistakes show at a field of the sheet.
const FIELD_OF_KEY = {
  description: 'description', send: 'send', addresses: 'addresses', model: 'model',
  timeout_ms: 'timeout', retries: 'retries', items: 'items',
  once: 'method', polling: 'interval', at: 'times', cron: 'cron', event: 'event',
  on_complete: 'on_complete', on_failure: 'on_failure', on_info_flag: 'on_info_flag',
  on_no_data: 'on_no_data', no_data_after: 'no_data_after', reads_per_day: 'reads_per_day',
  backfill: 'backfill', threshold: 'thresholds',
};
// The keys of a bus whose mistakes show at a field of its line.
const BUS_FIELD_OF_KEY = {
  serial: 'address', tcp: 'address', udp: 'address', baud: 'baud', framing: 'framing',
  connect_timeout_ms: 'connect_timeout', echo: 'echo', retry_pause_ms: 'retry_pause',
};
// The event keys of a request: what each fires on.
const EVENT_KEYS = [
  ['on_complete', 'On complete, fire event'],
  ['on_failure', 'On failure, fire event'],
  ['on_info_flag', 'On info flag, fire event'],
  ['on_no_data', 'On no data, fire event'],
];
const LINE_KINDS = [['tcp', 'TCP gateway'], ['udp', 'UDP gateway'], ['serial', 'Serial port']];

const editor = {
  version: null,
  file: '',
  buses: [], // as GET /api/config gives them, edited in place
  models: [], // [{ model: '603', name: 'MULTICAL 603' }]
  openLines: new Set(), // names of the buses whose line form is open
  edits: [],
  diagnostics: [],
  selected: null, // { bus: index, request: index }
  catalogues: new Map(), // model -> [{ id, export_name, name }]
  checkTimer: null,
  // Checks asked for and the latest answered: Save waits until they match.
  checksAsked: 0,
  checksAnswered: 0,
};

function editorStatus(text, isError = false) {
  const status = document.getElementById('editor-status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

async function loadConfig() {
  try {
    const config = await getJson('/api/config');
    editor.version = config.version;
    editor.file = config.file;
    editor.buses = config.buses;
    editor.models = config.models || [];
    editor.edits = [];
    editor.diagnostics = [];
    if (editor.selected && !requestAt(editor.selected)) editor.selected = null;
    renderEditor();
  } catch (error) {
    if (error.status === 404) {
      document.getElementById('editor').hidden = true;
    } else {
      editorStatus(`Cannot load the configuration: ${error.message}`, true);
    }
  }
}

function requestAt(place) {
  const bus = editor.buses[place.bus];
  return bus && bus.requests[place.request];
}

async function catalogue(model) {
  const key = model || '603';
  if (!editor.catalogues.has(key)) {
    try {
      const answer = await getJson(`/api/registers?model=${encodeURIComponent(key)}`);
      editor.catalogues.set(key, answer.registers);
    } catch {
      editor.catalogues.set(key, []);
    }
  }
  return editor.catalogues.get(key);
}

// ---- Edits ----

function edit(change) {
  const last = editor.edits[editor.edits.length - 1];
  const sameRequest = change.op === 'set' && last && last.op === 'set' && last.bus === change.bus && last.request === change.request;
  const sameBus = change.op === 'set_bus' && last && last.op === 'set_bus' && last.bus === change.bus;
  if (sameRequest || sameBus) {
    Object.assign(last.fields, change.fields);
  } else {
    editor.edits.push(change);
  }
  editorStatus('Unsaved changes');
  scheduleCheck();
}

function setField(place, fields) {
  const bus = editor.buses[place.bus];
  edit({ op: 'set', bus: bus.name, request: place.request + 1, fields });
}

function scheduleCheck() {
  clearTimeout(editor.checkTimer);
  editor.checksAsked += 1;
  const number = editor.checksAsked;
  updateSave();
  editor.checkTimer = setTimeout(() => runCheck(number), 250);
}

async function runCheck(number) {
  let diagnostics;
  try {
    const response = await apiFetch('/api/config/check', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ version: editor.version, edits: editor.edits }),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      diagnostics = answer.diagnostics.filter((d) => d.severity === 'error');
    } else {
      diagnostics = [{ message: answer.error || `${response.status}`, hint: '' }];
    }
  } catch (error) {
    diagnostics = [{ message: `Cannot check the changes: ${error.message}`, hint: '' }];
  }
  // An answer to an older check than the latest is of no use.
  if (number !== editor.checksAsked) return;
  editor.checksAnswered = number;
  editor.diagnostics = diagnostics;
  showDiagnostics();
}

function updateSave() {
  const save = document.getElementById('save');
  save.disabled = editor.edits.length === 0 || editor.checksAnswered !== editor.checksAsked
    || editor.diagnostics.length > 0;
}

async function save() {
  updateSave();
  if (document.getElementById('save').disabled) return;
  editorStatus('Saving…');
  const response = await apiFetch('/api/config', {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ version: editor.version, edits: editor.edits }),
  });
  const answer = await response.json().catch(() => ({}));
  if (response.status === 422) {
    editor.diagnostics = answer.diagnostics.filter((d) => d.severity === 'error');
    showDiagnostics();
    editorStatus(answer.error, true);
    return;
  }
  if (!response.ok) {
    editorStatus(answer.error || `Not saved: ${response.status}`, true);
    return;
  }
  const reload = answer.reload;
  const changed = reload.changed.map((bus) => bus.bus).concat(reload.added);
  let words = `Saved ${editor.file}; running now`;
  words += changed.length ? ` (restarted after their transaction: ${changed.join(', ')})` : '';
  if (reload.restart_needed.length) words += `. Needs a restart: ${reload.restart_needed.join('; ')}`;
  await loadConfig();
  editorStatus(words);
}

// ---- Diagnostics at their fields ----

function showDiagnostics() {
  for (const old of document.querySelectorAll('#editor .field-error')) old.remove();
  for (const field of document.querySelectorAll('#editor [aria-invalid]')) {
    field.removeAttribute('aria-invalid');
    field.removeAttribute('aria-describedby');
  }
  const general = document.getElementById('editor-general');
  general.replaceChildren();
  editor.diagnostics.forEach((diagnostic, index) => {
    const words = diagnostic.hint ? `${diagnostic.message} (${diagnostic.hint})` : diagnostic.message;
    const field = fieldOf(diagnostic);
    if (field) {
      const id = `field-error-${index}`;
      field.setAttribute('aria-invalid', 'true');
      field.setAttribute('aria-describedby', id);
      field.closest('.field').append(el('p', { class: 'field-error', id, text: words }));
    } else {
      const where = describePlace(diagnostic);
      general.append(el('li', { class: 'field-error', text: where ? `${where}: ${words}` : words }));
    }
  });
  if (editor.diagnostics.length === 0 && editor.edits.length > 0) editorStatus('Unsaved changes, no mistakes');
  updateSave();
}

// The control where a mistake shows: a field of the open request's sheet,
// or of its bus's line (the line's form opens to show it).
function fieldOf(diagnostic) {
  const selected = editor.selected;
  if (diagnostic.request === null || diagnostic.request === undefined) {
    const name = BUS_FIELD_OF_KEY[diagnostic.field];
    const form = name && document.querySelector(`[data-bus-line="${diagnostic.bus}"]`);
    if (!form) return null;
    form.open = true;
    return form.querySelector(`[data-field="${name}"]`);
  }
  const atSheet = selected && diagnostic.bus === selected.bus && diagnostic.request === selected.request;
  const name = atSheet ? FIELD_OF_KEY[diagnostic.field] : undefined;
  return name ? document.querySelector(`#sheet [data-field="${name}"]`) : null;
}

function describePlace(diagnostic) {
  const bus = editor.buses[diagnostic.bus];
  if (!bus) return diagnostic.at || '';
  const request = diagnostic.request !== null && diagnostic.request !== undefined && bus.requests[diagnostic.request];
  return request ? `${bus.name}, “${request.description}”` : bus.name;
}

// ---- Rendering ----

function lineWords(line) {
  if (line.kind === 'serial') return `serial ${line.address} ${line.baud} ${line.framing}`;
  return `${line.kind} ${line.address}`;
}

function renderEditor() {
  const container = document.getElementById('editor-buses');
  container.replaceChildren();
  editor.buses.forEach((bus, busIndex) => {
    const list = el('ul', { class: 'queue', 'aria-label': `Requests of ${bus.name}` });
    bus.requests.forEach((request, requestIndex) => {
      const place = { bus: busIndex, request: requestIndex };
      const selected = editor.selected && editor.selected.bus === busIndex && editor.selected.request === requestIndex;
      const pick = el('button', { type: 'button', class: 'pick', 'aria-pressed': selected ? 'true' : 'false', text: request.description });
      pick.addEventListener('click', () => { editor.selected = place; renderEditor(); document.getElementById('sheet-description')?.focus(); });
      list.append(el('li', { class: selected ? 'selected' : '' }, pick));
    });
    const addRequest = el('button', { type: 'button', text: 'Add request' });
    addRequest.addEventListener('click', () => addRequestTo(busIndex));
    const removeBus = el('button', { type: 'button', text: 'Remove bus', 'aria-label': `Remove bus ${bus.name}` });
    removeBus.addEventListener('click', () => {
      edit({ op: 'remove_bus', bus: bus.name });
      editor.buses.splice(busIndex, 1);
      editor.selected = null;
      renderEditor();
    });
    const section = el('section', { class: 'editor-bus', 'aria-label': `Bus ${bus.name}` },
      el('h3', { text: bus.name }, el('span', { class: 'line', text: ` ${lineWords(bus.line)}` })),
      renderLine(bus, busIndex),
      list,
      el('div', { class: 'editor-actions' }, addRequest, removeBus));
    if (editor.selected && editor.selected.bus === busIndex) section.append(renderSheet(editor.selected));
    container.append(section);
  });
  showDiagnostics();
}

// A bus's line and options, in a form that opens under its name.
function renderLine(bus, busIndex) {
  const form = el('details', { class: 'bus-line', 'data-bus-line': busIndex });
  form.open = editor.openLines.has(bus.name);
  form.addEventListener('toggle', () => {
    if (form.open) editor.openLines.add(bus.name); else editor.openLines.delete(bus.name);
  });
  const id = (name) => `bus-${busIndex}-${name}`;
  const setBus = (fields) => edit({ op: 'set_bus', bus: bus.name, fields });
  const line = bus.line;
  const kind = el('select', { id: id('kind') }, ...LINE_KINDS.map(([value, text]) => el('option', { value, text })));
  kind.value = line.kind;
  const address = input({ id: id('address'), value: line.address, spellcheck: 'false' });
  const sendLine = () => {
    line.kind = kind.value;
    line.address = address.value.trim();
    setBus({ kind: line.kind, address: line.address });
  };
  kind.addEventListener('change', () => {
    // The options of the old kind go with it (the logger removes them too).
    if (kind.value === 'serial') { line.baud = line.baud || 1200; line.framing = line.framing || '8N2'; }
    if (kind.value === 'tcp') line.connect_timeout_ms = line.connect_timeout_ms || 5000;
    sendLine();
    renderEditor();
  });
  address.addEventListener('input', sendLine);
  const fields = [field('kind', 'Line', kind), field('address', line.kind === 'serial' ? 'Serial port' : 'Gateway (host:port)', address)];
  const number = (name, label, key, min) => {
    const control = input({ id: id(name), type: 'number', min, value: line[key] ?? bus[key] });
    control.addEventListener('input', () => {
      const value = Number(control.value);
      if (key in line) line[key] = value; else bus[key] = value;
      setBus({ [key]: value });
    });
    return field(name, label, control);
  };
  if (line.kind === 'serial') {
    fields.push(number('baud', 'Baud', 'baud', '300'));
    const framing = input({ id: id('framing'), value: line.framing, placeholder: '8N2' });
    framing.addEventListener('input', () => { line.framing = framing.value; setBus({ framing: framing.value }); });
    fields.push(field('framing', 'Framing', framing));
  } else if (line.kind === 'tcp') {
    fields.push(number('connect_timeout', 'Connect timeout (ms)', 'connect_timeout_ms', '1'));
  }
  const echo = el('select', { id: id('echo') }, ...['auto', 'on', 'off'].map((value) => el('option', { value, text: value })));
  echo.value = bus.echo || 'auto';
  echo.addEventListener('change', () => { bus.echo = echo.value; setBus({ echo: echo.value }); });
  fields.push(field('echo', 'Echo', echo), number('retry_pause', 'Retry pause (ms)', 'retry_pause_ms', '0'));
  form.append(el('summary', { text: 'Line and options' }), el('div', { class: 'line-fields' }, ...fields));
  return form;
}

function addRequestTo(busIndex) {
  const bus = editor.buses[busIndex];
  let number = bus.requests.length + 1;
  const taken = new Set(bus.requests.map((request) => request.description));
  while (taken.has(`New request ${number}`)) number += 1;
  const description = `New request ${number}`;
  // What the logger writes for a new request: read the serial number once.
  bus.requests.push({
    description, send: true, addresses: '1', model: null, timeout_ms: 1600, retries: 1,
    items: [{ register: '1001', export_name: '' }], method: { kind: 'once' },
    on_complete: null, on_failure: null, on_info_flag: null, on_no_data: null,
    no_data_after: null, reads_per_day: null, backfill: null, thresholds: [],
  });
  edit({ op: 'add', bus: bus.name, description });
  editor.selected = { bus: busIndex, request: bus.requests.length - 1 };
  renderEditor();
  document.getElementById('sheet-description').focus();
}

function field(name, label, control) {
  control.setAttribute('data-field', name);
  if (!control.id) control.id = `sheet-${name}`;
  return el('div', { class: 'field' }, el('label', { for: control.id, text: label }), control);
}

function input(attributes) {
  return el('input', attributes);
}

function splitInterval(value) {
  const match = /^(\d+)\s*([a-z]+)$/.exec(value || '');
  return match ? [match[1], match[2]] : ['', 's'];
}

function renderSheet(place) {
  const bus = editor.buses[place.bus];
  const request = requestAt(place);
  const sheet = el('form', { id: 'sheet', class: 'sheet', 'aria-label': `Request “${request.description}”` });
  sheet.addEventListener('submit', (event) => event.preventDefault());

  // Name and place in the queue.
  const description = input({ id: 'sheet-description', value: request.description });
  const rename = el('button', { type: 'button', text: 'Rename' });
  rename.addEventListener('click', () => {
    const name = description.value.trim();
    if (!name || name === request.description) return;
    edit({ op: 'rename', bus: bus.name, request: place.request + 1, description: name });
    request.description = name;
    renderEditor();
  });
  description.addEventListener('keydown', (event) => { if (event.key === 'Enter') { event.preventDefault(); rename.click(); } });
  const up = el('button', { type: 'button', text: 'Move up', disabled: place.request === 0 });
  const down = el('button', { type: 'button', text: 'Move down', disabled: place.request === bus.requests.length - 1 });
  const move = (isUp) => {
    const to = place.request + (isUp ? -1 : 1);
    edit({ op: 'move', bus: bus.name, request: place.request + 1, up: isUp });
    [bus.requests[place.request], bus.requests[to]] = [bus.requests[to], bus.requests[place.request]];
    editor.selected = { bus: place.bus, request: to };
    renderEditor();
    document.querySelector(`#sheet button:not([disabled])[data-move="${isUp ? 'up' : 'down'}"]`)?.focus();
  };
  up.setAttribute('data-move', 'up');
  down.setAttribute('data-move', 'down');
  up.addEventListener('click', () => move(true));
  down.addEventListener('click', () => move(false));
  const remove = el('button', { type: 'button', text: 'Remove', class: 'danger' });
  remove.addEventListener('click', () => {
    edit({ op: 'remove', bus: bus.name, request: place.request + 1 });
    bus.requests.splice(place.request, 1);
    editor.selected = null;
    renderEditor();
  });
  sheet.append(field('description', 'Description', description),
    el('div', { class: 'editor-actions' }, rename, up, down, remove));

  // What it sends and to whom.
  const send = input({ type: 'checkbox', checked: request.send });
  send.addEventListener('change', () => { request.send = send.checked; setField(place, { send: send.checked }); });
  const addresses = input({ value: request.addresses, inputmode: 'numeric', placeholder: '1;2;17' });
  addresses.addEventListener('input', () => { request.addresses = addresses.value; setField(place, { addresses: addresses.value }); });
  const timeout = input({ type: 'number', min: '1', value: request.timeout_ms });
  timeout.addEventListener('input', () => { request.timeout_ms = Number(timeout.value); setField(place, { timeout_ms: Number(timeout.value) }); });
  const retries = input({ type: 'number', min: '0', value: request.retries });
  retries.addEventListener('input', () => { request.retries = Number(retries.value); setField(place, { retries: Number(retries.value) }); });
  const sendField = field('send', 'Send (off: listen only to another master)', send);
  sendField.classList.add('check');
  const model = el('select', { id: 'sheet-model' },
    el('option', { value: '', text: 'Any (names from every catalogue)' }),
    ...editor.models.map((known) => el('option', { value: known.model, text: known.name })));
  model.value = request.model || '';
  model.addEventListener('change', () => {
    request.model = model.value || null;
    setField(place, { model: model.value });
    renderEditor();
  });
  sheet.append(sendField, field('addresses', 'Device addresses', addresses), field('model', 'Meter model', model),
    field('timeout', 'Timeout (ms)', timeout), field('retries', 'Retries', retries));

  // Items.
  const items = el('fieldset', { class: 'items', 'data-field': 'items' }, el('legend', { text: `Items (up to ${MAX_ITEMS})` }));
  const itemsField = el('div', { class: 'field' }, items);
  const sendItems = () => setField(place, { items: request.items.map((item) => ({ register: item.register, export_name: item.export_name })) });
  catalogue(request.model).then((registers) => {
    request.items.forEach((item, index) => items.append(itemRow(request, item, index, registers, sendItems, () => { renderEditor(); })));
    const add = el('button', { type: 'button', text: 'Add item', disabled: request.items.length >= MAX_ITEMS });
    add.addEventListener('click', () => {
      request.items.push({ register: registers[0] ? registers[0].export_name : '1', export_name: '' });
      sendItems();
      renderEditor();
    });
    items.append(add);
    showDiagnostics();
  });
  sheet.append(itemsField);

  // What it fires, and its limits.
  for (const [key, label] of EVENT_KEYS) {
    const name = input({ id: `sheet-${key}`, value: request[key] || '', placeholder: 'none', spellcheck: 'false' });
    name.addEventListener('input', () => { request[key] = name.value; setField(place, { [key]: name.value }); });
    sheet.append(field(key, label, name));
  }
  const noDataAfter = input({ value: request.no_data_after || '', placeholder: 'off, e.g. 1h' });
  noDataAfter.addEventListener('input', () => { request.no_data_after = noDataAfter.value; setField(place, { no_data_after: noDataAfter.value }); });
  const readsPerDay = input({ value: request.reads_per_day ?? '', inputmode: 'numeric', placeholder: 'no limit' });
  readsPerDay.addEventListener('input', () => { request.reads_per_day = readsPerDay.value; setField(place, { reads_per_day: readsPerDay.value }); });
  const backfill = el('select', {}, ...BACKFILLS.map(([value, text]) => el('option', { value, text })));
  backfill.value = request.backfill || '';
  backfill.addEventListener('change', () => { request.backfill = backfill.value || null; setField(place, { backfill: backfill.value }); });
  sheet.append(field('no_data_after', 'No data after', noDataAfter), field('reads_per_day', 'Reads per day (budget)', readsPerDay),
    field('backfill', "Backfill from the meter's logger", backfill));
  sheet.append(renderThresholds(place, request));

  // When it runs.
  const method = el('select', { id: 'sheet-method' }, ...METHODS.map(([value, text]) => el('option', { value, text })));
  const kind = request.method.kind === 'listen' ? 'once' : request.method.kind;
  method.value = kind;
  const methodArea = el('div', { class: 'method' });
  const sendMethod = (value) => {
    request.method = { kind: method.value, value };
    setField(place, { method: { kind: method.value, value } });
  };
  const drawMethod = () => {
    methodArea.replaceChildren();
    const current = request.method.kind === method.value ? request.method.value || '' : '';
    if (method.value === 'polling') {
      const [number, unit] = splitInterval(current || '30s');
      const interval = input({ type: 'number', min: '1', value: number });
      const unitSelect = el('select', { id: 'sheet-unit' }, ...UNITS.map((u) => el('option', { value: u, text: u })));
      unitSelect.value = UNITS.includes(unit) ? unit : 's';
      const change = () => sendMethod(`${interval.value}${unitSelect.value}`);
      interval.addEventListener('input', change);
      unitSelect.addEventListener('change', change);
      methodArea.append(field('interval', 'Interval', interval), field('unit', 'Unit', unitSelect));
    } else if (method.value === 'at') {
      const times = input({ value: current || '00:00:05', placeholder: '11:00:00;11:20:00' });
      times.addEventListener('input', () => sendMethod(times.value));
      methodArea.append(field('times', 'Times of day', times));
    } else if (method.value === 'cron') {
      const cron = input({ value: current || '0 */15 * * * *', spellcheck: 'false' });
      const preview = el('ol', { class: 'cron-preview', 'aria-label': 'Next five fire times', 'aria-live': 'polite' });
      const showPreview = async () => {
        try {
          const answer = await getJson(`/api/cron?expression=${encodeURIComponent(cron.value)}`);
          preview.replaceChildren(...answer.times.map((time) => el('li', { text: formatTime(time) })));
        } catch (error) {
          preview.replaceChildren(el('li', { class: 'field-error', text: error.message }));
        }
      };
      cron.addEventListener('input', () => { sendMethod(cron.value); showPreview(); });
      methodArea.append(field('cron', 'Cron expression', cron), preview);
      showPreview();
    } else if (method.value === 'event') {
      const name = input({ value: current, placeholder: 'morning-read' });
      name.addEventListener('input', () => sendMethod(name.value));
      methodArea.append(field('event', 'Event name', name));
    }
  };
  method.addEventListener('change', () => {
    const defaults = { once: '', polling: '30s', at: '00:00:05', cron: '0 */15 * * * *', event: '' };
    sendMethod(defaults[method.value]);
    drawMethod();
    showDiagnostics();
  });
  sheet.append(field('method', 'Method', method), methodArea);
  drawMethod();
  return sheet;
}

// The thresholds of a request: an item, a limit above or below, the event.
function renderThresholds(place, request) {
  const thresholds = request.thresholds || (request.thresholds = []);
  const box = el('fieldset', { class: 'thresholds', 'data-field': 'thresholds' }, el('legend', { text: 'Thresholds' }));
  const send = () => setField(place, { thresholds: thresholds.map((t) => ({ item: t.item, above: t.above || '', below: t.below || '', event: t.event })) });
  thresholds.forEach((threshold, index) => {
    const id = (name) => `threshold-${index}-${name}`;
    const row = el('div', { class: 'threshold' });
    for (const [key, label, placeholder] of [['item', 'Item', 'T1'], ['above', 'Above', '90.00'], ['below', 'Below', ''], ['event', 'Event', 'overheat']]) {
      const control = input({ id: id(key), value: threshold[key] || '', placeholder, spellcheck: 'false' });
      control.addEventListener('input', () => { threshold[key] = control.value; send(); });
      row.append(el('label', { for: control.id, text: label }), control);
    }
    const remove = el('button', { type: 'button', text: 'Remove threshold', 'aria-label': `Remove threshold ${index + 1}` });
    remove.addEventListener('click', () => { thresholds.splice(index, 1); send(); renderEditor(); });
    row.append(remove);
    box.append(row);
  });
  const add = el('button', { type: 'button', text: 'Add threshold' });
  add.addEventListener('click', () => {
    const first = request.items[0];
    thresholds.push({ item: first ? (first.export_name || first.register) : '', above: '', below: '', event: '' });
    send();
    renderEditor();
  });
  box.append(add);
  return el('div', { class: 'field' }, box);
}

function itemRow(request, item, index, registers, sendItems, redraw) {
  const known = registers.some((register) => register.export_name === item.register);
  const select = el('select', { id: `item-${index}-register`, 'data-field': index === 0 ? 'items' : undefined },
    ...registers.map((register) => el('option', { value: register.export_name, text: `${register.export_name} (${register.id}, ${register.name})` })),
    el('option', { value: '', text: 'Custom number…' }));
  select.value = known ? item.register : '';
  const number = input({ id: `item-${index}-number`, type: 'number', min: '1', max: '65535', value: known ? '' : item.register, hidden: known });
  const exportName = input({ id: `item-${index}-export`, value: item.export_name, placeholder: known ? item.register : 'CUSTOM1' });
  select.addEventListener('change', () => {
    item.register = select.value || number.value || '';
    number.hidden = select.value !== '';
    sendItems();
  });
  number.addEventListener('input', () => { item.register = number.value; sendItems(); });
  exportName.addEventListener('input', () => { item.export_name = exportName.value; sendItems(); });
  const remove = el('button', { type: 'button', text: 'Remove item', 'aria-label': `Remove item ${index + 1}` });
  remove.addEventListener('click', () => { request.items.splice(index, 1); sendItems(); redraw(); });
  const numberLabel = el('label', { for: number.id, class: 'visually-hidden', text: 'Register number' });
  return el('div', { class: 'item' },
    el('label', { for: select.id, text: 'Register' }), el('div', { class: 'register' }, select, numberLabel, number),
    el('label', { for: exportName.id, text: 'Export name' }), exportName,
    remove);
}

// ---- Buses ----

function setUpBusDialog() {
  const dialog = document.getElementById('bus-dialog');
  const kind = document.getElementById('bus-kind');
  const showOptions = () => {
    for (const option of dialog.querySelectorAll('[data-kind]')) option.hidden = option.dataset.kind !== kind.value;
  };
  kind.addEventListener('change', showOptions);
  document.getElementById('add-bus').addEventListener('click', () => { showOptions(); dialog.showModal(); });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'add') return;
    const name = document.getElementById('bus-name').value.trim();
    const address = document.getElementById('bus-address').value.trim();
    const change = { op: 'add_bus', bus: name, kind: kind.value, address };
    const line = { kind: kind.value, address };
    if (kind.value === 'serial') {
      change.baud = line.baud = Number(document.getElementById('bus-baud').value);
      change.framing = line.framing = document.getElementById('bus-framing').value.trim();
    } else if (kind.value === 'tcp') {
      change.connect_timeout_ms = Number(document.getElementById('bus-connect-timeout').value);
    }
    edit(change);
    editor.buses.push({ name, line, requests: [] });
    renderEditor();
  });
}

function startEditor() {
  setUpBusDialog();
  document.getElementById('save').addEventListener('click', save);
  document.addEventListener('kmplog-token', loadConfig);
  updateSave();
  loadConfig();
}

startEditor();
