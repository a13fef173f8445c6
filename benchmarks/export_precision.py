"""File size and test ELBO / NLL of a model exported at fp32, fp16 and int8.

For one model (a preset, or a registered model trained a few steps on its data set),
the encoder and decoder are exported at each precision to ONNX and TFLite
(``vaezoo.export.export``; int8 calibrated on training examples, parity checked on test
examples). Each export is then evaluated on the test split (or ``--limit`` examples
spread evenly over it) through
``vaezoo.export.runtime`` with numpy only: the encoder gives q(z|x),
``z = loc + scale * eps`` (or ``loc + scale_tril @ eps``) with standard-normal noise
``eps`` drawn here, the decoder gives the likelihood parameters, and numpy computes the
importance log weights ``log w = log p(x|z) + log p(z) - log q(z|x)`` of ``k`` samples
per example:

- test ELBO: the mean of ``log w`` over samples and examples (nats);
- test NLL: ``-mean(logsumexp_k(log w) - log k)`` (Burda et al. 2016), in nats.

The ``keras`` row is the same estimator on the Keras model's own outputs with the same
noise, so each precision's change is the effect of the export alone. Beside it are the
library's ``vaezoo.training.evaluate`` figures (its own noise), and the largest
difference between the numpy log weights and TensorFlow Probability's on a few
examples. An export that fails its parity check is still evaluated (and marked), so
that its effect on the ELBO is visible.

Supported: models without labels, with a standard-normal prior, a diagonal or
full-covariance normal posterior and a Bernoulli, continuous Bernoulli, Gaussian or
categorical likelihood (the plain VAE of every registered data set, and the presets).

Prints a JSON report (also to ``--json FILE``) and a markdown table.

Example:
    $ python benchmarks/export_precision.py --preset vae_mlp_binarized_mnist --limit 2000 --k 100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from vaezoo.export import export, runtime
from vaezoo.export.manifest import FORMATS, PRECISIONS, Manifest
from vaezoo.export.parity import ParityError
from vaezoo.export.parts import model_parts

import vaezoo
from vaezoo import datasets, presets, training

PARTS = ("encoder", "decoder")
LOG_2PI = math.log(2.0 * math.pi)
DECODER_CHUNK = 2000
"""Latent codes per decoder call."""

Engine = Callable[[str, np.ndarray], dict[str, np.ndarray]]
"""``engine(part, value)``: the outputs of ``part`` (``"encoder"`` on images,
``"decoder"`` on latent codes) on an exported runtime or on Keras."""


def continuous_bernoulli_log_norm(logits: np.ndarray) -> np.ndarray:
    """log C(l) of the continuous Bernoulli with logits ``l``: ``log(l / tanh(l / 2))``,
    evaluated as ``log 2 + l^2 / 12`` for ``|l| < 1e-3`` and as
    ``log|l| - log1p(-exp(-|l|)) + log1p(exp(-|l|))`` elsewhere.

    Example:
        >>> continuous_bernoulli_log_norm(np.array([0.0, 2.0])).round(4).tolist()  # log 2, log(2 / tanh(1))
        [0.6931, 0.9655]
    """
    a = np.abs(logits)
    safe = np.maximum(a, 1e-3)
    far = np.log(safe) - np.log1p(-np.exp(-safe)) + np.log1p(np.exp(-safe))
    return np.where(a < 1e-3, math.log(2.0) + logits**2 / 12.0, far)


def log_likelihood(kind: str, params: dict[str, np.ndarray], x: np.ndarray, num_categories: int = 256) -> np.ndarray:
    """log p(x|z) per example, summed over the data dimensions, in float64; ``params``
    are the decoder outputs for the ``len(x)`` examples ``x``.

    Example:
        >>> float(log_likelihood("Bernoulli", {"logits": np.zeros((1, 2))}, np.ones((1, 2)))[0])  # 2 log 0.5
        -1.3862943611198906
    """
    x = x.astype(np.float64)
    if kind in ("Bernoulli", "ContinuousBernoulli"):
        logits = params["logits"].astype(np.float64)
        value = x * logits - np.logaddexp(0.0, logits)
        if kind == "ContinuousBernoulli":
            value = value + continuous_bernoulli_log_norm(logits)
    elif kind == "Gaussian":
        loc, scale = params["loc"].astype(np.float64), params["scale"].astype(np.float64)
        value = -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * LOG_2PI
    elif kind == "Categorical":
        logits = params["logits"].astype(np.float64)
        log_p = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        index = np.rint(x * (num_categories - 1)).astype(np.int64)[..., None]
        value = np.take_along_axis(log_p, index, axis=-1)[..., 0]
    else:
        raise ValueError(f"no numpy log density for the {kind} likelihood")
    return value.reshape(len(x), -1).sum(-1)


def posterior_sample(params: dict[str, np.ndarray], eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``z = loc + L eps`` and log q(z|x) in float64, for noise ``eps`` (k, batch, d).

    Example:
        >>> z, log_q = posterior_sample({"loc": np.zeros((1, 2)), "scale": np.ones((1, 2))}, np.zeros((3, 1, 2)))
        >>> z.shape, round(float(log_q[0, 0]), 4)  # -log(2 pi)
        ((3, 1, 2), -1.8379)
    """
    loc, eps = params["loc"].astype(np.float64), eps.astype(np.float64)
    if "scale" in params:
        scale = params["scale"].astype(np.float64)
        z, log_det = loc + scale * eps, np.log(scale).sum(-1)
    elif "scale_tril" in params:
        tril = params["scale_tril"].astype(np.float64)
        z = loc + np.einsum("bij,kbj->kbi", tril, eps)
        log_det = np.log(np.abs(np.diagonal(tril, axis1=-2, axis2=-1))).sum(-1)
    else:
        raise ValueError(f"no numpy posterior for the parameters {sorted(params)}")
    log_q = -0.5 * (eps**2).sum(-1) - log_det - 0.5 * eps.shape[-1] * LOG_2PI
    return z, log_q


