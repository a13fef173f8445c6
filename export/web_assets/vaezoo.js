// vaezoo.js: load a vaezoo web export (manifest.json, web.json and the ONNX files next to
// this file) and run its decoder and sampler in the browser with onnxruntime-web's WASM
// backend. No UI here: ui.js builds the page on top of loadModel() and VaeModel.decode().
import * as ort from "./ort/ort.wasm.min.mjs";

/** A bad argument to decode() or sample(); the message says what was expected. */
export class InputError extends Error {
  constructor(message) {
    super(message);
    this.name = "InputError";
  }
}

const TYPED = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array };

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fetchJson(url) {
  return JSON.parse(new TextDecoder().decode(await fetchBytes(url)));
}

// Checks a model file against the manifest's sha256 where the browser offers SubtleCrypto
// (secure contexts: https, localhost and 127.0.0.1).
async function verify(url, bytes, sha256) {
  if (!globalThis.crypto?.subtle) return;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const actual = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (actual !== sha256) throw new Error(`${url} has sha256 ${actual}; manifest.json says ${sha256}`);
}

/**
 * Load the export in the folder `base` (default: this script's folder): read its
 * manifest.json and web.json, check the ONNX files' sha256 and open the decoder (and the
 * sampler, if exported) on the WASM backend.
 */
export async function loadModel(base = new URL(".", import.meta.url)) {
  // More than one WASM thread needs a cross-origin isolated page (COOP/COEP headers).
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? 0 : 1;
  const manifest = await fetchJson(new URL("manifest.json", base));
  const web = await fetchJson(new URL("web.json", base));
  const sessions = {};
  for (const part of ["decoder", "sampler"]) {
    const entry = manifest.parts[part]?.files.onnx;
    if (!entry) continue;
    const url = new URL(entry.file, base);
    const bytes = await fetchBytes(url);
    await verify(url, bytes, entry.sha256);
    sessions[part] = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  }
  if (!sessions.decoder) throw new Error("this export has no ONNX decoder");
  return new VaeModel(manifest, web, sessions);
}

/**
 * Rows of numbers as one flat Float32Array: `rows` is an array of rows, one row (an array
 * of numbers), or a flat Float32Array of batch * width values. Throws InputError on an
 * empty batch, a row of the wrong length, or a value that is not a finite number.
 */
export function toBatch(rows, width, what) {
  let data;
  if (rows instanceof Float32Array || rows instanceof Float64Array) {
    if (rows.length === 0 || rows.length % width !== 0) {
      throw new InputError(`${what}: a flat array of ${rows.length} values is not a whole number of rows of ${width}`);
    }
    data = Float32Array.from(rows);
  } else if (Array.isArray(rows)) {
    const list = typeof rows[0] === "number" ? [rows] : rows;
    if (list.length === 0) throw new InputError(`${what} is empty; expected rows of ${width} numbers`);
    data = new Float32Array(list.length * width);
    list.forEach((row, i) => {
      if (row?.length !== width) {
        const found = row?.length ?? "no";
        throw new InputError(`${what}[${i}] has ${found} values; this model takes rows of ${width} (shape [batch, ${width}])`);
      }
      data.set(row, i * width);
    });
  } else {
    throw new InputError(`${what} must be an array of rows or a Float32Array, not ${typeof rows}`);
  }
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    const where = `${what}[${Math.floor(bad / width)}][${bad % width}]`;
    throw new InputError(`${where} is ${data[bad]}; values must be finite numbers`);
  }
  return { data, batch: data.length / width };
}

function conditionTensor(condition, value, batch) {
  const { name, classes, encoding, dtype, shape } = condition;
  if (value === undefined) {
    throw new InputError(`this model also takes ${name}: a class index in 0..${classes - 1}, one number or one per row`);
  }
  const labels = typeof value === "number" ? new Array(batch).fill(value) : Array.from(value);
  if (labels.length !== batch) throw new InputError(`${name} has ${labels.length} entries for ${batch} rows`);
  labels.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw new InputError(`${name}[${i}] is ${c}; expected an integer class index in 0..${classes - 1}`);
    }
  });
  if (encoding === "one_hot") {
    const data = new TYPED[dtype](batch * classes);
    labels.forEach((c, i) => { data[i * classes + c] = 1; });
    return new ort.Tensor(dtype, data, [batch, classes]);
  }
  const data = dtype === "int64" ? BigInt64Array.from(labels, BigInt) : TYPED[dtype].from(labels);
  return new ort.Tensor(dtype, data, shape.length === 1 ? [batch] : [batch, 1]);
}

