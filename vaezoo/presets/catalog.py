"""The preset catalog: data about every pretrained preset (no code, no TensorFlow).

Each entry's numbers come from ``benchmarks/presets.py``, which loads the preset and
evaluates it; ``preset.json`` in the preset's folder holds the full model card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Preset:
    """A catalog entry.

    Attributes:
        name: the handle (``vaezoo.from_preset(name)``).
        model: the registry name of the model.
        description: one line.
        data: the data set it was trained on.
        metric: name of the headline metric, e.g. ``"test NLL (nats, k=5000)"``.
        value: the headline metric's value, reproduced by ``benchmarks/presets.py``.
        check: the quick check figure (test NLL with k=100 on the first 500 test
            examples, seed 0) that ``tests/test_presets.py`` reproduces.
        files: file name -> sha256 of every file of the preset.
        url: base URL to download the files from, or None when only shipped.
        license: licence of the weights.
        origin: the command that trained it.
    """

    name: str
    model: str
    description: str
    data: str
    metric: str
    value: float
    check: float | None
    files: Mapping[str, str]
    url: str | None = None
    license: str = "Apache-2.0"
    origin: str = ""

    def size_bytes(self, folder) -> int:
        """Total size of the preset's files in ``folder`` (a ``pathlib.Path``)."""
        return sum((folder / name).stat().st_size for name in self.files)


PRESETS: dict[str, Preset] = {}


def add(**fields: Any) -> Preset:
    """Add a catalog entry; a duplicate name is an error.

    Example:
        >>> p = add(name="demo", model="vae", description="d", data="shapes", metric="m", value=1.0,
        ...         check=None, files={"preset.json": "0" * 64})
        >>> PRESETS.pop("demo").model
        'vae'
    """
    preset = Preset(**{**fields, "files": MappingProxyType(dict(fields["files"]))})
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} is already in the catalog")
    PRESETS[preset.name] = preset
    return preset


add(
    name="vae_mlp_binarized_mnist",
    model="vae",
    description="MLP VAE 784-512-256-32 (Bernoulli), static binarized MNIST, 60 epochs, best val epoch 50",
    data="binarized_mnist",
    metric="test NLL (nats, k=5000)",
    value=91.04,
    check=103.65,
    files={
        "config.json": "29a0ed8cda1ef037d1552817f12b490cb92e9796b8a4f7c1780c1a477967cfe3",
        "model.weights.h5": "10fae02e18d3857485b868fdc2278900d69473b955adbf04d2a8aee4cf2f1e39",
        "preset.json": "03b68f0347c3554d0541eed0ac29493036d259b94401c17b8a5d479baddc3428",
    },
    origin="vaezoo train --model vae --data binarized_mnist --epochs 100 --early-stopping 10 --out vae.keras",
)

add(
    name="cvae_fashion_mnist",
    model="cvae",
    description="Conditional VAE (MLP, hybrid CVAE/GSNN objective), Fashion-MNIST given the class, 30 epochs, best val epoch 29",
    data="fashion_mnist",
    metric="test NLL of p(x|y) (nats, k=1000)",
    value=-590.36,
    check=-602.83,
    files={
        "config.json": "28af70ba520d40c158d3069322795666f97c25afae571505c0b08dc9266ced25",
        "model.weights.h5": "932d347b055ac01a00cfada5a553e3e8faa5f10afd95d9d621ab3f9a37f188c2",
        "preset.json": "f6ae73ea93b7b41aa869a1e19ba0d707906f9014dc933e54da4214b4ba2be5c5",
    },
    origin="vaezoo train --model cvae --data fashion_mnist --epochs 30 --early-stopping 5 --lr 1e-3 --out model.keras",
)
add(
    name="conv_vae_fashion_mnist",
    model="conv_vae",
    description="Convolutional VAE (Gaussian likelihood, learned per-pixel sigma), Fashion-MNIST, 12 epochs, best val epoch 12",
    data="fashion_mnist",
    metric="test NLL (nats, k=100)",
    value=-798.82,
    check=-815.65,
    files={
        "config.json": "39fe302d1d8aad8cae81babba28d9e55a560ae348beea58ebf579acd3ff99b7a",
        "model.weights.h5": "3232e96e9402d019f1312a58b8d733cdde084c965eccc8fcaf347cf285e2810c",
        "preset.json": "c662f78d2169eca750475dbf57edc984c133555294c8fd988256d937fac98b0d",
    },
    origin=(
        "vaezoo train --model conv_vae --data fashion_mnist --epochs 12 --early-stopping 4 --lr 5e-4 "
        "--config likelihood=gaussian 'likelihood_options={\"sigma\": \"per_output\", \"sigma_init\": 0.2}' --out model.keras"
    ),
)
add(
    name="beta_vae_shapes",
    model="beta_vae",
    description="beta-VAE (beta = 4, conv net, 10 latents), the procedural dSprites-like shapes data, 10 epochs, best val epoch 10",
    data="shapes",
    metric="test NLL (nats, k=100)",
    value=77.07,
    check=79.01,
    files={
        "config.json": "92ef2053c5e153aab995002f30c3afe1bd56c407e28aafc868605e8c212a1d69",
        "model.weights.h5": "3d5b6532ebebb0a6bed44f9b34b8e1e85ada6d0e0b52a3598954814d48a97ace",
        "preset.json": "28cc01ef50fa5f0e44c112ccf6a799e8f53453b9581d8a44496e1905655358e7",
    },
    origin="vaezoo train --model beta_vae --data shapes --epochs 10 --early-stopping 4 --lr 5e-4 --out model.keras",
)
