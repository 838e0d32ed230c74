// The Train page's loss and accuracy curves, drawn on one canvas: a refresh while a run trains costs the
// browser a redraw of a few hundred points, not a Plotly figure (README, "What a user waits for").
// data: nnapp.charts.curve_series plus x_max (the x axis' end, in epochs) and note (text for an empty chart);
// with live ({url, status, done, text, soon}) it also draws the run's progress bar and polls url (panels/live.py)
// for the bar and the curves, and sends the trigger "ended" when the run's status is no longer the one it
// was drawn with (or the route stops answering): Streamlit reruns the page only then.

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 10000;
// Before the first step, and within panels/live.py's SOON of the ETA, the next poll follows at once and asks
// the route to hold its answer until the run's stage changes (at most HOLD, 0.5 s): the result shows when stored.
const POLL_SOON_MS = 20;
const POLL_UNHELD_MS = 250; // a held poll answered at once with nothing new (a route that does not hold): not a busy loop
const TRAIN = "#1f77b4";
const VAL = "#ff7f0e";
const HEIGHT = 330;
const LEGEND = [
  ["train (step)", TRAIN, 0.25, 1],
  ["train (smoothed)", TRAIN, 1, 2],
  ["validation", VAL, 1, 2],
];

// Whether a CSS colour ("#0f172a", "rgb(15, 23, 42)") is dark: the dark theme's background.
const darkness = new Map();
function dark(colour) {
  if (!darkness.has(colour)) darkness.set(colour, measureDark(colour));
  return darkness.get(colour);
}

function measureDark(colour) {
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = (colour || "").trim() || "#ffffff";
  const hex = probe.fillStyle.startsWith("#") ? probe.fillStyle.slice(1) : "ffffff";
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128;
}

function niceStep(span, target) {
  const raw = span / Math.max(target, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function label(v) {
  return String(Number(v.toPrecision(6)));
}

function ticks(lo, hi, target) {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, target);
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

// Log axis for the loss: whole decades around what is drawn, ticks at powers of ten (-2..1 when empty).
function lossRange(ys) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const y of ys) if (y !== null && y > 0) { lo = Math.min(lo, Math.log10(y)); hi = Math.max(hi, Math.log10(y)); }
  if (lo === Infinity) return [-2, 1];
  lo = Math.floor(lo);
  hi = Math.max(Math.ceil(hi), lo + 1);
  return [lo, hi];
}

function panels(width) {
  const gap = 40;
  const w = (width - gap) / 2;
  return [0, 1].map((i) => ({ left: i * (w + gap) + 52, top: 34, width: w - 62, height: HEIGHT - 34 - 74 }));
}

