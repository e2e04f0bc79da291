// kmplog web console: the buses and their requests and meters from
// GET /api/buses (every 2 s), who owns each bus in a [cluster] from
// GET /api/cluster (as often), live values from GET /api/readings/stream
// (server-sent events, read through fetch(): see connectLive), history
// plots from GET /api/history; the queue editor is editor.js. Text from the
// API goes into the page as text only (textContent), never as markup.
//
// When the API has a token, the first call that gets 401 shows a small form;
// the token is kept in sessionStorage (this tab, until it closes) and sent
// as `Authorization: Bearer` on every call, the stream included.
'use strict';

const REFRESH_MS = 2000;
// A polled value is stale once three polling intervals have passed without
// a new one (or three of the spacings its readings come at, on a line too
// slow for its interval): one late poll is normal on a busy bus, three are
// not. A value whose latest reading failed is stale at once, whatever its
// method; one read at times of day, by cron or on events is not aged.
const STALE_INTERVALS = 3;

const page = {
  buses: [],
  zone: undefined, // the logger's IANA time zone; the browser's until known
  values: new Map(), // "bus/address/name" -> { reading, failed }
  sections: new Map(), // bus name -> its elements
  plot: null,
  history: null, // { bus, address, name, from, to, back: [] }
  opener: null, // the button that opened the history, for focus on close
  renderPending: false,
};

function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') element.textContent = value;
    else if (key === 'class') element.className = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) element.append(child);
  }
  return element;
}

const TOKEN_KEY = 'kmplog-token';

// fetch() with the session's token; a 401 asks for it.
async function apiFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401 || (response.status === 403 && token)) askForToken(response.status);
  return response;
}

function askForToken(status) {
  const form = document.getElementById('token-form');
  if (!form.hidden) return;
  document.getElementById('token-message').textContent = status === 401
    ? 'This logger’s API needs its token (kmplog run --api-token).'
    : 'The API refused this token; give the right one.';
  form.hidden = false;
  document.getElementById('token').focus();
}

function setUpTokenForm() {
  const form = document.getElementById('token-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = document.getElementById('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    form.hidden = true;
    document.getElementById('token').value = '';
    refreshBuses().then(loadLatest);
    document.dispatchEvent(new Event('kmplog-token'));
  });
}

