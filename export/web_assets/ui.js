// ui.js: the latent-explorer page (index.html) on top of vaezoo.js: a grid of prior
// samples, sliders for the latent dimensions of highest KL with live decoding, an
// interpolation strip between two latents, a class picker for conditional models and the
// model card. window.explorer exposes the loaded model for scripting and tests.
import { loadModel, ort } from "./vaezoo.js";

const GRID = 16;
const STEPS = 8;
const $ = (id) => document.getElementById(id);

const state = { model: null, seed: 0, classes: {}, grid: null, focus: null, a: null, b: null, selected: 0 };

// Draw image `index` of a decoded batch (the web.json image output, rows of h*w*c values)
// into `canvas`, clipped to the display range.
function drawImage(canvas, pixels, index) {
  const [h, w, c] = state.model.web.image.shape;
  const [lo, hi] = state.model.web.image.clip;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const offset = index * h * w * c;
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = pixels[offset + p * c + (c === 3 ? k : 0)];
      image.data[4 * p + k] = Math.round((255 * (Math.min(hi, Math.max(lo, v)) - lo)) / (hi - lo));
    }
    image.data[4 * p + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function rowOf(latents, i) {
  const d = state.model.latentDim;
  return Float32Array.from(latents.subarray(i * d, (i + 1) * d));
}

// Every render in flight, so that explorer.idle() can wait for the page to settle.
const inflight = new Set();
function track(promise) {
  inflight.add(promise);
  promise.catch(showError).finally(() => inflight.delete(promise));
  return promise;
}

// Run `task` now, or once more after the running call if one is in flight (slider drags
// fire faster than decoding: only the latest value matters).
function latest(task) {
  let running = null;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = track((async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = null;
      }
    })());
    return running;
  };
}

function status(text) {
  $("status").textContent = text;
  $("status").className = "";
}

function showError(err) {
  $("status").textContent = `Error: ${err.message}`;
  $("status").className = "error";
  console.error(err);
}

function timing(what, result) {
  const threads = ort.env.wasm.numThreads === 1 ? "1 thread" : "multi-threaded";
  const runtime = `onnxruntime-web ${state.model.web.onnxruntime_web.version}, wasm, ${threads}`;
  status(`${what}: batch ${result.batch} decoded in ${result.ms.toFixed(1)} ms (${runtime})`);
}

const renderGrid = latest(async () => {
  const { latents, result } = await state.model.samplePrior(GRID, state.seed, state.classes);
  state.grid = latents;
  const cells = $("grid").children;
  for (let i = 0; i < GRID; i++) drawImage(cells[i], result.image, i);
  timing("samples", result);
});

const renderFocus = latest(async () => {
  const result = await state.model.decode(state.focus, state.classes);
  drawImage($("focus"), result.image, 0);
  timing("explore", result);
});

const renderStrip = latest(async () => {
  const rows = [];
  for (let s = 0; s < STEPS; s++) {
    const t = s / (STEPS - 1);
    rows.push(state.a.map((v, d) => (1 - t) * v + t * state.b[d]));
  }
  const result = await state.model.decode(rows, state.classes);
  const cells = $("strip").children;
  for (let s = 0; s < STEPS; s++) drawImage(cells[s], result.image, s);
});

function selectSample(i) {
  state.selected = i;
  state.focus = rowOf(state.grid, i);
  Array.from($("grid").children).forEach((cell, j) => cell.classList.toggle("selected", j === i));
  for (const input of $("sliders").querySelectorAll("input")) input.value = state.focus[Number(input.dataset.dim)];
  renderFocus();
}

async function resample() {
  await renderGrid();
  state.a = rowOf(state.grid, 0);
  state.b = rowOf(state.grid, 1);
  selectSample(state.selected);
  renderStrip();
}

function renderCard() {
  const { card, latent } = state.model.web;
  const parity = state.model.manifest.parity?.results
    ?.filter((r) => r.part === "decoder" && r.format === "onnx")
    .reduce((worst, r) => Math.max(worst, r.max_abs_diff), 0);
  const nll = card.nll === undefined ? "not measured" : `${card.nll.toFixed(2)} nats` +
    (card.nll_samples ? ` (${card.split ?? "test"}, k=${card.nll_samples})` : "");
  const rows = [
    ["Model", `${card.name} (${card.class})`],
    ["Paper", card.paper],
    ["Data", card.data],
    ["NLL", nll],
    ["ELBO", card.elbo === undefined ? undefined : `${card.elbo.toFixed(2)} nats`],
    ["Latent", `${latent.dim} dimensions; KL ranking on ${latent.kl_data}`],
    ["Likelihood", card.likelihood],
    ["Parameters", card.parameters?.toLocaleString("en")],
    ["Export", `ONNX ${card.precision}, decoder parity with Keras ${parity?.toExponential(1) ?? "unknown"}`],
  ];
  for (const [term, value] of rows) {
    if (value === undefined || value === null) continue;
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    $("card").append(dt, dd);
  }
}

function buildSliders() {
  const { ranking, kl, center, scale, sliders } = state.model.web.latent;
  for (const d of ranking.slice(0, sliders)) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    const [min, max, step] = [center[d] - 3 * scale[d], center[d] + 3 * scale[d], scale[d] / 100];
    Object.assign(input, { type: "range", min, max, step });
    input.dataset.dim = d;
    input.addEventListener("input", () => {
      state.focus[d] = Number(input.value);
      renderFocus();
    });
    label.append(`z${d}${kl ? ` · KL ${kl[d].toFixed(2)}` : ""}`, input);
    $("sliders").append(label);
  }
}

function buildClassPickers() {
  for (const condition of state.model.conditions) {
    state.classes[condition.name] = 0;
    const label = document.createElement("label");
    const select = document.createElement("select");
    select.name = condition.name;
    condition.labels.forEach((text, i) => select.append(new Option(text, i)));
    select.addEventListener("change", () => {
      state.classes[condition.name] = Number(select.value);
      resample().catch(showError);
    });
    label.append(`Class (${condition.name}) `, select);
    $("classes").append(label);
  }
}

async function main() {
  state.model = await loadModel();
  renderCard();
  buildClassPickers();
  buildSliders();
  for (let i = 0; i < GRID; i++) {
    const cell = document.createElement("canvas");
    cell.addEventListener("click", () => selectSample(i));
    $("grid").append(cell);
  }
  for (let s = 0; s < STEPS; s++) $("strip").append(document.createElement("canvas"));
  $("resample").addEventListener("click", () => {
    state.seed += 1;
    resample().catch(showError);
  });
  $("set-a").addEventListener("click", () => { state.a = Float32Array.from(state.focus); renderStrip(); });
  $("set-b").addEventListener("click", () => { state.b = Float32Array.from(state.focus); renderStrip(); });
  await resample();
  window.explorer = {
    model: state.model,
    state,
    idle: async () => {
      while (inflight.size) await Promise.allSettled([...inflight]);
    },
  };
}

main().catch(showError);
