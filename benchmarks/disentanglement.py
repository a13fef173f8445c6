"""Disentanglement benchmark on the procedural shapes set (dSprites-like, 5 factors).

Trains ``vae`` and every registered disentanglement model among beta_vae, factor_vae,
beta_tcvae, dip_vae_i and dip_vae_ii with one shared architecture and budget, then prints
a JSON record and a markdown table of MIG, SAP, DCI (D/C/I), beta-VAE score, FactorVAE
score and test ELBO per model (metric definitions and deviations from
disentanglement_lib: ``vaezoo/metrics/disentanglement.py``).

    python benchmarks/disentanglement.py                    # the default budget, ~10-15 min on 2 cores
    python benchmarks/disentanglement.py --epochs 2 --examples 4000 --eval-points 500 --models vae beta_vae

Scores of short runs are noisy; compare models only within one run of this script.
"""

from __future__ import annotations

import argparse
import json
import time

CANDIDATES = ("vae", "beta_vae", "factor_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii")
COLUMNS = (  # (result key, column title, format)
    ("mig", "MIG", ".3f"),
    ("sap", "SAP", ".3f"),
    ("dci_disentanglement", "DCI-D", ".3f"),
    ("dci_completeness", "DCI-C", ".3f"),
    ("dci_informativeness", "DCI-I", ".3f"),
    ("beta_vae", "beta-VAE", ".3f"),
    ("factor_vae", "FactorVAE", ".3f"),
    ("elbo", "ELBO (nats)", ".1f"),
    ("active_units", "AU", "d"),
    ("train_seconds", "train s", ".0f"),
)


def run_model(name: str, data, args: argparse.Namespace) -> dict:
    """Train one model on ``data`` and score it."""
    from vaezoo import metrics, training

    model = training.build_for_data(
        name,
        data.image_shape,
        network=args.network,
        hidden_units=tuple(args.hidden_units),
        conv_filters=tuple(args.conv_filters),
        latent_dim=args.latent_dim,
        seed=args.seed,
    )
    training.compile_model(model, args.lr, steps_per_execution=8)
    fit = training.train(model, data.train.x, None, args.epochs, args.batch_size, verbose=0, seed=args.seed)
    start = time.perf_counter()
    scores = metrics.disentanglement_scores(
        metrics.disentanglement.representation(model),
        metrics.shapes_ground_truth(),
        seed=args.seed,
        num_train=args.eval_points,
        num_eval=args.eval_points // 2,
    )
    return {
        "model": name,
        **scores,
        "elbo": float(model.elbo(data.test.x).mean()),
        "active_units": metrics.active_units(model, data.test.x)[0],
        "train_seconds": round(fit.seconds, 1),
        "metric_seconds": round(time.perf_counter() - start, 1),
    }


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table with the columns of :data:`COLUMNS`."""
    lines = ["| model | " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row['model']} | " + " | ".join(format(row[key], spec) for key, _, spec in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    import vaezoo
    from vaezoo import datasets
    from vaezoo.cli import print_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: the candidates that are registered)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--examples", type=int, default=10000, help="training examples")
    parser.add_argument("--eval-points", type=int, default=1000, help="metric training points (held-out: half)")
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--network", default="mlp", choices=("mlp", "conv"))
    parser.add_argument("--hidden-units", type=int, nargs="*", default=[256])
    parser.add_argument("--conv-filters", type=int, nargs="*", default=[32, 32, 64, 64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the record to this file")
    args = parser.parse_args()

    names = args.models or [name for name in CANDIDATES if name in vaezoo.list_models()]
    data = datasets.load("shapes", seed=args.seed, num_train=args.examples, num_valid=0, num_test=2000)
    rows = []
    for name in names:
        rows.append(run_model(name, data, args))
        print(json.dumps(rows[-1]), flush=True)
    record = {"config": vars(args), "models_registered": vaezoo.list_models(), "results": rows}
    print_json(record, args.json, sort_keys=False)
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