async function getJson(url) {
  const response = await apiFetch(url, { headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- Time, in the logger's time zone ----

function formatter(options) {
  // sv-SE writes dates as ISO does (2026-12-01 10:00:00), in any zone.
  return new Intl.DateTimeFormat('sv-SE', { timeZone: page.zone, hourCycle: 'h23', ...options });
}

function formatTime(text) {
  if (!text) return '—';
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  const day = formatter({ year: 'numeric', month: '2-digit', day: '2-digit' });
  const time = formatter({ hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(date);
  return day.format(date) === day.format(new Date()) ? time : `${day.format(date)} ${time}`;
}

function formatAge(text) {
  if (!text) return '';
  const seconds = Math.round((Date.now() - new Date(text).getTime()) / 1000);
  if (seconds < 0) return `in ${formatSpan(-seconds)}`;
  return `${formatSpan(seconds)} ago`;
}

function formatSpan(seconds) {
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

// The instant at which the wall clock of the logger's zone shows `wall`
// (a datetime-local value), found by correcting for the zone's offset
// twice, which also lands right next to a change of daylight saving.
function wallToDate(wall) {
  const [date, time = '00:00:00'] = wall.split('T');
  const [y, mo, d] = date.split('-').map(Number);
  const [h, mi, s = 0] = time.split(':').map(Number);
  const target = Date.UTC(y, mo - 1, d, h, mi, s);
  let guess = target;
  for (let i = 0; i < 2; i += 1) guess += target - wallOf(new Date(guess));
  return new Date(guess);
}

function wallOf(date) {
  const parts = Object.fromEntries(
    formatter({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(date)
      .map((part) => [part.type, part.value]),
  );
  return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
}

function dateToWall(date) {
  return formatter({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .format(date)
    .replace(' ', 'T');
}

// ---- The overview ----

function intervalMs(method) {
  const match = /^polling (\d+)(ms|s|min|h)$/.exec(method || '');
  if (!match) return null;
  return Number(match[1]) * { ms: 1, s: 1000, min: 60000, h: 3600000 }[match[2]];
}

function busState(bus) {
  if (bus.connected) return { text: bus.listening_only ? 'listening only' : 'connected', kind: 'ok' };
  if (bus.last_error) {
    const retry = bus.retry_at
      ? `retrying at ${formatTime(bus.retry_at)}`
      : 'retrying when a request is due';
    return { text: `line down: ${bus.last_error.error}; ${retry}`, kind: 'down' };
  }
  return { text: 'not opened yet', kind: 'idle' };
}

function lateness(samples) {
  if (!samples || samples.length === 0) return '—';
  const sorted = [...samples].sort((a, b) => a - b);
  const ms = (us) => `${(us / 1000).toFixed(us < 10000 ? 1 : 0)} ms`;
  return `${ms(sorted[Math.floor(sorted.length / 2)])} median, ${ms(sorted[sorted.length - 1])} max`;
}

// A table in a scrolling region of its own (keyboard users scroll it with
// the arrow keys once it has the focus); its body is filled on each refresh.
function table(caption, headers) {
  const head = el('tr', {}, ...headers.map(([text, cls]) => el('th', { scope: 'col', class: cls, text })));
  const body = el('tbody');
  const wrap = el('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' });
  wrap.append(el('table', {}, el('caption', { class: 'visually-hidden', text: caption }), el('thead', {}, head), body));
  return { wrap, body };
}

function cell(text, cls) {
  return el('td', { class: cls, text: text === undefined || text === null || text === '' ? '—' : String(text) });
}

function requestRows(bus) {
  if (bus.requests.length === 0) return [el('tr', {}, el('td', { colspan: '5', class: 'empty', text: 'No requests.' }))];
  return bus.requests.map((request) => {
    const failed = request.last_result && request.last_result !== 'ok';
    return el(
      'tr',
      {},
      cell(request.description),
      cell(request.method_words || request.method),
      cell(request.last_run ? `${formatTime(request.last_run)} (${formatAge(request.last_run)})` : 'not yet'),
      cell(request.next_run ? formatTime(request.next_run) : request.method_words === 'listening only' ? 'when polled' : '—'),
      cell(request.last_result, failed ? 'error' : undefined),
    );
  });
}

function meterRows(bus) {
  if (bus.meters.length === 0) return [el('tr', {}, el('td', { colspan: '8', class: 'empty', text: 'No meters.' }))];
  return bus.meters.map((meter) => {
    const rate = meter.attempts ? `${Math.round((100 * meter.answers) / meter.attempts)} % of ${meter.attempts}` : '—';
    const budget = meter.reads_per_day ? `${meter.reads_today} of ${meter.reads_per_day}` : String(meter.reads_today);
    const answered = meter.last_status === 'ok' || meter.last_status === 'suspect' || meter.last_status === 'not_answered';
    return el(
      'tr',
      {},
      cell(meter.address, 'number'),
      cell(meter.model),
      cell(meter.serial),
      cell(meter.last_answer ? `${formatTime(meter.last_answer)} (${formatAge(meter.last_answer)})` : 'never'),
      cell(meter.last_status, meter.last_status && !answered ? 'error' : undefined),
      cell(rate, 'number'),
      cell(meter.suspect, 'number'),
      cell(meter.info_flags.length ? meter.info_flags.join(', ') : 'none'),
      cell(budget, 'number'),
    );
  });
}

function busSection(name) {
  let section = page.sections.get(name);
  if (section) return section;
  const id = `bus-${page.sections.size}`;
  const title = el('h3', { id: `${id}-title`, text: name });
  section = {
    root: el('section', { class: 'bus', 'aria-labelledby': `${id}-title` }),
    endpoint: el('p', { class: 'endpoint' }),
    state: el('p', { class: 'state' }),
    counters: el('dl', { class: 'counters' }),
    requests: table(`Requests on ${name}`, [['Description'], ['Method'], ['Last run'], ['Next run'], ['Last result']]),
    meters: table(`Meters on ${name}`, [
      ['Address', 'number'],
      ['Model'],
      ['Serial'],
      ['Last answer'],
      ['Last attempt'],
      ['Answer rate', 'number'],
      ['Suspect', 'number'],
      ['Info flags'],
      ['Reads today', 'number'],
    ]),
    values: table(`Values on ${name}`, [['Meter', 'number'], ['Name'], ['Value', 'number'], ['Unit'], ['Read at'], ['State']]),
    rows: new Map(),
    name,
  };
  section.valuesBody = section.values.body;
  section.values.body.parentElement.classList.add('values');
  section.root.append(
    el('div', { class: 'bus-head' }, title, section.endpoint),
    section.state,
    section.counters,
    el('h4', { text: 'Requests' }),
    section.requests.wrap,
    el('h4', { text: 'Meters' }),
    section.meters.wrap,
    el('h4', { text: 'Values' }),
    section.values.wrap,
  );
  page.sections.set(name, section);
  return section;
}

function renderBuses() {
  const container = document.getElementById('buses');
  if (page.buses.length === 0) {
    container.replaceChildren(el('p', { class: 'empty', text: 'This logger has no buses.' }));
    return;
  }
  const sections = page.buses.map((bus) => {
    const section = busSection(bus.name);
    section.endpoint.textContent = bus.line;
    const state = busState(bus);
    section.state.textContent = state.text;
    section.state.className = `state ${state.kind}`;
    const counters = [
      ['Polls', bus.polls],
      ['Timeouts', bus.timeouts],
      ['CRC errors', bus.crc_errors],
      ['Faults', bus.faults],
      ['Reconnects', bus.reconnects],
      ['Lateness', lateness(bus.lateness_us)],
    ];
    section.counters.replaceChildren(
      ...counters.map(([term, value]) => el('div', {}, el('dt', { text: term }), el('dd', { text: String(value) }))),
    );
    section.requests.body.replaceChildren(...requestRows(bus));
    section.meters.body.replaceChildren(...meterRows(bus));
    return section.root;
  });
  // Keep the sections (and the focus within them) when nothing moved.
  const same = sections.length === container.children.length && sections.every((s, i) => container.children[i] === s);
  if (!same) container.replaceChildren(...sections);
  renderValues();
}

// In a cluster: this instance, the live members and every bus's owner
// (the sections below are the buses this instance polls).
const clusterTable = table('Owner of each bus', [['Bus'], ['Owner'], ['Lease token', 'number']]);

async function refreshCluster() {
  const container = document.getElementById('cluster');
  const answer = await getJson('/api/cluster');
  if (answer.instance === null) {
    container.hidden = true;
    return;
  }
  const members = answer.members.length > 0 ? answer.members.join(', ') : 'none';
  const coordinator = answer.coordinator === 'ok' ? 'coordinator ok' : `coordinator: ${answer.coordinator}`;
  const summary = `Instance ${answer.instance} of a cluster of ${members}; ${coordinator}.`;
  clusterTable.body.replaceChildren(
    ...answer.buses.map((bus) => el('tr', {},
      cell(bus.bus),
      cell(bus.owner === null ? 'nobody (free)' : bus.owner === answer.instance ? `${bus.owner} (this one)` : bus.owner),
      cell(bus.token, 'number'))),
  );
  if (container.children.length === 0) container.append(el('p', { id: 'cluster-summary' }), clusterTable.wrap);
  container.firstChild.textContent = summary;
  container.hidden = false;
}

async function refreshBuses() {
  try {
    await refreshCluster();
    const answer = await getJson('/api/buses');
    page.buses = answer.buses;
    const zone = answer.buses.map((bus) => bus.time_zone).find(Boolean);
    if (zone && zone !== page.zone) {
      page.zone = zone;
      document.getElementById('zone').textContent = `Times in ${zone}`;
    } else if (!zone && !page.zone) {
      document.getElementById('zone').textContent = 'Times in this browser’s time zone';
    }
    renderBuses();
  } catch (error) {
    setStatus(`Cannot read the buses: ${error.message}`);
  }
}

// ---- Live values ----

function valueKey(reading) {
  return `${reading.bus}/${reading.address}/${reading.name}`;
}

function takeReading(reading) {
  const key = valueKey(reading);
  const known = page.values.get(key);
  // Stored readings may come after live ones: the newest wins.
  if (known && Date.parse(known.lastTs) > Date.parse(reading.ts)) return;
  // How far apart this value's readings come: more than the polling
  // interval on a line too slow for it.
  const period = known ? Math.max(0, Date.parse(reading.ts) - Date.parse(known.lastTs)) : 0;
  if (reading.value === null || reading.value === undefined) {
    // Keep the last value shown, marked stale, with why.
    page.values.set(key, { reading: known ? known.reading : reading, failed: reading.status, lastTs: reading.ts, period });
  } else {
    page.values.set(key, { reading, failed: null, lastTs: reading.ts, period });
  }
}

function staleness(entry) {
  if (entry.failed) return { stale: true, text: `stale: last read ${entry.failed.replace('_', ' ')}` };
  const bus = page.buses.find((b) => b.name === entry.reading.bus);
  const request = bus && bus.requests.find((r) => r.description === entry.reading.request);
  const interval = request && intervalMs(request.method);
  const age = Date.now() - new Date(entry.reading.ts).getTime();
  if (interval && age > STALE_INTERVALS * Math.max(interval, entry.period)) {
    return { stale: true, text: `stale: none for ${formatSpan(Math.round(age / 1000))}` };
  }
  if (entry.reading.status === 'suspect') return { stale: false, text: 'suspect', kind: 'suspect' };
  return { stale: false, text: 'fresh', kind: 'fresh' };
}

function renderValues() {
  const byBus = new Map();
  for (const [key, entry] of page.values) {
    if (!byBus.has(entry.reading.bus)) byBus.set(entry.reading.bus, []);
    byBus.get(entry.reading.bus).push([key, entry]);
  }
  for (const section of page.sections.values()) {
    const entries = (byBus.get(section.name) || []).sort(([, a], [, b]) =>
      a.reading.address - b.reading.address || a.reading.name.localeCompare(b.reading.name, undefined, { numeric: true }),
    );
    if (entries.length === 0) {
      if (section.valuesBody.children.length === 0) {
        section.valuesBody.append(el('tr', { class: 'placeholder' }, el('td', { colspan: '6', class: 'empty', text: 'No values yet.' })));
      }
      continue;
    }
    const rows = entries.map(([key, entry]) => valueRow(section, key, entry));
    const same = rows.length === section.valuesBody.children.length && rows.every((r, i) => section.valuesBody.children[i] === r);
    if (!same) section.valuesBody.replaceChildren(...rows);
  }
}

function valueRow(section, key, entry) {
  let row = section.rows.get(key);
  const { reading } = entry;
  if (!row) {
    const button = el('button', {
      type: 'button',
      class: 'name',
      text: reading.name,
      'aria-label': `${reading.name} of meter ${reading.address}: show its history`,
    });
    button.addEventListener('click', () => openHistory(reading.bus, reading.address, reading.name, button));
    row = {
      root: el('tr', { 'data-key': key }),
      value: el('td', { class: 'value number' }),
      unit: el('td', { class: 'unit' }),
      time: el('td'),
      state: el('td'),
    };
    row.root.append(el('td', { class: 'number', text: String(reading.address) }), el('td', {}, button), row.value, row.unit, row.time, row.state);
    section.rows.set(key, row);
  }
  // The exact decimal text the meter sent, never a rounded number.
  row.value.textContent = reading.text || reading.value || '—';
  row.unit.textContent = reading.unit || '';
  row.time.textContent = formatTime(reading.ts);
  const stale = staleness(entry);
  row.root.classList.toggle('stale', stale.stale);
  row.state.replaceChildren(el('span', { class: `badge ${stale.stale ? 'stale' : stale.kind}`, text: stale.text }));
  return row.root;
}

function setStatus(text) {
  document.getElementById('live-status').textContent = text;
}

async function loadLatest() {
  // The newest stored readings, so the values show before the next poll.
  try {
    const answer = await getJson('/api/readings?limit=1000');
    for (const reading of [...answer.readings].reverse()) takeReading(reading);
    renderValues();
  } catch (error) {
    if (error.status !== 404) setStatus(`Cannot read the stored readings: ${error.message}`);
  }
}

// The stream through fetch() rather than EventSource: EventSource cannot
// send headers, so the token would have to go in the URL, where access logs,
// proxies and the browser's history keep it. fetch() sends it as a header;
// this reader does what EventSource did: it parses the events, and after a
// lost connection it connects again with Last-Event-ID, so nothing is missed.
const live = { lastEventId: null, retryMs: 1000 };

function onBatchOfReadings() {
  // A transaction's readings come together: draw them once.
  if (!page.renderPending) {
    page.renderPending = true;
    setTimeout(() => {
      page.renderPending = false;
      renderValues();
    }, 50);
  }
}

function handleStreamEvent(type, data) {
  if (type === 'message') {
    takeReading(JSON.parse(data));
    onBatchOfReadings();
  } else if (type === 'lagged') {
    const { missed_batches: missed } = JSON.parse(data);
    setStatus(`Live (this page fell behind and missed ${missed} batches of readings)`);
  }
}

async function readStream() {
  const headers = { Accept: 'text/event-stream' };
  if (live.lastEventId !== null) headers['Last-Event-ID'] = live.lastEventId;
  const response = await apiFetch('/api/readings/stream', { headers, cache: 'no-store' });
  if (!response.ok || !response.body) throw new Error(`${response.status}`);
  setStatus('Live');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { type: 'message', data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (event.id !== null) live.lastEventId = event.id;
        if (event.data.length > 0) handleStreamEvent(event.type, event.data.join('\n'));
        event = { type: 'message', data: [], id: null };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') event.data.push(text);
      else if (field === 'event') event.type = text;
      else if (field === 'id') event.id = text;
      else if (field === 'retry' && /^\d+$/.test(text)) live.retryMs = Number(text);
    }
  }
}

async function connectLive() {
  for (;;) {
    try {
      await readStream();
      setStatus('Live stream lost; reconnecting…');
    } catch (error) {
      setStatus(error.message === '401' ? 'Live stream waits for the API token' : 'Live stream lost; reconnecting…');
    }
    await new Promise((resolve) => { setTimeout(resolve, live.retryMs); });
  }
}

// ---- History ----

function openHistory(bus, address, name, opener) {
  page.opener = opener;
  const to = new Date();
  page.history = { bus, address, name, from: new Date(to.getTime() - 3600e3), to, back: [] };
  const section = document.getElementById('history');
  section.hidden = false;
  document.getElementById('history-title').textContent = `History of ${name}, meter ${address} on ${bus}`;
  document.getElementById('history-title').focus();
  loadHistory();
}

function closeHistory() {
  document.getElementById('history').hidden = true;
  if (page.plot) {
    page.plot.destroy();
    page.plot = null;
  }
  page.history = null;
  if (page.opener && page.opener.isConnected) page.opener.focus();
}

function setRange(from, to, remember = true) {
  const history = page.history;
  if (!history) return;
  if (remember) history.back.push([history.from, history.to]);
  history.from = from;
  history.to = to;
  loadHistory();
}

async function loadHistory() {
  const history = page.history;
  if (!history) return;
  document.getElementById('zoom-out').disabled = history.back.length === 0;
  document.getElementById('range-from').value = dateToWall(history.from);
  document.getElementById('range-to').value = dateToWall(history.to);
  for (const button of document.querySelectorAll('[data-seconds]')) {
    const seconds = Number(button.dataset.seconds);
    const span = (history.to - history.from) / 1000;
    button.setAttribute('aria-pressed', String(Math.abs(span - seconds) < 1 && Date.now() - history.to < 5000));
  }
  const summary = document.getElementById('history-summary');
  summary.textContent = 'Loading…';
  const query = new URLSearchParams({
    bus: history.bus,
    address: String(history.address),
    name: history.name,
    from: history.from.toISOString(),
    to: history.to.toISOString(),
    points: '2000',
  });
  let answer;
  try {
    answer = await getJson(`/api/history?${query}`);
  } catch (error) {
    summary.textContent = `No history: ${error.message}`;
    summary.classList.add('error');
    if (page.plot) page.plot.destroy();
    page.plot = null;
    return;
  }
  if (page.history !== history) return; // closed or moved on meanwhile
  summary.classList.remove('error');
  drawPlot(answer);
}

function drawPlot(answer) {
  const values = answer.last.filter((v) => v !== null);
  const lows = answer.min.filter((v) => v !== null);
  const highs = answer.max.filter((v) => v !== null);
  const unit = answer.unit ? ` ${answer.unit}` : '';
  const suspect = answer.suspect.reduce((a, b) => a + b, 0);
  const failed = answer.failed.reduce((a, b) => a + b, 0);
  const gaps = answer.last.filter((v, i) => v === null && answer.failed[i] === 0).length;
  const range = `${formatTime(answer.from)} to ${formatTime(answer.to)}`;
  const summary = document.getElementById('history-summary');
  if (values.length === 0 && failed === 0) {
    summary.textContent = `${answer.name}: no readings from ${range}.`;
  } else {
    const lastIndex = answer.last_text.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0).pop();
    summary.textContent =
      `${answer.name} from ${range}: lowest ${Math.min(...lows)}${unit}, highest ${Math.max(...highs)}${unit}` +
      (lastIndex === undefined ? '' : `, last ${answer.last_text[lastIndex]}${unit}`) +
      `; ${suspect} suspect and ${failed} failed readings; ${gaps === 1 ? '1 gap' : `${gaps} gaps`}` +
      `; steps of ${formatSpan(Math.max(1, Math.round(answer.bucket_ms / 1000)))}.`;
  }
  const bottom = lows.length ? Math.min(...lows) : 0;
  const data = [
    answer.time,
    answer.min,
    answer.max,
    answer.last,
    answer.last.map((v, i) => (answer.suspect[i] > 0 ? v ?? answer.max[i] : null)),
    answer.failed.map((n) => (n > 0 ? bottom : null)),
  ];
  const container = document.getElementById('plot');
  const width = Math.max(280, container.clientWidth);
  const height = window.innerWidth < 600 ? 260 : 360;
  const marks = (fill) => ({ show: true, size: 9, fill, stroke: fill });
  // The legend's suspect and failed entries: how many readings of the step
  // under the cursor (their marks sit at a value, not at the count).
  const count = (counts, i) => (i === null || i === undefined || answer.time[i] === undefined ? '—' : String(counts[i]));
  const options = {
    width,
    height,
    tzDate: (ts) => (page.zone ? uPlot.tzDate(new Date(ts * 1e3), page.zone) : new Date(ts * 1e3)),
    // The range asked for, not just the span of the data: an hour with
    // readings in its last minutes shows as such.
    scales: { x: { time: true, range: () => [Date.parse(answer.from) / 1000, Date.parse(answer.to) / 1000] } },
    cursor: { drag: { x: true, y: false, setScale: false } },
    series: [
      { label: 'Time' },
      { label: 'Lowest', stroke: 'rgba(31,95,139,0.35)', width: 1, value: (u, v) => (v === null ? '—' : `${v}${unit}`) },
      { label: 'Highest', stroke: 'rgba(31,95,139,0.35)', width: 1, value: (u, v) => (v === null ? '—' : `${v}${unit}`) },
      { label: `${answer.name} (last)`, stroke: '#1f5f8b', width: 2, value: (u, v) => (v === null ? '—' : `${v}${unit}`) },
      { label: 'Suspect', stroke: '#bf8700', paths: () => null, points: marks('#bf8700'), value: (u, v, s, i) => count(answer.suspect, i) },
      { label: 'Failed', stroke: '#cf222e', paths: () => null, points: marks('#cf222e'), value: (u, v, s, i) => count(answer.failed, i) },
    ],
    bands: [{ series: [2, 1], fill: 'rgba(31,95,139,0.12)' }],
    axes: [{ values: (u, splits) => axisTimes(splits), space: 70 }, { label: answer.unit || '', size: 60 }],
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 4) return;
          const from = u.posToVal(u.select.left, 'x');
          const to = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          setRange(new Date(from * 1000), new Date(to * 1000));
        },
      ],
    },
  };
  if (page.plot) page.plot.destroy();
  container.replaceChildren();
  page.plot = new uPlot(options, data, container);
  page.plot.over.addEventListener('dblclick', zoomOut);
}

// Tick labels on the 24-hour clock of the logger's zone: the date where the
// ticks are days apart, seconds where they are less than a minute apart.
function axisTimes(splits) {
  const step = splits.length > 1 ? splits[1] - splits[0] : 3600;
  const options =
    step >= 86400
      ? { month: '2-digit', day: '2-digit' }
      : step >= 3600 * 6
        ? { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }
        : step >= 60
          ? { hour: '2-digit', minute: '2-digit' }
          : { hour: '2-digit', minute: '2-digit', second: '2-digit' };
  const format = formatter(options);
  return splits.map((seconds) => format.format(new Date(seconds * 1000)));
}

function zoomOut() {
  const history = page.history;
  if (!history || history.back.length === 0) return;
  const [from, to] = history.back.pop();
  setRange(from, to, false);
}

// ---- Start ----

function start() {
  setUpTokenForm();
  document.getElementById('history-close').addEventListener('click', closeHistory);
  document.getElementById('zoom-out').addEventListener('click', zoomOut);
  for (const button of document.querySelectorAll('[data-seconds]')) {
    button.addEventListener('click', () => {
      const to = new Date();
      setRange(new Date(to.getTime() - Number(button.dataset.seconds) * 1000), to);
    });
  }
  document.getElementById('range-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const from = wallToDate(document.getElementById('range-from').value);
    const to = wallToDate(document.getElementById('range-to').value);
    const summary = document.getElementById('history-summary');
    if (!(from < to)) {
      summary.textContent = 'The range is empty: “From” must be before “To”.';
      summary.classList.add('error');
      return;
    }
    setRange(from, to);
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && page.history) closeHistory();
  });
  window.addEventListener('resize', () => {
    const container = document.getElementById('plot');
    if (page.plot) page.plot.setSize({ width: Math.max(280, container.clientWidth), height: window.innerWidth < 600 ? 260 : 360 });
  });
  refreshBuses().then(loadLatest);
  connectLive();
  setInterval(refreshBuses, REFRESH_MS);
  // Ages and staleness move on between readings.
  setInterval(renderValues, 1000);
}

start();