function draw(state, hover) {
  const { canvas, data } = state;
  const width = canvas.parentElement.clientWidth || 600;
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = HEIGHT + "px";
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, HEIGHT);
  const style = getComputedStyle(canvas);
  const ink = style.color || "#31333f";
  const font = style.fontFamily || "sans-serif";
  const xMax = data.x_max > 0 ? data.x_max : 1;
  const loss = data.loss;
  const [logLo, logHi] = lossRange([...loss.raw, ...loss.val]);
  const [accLo, accHi] = data.acc_range;
  const axes = [
    { metric: loss, y: (v) => (v !== null && v > 0 ? (Math.log10(v) - logLo) / (logHi - logLo) : null),
      ticks: ticks(logLo, logHi, 4).filter(Number.isInteger).map((e) => [(e - logLo) / (logHi - logLo), label(10 ** e)]) },
    { metric: data.acc, y: (v) => (v === null ? null : (v - accLo) / (accHi - accLo || 1)),
      ticks: ticks(accLo, accHi, 5).map((v) => [(v - accLo) / (accHi - accLo || 1), label(v)]) },
  ];
  const xTicks = ticks(0, xMax, 6);
  const rawAlpha = dark(style.getPropertyValue("--nnapp-paper")) ? 0.45 : 0.25; // the faint steps, visible on either
  panels(width).forEach((p, i) => {
    const axis = axes[i];
    const px = (x) => p.left + (x / xMax) * p.width;
    const py = (f) => p.top + (1 - f) * p.height;
    ctx.font = `14px ${font}`;
    ctx.fillStyle = ink;
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(data.titles[i], p.left + p.width / 2, p.top - 14, p.width + 50);
    ctx.font = `12px ${font}`;
    ctx.strokeStyle = ink;
    ctx.globalAlpha = 0.12;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [f] of axis.ticks) { ctx.moveTo(p.left, py(f)); ctx.lineTo(p.left + p.width, py(f)); }
    for (const x of xTicks) { ctx.moveTo(px(x), p.top); ctx.lineTo(px(x), p.top + p.height); }
    ctx.stroke();
    ctx.globalAlpha = 0.75;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const [f, text] of axis.ticks) ctx.fillText(text, p.left - 6, py(f));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const x of xTicks) ctx.fillText(label(x), px(x), p.top + p.height + 6);
    ctx.fillText("epoch", p.left + p.width / 2, p.top + p.height + 24);
    ctx.globalAlpha = 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(p.left - 5, p.top - 5, p.width + 10, p.height + 10); // room for a marker at an edge
    ctx.clip();
    const series = [
      [data.step_x, axis.metric.raw, TRAIN, rawAlpha, 1, false],
      [data.step_x, axis.metric.smoothed, TRAIN, 1, 2, false],
      [data.epoch_x, axis.metric.val, VAL, 1, 2, true],
    ];
    for (const [xs, ys, color, alpha, lineWidth, markers] of series) {
      ctx.strokeStyle = ctx.fillStyle = color;
      ctx.globalAlpha = alpha;
      ctx.lineWidth = lineWidth;
      ctx.beginPath();
      let pen = false;
      for (let k = 0; k < xs.length; k++) {
        const f = axis.y(ys[k]);
        if (f === null || !Number.isFinite(f)) { pen = false; continue; }
        if (pen) ctx.lineTo(px(xs[k]), py(f)); else ctx.moveTo(px(xs[k]), py(f));
        pen = true;
      }
      ctx.stroke();
      if (markers) {
        for (let k = 0; k < xs.length; k++) {
          const f = axis.y(ys[k]);
          if (f === null || !Number.isFinite(f)) continue;
          ctx.beginPath();
          ctx.arc(px(xs[k]), py(f), 3.5, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
    ctx.restore();
    ctx.globalAlpha = 1;
    if (hover && hover.panel === i) drawHover(ctx, state, p, axis, px, py, hover, font, ink);
  });
  // legend, centred under the panels
  ctx.font = `13px ${font}`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  const widths = LEGEND.map(([name]) => 34 + ctx.measureText(name).width + 18);
  let x = (width - widths.reduce((a, b) => a + b, 0)) / 2;
  const y = HEIGHT - 14;
  LEGEND.forEach(([name, color, alpha, lineWidth], k) => {
    ctx.strokeStyle = color;
    ctx.globalAlpha = alpha < 1 ? rawAlpha : alpha;
    ctx.lineWidth = lineWidth;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 28, y);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = ink;
    ctx.fillText(name, x + 34, y);
    x += widths[k];
  });
  if (data.note) {
    ctx.font = `14px ${font}`;
    ctx.fillStyle = ink;
    ctx.globalAlpha = 0.65;
    ctx.textAlign = "center";
    ctx.fillText(data.note, width / 2, 34 + (HEIGHT - 108) / 2);
    ctx.globalAlpha = 1;
  }
}

// The nearest train step under the pointer, with its values and the last validation before it.
function drawHover(ctx, state, p, axis, px, py, hover, font, ink) {
  const xs = state.data.step_x;
  if (!xs.length) return;
  const target = ((hover.x - p.left) / p.width) * (state.data.x_max || 1);
  let k = 0;
  while (k + 1 < xs.length && Math.abs(xs[k + 1] - target) <= Math.abs(xs[k] - target)) k++;
  const x = px(xs[k]);
  ctx.strokeStyle = ink;
  ctx.globalAlpha = 0.4;
  ctx.beginPath();
  ctx.moveTo(x, p.top);
  ctx.lineTo(x, p.top + p.height);
  ctx.stroke();
  ctx.globalAlpha = 1;
  const value = (v) => (v === null ? "–" : Number(v.toPrecision(4)).toString());
  const lines = [`epoch ${xs[k].toFixed(2)}`, `train ${value(axis.metric.raw[k])} (smoothed ${value(axis.metric.smoothed[k])})`];
  const ex = state.data.epoch_x;
  let e = -1;
  for (let j = 0; j < ex.length; j++) if (ex[j] <= xs[k] + 1e-9) e = j;
  if (e >= 0) lines.push(`validation ${value(axis.metric.val[e])} (epoch ${ex[e]})`);
  ctx.font = `12px ${font}`;
  const w = Math.max(...lines.map((t) => ctx.measureText(t).width)) + 12;
  const left = x + w + 8 > p.left + p.width ? x - w - 8 : x + 8;
  // the page's own background and text colours: legible in the light and the dark theme
  ctx.fillStyle = getComputedStyle(state.canvas).getPropertyValue("--nnapp-paper").trim() || "#ffffff";
  ctx.globalAlpha = 0.92;
  ctx.fillRect(left, p.top + 4, w, lines.length * 16 + 8);
  ctx.globalAlpha = 1;
  ctx.fillStyle = ink;
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  lines.forEach((t, j) => ctx.fillText(t, left + 6, p.top + 8 + j * 16));
}

