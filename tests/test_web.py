"""The latent-explorer site of ``vaezoo export MODEL.keras --web DIR`` in a real headless
Chromium, driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``; no
driver and no Python package beyond the standard library and Pillow), with the page
served from 127.0.0.1.

The browser tests need Chromium (``apt-get install chromium``, or ``$VAEZOO_CHROMIUM``)
and the onnxruntime-web files (``python -m vaezoo.export.web`` fills the cache, or
``$VAEZOO_ORT_WEB``); without them they are skipped, unless ``VAEZOO_BROWSER_TESTS=required``
(set by .ci/run once it installed both), where a missing piece fails them.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import queue
import shutil
import subprocess
import tarfile
import threading
import time
from typing import ClassVar

import helpers
import numpy as np
import pytest
from vaezoo.export import web
from vaezoo.export.manifest import TOLERANCES

from vaezoo import downloads

LATENT_DIM = 8
PRESET = "vae_mlp_binarized_mnist"
# The page's decoded outputs vs Python onnxruntime: the export's fp32 rule,
# max|got - ref| <= max(1e-5, 5e-6 * max|ref|), i.e. 1e-5 for outputs of magnitude up to 2
# (the Bernoulli means: MEAN_ATOL whatever their magnitude).
FP32 = TOLERANCES["fp32"]
MEAN_ATOL = 1e-5
VIEWPORT = (1280, 900)

# Per-call time of the page's decode() (input checks included) at batch 1 and 16: the median
# of 5 blocks of 20 calls (performance.now() is coarse without cross-origin isolation).
LATENCY_JS = """(async () => {
    const m = window.explorer.model, out = {};
    for (const batch of [1, 16]) {
        const z = new Float32Array(batch * m.latentDim).fill(0.5);
        await m.decode(z);
        const blocks = [];
        for (let b = 0; b < 5; b++) {
            const t0 = performance.now();
            for (let i = 0; i < 20; i++) await m.decode(z);
            blocks.push((performance.now() - t0) / 20);
        }
        out[batch] = blocks.sort((a, b) => a - b)[2];
    }
    return out;
})()"""


def _chromium() -> str | None:
    names = [os.environ.get("VAEZOO_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"]
    return next((shutil.which(n) for n in names if n and shutil.which(n)), None)


def _missing(reason: str) -> None:
    if os.environ.get("VAEZOO_BROWSER_TESTS") == "required":
        pytest.fail(f"{reason} (VAEZOO_BROWSER_TESTS=required)")
    pytest.skip(reason)


class DevToolsError(RuntimeError):
    """A DevTools command failed, or the page threw."""


class Browser:
    """Headless Chromium with one page, driven by DevTools protocol commands on a pipe:
    Chromium reads JSON commands (each ended by a NUL byte) from its fd 3 and writes
    responses and events to its fd 4."""

    def __init__(self, executable: str, profile: str, log: str) -> None:
        flags = [
            "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", "about:blank",
        ]
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2', executable, *flags],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            )
        self.log = log
        self.replies: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.next_id = 0
        self.session: str | None = None
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Runtime.enable")
        self.call("Page.enable")
        width, height = VIEWPORT
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _read(self) -> None:
        buffer = bytearray()
        while chunk := os.read(self.proc.stdout.fileno(), 1 << 20):
            buffer += chunk
            while (end := buffer.find(b"\0")) >= 0:
                message = json.loads(buffer[:end])
                del buffer[: end + 1]
                (self.replies.put if "id" in message else self.events.append)(message)
        self.replies.put(None)

    def call(self, method: str, timeout: float = 60.0, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self.proc.stdin.write(json.dumps(message).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise DevToolsError(f"{method}: no reply from Chromium in {timeout} s; see {self.log}") from None
            if reply is None:
                raise DevToolsError(f"Chromium exited during {method}; see {self.log}")
            if reply["id"] == self.next_id:
                break
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply["result"]

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The JSON value of a JavaScript expression (promises awaited); a thrown error
        raises DevToolsError with its message."""
        result = self.call("Runtime.evaluate", timeout, expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details["text"])
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 90.0) -> None:
        """Navigate to ``url`` and wait until ``ready`` (a JS expression) is true; the page's
        status line and console go into the failure message."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({ready})"):
            status = self.evaluate("document.getElementById('status')?.textContent ?? ''")
            if status.startswith("Error") or time.monotonic() > deadline:
                raise DevToolsError(f"page not ready: status {status!r}; console: {self.console()}")
            time.sleep(0.2)

    def console(self) -> list[str]:
        kinds = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown")
        return [json.dumps(e["params"])[:300] for e in self.events if e.get("method") in kinds]

    def screenshot(self, clip: dict | None = None) -> np.ndarray:
        """The page (or the ``clip`` rectangle: x, y, width, height) as an RGB array."""
        from PIL import Image

        params = {"format": "png"} | ({"clip": {**clip, "scale": 1}} if clip else {})
        png = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float64)

    def rect(self, selector: str) -> dict:
        return self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
        )

    def drag(self, x0: float, y: float, x1: float, steps: int = 5) -> None:
        """Press the left mouse button at (x0, y), move to (x1, y), release: real input events."""
        mouse = functools.partial(self.call, "Input.dispatchMouseEvent", y=y, button="left")
        mouse(type="mousePressed", x=x0, clickCount=1)
        for x in np.linspace(x0, x1, steps)[1:]:
            mouse(type="mouseMoved", x=float(x), buttons=1)
        mouse(type="mouseReleased", x=x1, clickCount=1)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (DevToolsError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class StaticHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server with the MIME types ES modules and WASM need."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
    }

    def log_message(self, *args) -> None:
        pass


def serve(directory: str):
    """A threaded static server of ``directory`` on 127.0.0.1 (an ephemeral port)."""
    handler = functools.partial(StaticHandler, directory=directory)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


@contextlib.contextmanager
def opened(browser: Browser, directory):
    """``browser`` showing the site in ``directory`` (served on loopback), idle after load."""
    httpd = serve(str(directory))
    try:
        browser.open(f"http://127.0.0.1:{httpd.server_address[1]}/index.html", "window.explorer")
        browser.evaluate("window.explorer.idle()")
        yield browser
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def tools():
    chromium = _chromium()
    if chromium is None:
        _missing("no Chromium: apt-get install chromium, or set VAEZOO_CHROMIUM")
    ort = web.find_ort_web()
    if ort is None:
        _missing(
            f"no onnxruntime-web {web.ORT_WEB_VERSION} files: run `python -m vaezoo.export.web`, or set VAEZOO_ORT_WEB"
        )
    return chromium, ort


@pytest.fixture(scope="module")
def browser(tools, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chromium")
    started = Browser(tools[0], str(folder / "profile"), str(folder / "chromium.log"))
    yield started
    started.close()


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory, load_small):
    """A small VAE trained briefly on binarized MNIST, exported with the real CLI."""
    import vaezoo
    from vaezoo.cli import main
    from vaezoo.training import save_model

    x = load_small("binarized_mnist").train.x
    model = vaezoo.create_model("vae", hidden_units=(64,), latent_dim=LATENT_DIM)
    model.compile(optimizer="adam")
    model.fit(x, epochs=2, batch_size=64, verbose=0)
    folder = tmp_path_factory.mktemp("web")
    save_model(model, str(folder / "vae.keras"))
    evaluation = {"model_file": "vae.keras", "data": "binarized_mnist", "split": "test", "nll": 123.45, "elbo": -130.0,
                  "num_samples": 10}
    (folder / "evaluation.json").write_text(json.dumps(evaluation))
    argv = ["export", str(folder / "vae.keras"), "--web", str(folder / "site"), "--data", "binarized_mnist",
            "--limit", "512", "--ort-web", str(tools[1]), "--card", str(folder / "evaluation.json")]
    assert main(argv) == 0
    return folder / "site"


@pytest.fixture(scope="module")
def site_url(site):
    httpd = serve(str(site))
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def page(browser, site_url):
    """The browser showing the exported site (loaded once, reloaded if a test left it)."""
    if browser.evaluate("location.href") != site_url:
        browser.open(site_url, "window.explorer")
    browser.evaluate("window.explorer.idle()")
    return browser


def _onnx_decode(path, **feeds) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def _page_decode(page: Browser, z: np.ndarray, conditions: str = "{}") -> dict[str, np.ndarray]:
    value = page.evaluate(
        f"window.explorer.model.decode({json.dumps(z.tolist())}, {conditions}).then(r => Object.fromEntries("
        "Object.entries(r.outputs).map(([k, v]) => [k, {data: Array.from(v), dims: r.shapes[k]}])))"
    )
    return {k: np.asarray(v["data"], np.float32).reshape(v["dims"]) for k, v in value.items()}


def _assert_parity(page: Browser, decoder, z: np.ndarray, label: str, conditions: str = "{}", **feeds) -> set[str]:
    """The page's decode() of ``z`` equals Python onnxruntime's run of the ``decoder`` file
    (same outputs, shapes, no NaN/Inf, the fp32 rule; MEAN_ATOL on ``mean``); prints the
    figures and returns the output names."""
    got = _page_decode(page, z, conditions)
    want = _onnx_decode(decoder, z=z, **feeds)
    assert sorted(got) == sorted(want)
    for name, ref in want.items():
        assert got[name].shape == ref.shape and np.isfinite(got[name]).all(), name
        diff, magnitude = float(np.max(np.abs(got[name] - ref))), float(np.max(np.abs(ref)))
        allowed = MEAN_ATOL if name == "mean" else FP32.allowed(magnitude)
        print(f"parity {label}: {name} max abs diff {diff:.3g} (max |ref| {magnitude:.3g}, allowed {allowed:.3g})")
        assert diff <= allowed, f"{label}: {name}: browser vs onnxruntime max abs diff {diff}"
    return set(want)


def _latency(page: Browser, label: str) -> dict[str, float]:
    """The page's decode() time per call at batch 1 and 16 (printed), with a generous bound."""
    timings = page.evaluate(LATENCY_JS)
    print(f"browser decode latency {label} (median of 5 x 20 calls, onnxruntime-web wasm, 1 thread): "
          f"batch 1 {timings['1']:.3f} ms, batch 16 {timings['16']:.3f} ms")
    assert 0 < timings["1"] < 500 and 0 < timings["16"] < 2000
    return timings