def log_weights(engine: Engine, kind: str, x: np.ndarray, eps: np.ndarray, num_categories: int) -> np.ndarray:
    """``log w`` (k, batch) of the examples ``x`` for the noise ``eps`` (k, batch, d)."""
    z, log_q = posterior_sample(engine("encoder", x), eps)
    k, batch, d = z.shape
    flat = z.reshape(k * batch, d).astype(np.float32)
    targets = np.broadcast_to(x[None], (k,) + x.shape).reshape((k * batch,) + x.shape[1:])
    log_px = np.concatenate(
        [
            log_likelihood(kind, engine("decoder", flat[i : i + DECODER_CHUNK]), targets[i : i + DECODER_CHUNK], num_categories)
            for i in range(0, k * batch, DECODER_CHUNK)
        ]
    )
    log_pz = -0.5 * (z**2).sum(-1) - 0.5 * d * LOG_2PI
    return log_px.reshape(k, batch) + log_pz - log_q


def estimate(engine: Engine, model, x: np.ndarray, k: int, batch: int, seed: int) -> dict[str, float]:
    """Test ELBO and NLL (nats) of ``engine`` on ``x`` with ``k`` samples per example; the
    noise depends only on ``seed`` and the batch index, so every engine sees the same."""
    kind, categories = type(model.likelihood).__name__, getattr(model.likelihood, "num_categories", 256)
    elbo, log_px = [], []
    for b, start in enumerate(range(0, len(x), batch)):
        xb = x[start : start + batch]
        eps = np.random.default_rng([seed, b]).standard_normal((k, len(xb), model.latent_dim))
        logw = log_weights(engine, kind, xb, eps, categories)
        elbo.append(logw.mean(0))
        log_px.append(np.logaddexp.reduce(logw, axis=0) - math.log(k))
    return {"elbo": float(np.mean(np.concatenate(elbo))), "nll": -float(np.mean(np.concatenate(log_px)))}


def keras_engine(model) -> Engine:
    """The model's own encoder and decoder parts, run eagerly by Keras."""
    parts = model_parts(model)
    return lambda part, value: parts[part].reference({parts[part].inputs[0].name: value})


def edge_engine(edge: runtime.EdgeModel) -> Engine:
    """An export directory on one backend, through the runtime's checked ``run``."""
    names = {"encoder": "x", "decoder": "z"}
    return lambda part, value: edge.run(part, **{names[part]: value})