function showBar(state, live) {
  const { bar } = state;
  bar.root.hidden = !live;
  if (!live) return;
  bar.text.textContent = live.text;
  bar.fill.style.width = `${Math.round(Math.min(Math.max(live.done, 0), 1) * 1000) / 10}%`;
  bar.root.setAttribute("aria-valuenow", String(Math.round(live.done * 100)));
}

// A text alternative with the key numbers: what a screen reader says for the chart.
function describe(data) {
  if (!data.step_x.length) return `Loss and accuracy curves: ${data.note || "no steps yet"}`;
  const last = (ys) => [...ys].reverse().find((v) => v !== null);
  const val = last(data.acc.val);
  const train = last(data.acc.smoothed);
  const pct = (v) => `${(100 * v).toFixed(1)}%`;
  return `Loss and accuracy over ${data.step_x.length} training steps, ${data.epoch_x.length} epochs ended; ` +
    (val !== undefined ? `validation accuracy ${pct(val)}` : `train accuracy ${train !== undefined ? pct(train) : "not yet measured"}`);
}

function setData(state, data) {
  state.data = data;
  state.canvas.setAttribute("aria-label", describe(data));
  state.canvas.dataset.points = JSON.stringify([data.step_x.length, data.epoch_x.length]);
  draw(state, null);
}

function stopPolling(state) {
  clearTimeout(state.timer);
  state.polling = null;
}

function endPolling(state, why) {
  const url = state.polling;
  stopPolling(state);
  state.trigger("ended", `${why} ${url} ${Date.now()}`); // a new value each time: each one reruns
}

function schedule(state, url, live) {
  const unheld = state.since && live.sig === state.since && performance.now() - state.asked < 100;
  state.since = live.soon ? live.sig : null;
  const wait = !live.soon ? POLL_MS : unheld ? POLL_UNHELD_MS : POLL_SOON_MS;
  state.timer = setTimeout(() => poll(state, url), wait);
}

async function poll(state, url) {
  if (state.polling !== url) return;
  if (document.hidden) { state.timer = setTimeout(() => poll(state, url), POLL_MS); return; }
  let body = null;
  const abort = new AbortController();
  const timeout = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS); // a request held open counts as failed
  const held = state.since ? `${url}&since=${encodeURIComponent(state.since)}&wait=1` : url;
  state.asked = performance.now();
  try {
    const response = await fetch(held, { cache: "no-store", credentials: "same-origin", signal: abort.signal });
    if (response.ok) body = await response.json();
  } catch (err) {
    body = null;
  } finally {
    clearTimeout(timeout);
  }
  if (state.polling !== url) return; // replaced or unmounted meanwhile
  if (!body) {
    state.failures += 1;
    if (state.failures >= 3) endPolling(state, "unreachable");
    else state.timer = setTimeout(() => poll(state, url), POLL_MS); // not held: the route may be failing fast
    return;
  }
  state.failures = 0;
  if (body.data) setData(state, body.data);
  if (body.text !== undefined) showBar(state, body);
  if (!body.active || body.status !== state.liveStatus) { endPolling(state, "ended"); return; }
  schedule(state, url, body);
}

export default function (component) {
  const { data, parentElement } = component;
  let state = parentElement.__curves;
  if (!state) {
    const canvas = document.createElement("canvas");
    canvas.className = "nnapp-curves";
    canvas.setAttribute("role", "img");
    const root = parentElement.querySelector(".curves-root") || parentElement;
    root.appendChild(canvas);
    const barRoot = parentElement.querySelector(".live-bar");
    const bar = { root: barRoot, text: barRoot.querySelector(".live-text"), fill: barRoot.querySelector(".live-fill") };
    state = parentElement.__curves = { canvas, data, bar, polling: null, failures: 0, timer: null };
    canvas.addEventListener("mousemove", (ev) => {
      const box = canvas.getBoundingClientRect();
      const x = ev.clientX - box.left;
      const panel = panels(box.width).findIndex((p) => x >= p.left && x <= p.left + p.width);
      draw(state, panel >= 0 ? { panel, x } : null);
    });
    canvas.addEventListener("mouseleave", () => draw(state, null));
    state.resize = new ResizeObserver(() => draw(state, null));
    state.resize.observe(root);
  }
  state.trigger = component.setTriggerValue;
  const { live, ...series } = data;
  setData(state, series);
  showBar(state, live || null);
  if (!live) stopPolling(state);
  else if (state.polling !== live.url) {
    stopPolling(state);
    state.polling = live.url;
    state.liveStatus = live.status;
    state.failures = 0;
    state.since = null;
    schedule(state, live.url, live);
  }
  return () => {
    stopPolling(state);
    state.resize.disconnect();
    state.canvas.remove();
    delete parentElement.__curves;
  };
}
