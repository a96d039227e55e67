// The ROI editor's script (served as /page.js: the page's Content-Security-Policy allows no inline script).
// Text that comes from data (region names, spec names, messages) is inserted with textContent only.
"use strict";
const SCALE = 3;
const state = { info: null, arrays: null, edits: [], history: [], drawing: [], brush: null, busy: 0 };
const $ = (id) => document.getElementById(id);

function message(text, kind) { const m = $("message"); m.textContent = text || ""; m.className = text ? kind : ""; }

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
  const response = await fetch(url, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function extent(array) {
  let lo = Infinity, hi = -Infinity;
  for (const row of array) for (const v of row) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

function colour(t, map) {
  t = Math.min(1, Math.max(0, t));
  if (map === "hot") return [255 * Math.min(1, 3 * t), 255 * Math.min(1, Math.max(0, 3 * t - 1)), 255 * Math.max(0, 3 * t - 2)];
  if (map === "diverging") return t < 0.5 ? [255 * 2 * t, 255 * 2 * t, 255] : [255, 255 * 2 * (1 - t), 255 * 2 * (1 - t)];
  return [255 * t, 255 * t, 255 * t];
}

function draw(canvasId, array, map, lo, hi) {
  const canvas = $(canvasId), ny = array.length, nx = array[0].length;
  canvas.width = nx; canvas.height = ny;
  canvas.style.width = (nx * SCALE) + "px"; canvas.style.height = (ny * SCALE) + "px";
  if (lo === undefined) [lo, hi] = extent(array);
  if (map === "diverging") { const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1; lo = -m; hi = m; }
  const span = (hi - lo) || 1, context = canvas.getContext("2d"), image = context.createImageData(nx, ny);
  for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) {
    const [r, g, b] = colour((array[i][j] - lo) / span, map), p = 4 * (i * nx + j);
    image.data[p] = r; image.data[p + 1] = g; image.data[p + 2] = b; image.data[p + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

function jointExtent(a, b) {
  const [alo, ahi] = extent(a), [blo, bhi] = extent(b);
  return [Math.min(alo, blo), Math.max(ahi, bhi)];
}

function labelColour(label) {
  const hue = (label * 137.508) % 360;
  return `hsla(${hue}, 80%, 55%, 0.45)`;
}

function drawLabels() {
  const labels = state.arrays.labels, ny = labels.length, nx = labels[0].length, canvas = $("labels");
  canvas.width = nx; canvas.height = ny;
  canvas.style.width = (nx * SCALE) + "px"; canvas.style.height = (ny * SCALE) + "px";
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, nx, ny);
  if (!$("overlay").checked) return;
  for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) {
    if (labels[i][j] > 0) { context.fillStyle = labelColour(labels[i][j]); context.fillRect(j, i, 1, 1); }
  }
}

function drawImage() {
  const [lo, hi] = extent(state.arrays.image);
  const level = lo + (hi - lo) * $("level").value / 100, width = (hi - lo) * $("width").value / 100 || 1;
  draw("image", state.arrays.image, "gray", level - width / 2, level + width / 2);
  drawLabels();
  const stack = $("image-stack"), nx = state.arrays.image[0].length, ny = state.arrays.image.length;
  stack.style.width = (nx * SCALE) + "px"; stack.style.height = (ny * SCALE) + "px";
  const canvas = $("draw");
  canvas.width = nx * SCALE; canvas.height = ny * SCALE;
  canvas.style.width = canvas.width + "px"; canvas.style.height = canvas.height + "px";
  drawSketch();
}

function drawSketch() {
  const canvas = $("draw"), context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#00e5ff"; context.fillStyle = "rgba(0, 229, 255, 0.35)"; context.lineWidth = 2;
  if (state.brush) {
    for (let i = 0; i < state.brush.length; i++) for (let j = 0; j < state.brush[0].length; j++)
      if (state.brush[i][j]) context.fillRect(j * SCALE, i * SCALE, SCALE, SCALE);
  }
  if (state.drawing.length) {
    context.beginPath();
    state.drawing.forEach(([px, py], n) => n ? context.lineTo(px, py) : context.moveTo(px, py));
    context.closePath(); context.stroke();
  }
}

function spec() { return { version: 1, edits: state.edits }; }

function weights() {
  const w = {};
  for (const region of state.info.regions) w[region.name] = region.weight;
  for (const edit of state.edits) {
    if (edit.op === "add") w[edit.region] = edit.weight;
    else if (edit.op === "remove") w[edit.region] = 0;
    else if (edit.op === "scale" && edit.region in w) w[edit.region] = Math.min(1, w[edit.region] * edit.factor);
  }
  return w;
}

function element(tag, properties, children) {
  // a DOM element; text from data goes in as textContent only, never as HTML
  const node = document.createElement(tag);
  Object.assign(node, properties || {});
  for (const child of children || []) node.append(child);
  return node;
}

function renderRegions() {
  const body = $("regions").querySelector("tbody"), w = weights();
  const names = new Set(state.info.regions.map((r) => r.name));
  const rows = state.info.regions.map((r) => [r.name, r.label]);
  for (const edit of state.edits) if (!names.has(edit.region)) { names.add(edit.region); rows.push([edit.region, "drawn"]); }
  body.replaceChildren(...rows.map(([name, label]) => {
    const row = element("tr");
    row.dataset.region = name;
    const title = element("td");
    if (typeof label === "number") {
      const swatch = element("span", { className: "swatch" });
      swatch.style.background = labelColour(label);
      title.append(swatch);
    }
    title.append(String(name));
    const value = element("input", { type: "number", className: "value", min: "0", step: "0.1", value: "1" });
    const button = (kind, text, edit) => {
      const node = element("button", { className: kind, textContent: text });
      node.onclick = () => pushEdit(edit());
      return node;
    };
    row.append(title, element("td", { textContent: String(label) }),
      element("td", { className: "weight", textContent: Number(w[name] ?? 0).toFixed(2) }),
      element("td", {}, [value,
        button("add", "set weight", () => ({ op: "add", region: name, weight: Number(value.value) })),
        button("scale", "scale", () => ({ op: "scale", region: name, factor: Number(value.value) })),
        button("remove", "remove", () => ({ op: "remove", region: name }))]));
    return row;
  }));
  $("spec-json").value = JSON.stringify(spec(), null, 1);
}

async function recompute() {
  state.busy++;
  try {
    const start = performance.now();
    const result = await api("POST", `/api/sample/${$("sample").value}/attention`, { spec: spec(), slice: Number($("slice").value) });
    draw("image-attention", result.image_attention, "hot", 0, 1);
    draw("sinogram-attention", result.sinogram_attention, "hot", 0, 1);
    $("timing").textContent = `attention: ${(result.seconds * 1000).toFixed(0)} ms on the server, ${(performance.now() - start).toFixed(0)} ms in all`;
    return true;
  } catch (error) { message(error.message, "error"); return false; }
  finally { state.busy--; }
}

async function pushEdit(edit) {
  state.edits.push(edit);
  if (await recompute()) { state.history.push(edit); message(`${edit.op} ${edit.region}`, "ok"); renderRegions(); }
  else { state.edits.pop(); await recompute(); renderRegions(); }
}

async function loadSlice() {
  state.busy++;
  try {
    state.arrays = await api("GET", `/api/sample/${$("sample").value}/arrays?slice=${$("slice").value}`);
    drawImage();
    draw("sinogram", state.arrays.sinogram, "gray");
    if (state.arrays.output) {
      $("outputs").classList.remove("hidden");
      draw("output", state.arrays.output, "gray"); draw("target", state.arrays.target, "gray");
      draw("error", state.arrays.error, "diverging");
      if (state.arrays.output_image) {
        draw("output-image", state.arrays.output_image, "gray"); draw("target-image", state.arrays.target_image, "gray");
        draw("image-error", state.arrays.image_error, "diverging");
      }
    }
    await recompute();
  } catch (error) { message(error.message, "error"); }
  finally { state.busy--; }
}

async function applyToModel() {
  const button = $("apply-model");
  button.disabled = true;
  state.busy++;
  message("sampling the model with the edited attention ...", "ok");
  try {
    const result = await api("POST", `/api/sample/${$("sample").value}/apply`, { spec: spec(), slice: Number($("slice").value) });
    const [slo, shi] = jointExtent(result.before_sinogram, result.after_sinogram);
    draw("before-sinogram", result.before_sinogram, "gray", slo, shi);
    draw("after-sinogram", result.after_sinogram, "gray", slo, shi);
    draw("sinogram-change", result.sinogram_change, "diverging");
    const [ilo, ihi] = jointExtent(result.before_image, result.after_image);
    draw("before-image", result.before_image, "gray", ilo, ihi);
    draw("after-image", result.after_image, "gray", ilo, ihi);
    draw("image-change", result.image_change, "diverging");
    $("applied").classList.remove("hidden");
    message(`applied ${result.n_edits} edits to the model in ${result.seconds.toFixed(1)} s`, "ok");
  } catch (error) { message(error.message, "error"); }
  finally { state.busy--; button.disabled = false; }
}

async function loadSample() {
  document.body.dataset.ready = "";
  try {
    state.info = await api("GET", `/api/sample/${$("sample").value}`);
  } catch (error) { message(error.message, "error"); return; }
  $("sample").max = state.info.n_samples - 1;
  $("slice").max = state.info.n_slices - 1;
  if (Number($("slice").value) >= state.info.n_slices) $("slice").value = 0;
  $("slice-value").textContent = $("slice").value;
  fillSpecs(state.info.specs);
  $("model-box").classList.toggle("hidden", !state.info.has_model);
  $("applied").classList.add("hidden");
  state.brush = null; state.drawing = [];
  renderRegions();
  await loadSlice();
  document.body.dataset.ready = String(state.info.index);
}

function fillSpecs(names) {
  $("load-select").replaceChildren(...names.map((name) => element("option", { value: name, textContent: name })));
}

function toMm(px, py) {
  const v = state.info.voxel_size_mm, o = state.info.origin_mm, n = state.info.image_shape, d = n.length;
  const j = px / SCALE - 0.5, i = py / SCALE - 0.5;
  return [(j - (n[d - 1] - 1) / 2) * v[d - 1] + o[d - 1], (i - (n[d - 2] - 1) / 2) * v[d - 2] + o[d - 2]];
}

function paint(px, py) {
  const labels = state.arrays.labels, ny = labels.length, nx = labels[0].length;
  if (!state.brush) state.brush = Array.from({ length: ny }, () => new Array(nx).fill(0));
  const r = Number($("brush").value), ci = Math.floor(py / SCALE), cj = Math.floor(px / SCALE);
  for (let i = ci - r; i <= ci + r; i++) for (let j = cj - r; j <= cj + r; j++)
    if (i >= 0 && j >= 0 && i < ny && j < nx && (i - ci) ** 2 + (j - cj) ** 2 <= r * r) state.brush[i][j] = 1;
  drawSketch();
}

function mode() { return $("mode-brush").checked ? "brush" : "polygon"; }

function setupDrawing() {
  const canvas = $("draw");
  let down = false;
  const position = (event) => { const box = canvas.getBoundingClientRect(); return [event.clientX - box.left, event.clientY - box.top]; };
  canvas.addEventListener("mousedown", (event) => {
    const [px, py] = position(event);
    if (mode() === "polygon") { state.drawing.push([px, py]); drawSketch(); } else { down = true; paint(px, py); }
  });
  canvas.addEventListener("mousemove", (event) => { if (down) paint(...position(event)); });
  window.addEventListener("mouseup", () => { down = false; });
}

function drawnShape() {
  if (mode() === "polygon") {
    if (state.drawing.length < 3) throw new Error("a polygon needs at least 3 vertices: click on the image");
    return { shape: "polygon", vertices_mm: state.drawing.map(([px, py]) => toMm(px, py)) };
  }
  if (!state.brush) throw new Error("paint on the image first");
  if (state.info.image_shape.length === 2) return { shape: "mask", values: state.brush };
  const [nz, ny, nx] = state.info.image_shape, k = Number($("slice").value);
  const values = Array.from({ length: nz }, (_, z) => z === k ? state.brush : Array.from({ length: ny }, () => new Array(nx).fill(0)));
  return { shape: "mask", values };
}

function wire() {
  $("sample").onchange = () => { state.edits = []; state.history = []; loadSample(); };
  $("slice").oninput = () => { $("slice-value").textContent = $("slice").value; };
  $("slice").onchange = loadSlice;
  $("level").oninput = drawImage; $("width").oninput = drawImage; $("overlay").onchange = drawLabels;
  $("finish-draw").onclick = async () => {
    try {
      const edit = { op: "add", region: $("draw-name").value.trim(), weight: Number($("draw-weight").value), drawn: drawnShape() };
      state.drawing = []; state.brush = null; drawSketch();
      await pushEdit(edit);
    } catch (error) { message(error.message, "error"); }
  };
  $("clear-draw").onclick = () => { state.drawing = []; state.brush = null; drawSketch(); };
  $("undo").onclick = async () => {
    if (!state.edits.length) { message("nothing to undo", "error"); return; }
    const edit = state.edits.pop(); renderRegions(); await recompute(); message(`undid ${edit.op} ${edit.region}`, "ok");
  };
  $("reset").onclick = async () => { state.edits = []; renderRegions(); await recompute(); message("all edits removed", "ok"); };
  $("apply-json").onclick = async () => {
    let parsed;
    try { parsed = JSON.parse($("spec-json").value); } catch (error) { message(`malformed JSON: ${error.message}`, "error"); return; }
    const previous = state.edits;
    state.edits = Array.isArray(parsed.edits) ? parsed.edits : [];
    try {
      const result = await api("POST", `/api/sample/${$("sample").value}/attention`, { spec: parsed, slice: Number($("slice").value) });
      draw("image-attention", result.image_attention, "hot", 0, 1);
      draw("sinogram-attention", result.sinogram_attention, "hot", 0, 1);
      renderRegions(); message("spec applied", "ok");
    } catch (error) { state.edits = previous; renderRegions(); message(error.message, "error"); }
  };
  $("save").onclick = async () => {
    try {
      const result = await api("PUT", `/api/specs/${encodeURIComponent($("spec-name").value)}`, spec());
      fillSpecs(result.specs); message(`saved ${result.saved}`, "ok");
    } catch (error) { message(error.message, "error"); }
  };
  $("load").onclick = async () => {
    const name = $("load-select").value;
    if (!name) { message("no saved spec to load", "error"); return; }
    try {
      const result = await api("GET", `/api/specs/${encodeURIComponent(name)}`);
      state.edits = result.spec.edits; renderRegions(); await recompute(); message(`loaded ${name}`, "ok");
    } catch (error) { message(error.message, "error"); }
  };
  $("apply-model").onclick = applyToModel;
  setupDrawing();
}

wire();
loadSample();