@pytest.mark.browser
def test_site_contents(site):
    """The site holds the page, pinned onnxruntime-web files and a KL ranking on data."""
    spec = json.loads((site / "web.json").read_text())
    for name, sha256 in web.ORT_WEB_FILES.items():
        assert downloads.file_sha256(site / "ort" / name) == sha256
    for name in web.ASSET_FILES:
        assert (site / name).is_file()
    latent = spec["latent"]
    assert latent["dim"] == LATENT_DIM and sorted(latent["ranking"]) == list(range(LATENT_DIM))
    assert latent["kl"][latent["ranking"][0]] == max(latent["kl"]) > 0.1
    assert latent["kl_data"] == "512 examples of binarized_mnist"
    assert spec["card"]["data"] == "binarized_mnist" and spec["card"]["nll"] == 123.45 and spec["conditions"] == []
    assert spec["onnxruntime_web"]["version"] == web.ORT_WEB_VERSION


@pytest.mark.browser
def test_decode_parity_with_python_onnxruntime(page, site):
    """A fixed latent batch through the page's decode() equals Python onnxruntime's."""
    rng = np.random.default_rng(11)
    for batch, scale in ((1, 1.0), (16, 1.0), (16, 4.0)):
        z = (scale * rng.standard_normal((batch, LATENT_DIM))).astype(np.float32)
        assert _assert_parity(page, site / "decoder.fp32.onnx", z, f"batch {batch} |z|~{scale}") == {"logits", "mean"}


