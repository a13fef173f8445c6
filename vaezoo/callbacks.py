"""Keras callbacks for vaezoo models."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vaezoo._tf import keras, tf
from vaezoo.plots import image_grid, reconstruction_grid


class ImageSummaries(keras.callbacks.Callback):
    """Write a grid of samples and of reconstruction pairs to TensorBoard every
    ``every`` epochs, as ``tf.summary.image`` events at step = epoch index.

    By default the events go to ``log_dir/train``, the run where
    ``keras.callbacks.TensorBoard(log_dir)`` writes its training scalars, so the pictures
    sit next to the loss curves.

    Args:
        log_dir: the TensorBoard log folder.
        x: examples to reconstruct (up to ``num_reconstructions`` are used), or None.
        every: write every this many epochs (and after the last epoch).
        num_samples: samples in the grid.
        num_reconstructions: originals (each shown above its reconstruction).
        seed: sampling seed, the same every time so the grids are comparable.
        run: the sub-folder of ``log_dir`` to write to.

    Example:
        >>> import tempfile, vaezoo
        >>> x = (np.random.default_rng(0).random((32, 28, 28, 1)) > 0.5).astype("float32")
        >>> model = vaezoo.create_model("vae", hidden_units=(8,), latent_dim=2)
        >>> model.compile(optimizer="adam")
        >>> log_dir = tempfile.mkdtemp()
        >>> _ = model.fit(x, epochs=2, verbose=0, callbacks=[ImageSummaries(log_dir, x, every=1)])
        >>> len(os.listdir(os.path.join(log_dir, "train")))
        1
    """

    def __init__(
        self,
        log_dir: str,
        x: np.ndarray | None = None,
        every: int = 1,
        num_samples: int = 64,
        num_reconstructions: int = 16,
        seed: int = 0,
        run: str = "train",
    ) -> None:
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.log_dir = os.path.join(log_dir, run)
        self.x = None if x is None else np.asarray(x[:num_reconstructions], np.float32)
        self.every = int(every)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self._writer: Any = None
        self._epochs: int | None = None

    def on_train_begin(self, logs=None) -> None:
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._epochs = self.params.get("epochs") if self.params else None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every and epoch + 1 != self._epochs:
            return
        self._write(epoch)

    def on_train_end(self, logs=None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _write(self, step: int) -> None:
        grids = {"samples": image_grid(self.model.sample(self.num_samples, seed=self.seed), ncols=8)}
        if self.x is not None:
            grids["reconstructions"] = reconstruction_grid(self.x, self.model.reconstruct(self.x), ncols=8)
        with self._writer.as_default():
            for name, grid in grids.items():
                tf.summary.image(name, grid[None], step=step)
        self._writer.flush()