def numpy_vs_tfp(model, x: np.ndarray, k: int = 4) -> float:
    """Largest |numpy log w - TFP log w| on ``x`` with ``k`` samples, on Keras outputs."""
    from vaezoo._tf import tf

    eps = np.random.default_rng(0).standard_normal((k, len(x), model.latent_dim))
    engine = keras_engine(model)
    ours = log_weights(engine, type(model.likelihood).__name__, x, eps, getattr(model.likelihood, "num_categories", 256))
    params = {key: tf.constant(value) for key, value in engine("encoder", x).items()}
    z, _ = posterior_sample({key: np.asarray(value) for key, value in params.items()}, eps)
    z = tf.constant(z, tf.float32)
    q = model.posterior.distribution(params)
    decoded = model.decoder_params(tf.reshape(z, [-1, model.latent_dim]))
    targets = model.likelihood.prepare_targets(tf.constant(np.concatenate([x] * k)))
    log_px = tf.reshape(model.likelihood.distribution(decoded).log_prob(targets), [k, len(x)])
    theirs = log_px + model.prior.distribution().log_prob(z) - q.log_prob(z)
    return float(np.abs(ours - np.asarray(theirs, np.float64)).max())


def check_supported(model) -> None:
    """Raise ``ValueError`` for a model that the numpy estimator does not cover."""
    problems = []
    if getattr(model, "conditional", False):
        problems.append("it takes labels")
    if type(model.prior).__name__ != "StandardNormalPrior":
        problems.append(f"its prior is {type(model.prior).__name__}, not StandardNormalPrior")
    if set(model.posterior.param_names) not in ({"loc", "scale"}, {"loc", "scale_tril"}):
        problems.append(f"its posterior has parameters {list(model.posterior.param_names)}")
    if type(model.likelihood).__name__ not in ("Bernoulli", "ContinuousBernoulli", "Gaussian", "Categorical"):
        problems.append(f"its likelihood is {type(model.likelihood).__name__}")
    if not all(p in model_parts(model) for p in PARTS):
        problems.append("it has no encoder and decoder parts")
    if problems:
        raise ValueError(f"export_precision.py cannot evaluate {model.name}: " + "; ".join(problems))