/** Seeded standard-normal noise (mulberry32 and Box-Muller), `count` values. */
export function normalNoise(count, seed) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** An export loaded in the browser; see loadModel(). */
export class VaeModel {
  constructor(manifest, web, sessions) {
    this.manifest = manifest;
    this.web = web;
    this.sessions = sessions;
    this.latentDim = web.latent.dim;
    this.conditions = web.conditions;
    const eps = sessions.sampler ? manifest.parts.sampler.inputs[0] : null;
    this.noiseInput = eps?.name;
    this.noiseShape = eps ? eps.shape.slice(1) : [this.latentDim];
    this.queue = Promise.resolve(); // one run at a time per page: calls wait their turn
  }

  /**
   * Decode latents (rows of latentDim numbers, see toBatch) and, for a conditional model,
   * class indices by input name, e.g. decode(z, {y: 3}). Resolves to {batch, ms,
   * outputs: {name: Float32Array}, shapes: {name: dims}, image: outputs[web.image.output]}.
   */
  async decode(latents, conditions = {}) {
    const { data, batch } = toBatch(latents, this.latentDim, "latents");
    const z = new ort.Tensor("float32", data, [batch, this.latentDim]);
    return this.run("decoder", { [this.web.latent.input]: z }, conditions, batch);
  }

  /** The sampler part on standard-normal noise rows; its outputs include z and the image. */
  async sample(noise, conditions = {}) {
    if (!this.sessions.sampler) throw new Error("this export has no sampler part");
    const size = this.noiseShape.reduce((a, b) => a * b, 1);
    const { data, batch } = toBatch(noise, size, "noise");
    const eps = new ort.Tensor("float32", data, [batch, ...this.noiseShape]);
    return this.run("sampler", { [this.noiseInput]: eps }, conditions, batch);
  }

  /** `count` latents from the prior (through the sampler if exported) and their decoding. */
  async samplePrior(count, seed, conditions = {}) {
    const size = this.noiseShape.reduce((a, b) => a * b, 1);
    const noise = normalNoise(count * size, seed);
    if (this.sessions.sampler) {
      const result = await this.sample(noise, conditions);
      return { latents: result.outputs.z, result };
    }
    const { center, scale } = this.web.latent;
    const latents = noise.map((v, i) => center[i % size] + scale[i % size] * v);
    return { latents, result: await this.decode(latents, conditions) };
  }

  async run(part, feeds, conditions, batch) {
    const extra = this.manifest.parts[part].inputs.map((t) => t.name).filter((n) => !(n in feeds));
    const unknown = Object.keys(conditions).filter((n) => !extra.includes(n));
    if (unknown.length) {
      const known = extra.join(", ") || "none";
      throw new InputError(`the ${part} has no input ${unknown.join(", ")}; its class inputs: ${known}`);
    }
    for (const name of extra) {
      feeds[name] = conditionTensor(this.conditions.find((c) => c.name === name), conditions[name], batch);
    }
    const session = this.sessions[part];
    const run = this.queue.then(async () => {
      const start = performance.now();
      const outputs = await session.run(feeds);
      return { outputs, ms: performance.now() - start };
    });
    this.queue = run.catch(() => {});
    const { outputs, ms } = await run;
    const result = { batch, ms, outputs: {}, shapes: {} };
    for (const [name, tensor] of Object.entries(outputs)) {
      result.outputs[name] = tensor.data;
      result.shapes[name] = tensor.dims;
    }
    result.image = result.outputs[this.web.image.output];
    return result;
  }
}

export { ort };
