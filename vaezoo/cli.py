"""The ``vaezoo`` command line: list, presets, train, evaluate, sample, plot, quickstart, export.

Example:
    $ vaezoo list
    $ vaezoo train --model vae --data binarized_mnist --epochs 20 --out vae.keras
    $ vaezoo evaluate vae.keras --k 1000
    $ vaezoo sample vae.keras --out samples.png
    $ vaezoo quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from vaezoo.export.cli import add_parser as add_export_parser
from vaezoo.export.cli import parity_summary
from vaezoo.plot_cli import add_evaluate_options, evaluate_extra
from vaezoo.plot_cli import add_parser as add_plot_parser


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--config KEY=VALUE ...`` as a dict of overrides; values are JSON, else strings
    (also the ``--config`` of ``benchmarks/``).

    Example:
        >>> parse_overrides(["latent_dim=8", "hidden_units=[64,32]", "network=conv"])
        {'latent_dim': 8, 'hidden_units': [64, 32], 'network': 'conv'}
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"vaezoo: --config expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def _load_data(name: str, limit: int | None, binarize: bool = False):
    from vaezoo import datasets

    kwargs = {"binarize": True} if binarize else {}
    return datasets.load(name, limit=limit, **kwargs)


def print_json(result: Any, path: str | None = None, indent: int = 2, sort_keys: bool = True) -> None:
    """Print ``result`` as JSON and, with a ``path``, write it there too (the ``--json``
    of the commands and of ``benchmarks/``).

    Example:
        >>> print_json({"b": [1], "a": 2}, indent=None)
        {"a": 2, "b": [1]}
    """
    text = json.dumps(result, indent=indent, sort_keys=sort_keys)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def cmd_list(args: argparse.Namespace) -> int:
    from vaezoo.registry import get_spec, list_models

    rows = [(n, get_spec(n).target.split(":")[1], get_spec(n).data, get_spec(n).summary) for n in list_models()]
    widths = [max(len(r[i]) for r in rows + [("model", "class", "data", "")]) for i in range(3)]
    print(f"{'model':<{widths[0]}}  {'class':<{widths[1]}}  {'data':<{widths[2]}}  summary")
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from vaezoo.presets import list_presets

    rows = list_presets()
    print(f"{'preset':<28}  {'model':<10}  {'data':<16}  {'size':>8}  metric")
    for r in rows:
        size = f"{r['size_bytes'] / 2**20:.1f} MB" if r["size_bytes"] else "download"
        print(f"{r['name']:<28}  {r['model']:<10}  {r['data']:<16}  {size:>8}  {r['metric']} = {r['value']:.2f}")
    return 0


def _train(args: argparse.Namespace, data) -> dict[str, Any]:
    from vaezoo import distribute, training
    from vaezoo._tf import keras
    from vaezoo.models.base import NonFiniteError

    if getattr(args, "backup_every", None) and not args.backup_dir:
        raise ValueError("--backup-every needs --backup-dir")
    strategy = distribute.make_strategy(getattr(args, "strategy", "none"))
    overrides = parse_overrides(args.config)
    conditional = _is_conditional(args.model)
    if conditional:
        if data.num_classes is None or data.train.y is None:
            raise ValueError(f"model {args.model!r} is conditional: it needs labelled data; {data.name} has no labels")
        overrides.setdefault("label_dim", data.num_classes)
    keras.utils.set_random_seed(args.seed)  # the initial weights too depend on --seed only
    with distribute.strategy_scope(strategy):
        model = training.build_for_data(args.model, data.train.x.shape[1:], seed=args.seed, **overrides)
        training.compile_model(
            model,
            args.lr,
            jit_compile=args.jit,
            steps_per_execution=args.steps_per_execution,
            on_nan=getattr(args, "on_nan", "stop"),
        )
    chief = distribute.is_chief()
    backup_dir = args.backup_dir
    if backup_dir and distribute.is_multi_worker(strategy):
        backup_dir = os.path.join(backup_dir, "{}-{}".format(*distribute.task()))  # one folder per worker
    callbacks = []
    if args.csv_log and chief:
        callbacks.append(keras.callbacks.CSVLogger(args.csv_log, append=bool(backup_dir)))
    if args.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(patience=args.early_stopping, restore_best_weights=True)
        )
    try:
        result = training.train(
            model, *_split_data(data, conditional), args.epochs, args.batch_size, callbacks, args.verbose, args.seed,
            backup_dir=backup_dir, backup_every=getattr(args, "backup_every", None),
        )
    except NonFiniteError as err:
        raise SystemExit(f"vaezoo {getattr(args, 'command', 'train')}: error: {err}") from None
    if chief:
        training.save_model(model, args.out)
    return {
        "model": args.model,
        "data": data.name,
        "out": args.out if chief else None,
        "strategy": getattr(args, "strategy", "none"),
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "epochs": len(result.history["loss"]),
        "train_seconds": round(result.seconds, 2),
        "first_epoch_seconds": round(result.epoch_seconds[0], 2) if result.epoch_seconds else None,
        "train_samples_per_second": round(result.samples_per_second, 1),
        "nonfinite_steps": model.nonfinite_steps,
        "final": {k: v[-1] for k, v in result.history.items()},
    }


def _is_conditional(model_name: str) -> bool:
    """Whether the registered model takes labels (``conditional`` class attribute)."""
    from vaezoo.registry import get_spec

    return bool(getattr(get_spec(model_name).load_class(), "conditional", False))


def _split_data(data, conditional: bool, splits: Sequence[str] = ("train", "valid")) -> list:
    """Each split's examples, as ``(x, y)`` for a conditional model."""
    return [(getattr(data, s).x, getattr(data, s).y) if conditional else getattr(data, s).x for s in splits]


