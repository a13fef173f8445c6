"""Evaluate presets as a user gets them and print the numbers their model cards quote.

    python benchmarks/presets.py                       # every preset, k=5000 on the full test split
    python benchmarks/presets.py --names vae_mlp_binarized_mnist --k 1000 --limit 2000

For each preset: the headline test NLL (importance-sampled, nats) and ELBO on the test
split, and the quick check figure that tests/test_presets.py reproduces (k=100 on the
first 500 test examples, seed 0); presets of the shapes data (known generative factors)
add MIG, SAP and DCI (``vaezoo.metrics.disentanglement``, seed 0, 10,000 training and
5,000 held-out points as in disentanglement_lib). Prints JSON, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time

import vaezoo
from vaezoo import datasets, presets, training
from vaezoo.cli import print_json

CHECK = {"num_samples": 100, "examples": 500, "seed": 0}


#: Disentanglement metrics of the presets trained on the shapes data, and their sizes.
DISENTANGLEMENT = {"names": ("mig", "sap", "dci"), "num_train": 10000, "num_eval": 5000, "seed": 0}


def evaluate_preset(name: str, k: int, limit: int | None) -> dict:
    """Load preset ``name`` and measure its card numbers."""
    entry = presets.PRESETS[name]
    start = time.perf_counter()
    model = vaezoo.from_preset(name)
    load_seconds = time.perf_counter() - start
    test = datasets.load(entry.data, download=False).test

    def first(n: int | None):  # the first n test examples, with their labels for a conditional model
        x = test.x[:n]
        return (x, test.y[:n]) if getattr(model, "conditional", False) else x

    check = training.evaluate(model, first(CHECK["examples"]), CHECK["num_samples"], seed=CHECK["seed"])
    headline = training.evaluate(model, first(limit), k, seed=0)
    scores = {}
    if entry.data == "shapes":
        from vaezoo.metrics import disentanglement as d

        scores = {"disentanglement": d.disentanglement_scores(d.representation(model), d.shapes_ground_truth(), **DISENTANGLEMENT)}
    return {
        "name": name,
        "model": entry.model,
        "data": entry.data,
        "load_seconds": round(load_seconds, 2),
        "check_nll_k100_500": check["nll"],
        "test_nll": headline["nll"],
        "test_elbo": headline["elbo"],
        "bits_per_dim": headline["bits_per_dim"],
        "k": k,
        "examples": headline["examples"],
        "eval_seconds": round(headline["seconds"], 1),
        **scores,
    }


def write_card(result: dict) -> str:
    """Add ``result`` to the shipped ``preset.json`` as its ``evaluation``; return the new sha256."""
    path = presets.loading.SHIPPED / result["name"] / presets.loading.CARD
    card = json.loads(path.read_text())
    card["evaluation"] = {
        **{k: v for k, v in result.items() if k not in ("name", "model", "data")},
        "command": f"python benchmarks/presets.py --names {result['name']} --k {result['k']}",
    }
    path.write_text(json.dumps(card, indent=1, sort_keys=True))
    return presets.loading.downloads.file_sha256(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", nargs="*", default=sorted(presets.PRESETS))
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--limit", type=int, help="evaluate on the first N test examples only")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--write-card", action="store_true", help="store the results in each shipped preset.json (maintainers)"
    )
    args = parser.parse_args()
    results = [evaluate_preset(name, args.k, args.limit) for name in args.names]
    if args.write_card:
        for result in results:
            result["preset.json sha256"] = write_card(result)
    print_json(results, args.json, indent=1, sort_keys=False)
    print("\n| preset | data | test NLL (nats) | k | test ELBO | check NLL (k=100, 500 ex.) | disentanglement |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        extra = ", ".join(f"{key} {value:.3f}" for key, value in r.get("disentanglement", {}).items())
        print(f"| {r['name']} | {r['data']} | {r['test_nll']:.2f} | {r['k']} | {r['test_elbo']:.2f} | {r['check_nll_k100_500']:.2f} | {extra or '-'} |")


if __name__ == "__main__":
    main()
