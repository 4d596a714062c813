// camserve's web page: choose or drop an image, pick model, method, layer and class; the page asks
// POST /cam for JSON with the overlay PNG (include_png=true) and shows it beside the original. Long
// methods (Score-CAM, Ablation-CAM, aug_smooth) go through a job (POST /jobs) whose events drive a
// progress bar, with a Cancel button (DELETE /jobs/{id}). When the server asks for an API key (401) the
// page asks for one and keeps it in this tab only (sessionStorage).
// Other tabs look inside the model with the same image, model and layer: feature maps (POST /features),
// histograms (POST /histograms), the layer summary (GET /models/{id}/summary) and the graph (GET /models/{id}/graph).
const $ = (id) => document.getElementById(id);
const el = {
  file: $('file'), drop: $('drop'), model: $('model'), modelInfo: $('model-info'), method: $('method'), layer: $('layer'),
  classes: $('classes'), alpha: $('alpha'), alphaValue: $('alpha-value'), colormap: $('colormap'),
  original: $('original'), overlay: $('overlay'), explained: $('explained'), status: $('status'),
  tabs: [...document.querySelectorAll('.tabs [role=tab]')],
  features: $('features'), histograms: $('histograms'), summary: $('summary'), graph: $('graph'),
  augSmooth: $('aug-smooth'), job: $('job'), jobProgress: $('job-progress'), jobText: $('job-text'), cancel: $('cancel'),
  keyForm: $('key-form'), apiKey: $('api-key'),
};

/** Methods that take many forward runs: they go through a job with progress and cancellation. */
const LONG_METHODS = new Set(['scorecam', 'ablationcam']);
const KEY_STORAGE = 'camserve.apiKey';

/** fetch with the API key of this tab, if any; a 401 asks for one. */
async function api(url, init = {}) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const headers = { ...(init.headers ?? {}), ...(key ? { Authorization: `Bearer ${key}` } : {}) };
  const res = await fetch(url, { ...init, headers });
  if (res.status === 401) askForKey(key !== null);
  return res;
}

function askForKey(rejected) {
  el.keyForm.hidden = false;
  el.apiKey.focus();
  setStatus(rejected ? 'The API key was refused: enter another one.' : 'This server needs an API key: enter it above.', true);
}

const state = {
  image: null,         // the chosen File
  models: new Map(),   // id → summary from GET /models
  details: null,       // GET /models/{id} of the chosen model
  target: null,        // class index chosen by the user (null: the top class)
  predictions: [],
  inflight: null,      // AbortController of the running request
  job: null,           // { id, ac } of the running job
  tab: 'explain',      // the shown tab
  stale: false,        // something changed while another tab was shown: explain again on return
  inspectInflight: null, // AbortController of the running inspection request
  shown: {},           // tab → key of the request whose result it shows
};

/** Methods of input gradients that use no layer (the others take the chosen layer; guided-gradcam too). */
const INPUT_METHODS = new Set(['saliency', 'integrated-gradients', 'smoothgrad', 'guided-backprop', 'fullgrad']);

function option(value, text, extra = {}) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  Object.assign(o, extra);
  return o;
}

function setStatus(text, isError = false) {
  el.status.textContent = text;
  el.status.classList.toggle('error', isError);
}

