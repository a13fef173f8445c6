"""Every registered model, trained for one fixed budget on its registry data set: the
headline numbers of the README's model table.

For each model: train with the registry's config (Adam 1e-3, XLA, batch 128) for
``--epochs`` over the first ``--train-examples`` training examples, then report on the
first ``--test-examples`` test examples the model's own terms (``model.evaluate``: the
ELBO and whatever the variant adds, e.g. ``mmd`` or ``total_correlation``), the
importance-sampled NLL with ``--k`` samples and bits/dim, plus the variant's own
headline where it has one:

- clustering models (``predict_cluster``): unsupervised clustering accuracy (Hungarian);
- classifiers (``classify``, semi-supervised M2 / M1+M2, trained with ``--labels-per-class``
  labels): test accuracy;
- conditional models (``conditional``): the share of class-c samples that the shipped
  Fashion-MNIST classifier labels c;
- two-stage models (``fit_second_stage``): Frechet distance of stage-one-prior and
  two-stage samples to the test images, in the shipped classifier's feature space;
- models on the shapes data: MIG and DCI disentanglement.

    python benchmarks/zoo.py --json runs/zoo.json --markdown runs/zoo.md   # all models
    python benchmarks/zoo.py --models vae iwae swae --epochs 2             # a few
    python benchmarks/zoo.py --smoke                                       # seconds per model
    python benchmarks/zoo.py --json runs/zoo.json --resume                 # measure what is missing

Each model trains in its own child process (memory stays that of one model); the
records are written after every model, and ``--resume`` keeps the successful ones of
``--json`` (measured with the same budget) and measures the rest.

Numbers of one budget compare models of one data set, within one run; they are not
the papers' numbers (those need the papers' schedules: see benchmarks/nll.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

#: Overrides of ``--smoke``: tiny networks.
SMOKE = {"hidden_units": (16,), "latent_dim": 4}


def _labels_kept(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``y`` with all but ``per_class`` labels of each class replaced by -1 (unlabelled)."""
    rng = np.random.default_rng(seed)
    kept = np.full_like(y, -1)
    for c in np.unique(y):
        index = rng.permutation(np.flatnonzero(y == c))[:per_class]
        kept[index] = c
    return kept


def _labelled(model) -> bool:
    """Whether ``model`` is trained and evaluated on (examples, labels): conditional models,
    not the semi-supervised ones (``classify``), whose labels are optional."""
    return getattr(model, "conditional", False) and not hasattr(model, "classify")