@pytest.mark.browser
def test_decode_latency(page):
    """Browser decode time per batch (printed); generous bound."""
    _latency(page, "small vae")


def _canvases(page: Browser, selector: str) -> np.ndarray:
    """The RGB pixels of every canvas matching ``selector``, (n, h, w, 3)."""
    pixels = page.evaluate(
        f"Array.from(document.querySelectorAll({json.dumps(selector)}), c => "
        "Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data))"
    )
    return np.asarray(pixels, np.float64).reshape(len(pixels), 28, 28, 4)[..., :3]


@pytest.mark.browser
def test_page_shows_card_and_interpolation(page):
    """The model card shows the name, data and NLL; the interpolation strip runs from
    sample A (the first grid image) to sample B (the second)."""
    card = page.evaluate("document.getElementById('card').textContent")
    for text in ("vae (vaezoo>VAE)", "binarized_mnist", "123.45 nats (test, k=10)", "Kingma & Welling"):
        assert text in card
    grid, strip = _canvases(page, "#grid canvas"), _canvases(page, "#strip canvas")
    assert len(grid) == 16 and len(strip) == 8
    ends = np.abs(strip[0] - grid[0]).mean(), np.abs(strip[-1] - grid[1]).mean()
    middle = min(np.abs(strip[4] - grid[0]).mean(), np.abs(strip[4] - grid[1]).mean())
    print(f"interpolation: ends differ from A and B by {ends[0]:.2f} and {ends[1]:.2f}, the middle by {middle:.1f} / 255")
    assert max(ends) < 1.0 < middle


