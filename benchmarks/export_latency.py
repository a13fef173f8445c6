"""Latency of exported vaezoo models next to Keras, in one interleaved run.

For each model and part (encoder, decoder, sampler) and batch size, the median latency of
one call is measured for: Keras ``predict``, a direct (eager) Keras call, a compiled
``tf.function`` (and one with XLA), and the exported files on ONNX Runtime and LiteRT at
fp32, fp16 and int8 (called through ``vaezoo.export.runtime``, input checks included).
Engines are interleaved within each repeat so that machine drift hits all alike. The
model is trained for a few steps on its registered data set first (int8 is calibrated
on it, and parity is checked at export).

``--reference`` adds, in the same run, the decoder that the export issue measured its
target on: a plain 16-512-784 MLP (registry ``vae`` with ``latent_dim=16`` and one
hidden layer of 512). ONNX Runtime and LiteRT at batch 1 cost a fixed call overhead
plus the time to stream the weights (a matrix-vector product reads every weight once),
while a compiled ``tf.function`` is dominated by its fixed dispatch cost, so the speed-up
over ``tf.function`` shrinks as a part's weights grow: the reference row and the
registered models side by side show how much.

Prints a JSON report (also to ``--json FILE``) and markdown tables.

Example:
    $ python benchmarks/export_latency.py --models vae --reference --repeats 7 --json latency.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from vaezoo.export import export, runtime
from vaezoo.export.manifest import FORMATS, PRECISIONS
from vaezoo.export.parity import ParityError
from vaezoo.export.parts import model_parts

import vaezoo
from vaezoo import datasets
from vaezoo._tf import keras, tf
from vaezoo.cli import print_json

KERAS_ENGINES = ("keras.predict", "keras call", "tf.function", "tf.function xla")
EXPORT_ENGINES = tuple(f"{fmt} {precision}" for fmt in FORMATS for precision in PRECISIONS)
REFERENCE = ("vae", {"latent_dim": 16, "hidden_units": [512]}, "16-512-784 reference")
"""The export issue's reference decoder: registry model, config overrides, label."""


