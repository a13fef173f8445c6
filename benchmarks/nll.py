"""Test negative log-likelihood of vaezoo models on binarized MNIST, beside published numbers.

For each target, a registry model name (trained here), a preset name or a ``.keras``
file (evaluated as they are), reports the importance-sampled NLL (Burda et al. 2016)
with ``--k`` samples (default 5000) on the statically binarized MNIST test split
(Larochelle's 10k examples), the ELBO, the epochs and wall time, as JSON (also to
``--json``) and a markdown table beside the published anchors.

    python benchmarks/nll.py vae iwae vamp_vae hvae_vamp --epochs 2000 --patience 50 \\
        --out-dir nll-runs --backup-dir nll-backup --json nll.json
    python benchmarks/nll.py vae_mlp_binarized_mnist      # a preset: evaluated, not trained
    python benchmarks/nll.py nll-runs/iwae-lr0.0005.keras  # a saved model: evaluated
    python benchmarks/nll.py --smoke                      # seconds per model: checks the script

Model selection uses the validation split only: training stops early on the validation
loss (``--patience`` epochs without improvement; the best epoch's weights are kept), and
with several ``--lr`` values each is trained and the one with the best validation
log-likelihood (``--valid-k`` samples) is kept. The test split is used once, for the
reported numbers. The published anchors were measured with their own networks and
much longer training (Tomczak and Welling: up to 2000 epochs, KL warm-up); vaezoo's
registry models are the MLPs 784-300-300-40 (HVAE: 40 + 40 latents) without warm-up.

Resuming: trained models are saved to ``--out-dir`` (with a ``.json`` record of their
training) and loaded, not retrained, when the same command runs again; with
``--backup-dir`` an interrupted training resumes from its last checkpoint
(:class:`vaezoo.training.ResumableBackup`, every epoch and every ``--backup-every``
steps). Early stopping restarts its patience count on resume. ``--time-budget SECONDS``
ends each training at the first epoch end after that many seconds of this run (the
record says ``stopped_by_time_budget``), so that the test evaluation still fits in a
session.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from vaezoo.cli import parse_overrides, print_json

#: Published test NLLs (nats) on statically binarized MNIST, by registry model name.
ANCHORS: dict[str, list[tuple[str, float]]] = {
    "vae": [
        ("Burda et al. 2016, VAE (appendix)", 88.71),
        ("Tomczak & Welling 2018, VAE standard prior", 88.56),
        ("pythae, VAE", 89.78),
    ],
    "iwae": [("Burda et al. 2016, IWAE k=50 (appendix)", 87.10), ("pythae, IWAE", 86.82)],
    "vamp_vae": [("Tomczak & Welling 2018, VampPrior", 85.57), ("pythae, VampPrior", 85.79)],
    "hvae_vamp": [("Tomczak & Welling 2018, HVAE + VampPrior", 83.19), ("pythae, HVAE", 86.21)],
}
ANCHORS["vae_tril"] = ANCHORS["vae"]

DEFAULT_MODELS = ("vae", "iwae", "miwae", "vamp_vae", "mog_vae", "hvae_vamp")
DATA = "binarized_mnist"
#: ``--smoke``: tiny data, network and budget (every registry model accepts these).
SMOKE = {"limit": 256, "epochs": 1, "k": 10, "valid_k": 5, "batch_size": 64, "config": {"hidden_units": [32], "latent_dim": 4}}
SMOKE_COMPONENTS = 8  # num_components of mixture-prior models under --smoke


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f"registry names, presets or .keras files (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--epochs", type=int, default=500, help="most epochs per training (default 500)")
    parser.add_argument("--patience", type=int, default=30, help="early-stopping patience on val_loss, 0: off (default 30)")
    parser.add_argument("--lr", type=float, nargs="+", default=[5e-4], help="Adam learning rate(s); several: chosen on valid")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--k", type=int, default=5000, help="importance samples of the test NLL (default 5000)")
    parser.add_argument("--valid-k", type=int, default=100, help="importance samples of the validation NLL (default 100)")
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides of registry models (JSON values)")
    parser.add_argument("--limit", type=int, help="use at most this many examples per split")
    parser.add_argument("--out-dir", default="nll-runs", help="where trained models and their records go (default nll-runs)")
    parser.add_argument("--backup-dir", help="checkpoint folder: rerun the same command to resume an interrupted training")
    parser.add_argument("--backup-every", type=int, metavar="STEPS", help="also checkpoint every STEPS steps")
    parser.add_argument("--retrain", action="store_true", help="train again even if --out-dir holds a trained model")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="stop each training at the first epoch end after this many seconds (counted from the "
                             "start or the resume of this run; with --patience the best epoch is kept)")
    parser.add_argument("--steps-per-execution", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--smoke", action="store_true", help="tiny data, network and budget: seconds per model")
    args = parser.parse_args(argv)
    args.config = parse_overrides(args.config)
    args.targets = args.targets or list(DEFAULT_MODELS)
    if args.smoke:
        for key in ("limit", "epochs", "k", "valid_k", "batch_size"):
            setattr(args, key, SMOKE[key])
        args.config = {**SMOKE["config"], **args.config}
        args.verbose = 0
    if args.backup_every and not args.backup_dir:
        parser.error("--backup-every needs --backup-dir")
    if args.time_budget is not None and args.time_budget <= 0:
        parser.error(f"--time-budget must be positive seconds, got {args.time_budget}")
    return args


def _time_budget(seconds: float):
    """A Keras callback that stops training at the first epoch end after ``seconds``."""
    from vaezoo._tf import keras

    class _TimeBudget(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stopped = False
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - self.start >= seconds:
                self.stopped = self.model.stop_training = True

    return _TimeBudget()


def _config_for(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from vaezoo.registry import get_spec

    config = dict(args.config)
    if args.smoke and "num_components" in get_spec(name).config:
        config.setdefault("num_components", SMOKE_COMPONENTS)
    return config


def _run_name(name: str, lr: float) -> str:
    return f"{name}-lr{lr:g}"


def train_one(name: str, lr: float, args: argparse.Namespace, data) -> tuple[Any, dict[str, Any]]:
    """Train registry model ``name`` at learning rate ``lr`` (or load it from --out-dir)."""
    import vaezoo
    from vaezoo import training
    from vaezoo._tf import keras

    path = os.path.join(args.out_dir, _run_name(name, lr) + ".keras")
    record_path = path[: -len(".keras")] + ".json"
    if os.path.exists(path) and os.path.exists(record_path) and not args.retrain:
        with open(record_path) as f:
            return vaezoo.load_model(path), {**json.load(f), "loaded": True}
    config = _config_for(name, args)
    keras.utils.set_random_seed(args.seed)
    model = training.build_for_data(name, data.train.x.shape[1:], seed=args.seed, **config)
    training.compile_model(model, lr, steps_per_execution=args.steps_per_execution)
    callbacks = []
    if args.patience:
        callbacks.append(keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True))
    budget = _time_budget(args.time_budget) if args.time_budget else None
    if budget is not None:
        callbacks.append(budget)
    backup = os.path.join(args.backup_dir, _run_name(name, lr)) if args.backup_dir else None
    result = training.train(
        model, data.train.x, data.valid.x, args.epochs, args.batch_size, callbacks, args.verbose, args.seed,
        backup_dir=backup, backup_every=args.backup_every,
    )
    val_loss = result.history.get("val_loss", [])
    record = {
        "file": path,
        "config_overrides": config,
        "lr": lr,
        "epochs": len(result.history["loss"]),
        "best_epoch": int(np.argmin(val_loss)) + 1 if val_loss else None,
        "best_val_loss": float(np.min(val_loss)) if val_loss else None,
        "train_seconds": round(result.seconds, 1),
        "samples_per_second": round(result.samples_per_second, 1),
        "parameters": int(model.count_params()),
        "nonfinite_steps": model.nonfinite_steps,
        "stopped_by_time_budget": budget is not None and budget.stopped,
    }
    training.save_model(model, path)
    with open(record_path, "w") as f:
        json.dump(record, f, indent=1)
    return model, {**record, "loaded": False}


def valid_nll(model, data, args: argparse.Namespace) -> float:
    """The selection criterion: validation NLL with --valid-k samples."""
    return -float(np.mean(model.log_likelihood(data.valid.x, args.valid_k, args.eval_batch_size, seed=args.seed)))


def run_target(target: str, args: argparse.Namespace, data) -> dict[str, Any]:
    """Train or load ``target``, then measure its validation and test numbers."""
    import vaezoo
    from vaezoo import training
    from vaezoo.presets import PRESETS

    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if target.endswith(".keras"):
        model, source = vaezoo.load_model(target), "file"
    elif target in PRESETS:
        if PRESETS[target].data != DATA:
            raise SystemExit(f"preset {target!r} is for {PRESETS[target].data}, not {DATA}")
        model, source = vaezoo.from_preset(target), "preset"
    else:
        source, candidates = "registry", []
        for lr in args.lr:
            model, record = train_one(target, lr, args, data)
            runs.append({**record, "valid_nll": valid_nll(model, data, args)})
            candidates.append(model)
        model = candidates[int(np.argmin([r["valid_nll"] for r in runs]))]
    chosen = min(runs, key=lambda r: r["valid_nll"]) if runs else {}
    valid = chosen["valid_nll"] if runs else valid_nll(model, data, args)
    name = model.name
    test = training.evaluate(model, data.test.x, args.k, args.eval_batch_size, seed=args.seed, verbose=0)
    return {
        "target": target,
        "source": source,
        "model": name,
        "class": type(model).__name__,
        "parameters": int(model.count_params()),
        "lr": chosen.get("lr"),
        "epochs": chosen.get("epochs"),
        "best_epoch": chosen.get("best_epoch"),
        "stopped_by_time_budget": chosen.get("stopped_by_time_budget"),
        "train_seconds": chosen.get("train_seconds"),
        "valid_k": args.valid_k,
        "valid_nll": valid,
        "k": args.k,
        "test_nll": test["nll"],
        "test_elbo": test["elbo"],
        "test_examples": test["examples"],
        "eval_seconds": round(test["seconds"], 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "lr_search": [{"lr": r["lr"], "valid_nll": r["valid_nll"], "loaded": r["loaded"]} for r in runs],
        "anchors": [{"source": s, "nll": v} for s, v in ANCHORS.get(name, [])],
    }


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table of the report."""
    lines = [
        "| model | source | epochs | train s | lr | valid NLL (k) | test NLL (k) | test ELBO | published test NLL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        anchors = "; ".join(f"{a['nll']:.2f} ({a['source']})" for a in r["anchors"]) or "-"
        cells = [
            r["model"] if r["source"] == "registry" else f"{r['model']} ({r['target']})",
            r["source"],
            "-" if r["epochs"] is None else str(r["epochs"]),
            "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}",
            "-" if r["lr"] is None else f"{r['lr']:g}",
            f"{r['valid_nll']:.2f} ({r['valid_k']})",
            f"{r['test_nll']:.2f} ({r['k']})",
            f"{r['test_elbo']:.2f}",
            anchors,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from vaezoo import datasets
    from vaezoo._tf import tf

    start = time.perf_counter()
    data = datasets.load(DATA, download=False, limit=args.limit)
    results = []
    for target in args.targets:
        results.append(run_target(target, args, data))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {
        "command": " ".join(shlex.quote(a) for a in ["python", "benchmarks/nll.py", *(sys.argv[1:] if argv is None else argv)]),
        "data": {"name": DATA, "train": len(data.train.x), "valid": len(data.valid.x), "test": len(data.test.x)},
        "settings": {k: v for k, v in vars(args).items() if k != "targets"},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "cpus": os.cpu_count(),
        },
        "results": results,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    print_json(report, args.json, indent=1, sort_keys=False)
    print()
    print(table(results))
    return report


if __name__ == "__main__":
    main()