@pytest.mark.browser
def test_page_renders_and_slider_redraws(page):
    """After load the page shows images (not blank); dragging the top slider redraws."""
    shot = page.screenshot()
    grid = page.screenshot(page.rect("#grid"))
    print(f"screenshot std {shot.std():.1f}, grid std {grid.std():.1f}")
    assert shot.std() > 20 and grid.std() > 20
    assert len(np.unique(grid.reshape(-1, 3), axis=0)) > 50

    focus_rect, slider = page.rect("#focus"), page.rect("#sliders input")
    value = "Number(document.querySelector('#sliders input').value)"
    left, right = slider["x"] + 0.05 * slider["width"], slider["x"] + 0.95 * slider["width"]
    y = slider["y"] + slider["height"] / 2
    page.drag(left, y, left, steps=2)  # a click at the left end of the top-KL slider
    page.evaluate("window.explorer.idle()")
    before, value_before = page.screenshot(focus_rect), page.evaluate(value)
    page.drag(left, y, right)
    page.evaluate("window.explorer.idle()")
    after, value_after = page.screenshot(focus_rect), page.evaluate(value)
    change = float(np.abs(after - before).mean())
    print(f"slider {value_before:.2f} -> {value_after:.2f}: focus image mean abs change {change:.1f} / 255")
    assert value_before < -2.0 and value_after > 2.0
    assert change > 2.0
    assert not page.evaluate("document.getElementById('status').className")


@pytest.mark.browser
@pytest.mark.parametrize(
    "latents, conditions, message",
    [
        ("[[0, 0, 0]]", "{}", "latents[0] has 3 values; this model takes rows of 8"),
        ("[[0, 0, 0, NaN, 0, 0, 0, 0]]", "{}", "latents[0][3] is NaN; values must be finite numbers"),
        ("[[0, 0, 0, 0, 0, 0, 0, 0], [1, 2]]", "{}", "latents[1] has 2 values"),
        ("new Float32Array(12)", "{}", "a flat array of 12 values is not a whole number of rows of 8"),
        ("[]", "{}", "latents is empty"),
        ("'zeros'", "{}", "latents must be an array of rows or a Float32Array"),
        ("[[0, 0, 0, 0, 0, 0, 0, 0]]", "{y: 1}", "the decoder has no input y"),
    ],
)
def test_decode_rejects_bad_input(page, latents, conditions, message):
    error = page.evaluate(
        f"window.explorer.model.decode({latents}, {conditions})"
        ".then(() => null, e => ({name: e.name, message: e.message}))"
    )
    assert error is not None and error["name"] == "InputError", error
    assert message in error["message"]