class _PartModel(keras.Model):
    """A part as a Keras model, so that ``predict`` can run it."""

    def __init__(self, part, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.part = part
        self.input_name = part.inputs[0].name

    def call(self, inputs):
        return self.part.fn(**{self.input_name: inputs})


def _time_calls(fn: Callable[[], Any], budget_s: float) -> float:
    """Seconds per call of ``fn``, averaged over as many calls as fit in ``budget_s``, after
    ``budget_s / 5`` of untimed calls (so that the engine measured before, e.g. TensorFlow's
    thread pool still spinning, does not slow the first calls)."""
    warm_until = time.perf_counter() + budget_s / 5
    while time.perf_counter() < warm_until:
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return elapsed / calls


def _engines(model, part, edges: dict[str, runtime.EdgeModel], feed: np.ndarray) -> dict[str, Callable[[], Any]]:
    name = part.inputs[0].name
    tensor = tf.constant(feed)
    wrapper = _PartModel(part, name=f"{part.name}_model")
    graph = tf.function(part.fn, input_signature=part.signature(), reduce_retracing=True)
    xla = tf.function(part.fn, input_signature=part.signature(), jit_compile=True)
    engines = {
        "keras.predict": lambda: wrapper.predict(feed, batch_size=len(feed), verbose=0),
        "keras call": lambda: wrapper(tensor),
        "tf.function": lambda: graph(**{name: tensor}),
        "tf.function xla": lambda: xla(**{name: tensor}),
    }
    for label, edge in edges.items():
        engines[label] = lambda edge=edge: edge.run(part.name, **{name: feed})
    return engines


def _exports(model, data: np.ndarray, root: str, threads: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    edges, sizes = {}, {}
    for precision in PRECISIONS:
        path = os.path.join(root, precision)
        try:
            manifest = export(model, path, precision=precision, calibration_data=data[:1000], check_data=data[-64:])
        except ParityError as err:
            sizes[precision] = {"parity_failed": str(err)}
            continue
        sizes[precision] = {
            f"{part} {fmt}": info["bytes"] for part, entry in manifest.parts.items() for fmt, info in entry["files"].items()
        }
        sizes[precision]["worst_abs_diff"] = max(r["max_abs_diff"] for r in manifest.data["parity"]["results"])
        for fmt in FORMATS:
            edges[f"{fmt} {precision}"] = runtime.load(path, backend=fmt, threads=threads)
    return edges, sizes


def benchmark(
    name: str, batches: list[int], repeats: int, budget_s: float, steps: int, threads: int | None,
    overrides: dict[str, Any] | None = None, title: str | None = None,
) -> dict:
    """Latency figures of one registered model (with config ``overrides``); see the module docstring."""
    model = vaezoo.create_model(name, **(overrides or {}))
    spec = vaezoo.get_spec(name)
    data = datasets.load(spec.data, limit=2000).train.x
    model.compile(optimizer="adam")
    model.fit(data[: 64 * steps], epochs=1, batch_size=64, verbose=0)
    parts = model_parts(model)
    with tempfile.TemporaryDirectory() as root:
        edges, sizes = _exports(model, data, root, threads or None)
        cases = []
        for part_name, part in parts.items():
            feeds = part.feeds(data[: max(batches)])
            for batch in batches:
                feed = feeds[part.inputs[0].name][:batch]
                engines = _engines(model, part, edges, feed)
                for fn in engines.values():
                    for _ in range(3):
                        fn()
                cases.append((part_name, batch, engines, {label: [] for label in engines}))
        for _ in range(repeats):
            for _, _, engines, samples in cases:
                for label, fn in engines.items():
                    samples[label].append(_time_calls(fn, budget_s))
    title = title or name
    results = [
        {"model": title, "part": part_name, "batch": batch, "engine": label, "median_ms": 1e3 * statistics.median(s),
         "min_ms": 1e3 * min(s), "max_ms": 1e3 * max(s), "repeats": len(s)}
        for part_name, batch, _, samples in cases
        for label, s in samples.items()
    ]
    summary = f"{spec.summary}, with {overrides}" if overrides else spec.summary
    return {"model": title, "registry_name": name, "overrides": overrides or {}, "config": summary,
            "parameters": int(model.count_params()), "sizes": sizes, "results": results}


def markdown(report: dict) -> str:
    """Markdown tables: latency per (model, part, batch) and engine, speed-ups, file sizes."""
    engines = [e for e in (*KERAS_ENGINES, *EXPORT_ENGINES) if any(r["engine"] == e for m in report["models"] for r in m["results"])]
    ratios = ("onnx fp32", "tflite fp32", "onnx int8", "tflite int8")
    lines = ["| model | part | batch | " + " | ".join(engines) + "".join(f" | {e} vs tf.function" for e in ratios) + " |",
             "|" + "---|" * (len(engines) + 3 + len(ratios))]
    for entry in report["models"]:
        table: dict[tuple[str, int], dict[str, float]] = {}
        for r in entry["results"]:
            table.setdefault((r["part"], r["batch"]), {})[r["engine"]] = r["median_ms"]
        for (part, batch), row in table.items():
            cells = [f"{row[e]:.3f}" if e in row else "-" for e in engines]
            speed = [f"{row['tf.function'] / row[e]:.1f}x" if e in row else "-" for e in ratios]
            lines.append(f"| {entry['model']} | {part} | {batch} | " + " | ".join(cells + speed) + " |")
    lines += ["", "Median ms per call. File sizes (bytes):", ""]
    for entry in report["models"]:
        for precision, sizes in entry["sizes"].items():
            lines.append(f"- {entry['model']} {precision}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; prints JSON and markdown and returns the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["vae"], help="registered models (none: only --reference)")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds; the median is reported")
    parser.add_argument("--budget", type=float, default=0.05, help="seconds of calls per measurement")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime / LiteRT threads (0: the backend's default)")
    parser.add_argument("--reference", action="store_true", help="also measure the issue's 16-512-784 reference decoder")
    parser.add_argument("--json", help="also write the JSON report to this file")
    args = parser.parse_args(argv)
    runs = [(m, None, None) for m in args.models] + ([REFERENCE] if args.reference else [])
    if not runs:
        parser.error("nothing to measure: name models after --models, or add --reference")
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "vaezoo": vaezoo.__version__},
        "threads": args.threads,
        "models": [
            benchmark(m, args.batches, args.repeats, args.budget, args.train_steps, args.threads, overrides, title)
            for m, overrides, title in runs
        ],
    }
    print_json(report, args.json, sort_keys=False)
    print()
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
