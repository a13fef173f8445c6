"""The ``vaezoo export`` subcommand; ``vaezoo/cli.py`` registers it with :func:`add_parser`.

Importing this module does not import TensorFlow; running the command does.

Example:
    $ vaezoo export vae.keras --out exports/vae --data binarized_mnist
    $ vaezoo export vae.keras --out exports/vae-int8 --precision int8 --data binarized_mnist
    $ vaezoo export --check exports/vae
    $ vaezoo export vae.keras --web site/vae --data binarized_mnist
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vaezoo.export.manifest import FORMATS, PRECISIONS

CHECK_EXAMPLES = 64


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``export`` to ``subparsers``; its ``func`` default is :func:`run`.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser().add_subparsers(dest="command")
        >>> args = add_parser(sub).parse_args(["m.keras", "--out", "d", "--precision", "fp16"])
        >>> args.precision, args.formats, args.func is run
        ('fp16', ['onnx', 'tflite'], True)
    """
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX/TFLite with a parity-checked manifest, or re-check an export",
        description=(
            "Export the encoder, decoder and sampler of a saved model to ONNX and TFLite, with "
            "manifest.json, the Keras weights and parity figures against Keras; or, with --check, "
            "re-measure the parity of an export directory."
        ),
    )
    parser.add_argument(
        "model", nargs="?", help="a .keras file saved from a vaezoo model, or a preset (`vaezoo presets`, a preset "
        "folder or URL)"
    )
    parser.add_argument("--out", help="export directory")
    parser.add_argument("--formats", nargs="+", choices=list(FORMATS), default=list(FORMATS))
    parser.add_argument("--parts", nargs="+", default=None, help="parts to export (default: all of the model's)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument(
        "--data",
        help="data set (vaezoo.datasets) whose train split calibrates int8 and whose test split "
        "checks parity; without it parity is checked on examples drawn from the model",
    )
    parser.add_argument("--limit", type=int, default=1000, help="examples of --data to load per split")
    parser.add_argument("--check", metavar="DIR", help="re-check the parity of an export directory and exit")
    parser.add_argument(
        "--web", metavar="DIR",
        help="write a static latent-explorer site to DIR: every part as ONNX, onnxruntime-web and the page",
    )
    parser.add_argument(
        "--ort-web", metavar="PATH", help="with --web: onnxruntime-web files (a folder or the npm tarball) instead of "
        "the cache, which is otherwise filled from the npm registry",
    )
    parser.add_argument(
        "--card", metavar="JSON", help="with --web: a `vaezoo evaluate --json` result for the model card's NLL"
    )
    parser.set_defaults(func=run)
    return parser


def _data(name: str | None, limit: int) -> tuple[Any, Any]:
    if name is None:
        return None, None
    from vaezoo import datasets

    dataset = datasets.load(name, limit=limit)
    return dataset.train.x, dataset.test.x[:CHECK_EXAMPLES]


def parity_summary(figures: dict[str, Any]) -> str:
    """Worst max abs difference vs Keras per part and format, one line each (and the worst
    mean abs difference where the precision bounds it, as int8 does)."""
    worst: dict[tuple[str, str], float] = {}
    mean: dict[tuple[str, str], float] = {}
    for r in figures["results"]:
        key = (r["part"], r["format"])
        worst[key] = max(worst.get(key, 0.0), r["max_abs_diff"] if r["finite"] else float("inf"))
        if "mean_allowed" in r:
            mean[key] = max(mean.get(key, 0.0), r["mean_abs_diff"] if r["finite"] else float("inf"))
    lines = [f"parity ({figures['tolerance']['precision']}): max abs diff vs Keras" + (", worst mean" if mean else "")]
    lines += [
        f"  {part:8s} {fmt:7s} {diff:.3g}" + (f"  mean {mean[part, fmt]:.3g}" if (part, fmt) in mean else "")
        for (part, fmt), diff in worst.items()
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``vaezoo export`` for parsed ``args``; returns the exit code (1 on a parity failure)."""
    if args.check and (args.model or args.out):
        raise ValueError("--check DIR takes no MODEL and no --out")
    if getattr(args, "web", None):
        return run_web(args)
    if not args.check and not (args.model and args.out):
        raise ValueError("give MODEL.keras and --out DIR (or --web DIR, or --check DIR)")
    from vaezoo.export.parity import ParityError, check

    try:
        if args.check:
            figures = check(args.check, data=_data(args.data, args.limit)[1])
            print(parity_summary(figures))
            return 0
        from vaezoo.export.exporter import export

        model = load(args.model)
        calibration, check_x = _data(args.data, args.limit)
        manifest = export(
            model,
            args.out,
            formats=args.formats,
            precision=args.precision,
            calibration_data=calibration,
            check_data=check_x,
            **({"parts": args.parts} if args.parts else {}),
        )
    except ParityError as err:
        print(f"vaezoo export: {err}", file=sys.stderr)
        return 1
    for part, entry in manifest.parts.items():
        for fmt, info in entry["files"].items():
            print(f"{args.out}/{info['file']}: {info['bytes']} bytes ({part}, {fmt}, {info['precision']})")
    print(parity_summary(manifest.data["parity"]))
    return 0


def load(handle: str) -> Any:
    """The model to export: a ``.keras`` file, else a preset handle (name, folder or URL),
    so that any preset exports to its edge bundle on demand.

    Example:
        >>> load("vae_mlp_binarized_mnist").name
        'vae'
    """
    import vaezoo

    if handle.endswith(".keras") or os.path.isfile(handle):
        return vaezoo.load_model(handle)
    looks_like_path = os.sep in handle or os.path.splitext(handle)[1] != ""
    if looks_like_path and "://" not in handle and not os.path.isdir(handle):
        names = ", ".join(row["name"] for row in vaezoo.list_presets())
        raise FileNotFoundError(
            f"{handle!r}: no such file or folder (MODEL is a .keras file, a preset folder or URL, "
            f"or a preset name: {names})"
        )
    return vaezoo.from_preset(handle)


def run_web(args: argparse.Namespace) -> int:
    """``vaezoo export MODEL.keras --web DIR``: the ONNX export plus the latent-explorer page."""
    if not args.model or args.out or args.check:
        raise ValueError("--web DIR takes MODEL.keras and no --out or --check")
    import json

    from vaezoo.export.parity import ParityError
    from vaezoo.export.web import card_from_json, export_web

    card = None
    if args.card:
        with open(args.card, encoding="utf-8") as handle:
            card = card_from_json(json.load(handle))
    data, check_x = _data(args.data, args.limit)
    try:
        web = export_web(
            load(args.model), args.web, data=data, data_name=args.data, check_data=check_x, card=card,
            ort_web=args.ort_web, precision=args.precision,
        )
    except ParityError as err:
        print(f"vaezoo export: {err}", file=sys.stderr)
        return 1
    print(f"{args.web}: latent explorer for {web['card']['name']} (onnxruntime-web {web['onnxruntime_web']['version']})")
    print(f"serve it with: python -m http.server --bind 127.0.0.1 -d {args.web}  (then open http://127.0.0.1:8000/)")
    return 0