def _conditional_decoder(path, classes: int, dim: int = 4, side: int = 4) -> None:
    """A tiny hand-made ONNX decoder(z, y): logits = z W + E[y], mean = sigmoid(logits)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weights = numpy_helper.from_array(rng.standard_normal((dim, side * side)).astype(np.float32), "W")
    embedding = numpy_helper.from_array(3 * rng.standard_normal((classes, side * side)).astype(np.float32), "E")
    shape = numpy_helper.from_array(np.array([-1, side, side, 1], np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["z", "W"], ["zw"]),
        helper.make_node("Gather", ["E", "y"], ["ey"], axis=0),
        helper.make_node("Add", ["zw", "ey"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["mean"]),
    ]
    graph = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("y", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", side, side, 1]) for n in ("logits", "mean")],
        [weights, embedding, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.mark.browser
def test_conditional_decoder_page(browser, tools, tmp_path):
    """A decoder with an extra class input ``y`` gets a class picker, needs ``y`` in
    decode() and matches Python onnxruntime per class."""
    from vaezoo.export.manifest import file_entry

    classes, dim = 3, 4
    _conditional_decoder(tmp_path / "decoder.fp32.onnx", classes, dim)
    inputs = [{"name": "z", "shape": [None, dim], "dtype": "float32"}, {"name": "y", "shape": [None], "dtype": "int32"}]
    manifest = {"format_version": 1, "parts": {"decoder": {
        "inputs": inputs, "outputs": [], "files": {"onnx": file_entry(tmp_path, "decoder.fp32.onnx")}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    spec = {
        "format_version": 1,
        "card": {"name": "toy_cvae", "class": "test", "latent_dim": dim},
        "latent": {"input": "z", "dim": dim, "sliders": dim, "kl_data": "none", "kl": None, "ranking": list(range(dim)),
                   "center": [0.0] * dim, "scale": [1.0] * dim},
        "image": {"output": "mean", "shape": [4, 4, 1], "clip": [0.0, 1.0]},
        "conditions": [web.describe_condition(inputs[1], {"num_classes": classes})],
    }
    web.write_site(tmp_path, spec, tools[1])
    with opened(browser, tmp_path):
        options = browser.evaluate("Array.from(document.querySelectorAll('#classes option'), o => o.textContent)")
        assert options == ["0", "1", "2"]
        z = np.random.default_rng(5).standard_normal((16, dim)).astype(np.float32)
        for label in range(classes):
            _assert_parity(browser, tmp_path / "decoder.fp32.onnx", z, f"conditional y={label}", f"{{y: {label}}}",
                           y=np.full(16, label, np.int32))
        grid = ("Array.from(document.querySelectorAll('#grid canvas'),"
                " c => Array.from(c.getContext('2d').getImageData(0, 0, 4, 4).data))")
        before = np.asarray(browser.evaluate(grid))
        browser.evaluate("(() => { const s = document.querySelector('#classes select'); s.value = '2';"
                         " s.dispatchEvent(new Event('change')); })()")
        browser.evaluate("new Promise(r => setTimeout(r, 50)).then(() => window.explorer.idle())")
        assert np.abs(np.asarray(browser.evaluate(grid)) - before).mean() > 5
        for conditions, message in (("{}", "this model also takes y"), ("{y: 3}", "y[0] is 3; expected an integer class"),
                                    ("{y: [0, 1]}", "y has 2 entries for 16 rows")):
            error = browser.evaluate(
                f"window.explorer.model.decode({json.dumps(z.tolist())}, {conditions}).then(() => null, e => e.message)"
            )
            assert error is not None and message in error


@pytest.fixture(scope="module")
def preset_site(tools, tmp_path_factory):
    """The shipped preset exported with ``vaezoo export --web``, its card from the preset's
    own ``preset.json`` (the test NLL)."""
    import vaezoo
    from vaezoo.cli import main
    from vaezoo.presets import resolve
    from vaezoo.training import save_model

    folder = tmp_path_factory.mktemp("preset")
    save_model(vaezoo.from_preset(PRESET, download=False), str(folder / "preset.keras"))
    card = resolve(PRESET, download=False) / "preset.json"
    argv = ["export", str(folder / "preset.keras"), "--web", str(folder / "site"), "--data", "binarized_mnist",
            "--limit", "512", "--ort-web", str(tools[1]), "--card", str(card)]
    assert main(argv) == 0
    return folder / "site"


@pytest.mark.browser
def test_preset_site_decodes_with_parity(browser, preset_site):
    """The preset's site decodes a fixed latent batch (1 and 16 rows) as Python
    onnxruntime does on the same ONNX file, and its card shows the preset's test NLL."""
    from vaezoo.presets import resolve

    evaluation = json.loads((resolve(PRESET, download=False) / "preset.json").read_text())["evaluation"]
    spec = json.loads((preset_site / "web.json").read_text())
    dim = spec["latent"]["dim"]
    assert spec["card"]["nll"] == evaluation["test_nll"] and dim == 32
    with opened(browser, preset_site):
        card = browser.evaluate("document.getElementById('card').textContent")
        assert f"{evaluation['test_nll']:.2f} nats (test, k={evaluation['k']})" in card and "binarized_mnist" in card
        rng = np.random.default_rng(7)
        for batch in (1, 16):
            z = rng.standard_normal((batch, dim)).astype(np.float32)
            outputs = _assert_parity(browser, preset_site / "decoder.fp32.onnx", z, f"{PRESET} batch {batch}")
            assert outputs == {"logits", "mean"}
        _latency(browser, PRESET)