/** problem+json → one readable line */
async function problemText(res) {
  try {
    const p = await res.json();
    let text = `${p.title ?? res.statusText} (${res.status}): ${p.detail ?? ''}`;
    if (p.parameter) text += ` [parameter ${p.parameter}]`;
    return text;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}

function className(index) {
  return state.details?.labels?.[index] ?? `class ${index}`;
}

async function loadModels() {
  const res = await api('models');
  if (!res.ok) throw new Error(await problemText(res));
  const list = await res.json();
  el.model.replaceChildren();
  for (const m of list.models) {
    state.models.set(m.id, m);
    const label = m.status === 'ready' ? m.id + (m.description ? ` — ${m.description}` : '') : `${m.id} (failed to load)`;
    el.model.append(option(m.id, label, { disabled: m.status !== 'ready', title: m.status === 'ready' ? '' : m.error }));
  }
  if (list.default) el.model.value = list.default;
  el.method.replaceChildren(...list.methods.map((m) => option(m, m)));
  el.method.value = 'gradcam';
  el.colormap.replaceChildren(...list.colormaps.map((c) => option(c, c)));
  el.colormap.value = 'jet';
  await loadModel();
}

async function loadModel() {
  const id = el.model.value;
  if (!id) return;
  const res = await api(`models/${encodeURIComponent(id)}`);
  if (!res.ok) throw new Error(await problemText(res));
  state.details = await res.json();
  const d = state.details;
  el.modelInfo.textContent = `${d.num_classes} classes, input ${d.input.size.width}×${d.input.size.height} ${d.input.channels}` +
    (d.multi_label ? ', multi-label (sigmoid scores)' : '') + (d.warning ? ` — ${d.warning}` : '');
  el.layer.replaceChildren(option('', `default (${d.default_layer})`));
  for (const c of d.candidate_layers) {
    if (c.name === d.default_layer) continue;
    el.layer.append(option(c.name, `${c.name}  [${c.dims.slice(1).join('×')}]`));
  }
  state.target = null;
  state.predictions = [];
  renderClasses();
}

function renderClasses(explained) {
  el.classes.replaceChildren();
  if (!state.predictions.length) {
    const li = document.createElement('li');
    li.className = 'hint';
    li.textContent = 'Top classes appear here once an image is explained.';
    el.classes.append(li);
    return;
  }
  for (const p of state.predictions) {
    const li = document.createElement('li');
    const label = document.createElement('label');
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = 'target';
    radio.value = String(p.index);
    radio.checked = p.index === explained;
    radio.addEventListener('change', () => {
      state.target = p.index;
      void update();
    });
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = p.label ?? `class ${p.index}`;
    name.title = `index ${p.index}`;
    const bar = document.createElement('span');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${(p.score * 100).toFixed(1)}%`;
    bar.append(fill);
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = `${(p.score * 100).toFixed(1)}%`;
    label.append(radio, name, bar, score);
    li.append(label);
    el.classes.append(li);
  }
}

async function explain() {
  if (!state.image || !state.details) return;
  state.inflight?.abort();
  stopJob();
  const ac = new AbortController();
  state.inflight = ac;
  const form = new FormData();
  form.append('image', state.image);
  form.append('model', el.model.value);
  form.append('method', el.method.value);
  if (el.layer.value && !INPUT_METHODS.has(el.method.value)) form.append('layer', el.layer.value);
  if (state.target !== null && el.method.value !== 'dff') form.append('target', String(state.target));
  form.append('alpha', el.alpha.value);
  form.append('colormap', el.colormap.value);
  if (el.augSmooth.checked) form.append('aug_smooth', 'true');
  form.append('output', 'json');
  form.append('include_png', 'true');
  if (LONG_METHODS.has(el.method.value) || el.augSmooth.checked) return explainAsJob(form, ac);
  setStatus(`Explaining with ${el.method.value}…`);
  let res;
  try {
    res = await api('cam', { method: 'POST', body: form, signal: ac.signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (ac.signal.aborted) return;
    setStatus(`Request failed: ${e.message}`, true);
    return;
  }
  if (ac.signal.aborted) return;
  state.inflight = null;
  if (!res.ok) {
    setStatus(await problemText(res), true);
    return;
  }
  showResult(await res.json());
}

/** A long explanation as a job: its events move the progress bar; Cancel deletes it. */
async function explainAsJob(form, ac) {
  setStatus(`Queueing ${el.method.value}…`);
  let res;
  try {
    res = await api('jobs', { method: 'POST', body: form, signal: ac.signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (!ac.signal.aborted) setStatus(`Request failed: ${e.message}`, true);
    return;
  }
  if (ac.signal.aborted) return;
  if (!res.ok) {
    setStatus(await problemText(res), true);
    return;
  }
  const job = await res.json();
  state.job = { id: job.id, ac };
  showProgress(job);
  try {
    const events = await api(`jobs/${job.id}/events`, { signal: ac.signal, headers: { Accept: 'text/event-stream' } });
    if (!events.ok) throw new Error(await problemText(events));
    const reader = events.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data) onJobEvent(JSON.parse(data.slice(6)), ac);
      }
    }
  } catch (e) {
    if (ac.signal.aborted) return;
    setStatus(`Following the job failed: ${e.message}`, true);
  }
}

function onJobEvent(job, ac) {
  if (ac.signal.aborted || state.job?.id !== job.id) return;
  showProgress(job);
  if (job.state === 'done') {
    endJob();
    state.inflight = null;
    showResult(job.results[0].result);
  } else if (job.state === 'failed') {
    endJob();
    setStatus(`${job.error?.title ?? 'Failed'} (${job.error?.status ?? ''}): ${job.error?.detail ?? ''}`, true);
  } else if (job.state === 'cancelled') {
    endJob();
    setStatus('Cancelled.');
  }
}

function showProgress(job) {
  const p = job.progress;
  el.job.hidden = false;
  el.jobProgress.max = Math.max(1, p.total);
  el.jobProgress.value = p.done;
  el.jobText.textContent = job.state === 'queued' ? 'queued…'
    : `${p.done} / ${p.total} runs${p.eta_s !== null && job.state === 'running' ? `, about ${Math.ceil(p.eta_s)} s left` : ''}`;
  if (job.state === 'running') setStatus(`Explaining with ${job.method} (a job)…`);
}

function endJob() {
  state.job = null;
  el.job.hidden = true;
}

/** Cancels the running job, if any (a new explanation replaces it). */
function stopJob() {
  const job = state.job;
  if (!job) return;
  endJob();
  job.ac.abort();
  void api(`jobs/${job.id}`, { method: 'DELETE' }).catch(() => undefined);
}

el.cancel.addEventListener('click', () => {
  const job = state.job;
  if (!job) return;
  el.cancel.disabled = true;
  setStatus('Cancelling…');
  void api(`jobs/${job.id}`, { method: 'DELETE' }).finally(() => { el.cancel.disabled = false; });
});

function showResult(r) {
  if (r.concepts) {
    // DFF: one picture of the concepts, each named by its best classes.
    el.overlay.src = `data:image/png;base64,${r.png}`;
    el.overlay.alt = `${r.concepts.length} concepts of ${r.layers[0]}`;
    el.overlay.hidden = false;
    el.explained.textContent = `dff: ${r.concepts.map((c) => `${c.index}: ${c.classes.map((k) => k.label ?? `class ${k.index}`).join('/')}`).join('; ')}`;
    state.predictions = r.predictions;
    renderClasses(null);
    setStatus(`${r.model}, layer ${r.layers.join(', ')} — ${r.concepts.length} concepts, ${Math.round(r.timings_ms.total_ms ?? Object.values(r.timings_ms).reduce((x, y) => x + y, 0))} ms`);
    return;
  }
  const e = r.explanations[0];
  el.overlay.src = `data:image/png;base64,${e.png}`;
  el.overlay.alt = `${r.method} map of ${className(e.target.index)}`;
  el.overlay.hidden = false;
  el.explained.textContent = `${r.method}: ${e.target.label ?? `class ${e.target.index}`} (${(e.target.score * 100).toFixed(1)}%)`;
  // Keep the explained class in the list even when it is not among the top 5.
  state.predictions = r.predictions.some((p) => p.index === e.target.index) ? r.predictions : [...r.predictions, e.target];
  renderClasses(e.target.index);
  const t = r.timings_ms;
  // A job's result has no total (it ran in the background): the sum of its stages.
  const total = t.total_ms ?? Object.values(t).reduce((a, b) => a + b, 0);
  setStatus(`${r.model}, layer ${r.layers.join(', ')} — ${r.image.width}×${r.image.height} px, ${Math.round(total)} ms` +
    ` (model ${Math.round((t.forward_ms ?? 0) + (t.backward_ms ?? 0) + (t.cam_ms ?? 0))} ms)`);
}

// ---------------------------------------------------------------- tabs

/** A selection changed: explain on the Explain tab, else refresh the shown tab (and explain on return). */
function update() {
  if (state.tab === 'explain') {
    state.stale = false;
    return explain();
  }
  state.stale = true;
  return inspect();
}

function showTab(name) {
  if (!name || name === state.tab) return;
  state.tab = name;
  for (const tab of el.tabs) {
    const on = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(on));
    $(tab.getAttribute('aria-controls')).hidden = !on;
  }
  state.inspectInflight?.abort();
  if (name === 'explain') {
    if (state.stale) void update();
    else setStatus(state.image ? '' : 'Choose an image.');
    return;
  }
  void inspect();
}

/** The request the shown inspection tab needs now: { key, url, init, needsImage }. */
function inspectRequest(tab) {
  const model = el.model.value;
  const id = encodeURIComponent(model);
  if (tab === 'summary') {
    return { key: model, url: `models/${id}/summary`, init: { headers: { Accept: 'text/plain' } } };
  }
  if (tab === 'graph') {
    return { key: model, url: `models/${id}/graph?collapse=scope`, init: { headers: { Accept: 'image/svg+xml' } } };
  }
  const form = new FormData();
  form.append('image', state.image);
  form.append('model', model);
  if (el.layer.value) form.append('layer', el.layer.value);
  if (tab === 'features') {
    form.append('normalize', 'true');
    form.append('scale_each', 'true');
    form.append('channels', 'top:16');
    form.append('colormap', el.colormap.value);
  } else if (state.target !== null) {
    form.append('target', String(state.target));
  }
  form.append('output', 'png');
  const key = [model, el.layer.value, tab === 'features' ? el.colormap.value : state.target].join('|');
  return { key, url: tab, init: { method: 'POST', body: form, headers: { Accept: 'image/png' } }, needsImage: true };
}

const INSPECT_WHAT = { features: 'feature maps', histograms: 'histograms', summary: 'the summary', graph: 'the graph' };

async function inspect() {
  const tab = state.tab;
  if (tab === 'explain' || !state.details) return;
  const needsImage = tab === 'features' || tab === 'histograms';
  if (needsImage && !state.image) {
    setStatus('Choose an image.');
    return;
  }
  const req = inspectRequest(tab);
  const key = (req.needsImage ? `${state.image.name}:${state.image.size}:${state.image.lastModified}|` : '') + req.key;
  if (state.shown[tab] === key) {
    setStatus('');
    return;
  }
  state.inspectInflight?.abort();
  const ac = new AbortController();
  state.inspectInflight = ac;
  setStatus(`Loading ${INSPECT_WHAT[tab]}…`);
  const started = performance.now();
  let res;
  let body;
  try {
    res = await api(req.url, { ...req.init, signal: ac.signal });
    if (res.ok) body = tab === 'summary' ? await res.text() : await res.blob();
  } catch (e) {
    if (ac.signal.aborted) return;
    setStatus(`Request failed: ${e.message}`, true);
    return;
  }
  if (ac.signal.aborted) return;
  state.inspectInflight = null;
  if (!res.ok) {
    state.shown[tab] = null;
    setStatus(await problemText(res), true);
    return;
  }
  if (tab === 'summary') {
    el.summary.textContent = body;
  } else {
    const img = el[tab];
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(body);
    img.alt = tab === 'graph' ? `graph of ${el.model.value}` : `${INSPECT_WHAT[tab]} of ${el.model.value}`;
    img.hidden = false;
  }
  state.shown[tab] = key;
  const layers = res.headers.get('X-Camserve-Layers');
  const layer = layers ? decodeURIComponent(layers).replaceAll(',', ', ') : (el.layer.value || state.details.default_layer);
  setStatus(`${el.model.value}${needsImage ? `, layer ${layer}` : ''} — ${Math.round(performance.now() - started)} ms`);
}

function chooseFile(file) {
  if (!file) return;
  state.image = file;
  state.target = null;
  if (el.original.src) URL.revokeObjectURL(el.original.src);
  el.original.src = URL.createObjectURL(file);
  el.original.alt = file.name;
  el.original.hidden = false;
  el.overlay.hidden = true;
  state.stale = true;
  void update();
}

el.file.addEventListener('change', () => chooseFile(el.file.files?.[0]));
for (const type of ['dragenter', 'dragover']) {
  el.drop.addEventListener(type, (e) => { e.preventDefault(); el.drop.classList.add('over'); });
}
for (const type of ['dragleave', 'drop']) {
  el.drop.addEventListener(type, (e) => { e.preventDefault(); el.drop.classList.remove('over'); });
}
el.drop.addEventListener('drop', (e) => chooseFile(e.dataTransfer?.files?.[0]));
el.model.addEventListener('change', () => { loadModel().then(update, (e) => setStatus(e.message, true)); });
el.method.addEventListener('change', () => void update());
el.layer.addEventListener('change', () => void update());
el.colormap.addEventListener('change', () => void update());
el.alpha.addEventListener('input', () => { el.alphaValue.textContent = el.alpha.value; });
el.alpha.addEventListener('change', () => void update());
el.augSmooth.addEventListener('change', () => void update());
el.keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = el.apiKey.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  el.apiKey.value = '';
  el.keyForm.hidden = true;
  loadModels().then(() => { setStatus(state.image ? '' : 'Choose an image.'); if (state.image) void update(); }, (err) => {
    if (el.keyForm.hidden) setStatus(`Cannot load the models: ${err.message}`, true);
  });
});
for (const tab of el.tabs) tab.addEventListener('click', () => showTab(tab.dataset.tab));

loadModels().then(() => setStatus('Choose an image.'), (e) => {
  if (el.keyForm.hidden) setStatus(`Cannot load the models: ${e.message}`, true);
});
