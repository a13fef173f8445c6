"""Train the feature classifiers that ``vaezoo.metrics.frechet`` ships and print their records.

    python benchmarks/train_feature_classifiers.py                 # all three, into the package
    python benchmarks/train_feature_classifiers.py --data shapes --epochs 2 --out /tmp/clf

Data come from $VAEZOO_DATA (default ../shared/data next to the repository).
Each run writes ``<data>.weights.h5`` and ``<data>.json`` (sha256, test accuracy per head).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("VAEZOO_DATA", str(REPO.parent / "shared" / "data"))

from vaezoo.metrics import frechet

EPOCHS = {"fashion_mnist": 8, "binarized_mnist": 5, "shapes": 12}
# The procedural set can be as large as we like: more images instead of more epochs (less overfitting).
LOAD_OPTIONS = {"shapes": {"num_train": 50000}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="*", default=sorted(frechet.TASKS), choices=sorted(frechet.TASKS))
    parser.add_argument("--epochs", type=int, help=f"epochs (default per data set: {EPOCHS})")
    parser.add_argument("--limit", type=int, help="examples per split (default: all)")
    parser.add_argument("--out", default=str(frechet.CLASSIFIER_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    for name in args.data:
        start = time.perf_counter()
        record = frechet.train_feature_classifier(
            name, args.out, args.epochs or EPOCHS[name], args.limit, seed=args.seed, verbose=args.verbose,
            **LOAD_OPTIONS.get(name, {}),
        )
        size = (pathlib.Path(args.out) / record["weights"]).stat().st_size
        print(json.dumps({**record, "bytes": size, "seconds": round(time.perf_counter() - start, 1)}, indent=2))


if __name__ == "__main__":
    main()