@pytest.mark.browser
def test_quickstart_site_decodes_with_parity(browser, request):
    """The web page that `vaezoo quickstart` writes loads and decodes as Python
    onnxruntime does (the quickstart run is the one tests/test_cli.py checks)."""
    out, _, ort_web = request.getfixturevalue("quickstart_run")  # after the skips of `browser`
    assert ort_web is not None, "the quickstart was not given the onnxruntime-web files the browser tests use"
    site = out / "web"
    summary = json.loads((out / "summary.json").read_text())
    spec = json.loads((site / "web.json").read_text())
    assert spec["card"]["data"] == "shapes" and spec["card"]["nll"] == summary["test"]["nll"]
    assert spec["latent"]["kl_data"] == f"{summary['test']['examples']} examples of shapes"
    with opened(browser, site):
        card = browser.evaluate("document.getElementById('card').textContent")
        assert f"{summary['test']['nll']:.2f} nats (test, k=5)" in card
        rng = np.random.default_rng(8)
        for batch in (1, 16):
            z = rng.standard_normal((batch, spec["latent"]["dim"])).astype(np.float32)
            _assert_parity(browser, site / "decoder.fp32.onnx", z, f"quickstart batch {batch}")


def test_ort_web_offline_says_how_to_get_it(tmp_path, monkeypatch):
    """With an empty cache and no reachable registry (a mirror set by npm's
    ``npm_config_registry``), locating the files fails naming the URL tried, and the hint
    the quickstart prints names the command that fills the cache."""
    monkeypatch.setenv("VAEZOO_HOME", str(tmp_path))
    monkeypatch.delenv("VAEZOO_ORT_WEB", raising=False)
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    url = f"http://127.0.0.1:9/onnxruntime-web/-/onnxruntime-web-{web.ORT_WEB_VERSION}.tgz"
    with pytest.raises(downloads.DownloadError, match=f"cannot download {url}"):
        web.locate_ort_web()
    hint = web.ort_web_hint()
    assert "python -m vaezoo.export.web" in hint and str(tmp_path / "onnxruntime-web" / web.ORT_WEB_VERSION) in hint


def _fake_tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_ort_web_fetch_is_pinned_and_verified(tmp_path, monkeypatch):
    """The npm tarball is fetched (loopback here) only with its pinned sha256, and every
    file in it is checked; a user folder with other bytes is refused."""
    files = {name: f"fake {name}".encode() for name in web.ORT_WEB_FILES}
    monkeypatch.setattr(web, "ORT_WEB_FILES", {n: hashlib.sha256(b).hexdigest() for n, b in files.items()})
    good = _fake_tarball(files)
    monkeypatch.setattr(web, "ORT_WEB_TARBALL_SHA256", hashlib.sha256(good).hexdigest())
    with helpers.loopback_server() as server:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        server.routes = {"/good.tgz": (good, "ok"), "/bad.tgz": (good + b"x", "ok")}
        with pytest.raises(downloads.IntegrityError, match="expected sha256"):
            web.fetch_ort_web(tmp_path / "bad", url=f"{url}/bad.tgz", progress=False)
        assert not any((tmp_path / "bad").glob("*.mjs"))
        cache = web.fetch_ort_web(tmp_path / "cache", url=f"{url}/good.tgz", progress=False)
        assert (cache / "ort.wasm.min.mjs").read_bytes() == files["ort.wasm.min.mjs"]
        assert web.fetch_ort_web(tmp_path / "cache", url=f"{url}/missing.tgz") == cache  # cached: no download
    (tmp_path / "user" / "dist").mkdir(parents=True)
    for name, body in files.items():
        (tmp_path / "user" / "dist" / name).write_bytes(body)
    assert web.find_ort_web(tmp_path / "user") == tmp_path / "user" / "dist"
    (tmp_path / "user" / "dist" / "ort-wasm-simd-threaded.wasm").write_bytes(b"another build")
    with pytest.raises(downloads.IntegrityError, match="ort-wasm-simd-threaded.wasm has sha256"):
        web.find_ort_web(tmp_path / "user")


def test_web_cli_refuses_bad_arguments():
    import argparse

    from vaezoo.export.cli import add_parser, run

    parser = add_parser(argparse.ArgumentParser().add_subparsers(dest="command"))
    with pytest.raises(ValueError, match="--web DIR takes MODEL.keras and no --out"):
        run(parser.parse_args(["m.keras", "--web", "site", "--out", "x"]))
    with pytest.raises(ValueError, match="decoder input 'y' has shape"):
        web.describe_condition({"name": "y", "shape": [None, 2, 2], "dtype": "float32"}, {})
    with pytest.raises(ValueError, match="has none of"):
        web.describe_condition({"name": "y", "shape": [None], "dtype": "int64"}, {})