def cmd_train(args: argparse.Namespace) -> int:
    from vaezoo.registry import get_spec

    data = _load_data(args.data or get_spec(args.model).data, args.limit, args.binarize)
    print_json(_train(args, data), args.json)
    return 0


def _load(path: str):
    import vaezoo

    if not os.path.exists(path):
        raise SystemExit(f"vaezoo: no model file at {path!r}")
    return vaezoo.load_model(path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vaezoo import training
    from vaezoo.registry import get_spec

    model = _load(args.model_file)
    data = _load_data(args.data or get_spec(model.name).data, args.limit, args.binarize)
    (split,) = _split_data(data, getattr(model, "conditional", False), [args.split])
    result = training.evaluate(model, split, args.k, args.batch_size, args.seed, verbose=args.verbose)
    extra = evaluate_extra(args, model, data)
    print_json({"model_file": args.model_file, "data": data.name, "split": args.split, **result, **extra}, args.json)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from vaezoo.plots import save_grid

    model = _load(args.model_file)
    labels = {}
    if getattr(model, "conditional", False):
        labels["labels"] = np.arange(args.n) % model.label_dim if args.label is None else args.label
    elif args.label is not None:
        raise ValueError(f"--label is for conditional models; {model.name!r} is not conditional")
    save_grid(model.sample(args.n, seed=args.seed, **labels), args.out)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def _quickstart_data(args: argparse.Namespace):
    from vaezoo import datasets

    if args.data:
        return _load_data(args.data, args.limit)
    for name in ("binarized_mnist", "fashion_mnist"):
        if datasets.find_local(name):
            return _load_data(name, args.limit, binarize=name == "fashion_mnist")
    print(
        "vaezoo quickstart: no local copy of binarized_mnist or fashion_mnist found "
        "(set VAEZOO_DATA to a folder holding them); using the procedural 'shapes' data set.",
        file=sys.stderr,
    )
    return _load_data("shapes", args.limit)


def cmd_quickstart(args: argparse.Namespace) -> int:
    import numpy as np

    from vaezoo import training
    from vaezoo.export.web import find_ort_web
    from vaezoo.plots import save_grid, save_traversals

    ort_web = find_ort_web(args.ort_web) if args.ort_web and not args.no_export else None  # wrong: fail before training
    os.makedirs(args.out, exist_ok=True)
    data = _quickstart_data(args)
    print(f"vaezoo quickstart: training '{args.model}' on {data.name} ({len(data.train.x)} examples) ...")
    train_args = argparse.Namespace(
        model=args.model,
        config=args.config,
        seed=args.seed,
        lr=1e-3,
        jit=True,
        steps_per_execution=8,
        backup_dir=None,
        csv_log=os.path.join(args.out, "training_log.csv"),
        early_stopping=0,
        epochs=args.epochs,
        batch_size=128,
        verbose=args.verbose,
        out=os.path.join(args.out, "model.keras"),
    )
    summary = _train(train_args, data)
    model = _load(train_args.out)
    # Spread over the split: some test splits are ordered by class.
    picks = np.linspace(0, len(data.test.x) - 1, min(args.eval_examples, len(data.test.x))).astype(int)
    test = data.test.x[picks]
    summary["test"] = training.evaluate(model, test, args.k, verbose=args.verbose)
    save_grid(model.sample(64, seed=args.seed), os.path.join(args.out, "samples.png"))
    pairs = test[np.linspace(0, len(test) - 1, 16).astype(int)]
    save_grid(
        np.concatenate([pairs, model.reconstruct(pairs)]),
        os.path.join(args.out, "reconstructions.png"),
        ncols=16,
    )
    save_traversals(model, test, os.path.join(args.out, "traversals.png"))
    if not args.no_export:
        from vaezoo.export import export

        manifest = export(model, os.path.join(args.out, "export"), check_data=test[:64])
        summary["export_parity_ok"] = manifest.data["parity"]["ok"]
        print(parity_summary(manifest.data["parity"]))
        from vaezoo.export.web import (
            card_from_json,
            export_web,
            locate_ort_web,
            ort_web_hint,
        )

        site = os.path.join(args.out, "web")
        try:
            ort_web = ort_web or locate_ort_web()
        except (OSError, ValueError) as err:  # offline without the files: the quickstart goes on without the page
            print(f"vaezoo quickstart: no web page ({err}); {ort_web_hint()}", file=sys.stderr)
        else:
            card = card_from_json({"data": data.name, "split": "test", **summary["test"]})
            export_web(model, site, data=test, data_name=data.name, check_data=test[:64], card=card, ort_web=ort_web)
            print(f"latent explorer in {site}: serve it with python -m http.server --bind 127.0.0.1 -d {site} "
                  "and open http://127.0.0.1:8000/")
    summary["files"] = sorted(os.listdir(args.out))
    print_json(summary, os.path.join(args.out, "summary.json"))
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras verbosity")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="model config overrides (JSON values)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vaezoo`` command.

    Example:
        >>> build_parser().parse_args(["list"]).command
        'list'
    """
    parser = argparse.ArgumentParser(prog="vaezoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the registered models")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("presets", help="list the pretrained presets (vaezoo.from_preset(name))")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train a registered model on a data set and save it (.keras)")
    p.add_argument("--model", required=True, help="registry name (see `vaezoo list`)")
    p.add_argument("--data", help="data set (default: the model's own, see `vaezoo list`)")
    p.add_argument("--limit", type=int, help="use at most this many examples per split")
    p.add_argument("--binarize", action="store_true", help="threshold Fashion-MNIST pixels at 0.5")
    p.add_argument("--out", required=True, help="where to save the trained model (.keras)")
    _add_train_options(p)
    p.add_argument("--no-jit", dest="jit", action="store_false", help="train without XLA")
    p.add_argument("--steps-per-execution", type=int, default=8)
    p.add_argument("--backup-dir", help="checkpoint folder: rerun the same command to resume where it stopped")
    p.add_argument("--backup-every", type=int, metavar="STEPS", help="also checkpoint every STEPS steps")
    p.add_argument(
        "--strategy", default="none", choices=("none", "mirrored", "multiworker"),
        help="tf.distribute strategy: mirrored (this machine's GPUs), multiworker (the TF_CONFIG cluster)",
    )
    p.add_argument(
        "--on-nan", default="stop", choices=("stop", "skip"),
        help="on a NaN/Inf loss term or gradient: stop with a report (default) or skip that step",
    )
    p.add_argument("--csv-log", help="write per-epoch metrics to this CSV file")
    p.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE", help="stop on val_loss")
    p.add_argument("--json", help="also write the summary to this JSON file")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="ELBO and importance-sampled NLL (nats) of a saved model")
    p.add_argument("model_file", help="a .keras file saved by vaezoo")
    p.add_argument("--data", help="data set (default: the model's own)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--k", type=int, default=1000, help="importance samples per example (default 1000)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--limit", type=int, help="use at most this many examples")
    p.add_argument("--binarize", action="store_true", help="threshold Fashion-MNIST pixels at 0.5")
    p.add_argument("--json", help="also write the result to this JSON file")
    add_evaluate_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="write a PNG grid of samples from a saved model")
    p.add_argument("model_file")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", default="samples.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--label", type=int, help="class of the samples of a conditional model (default: each class in turn)"
    )
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "quickstart",
        help="train, evaluate and save a small VAE on the best local data set, write pictures, "
        "export it to ONNX and TFLite, check parity and write a latent-explorer web page",
    )
    p.add_argument("--out", default="vaezoo-quickstart", help="output folder")
    p.add_argument("--model", default="vae")
    p.add_argument("--data", help="data set (default: the best one found locally, else shapes)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--limit", type=int, default=20000, help="examples per split (default 20000)")
    p.add_argument("--k", type=int, default=100, help="importance samples for the NLL estimate")
    p.add_argument("--eval-examples", type=int, default=1000)
    p.add_argument("--no-export", action="store_true", help="skip the ONNX/TFLite export, parity check and web page")
    p.add_argument(
        "--ort-web", metavar="PATH", help="onnxruntime-web files for the web page (a folder or the npm tarball); "
        "default: the cache, filled from the npm registry when it can be reached",
    )
    p.add_argument("--config", nargs="*", default=["hidden_units=[256]", "latent_dim=16"], metavar="KEY=VALUE")
    _add_common(p)
    p.set_defaults(func=cmd_quickstart)

    add_export_parser(sub)
    add_plot_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vaezoo`` console script.

    Example:
        >>> main(["list"])  # doctest: +ELLIPSIS
        model ...
        0
    """
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        code = args.func(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"vaezoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    if args.command not in ("list", "presets"):
        print(f"vaezoo {args.command}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
