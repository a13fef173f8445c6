"""Pictures: every PNG decodes with the expected size and value range, grids put each
image where it belongs, the TensorBoard callback's images can be read back, and
``vaezoo plot`` draws every kind."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest

from vaezoo import plots


def read_png(path):
    from matplotlib.image import imread

    image = imread(str(path))
    assert image.dtype == np.float32 and image.min() >= 0.0 and image.max() <= 1.0
    return image


@pytest.fixture(scope="module")
def model():
    import vaezoo

    return vaezoo.create_model("vae", hidden_units=(16,), latent_dim=3)


@pytest.fixture(scope="module")
def x(load_small):
    return load_small("binarized_mnist").test.x[:64]


def test_reconstruction_grid_alternates_originals_and_reconstructions(tmp_path):
    originals, reconstructions = np.zeros((5, 4, 4, 1)), np.full((5, 4, 4, 1), 0.5)
    grid = plots.reconstruction_grid(originals, reconstructions, ncols=3)

    def cell(r, c):
        return grid[1 + 5 * r : 5 + 5 * r, 1 + 5 * c : 5 + 5 * c]

    assert (cell(0, 2) == 0).all() and (cell(1, 2) == 0.5).all()  # original above its reconstruction
    assert (cell(2, 1) == 0).all() and (cell(3, 1) == 0.5).all()
    assert (cell(2, 2) == 1).all() and (cell(3, 2) == 1).all()  # the padding is white
    image = read_png(plots.save_reconstructions(originals, reconstructions, str(tmp_path / "r.png"), ncols=3, scale=2))
    assert image.shape[:2] == (grid.shape[0] * 2, grid.shape[1] * 2)


def test_traversals_are_labelled_rows_ordered_by_kl(model, x, tmp_path):
    from vaezoo.metrics.likelihood import encoder_means

    z = encoder_means(model, x[:1])[0]
    base = plots.decode_mean(model, z[None])[0]
    row = plots.traversal_images(model, z, [1], [-2.0, float(z[1]), 2.0])[0]
    np.testing.assert_allclose(row[1], base, atol=1e-6)  # the traversal passes through the example's code
    assert not np.allclose(row[0], row[2])
    path = plots.save_traversals(model, x, str(tmp_path / "t.png"), num_dims=2, steps=5, scale=2, dpi=100)
    image = read_png(path)
    grid = plots.image_grid(np.zeros((10, 28, 28, 1)), ncols=5)
    assert image.shape[:2] == (grid.shape[0] * 2 + 60, grid.shape[1] * 2 + 120)


def test_interpolation_starts_and_ends_at_the_inputs(model, x, tmp_path):
    images = plots.interpolation_images(model, x[:3], x[3:6], steps=4)
    assert images.shape == (3, 6, 28, 28, 1)
    np.testing.assert_array_equal(images[:, 0], x[:3])
    np.testing.assert_array_equal(images[:, -1], x[3:6])
    from vaezoo.metrics.likelihood import encoder_means

    np.testing.assert_allclose(images[:, 1], plots.decode_mean(model, encoder_means(model, x[:3])), atol=1e-6)
    image = read_png(plots.save_interpolations(model, x[:3], x[3:6], str(tmp_path / "i.png"), steps=4, scale=1))
    assert image.shape[:2] == plots.image_grid(np.zeros((18, 28, 28, 1)), ncols=6).shape[:2]


def test_latent_scatter_and_map(model, x, tmp_path):
    codes = np.random.default_rng(0).normal(size=(200, 4))
    points, names = plots.project_2d(codes)
    assert names == ("PC 1", "PC 2") and abs(np.corrcoef(points.T)[0, 1]) < 1e-6
    assert plots.project_2d(codes, dims=(2, 0))[1] == ("z2", "z0")
    image = read_png(plots.save_latent_scatter(codes, str(tmp_path / "s.png"), labels=np.arange(200) % 10, dpi=100))
    assert image.shape[:2] == (450, 550)
    grid = plots.latent_map_images(model, n=4, dims=(0, 2))
    assert grid.shape == (4, 4, 28, 28, 1)
    assert not np.allclose(grid[0, 0], grid[-1, -1])
    read_png(plots.save_latent_map(model, str(tmp_path / "m.png"), n=4, x=x))


def test_training_curves_from_a_history_and_a_csv_log(tmp_path):
    history = {"loss": [3.0, 2.0, 1.5], "kl": [1.0, 2.0, 2.5], "val_loss": [3.2, 2.4, 2.0], "val_kl": [1.1, 2.0, 2.4]}
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *history])
        writer.writerows([[epoch, *(values[epoch] for values in history.values())] for epoch in range(3)])
    assert plots.read_history(str(log)) == history
    image = read_png(plots.save_training_curves(str(log), str(tmp_path / "c.png"), dpi=100))
    assert image.shape[:2] == (300, 800)  # two panels of 4 x 3 inches
    with pytest.raises(ValueError, match="no curve"):
        plots.save_training_curves(history, str(tmp_path / "bad.png"), keys=["elbo"])


def test_image_summaries_callback_writes_images_next_to_the_scalars(x, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import vaezoo
    from vaezoo._tf import keras, tf
    from vaezoo.callbacks import ImageSummaries

    model = vaezoo.create_model("vae", hidden_units=(16,), latent_dim=3)
    model.compile(optimizer="adam")
    callbacks = [keras.callbacks.TensorBoard(str(tmp_path)), ImageSummaries(str(tmp_path), x, every=2, num_samples=16)]
    model.fit(x, epochs=3, batch_size=32, verbose=0, callbacks=callbacks)
    events = EventAccumulator(str(tmp_path / "train"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    assert "epoch_loss" in events.Tags()["tensors"]
    images = {tag: events.Tensors(tag) for tag in ("samples", "reconstructions")}
    for tag, expected_grid in (
        ("samples", plots.image_grid(np.zeros((16, 28, 28, 1)), ncols=8)),
        ("reconstructions", plots.reconstruction_grid(x[:16], x[:16], ncols=8)),
    ):
        assert [e.step for e in images[tag]] == [1, 2]  # every 2nd epoch, and the last one
        width, height, png = tf.make_ndarray(images[tag][-1].tensor_proto)[:3]
        decoded = tf.io.decode_png(png).numpy()
        assert decoded.shape == expected_grid.shape and (int(height), int(width)) == expected_grid.shape[:2]


@pytest.fixture(scope="module")
def shapes_model_file(tmp_path_factory, load_small):
    import vaezoo

    path = tmp_path_factory.mktemp("plot") / "vae.keras"
    model = vaezoo.create_model("vae", data_shape=(64, 64, 1), hidden_units=(16,), latent_dim=3)
    model.save(str(path))
    return str(path)


@pytest.mark.parametrize(
    "kind", ["samples", "reconstructions", "traversals", "interpolation", "latents", "latent_map", "curves"]
)
def test_vaezoo_plot_draws_every_kind(kind, shapes_model_file, tmp_path):
    from vaezoo.plot_cli import add_parser

    parser = argparse.ArgumentParser(prog="vaezoo")
    add_parser(parser.add_subparsers(dest="command"))
    out = str(tmp_path / f"{kind}.png")
    argv = ["plot", "--kind", kind, "--out", out, "--n", "8", "--steps", "5"]
    if kind == "curves":
        log = tmp_path / "log.csv"
        log.write_text("epoch,loss,val_loss\n0,2.0,2.5\n1,1.0,1.5\n")
        argv += ["--log", str(log)]
    else:
        argv += [shapes_model_file, "--data", "shapes", "--limit", "64"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert read_png(out).ndim == 3


def test_evaluate_hook_parses_and_computes(shapes_model_file, load_small):
    import vaezoo
    from vaezoo.plot_cli import add_evaluate_options, evaluate_extra

    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=100)
    add_evaluate_options(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--metrics", "nll,bogus"])
    args = parser.parse_args(["--metrics", "active_units,mig", "--metric-points", "100"])
    result = evaluate_extra(args, vaezoo.load_model(shapes_model_file), load_small("shapes"))
    assert set(result) == {"active_units", "latent_dim", "mig"}