def load_model(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """The model, its data set name and its data (train and test splits)."""
    if args.preset:
        model, data_name = vaezoo.from_preset(args.preset), presets.PRESETS[args.preset].data
        return model, data_name, datasets.load(data_name, download=False)
    spec = vaezoo.get_spec(args.model)
    overrides = {k: v for k, v in (("hidden_units", args.hidden_units), ("latent_dim", args.latent_dim)) if v}
    model = vaezoo.create_model(args.model, **overrides)
    data = datasets.load(spec.data, download=False)
    model.compile(optimizer="adam")
    model.fit(data.train.x[: 64 * args.steps], epochs=1, batch_size=64, verbose=0)
    return model, spec.data, data


def evenly_spaced(x: np.ndarray, limit: int) -> np.ndarray:
    """``limit`` examples spread evenly over ``x`` (all of it for 0): a split's first
    examples need not be typical (binarized MNIST's first 2,000 test digits have less ink
    and a lower NLL than the split).

    Example:
        >>> evenly_spaced(np.arange(10), 3).tolist()
        [0, 3, 6]
    """
    if not limit or limit >= len(x):
        return x
    return x[np.linspace(0, len(x), limit, endpoint=False).astype(np.int64)]


def _exported(model, root: str, precision: str, formats: tuple[str, ...], calibration, check) -> dict[str, Any]:
    """Export at ``precision``; the manifest, and the parity failures (empty when it passed)."""
    path = os.path.join(root, precision)
    try:
        export(model, path, formats=formats, parts=PARTS, precision=precision, calibration_data=calibration, check_data=check)
        failed = ""
    except ParityError as err:
        failed = str(err).split("\n", 1)[-1]
    return {"path": path, "manifest": Manifest.read(path), "failures": failed}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The report: settings, the Keras figures and one row per precision and format."""
    start = time.perf_counter()
    model, data_name, data = load_model(args)
    check_supported(model)
    test = evenly_spaced(data.test.x, args.limit)
    calibration = data.train.x[: args.calibration]
    formats = tuple(args.formats)
    keras_figures = estimate(keras_engine(model), model, test, args.k, args.batch, args.seed)
    library = training.evaluate(model, test, args.k, batch_size=args.batch, seed=args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for precision in args.precisions:
            done = _exported(model, root, precision, formats, calibration, test[: args.check])
            manifest, results = done["manifest"], done["manifest"].data["parity"]["results"]
            for fmt in formats:
                edge = runtime.EdgeModel(done["path"], manifest, fmt)
                figures = estimate(edge_engine(edge), model, test, args.k, args.batch, args.seed)
                sizes = {part: manifest.parts[part]["files"][fmt]["bytes"] for part in PARTS}
                mine = [r for r in results if r["format"] == fmt]
                rows.append({
                    "precision": precision,
                    "format": fmt,
                    "bytes": sizes,
                    "total_bytes": sum(sizes.values()),
                    "parity_ok": all(r["ok"] for r in mine),
                    "parity_worst": {
                        part: max(r["max_abs_diff"] if r["finite"] else math.inf for r in mine if r["part"] == part)
                        for part in PARTS
                    },
                    "parity_failures": [line.strip() for line in done["failures"].splitlines() if f"/{fmt} " in line],
                    **figures,
                    "delta_elbo": figures["elbo"] - keras_figures["elbo"],
                    "delta_nll": figures["nll"] - keras_figures["nll"],
                })
    return {
        "model": args.preset or args.model,
        "source": "preset" if args.preset else f"registry, trained {args.steps} steps",
        "data": data_name,
        "settings": {
            "test_examples": len(test), "k": args.k, "batch": args.batch, "seed": args.seed,
            "calibration_examples": len(calibration), "check_examples": min(args.check, len(test)),
            "formats": list(formats), "precisions": list(args.precisions), "parts": list(PARTS),
        },
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "keras": keras_figures,
        "vaezoo_evaluate": {"elbo": library["elbo"], "nll": library["nll"]},
        "numpy_vs_tfp_max_abs_diff": numpy_vs_tfp(model, test[:16]),
        "results": rows,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table, one row per precision and format after Keras."""
    k = report["settings"]["k"]
    fp32 = {r["format"]: r["total_bytes"] for r in report["results"] if r["precision"] == "fp32"}
    lines = [
        (
            "| precision | format | encoder bytes | decoder bytes | size vs fp32 | parity (worst diff enc / dec) "
            f"| test ELBO | change | test NLL (k={k}) | change |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| Keras fp32 | - | - | - | - | - | {report['keras']['elbo']:.3f} | - | {report['keras']['nll']:.3f} | - |",
    ]
    for r in report["results"]:
        ratio = f"{r['total_bytes'] / fp32[r['format']]:.2f}" if r["format"] in fp32 else "-"
        worst = r["parity_worst"]
        parity = ("ok" if r["parity_ok"] else "FAIL") + f" ({worst['encoder']:.2g} / {worst['decoder']:.2g})"
        lines.append(
            f"| {r['precision']} | {r['format']} | {r['bytes']['encoder']} | {r['bytes']['decoder']} | {ratio} | {parity} "
            f"| {r['elbo']:.3f} | {r['delta_elbo']:+.3f} | {r['nll']:.3f} | {r['delta_nll']:+.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(presets.PRESETS), help="a preset (vaezoo.from_preset)")
    source.add_argument("--model", choices=vaezoo.list_models(), help="a registered model, trained --steps steps")
    parser.add_argument("--steps", type=int, default=100, help="training steps of batch 64 for --model")
    parser.add_argument("--hidden-units", type=int, nargs="+", help="override of --model's hidden_units")
    parser.add_argument("--latent-dim", type=int, help="override of --model's latent_dim")
    parser.add_argument("--limit", type=int, default=2000, help="N test examples spread evenly over the split (0: all)")
    parser.add_argument("--k", type=int, default=100, help="importance samples per example")
    parser.add_argument("--batch", type=int, default=100, help="test examples per encoder call")
    parser.add_argument("--calibration", type=int, default=1000, help="training examples that calibrate int8")
    parser.add_argument("--check", type=int, default=64, help="test examples of the parity check")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print()
    print(markdown(report))


if __name__ == "__main__":
    main()
