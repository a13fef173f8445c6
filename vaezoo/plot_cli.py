"""``vaezoo plot`` and the ``--metrics`` option of ``vaezoo evaluate``.

Example:
    $ vaezoo plot model.keras --kind traversals --out traversals.png
    $ vaezoo plot --kind curves --log training_log.csv --out curves.png
    $ vaezoo evaluate model.keras --metrics nll,active_units,mig,dci
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

KINDS = ("samples", "reconstructions", "traversals", "interpolation", "latents", "latent_map", "curves")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``plot`` command to the ``vaezoo`` sub-command parsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="vaezoo")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["plot", "m.keras", "--kind", "samples"]).kind
        'samples'
    """
    p = subparsers.add_parser("plot", help="write a PNG: samples, reconstructions, traversals, ... or training curves")
    p.add_argument("model_file", nargs="?", help="a .keras file saved by vaezoo (not needed for --kind curves)")
    p.add_argument("--kind", required=True, choices=KINDS, help="what to draw")
    p.add_argument("--out", help="the PNG to write (default: KIND.png)")
    p.add_argument("--data", help="data set (default: the model's own)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--limit", type=int, help="load at most this many examples per split (default: all)")
    p.add_argument("--binarize", action="store_true", help="threshold Fashion-MNIST pixels at 0.5")
    p.add_argument("--n", type=int, default=64, help="samples, reconstructions or interpolated pairs; map size")
    p.add_argument("--steps", type=int, default=9, help="steps of a traversal or interpolation")
    p.add_argument("--dims", type=int, help="latent dimensions to traverse (default: all, by KL)")
    p.add_argument("--factor", default=None, help="colour latents by this ground-truth factor (default: labels, else the first)")
    p.add_argument("--log", help="Keras CSVLogger file for --kind curves")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_plot)
    return p


def _spread(size: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(size)``: splits stored in class order
    (binarized MNIST's test set is) still show every class."""
    return np.linspace(0, size - 1, min(n, size)).astype(int)


def _colours(split, data, factor: str | None, index):
    if factor is None and split.y is not None:
        return split.y[index], "label"
    if split.factors is None:
        return None, ""
    names = list(data.factor_names)
    name = factor or names[0]
    if name not in names:
        raise ValueError(f"unknown factor {name!r}; {data.name} has {names}")
    return split.factors[index, names.index(name)], name


def cmd_plot(args: argparse.Namespace) -> int:
    """Run ``vaezoo plot`` (see :func:`add_parser`); returns the exit status.

    Example:
        >>> import os, tempfile
        >>> log = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> _ = open(log, "w").write("epoch,loss\\n0,2.0\\n1,1.0\\n")
        >>> cmd_plot(argparse.Namespace(kind="curves", log=log, out=log + ".png"))
        wrote ...log.csv.png
        0
    """
    from vaezoo import plots
    from vaezoo.cli import _load, _load_data

    out = args.out or f"{args.kind}.png"
    if args.kind == "curves":
        if not args.log:
            raise ValueError("--kind curves needs --log (a CSV written by `vaezoo train --csv-log`)")
        print(f"wrote {plots.save_training_curves(args.log, out)}")
        return 0
    if not args.model_file:
        raise ValueError(f"--kind {args.kind} needs a model file")
    model = _load(args.model_file)
    if args.kind == "samples":
        print(f"wrote {plots.save_grid(model.sample(args.n, seed=args.seed), out)}")
        return 0
    if args.kind == "latent_map" and args.data is None:
        print(f"wrote {plots.save_latent_map(model, out, n=min(args.n, 25))}")
        return 0
    from vaezoo.registry import get_spec

    data = _load_data(args.data or get_spec(model.name).data, args.limit, args.binarize)
    split = getattr(data, args.split)
    x, many = split.x, _spread(len(split), 5000)
    if args.kind == "reconstructions":
        shown = x[_spread(len(x), args.n)]
        path = plots.save_reconstructions(shown, model.reconstruct(shown), out)
    elif args.kind == "traversals":
        path = plots.save_traversals(model, x[many], out, num_dims=args.dims, steps=args.steps)
    elif args.kind == "interpolation":
        ends = x[_spread(len(x), 2 * min(args.n, 10))]
        pairs = len(ends) // 2
        path = plots.save_interpolations(model, ends[: 2 * pairs : 2], ends[1 : 2 * pairs : 2], out, steps=args.steps)
    elif args.kind == "latent_map":
        path = plots.save_latent_map(model, out, n=min(args.n, 25), x=x[many])
    else:
        from vaezoo.metrics.likelihood import encoder_means

        labels, name = _colours(split, data, args.factor, many)
        title = f"{data.name} {args.split}: posterior means" + (f", coloured by {name}" if name else "")
        path = plots.save_latent_scatter(encoder_means(model, x[many]), out, labels=labels, title=title)
    print(f"wrote {path}")
    return 0


def add_evaluate_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics`` and ``--metric-points`` to the ``evaluate`` parser.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_evaluate_options(parser)
        >>> parser.parse_args(["--metrics", "mig,dci"]).metrics
        ['mig', 'dci']
    """
    from vaezoo.metrics import METRICS, parse_metric_names

    def names(text: str) -> list[str]:
        try:
            return parse_metric_names(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parser.add_argument(
        "--metrics", type=names, default=[], metavar="NAMES", help=f"comma-separated extra metrics: {','.join(METRICS)}"
    )
    parser.add_argument(
        "--metric-points", type=int, default=10000, help="training points of the disentanglement metrics (default 10000)"
    )


def evaluate_extra(args: argparse.Namespace, model, data) -> dict[str, Any]:
    """The metrics ``args.metrics`` of ``model`` on ``data`` (``args`` from the
    ``evaluate`` parser extended by :func:`add_evaluate_options`).

    Example:
        >>> evaluate_extra(argparse.Namespace(metrics=[]), None, None)
        {}
    """
    if not args.metrics:
        return {}
    from vaezoo.metrics import evaluate_metrics

    return evaluate_metrics(
        model, data, args.metrics, args.split, args.k, args.metric_points, args.seed, args.batch_size
    )
