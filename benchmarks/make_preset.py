"""Turn a trained ``.keras`` file into a shipped preset folder and print its catalog entry.

    python benchmarks/make_preset.py --model-file vae.keras --name vae_mlp_binarized_mnist \
        --data binarized_mnist --train-json train.json --command "vaezoo train ..."

The printed JSON holds the files' sha256; the headline and check numbers for the card
come from ``benchmarks/presets.py``, which evaluates the written preset.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import pathlib

import vaezoo
from vaezoo.presets import loading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-file", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--train-json", help="the JSON summary `vaezoo train --json` wrote")
    parser.add_argument("--csv-log", help="the per-epoch CSV log, to record the epoch whose weights were kept")
    parser.add_argument("--command", required=True, help="the training command, for the card")
    parser.add_argument("--out", default=str(loading.SHIPPED), help="parent folder (default: the package's)")
    args = parser.parse_args()

    model = vaezoo.load_model(args.model_file)
    train = json.loads(pathlib.Path(args.train_json).read_text()) if args.train_json else {}
    card = {
        "name": args.name,
        "model": model.name,
        "data": args.data,
        "training_command": args.command,
        "epochs": train.get("epochs"),
        "train_seconds": train.get("train_seconds"),
        "last_epoch_metrics": train.get("final"),
        "date": datetime.date.today().isoformat(),
    }
    if args.csv_log:
        with open(args.csv_log, newline="") as handle:
            rows = list(csv.DictReader(handle))
        best = min(rows, key=lambda r: float(r["val_loss"]))
        card["kept_epoch"] = int(best["epoch"]) + 1
        card["kept_epoch_metrics"] = {k: float(v) for k, v in best.items() if k != "epoch"}
    files = loading.save_preset(model, pathlib.Path(args.out) / args.name, card)
    print(json.dumps({"name": args.name, "files": files}, indent=1))


if __name__ == "__main__":
    main()