def _fit(model, data, args: argparse.Namespace) -> dict[str, Any]:
    """Train ``model`` on the budget; returns the history's last epoch and timings."""
    from vaezoo import training

    x = data.train.x[: args.train_examples]
    y = None if data.train.y is None else data.train.y[: args.train_examples]
    start = time.perf_counter()
    if hasattr(model, "classify") and y is not None:  # semi-supervised: few labels, the rest -1
        labels = _labels_kept(y, args.labels_per_class, args.seed)
        history = model.fit(x, labels, epochs=args.epochs, batch_size=args.batch_size, verbose=0).history
    elif _labelled(model):
        history = training.train(model, (x, y), epochs=args.epochs, batch_size=args.batch_size, verbose=0).history
    else:
        history = training.train(model, x, epochs=args.epochs, batch_size=args.batch_size, verbose=0).history
    if hasattr(model, "fit_second_stage"):
        model.fit_second_stage(x, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    return {"train_seconds": time.perf_counter() - start, "final": {k: v[-1] for k, v in history.items()}}


def _headline(model, data, x_test, y_test, args: argparse.Namespace) -> dict[str, float]:
    """The variant's own headline numbers (see the module docstring)."""
    from vaezoo import metrics

    out: dict[str, float] = {}
    if hasattr(model, "predict_cluster") and y_test is not None:
        out["clustering_accuracy"] = metrics.clustering.clustering_accuracy(y_test, model.predict_cluster(x_test))
    if hasattr(model, "classify") and y_test is not None:
        predicted = np.asarray(model.classify(x_test))
        predicted = predicted.argmax(-1) if predicted.ndim > 1 else predicted
        out["test_accuracy"] = metrics.clustering.classification_accuracy(y_test, predicted)
    if _labelled(model) and data.name == "fashion_mnist":
        from vaezoo.metrics import frechet

        classes = np.repeat(np.arange(data.num_classes), 100)
        samples = model.sample(len(classes), labels=classes, seed=args.seed)
        out["class_consistency"] = float(np.mean(frechet.classify(samples, "fashion_mnist") == classes))
    if hasattr(model, "fit_second_stage"):
        from vaezoo.metrics import frechet

        features = frechet.load_feature_extractor(data.name)
        real, n = features(x_test), len(x_test)
        out["fd_stage_one_prior"] = frechet.frechet_distance(features(model.sample(n, seed=args.seed, stage=1)), real)
        out["fd_two_stage"] = frechet.frechet_distance(features(model.sample(n, seed=args.seed, stage=2)), real)
    if data.name == "shapes":
        from vaezoo.metrics import disentanglement as d

        truth = d.shapes_ground_truth()
        rep = d.representation(model)
        out["mig"] = d.mig(rep, truth, seed=args.seed, num_train=args.eval_points)["mig"]
        dci = d.dci(rep, truth, seed=args.seed, num_train=args.eval_points, num_test=args.eval_points // 2)
        out["dci_disentanglement"] = dci["disentanglement"]
    return out


def run_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate one registered model."""
    from vaezoo import datasets, training
    from vaezoo._tf import keras
    from vaezoo.registry import get_spec

    spec = get_spec(name)
    data = datasets.load(spec.data, download=False, limit=max(args.train_examples, args.test_examples))
    keras.utils.set_random_seed(args.seed)  # the same initial weights and batches in every run
    model = training.build_for_data(name, data.train.x.shape[1:], **(SMOKE if args.smoke else {}))
    training.compile_model(model, args.learning_rate)
    record: dict[str, Any] = {"model": name, "class": type(model).__name__, "data": spec.data, "paper": spec.paper}
    record.update(_fit(model, data, args))
    x_test = data.test.x[: args.test_examples]
    y_test = None if data.test.y is None else data.test.y[: args.test_examples]
    # Conditional and semi-supervised models are scored on log p(x|y) with the test labels.
    test_data = (x_test, y_test) if getattr(model, "conditional", False) else (x_test,)
    terms = model.evaluate(*test_data, batch_size=args.batch_size, verbose=0, return_dict=True)
    record["test_terms"] = {k: float(v) for k, v in terms.items()}
    evaluated = training.evaluate(model, test_data if len(test_data) > 1 else x_test, num_samples=args.k, seed=args.seed)
    record.update({f"test_{k}": v for k, v in evaluated.items()})
    record.update(_headline(model, data, x_test, y_test, args))
    return record


COLUMNS = (
    ("test_elbo", "test ELBO", ".2f"),
    ("test_nll", "test NLL", ".2f"),
    ("test_bits_per_dim", "bits/dim", ".3f"),
    ("headline", "own headline", ""),
    ("train_seconds", "train s", ".0f"),
)
_OWN = ("clustering_accuracy", "test_accuracy", "class_consistency", "fd_stage_one_prior", "fd_two_stage", "mig", "dci_disentanglement")
_PLAIN = {"loss", "elbo", "reconstruction", "kl"}


def headline_text(record: dict[str, Any], terms: int | None = None) -> str:
    """The variant's own numbers, then its own loss terms on the test set (the first
    ``terms`` of them; all if None), as text."""
    own = [f"{k} {record[k]:.3f}" for k in _OWN if k in record]
    extra = [f"{k} {v:.3g}" for k, v in record.get("test_terms", {}).items() if k not in _PLAIN]
    return ", ".join(own + extra[:terms]) or "-"


def markdown(records: list[dict[str, Any]], command: str) -> str:
    """The README's model table: one row per model, with the registry's summary and
    paper next to the measured numbers."""
    from vaezoo.registry import get_spec

    lines = [
        f"Measured with `{command}`.",
        "",
        "| model | data | what | paper | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "| --- | --- | --- | --- |" + " ---: |" * len(COLUMNS),
    ]
    for r in records:
        spec = get_spec(r["model"])
        summary = spec.summary.replace("|", "\\|")
        cite = re.match(r".*?\b(19|20)\d\d\b", spec.paper)
        row = f"| `{r['model']}` | {spec.data} | {summary} | {cite.group(0) if cite else spec.paper} | "
        if "error" in r:
            lines.append(row + f"failed: {r['error']} |" + " |" * (len(COLUMNS) - 1))
            continue
        cells = [headline_text(r, terms=3) if key == "headline" else format(r[key], fmt) for key, _, fmt in COLUMNS]
        lines.append(row + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: The options that define a run's budget: a resumed run must use the same values.
BUDGET = ("epochs", "train_examples", "test_examples", "labels_per_class", "batch_size", "learning_rate", "k",
          "eval_points", "seed", "smoke")


def _write(path: str | None, markdown_path: str | None, run: dict[str, Any]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(run, f, indent=1, default=float)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(markdown(run["records"], run["command"]))


def _previous(args: argparse.Namespace, budget: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """With ``--resume``: the successful records of ``--json`` (same budget), by model."""
    if not (args.resume and args.json and os.path.exists(args.json)):
        return {}
    with open(args.json) as f:
        run = json.load(f)
    if run.get("budget") != budget:
        raise SystemExit(f"zoo: {args.json} was measured with {run.get('budget')}, not {budget}: cannot --resume")
    return {r["model"]: r for r in run["records"] if "error" not in r}


def _run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate ``name`` in a child process (TensorFlow keeps what a process
    compiled until it ends: one process for every model grew past 16 GB)."""
    argv = [sys.executable, __file__, "--models", name]
    for key in BUDGET:
        value = getattr(args, key)
        if value is True:
            argv.append(f"--{key.replace('_', '-')}")
        elif value is not False:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    with tempfile.TemporaryDirectory() as folder:
        record_path = os.path.join(folder, "record.json")
        code = subprocess.run([*argv, "--child-record", record_path], check=False).returncode
        if code != 0 or not os.path.exists(record_path):
            return {"model": name, "error": f"the child process exited with code {code}"}
        with open(record_path) as f:
            return json.load(f)


def _measure_one(name: str, args: argparse.Namespace) -> None:
    """The child's side: one model, its record written to ``--child-record``."""
    try:
        record = run_model(name, args)
    except Exception as error:  # noqa: BLE001 - one failing model is reported, not fatal to the table
        record = {"model": name, "error": f"{type(error).__name__}: {error}"[:300]}
    with open(args.child_record, "w") as f:
        json.dump(record, f, default=float)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: every registered model)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-examples", type=int, default=10_000)
    parser.add_argument("--test-examples", type=int, default=1_000)
    parser.add_argument("--labels-per-class", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--k", type=int, default=100, help="importance samples of the NLL estimate")
    parser.add_argument("--eval-points", type=int, default=1_000, help="points of the disentanglement metrics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny networks and data: checks the script runs")
    parser.add_argument("--json", help="write the records here (after every model)")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--resume", action="store_true", help="keep the successful records of --json, measure the rest")
    parser.add_argument("--from-json", metavar="JSON", help="no training: print (and --markdown) the table of a run's --json")
    parser.add_argument("--child-record", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            run = json.load(f)
        _write(None, args.markdown, run)
        print(markdown(run["records"], run["command"]))
        return
    if args.smoke:
        args.epochs, args.train_examples, args.test_examples, args.k, args.eval_points = 1, 256, 64, 4, 64
    if args.child_record:
        _measure_one(args.models[0], args)
        return
    from vaezoo.registry import list_models

    names = args.models or list_models()
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--resume"]
    budget = {key: getattr(args, key) for key in BUDGET}
    previous = _previous(args, budget)
    run: dict[str, Any] = {"command": " ".join(["python benchmarks/zoo.py", *given]), "budget": budget, "records": []}
    for name in names:
        if name in previous:
            record = previous[name]
        else:
            print(f"zoo: {name} ...", file=sys.stderr, flush=True)
            record = _run_child(name, args)
            print(json.dumps(record, default=float), file=sys.stderr, flush=True)
        run["records"].append(record)
        _write(args.json, args.markdown, run)  # after every model: a killed run keeps what it measured
    print(json.dumps(run, default=float))
    print(markdown(run["records"], run["command"]))
    failed = [r["model"] for r in run["records"] if "error" in r]
    if failed:
        sys.exit(f"zoo: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
