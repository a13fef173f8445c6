"""The peer of ``benchmarks/throughput.py``: the same VAE trained with pythae (PyTorch).

Runs in its own virtual environment (PyTorch and pythae, never vaezoo or TensorFlow)
and prints JSON. Two ways to train the same network on the same examples:

- ``raw``: a plain PyTorch loop over pythae's ``VAE`` model (``VAEConfig`` with a BCE
  reconstruction, ``BaseEncoder``/``BaseDecoder`` subclasses holding the layers): a
  random permutation per epoch, ``model({"data": x})``, ``backward``, ``Adam.step``.
- ``pipeline``: pythae's own ``TrainingPipeline`` (``BaseTrainer``, its ``DataLoader``,
  progress bar and best-model copy), timed from its epoch-begin to its epoch-end
  callback, so the per-run setup (sanity check, output folder, final save) is left out.

``--device cuda`` trains on the GPU (batches are copied there one at a time, as
pythae's trainer does); the default is the CPU.

Networks, as in vaezoo (``create_model("vae", hidden_units=(512,), latent_dim=16)`` and
``create_model("conv_vae")``):

- ``mlp``: 784-512-(16+16) encoder, 16-512-784 decoder, ReLU, sigmoid + BCE.
- ``conv``: two 4x4 stride-2 convolutions (32, 64), dense 256, latent 16; the decoder
  mirrors it with 4x4 stride-2 transposed convolutions (64, 32) and a 3x3 convolution.

Data come as a ``.npy`` file of float32 images shaped (N, H, W, C) in [0, 1] (the
throughput script writes it), so both frameworks see the very same examples.

Each epoch reports its wall time and the process's CPU time (all threads). Modes:

- one-shot: ``--data FILE --network mlp --batch-size 128 --mode raw --rounds 3`` prints
  one JSON object with the samples/s of each timed epoch (after one warm-up epoch).
- ``--serve``: reads one JSON request per line on stdin and answers one JSON line per
  request on stdout, so the caller can interleave these runs with its own. Requests:
  ``{"op": "epoch", "data": FILE, "mode": ..., "network": ..., "batch_size": ...,
  "examples": ...}``, ``{"op": "nll", "data": FILE, "examples": ..., "num_samples": ...}``,
  ``{"op": "gemm", "batch_size": ..., "layers": [[inputs, outputs, input_gradient], ...],
  "examples": ...}`` (the dense GEMMs of ``examples // batch_size`` training steps alone:
  the GEMM floor) and ``{"op": "info"}``.
- ``--rss``: one raw epoch, then the peak resident memory (``ru_maxrss`` and ``VmHWM``).

Example:
    $ /work/peer-venv/bin/python benchmarks/peers/pythae_vae.py --data x.npy --network mlp \\
          --batch-size 128 --mode raw --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import resource
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.trainers import BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback
from torch import nn

LATENT_DIM = 16
LEARNING_RATE = 1e-3
MODES = ("raw", "pipeline")
NETWORKS = ("mlp", "conv")


class MLPEncoder(BaseEncoder):
    """x -> Linear(512) ReLU -> (mu, log variance), each Linear(16)."""

    def __init__(self, input_dim: int, hidden: int = 512, latent_dim: int = LATENT_DIM) -> None:
        BaseEncoder.__init__(self)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(input_dim, hidden), nn.ReLU())
        self.embedding = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.body(x)
        return ModelOutput(embedding=self.embedding(h), log_covariance=self.log_var(h))


class MLPDecoder(BaseDecoder):
    """z -> Linear(512) ReLU -> Linear(784) -> sigmoid, shaped like the data."""

    def __init__(self, data_shape: tuple[int, ...], hidden: int = 512, latent_dim: int = LATENT_DIM) -> None:
        BaseDecoder.__init__(self)
        self.data_shape = data_shape
        self.body = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, int(np.prod(data_shape))), nn.Sigmoid()
        )

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.body(z).reshape(-1, *self.data_shape))


class ConvEncoder(BaseEncoder):
    """vaezoo's conv encoder: Conv 4x4/2 (32) ReLU, Conv 4x4/2 (64) ReLU, Linear(256) ReLU."""

    def __init__(self, channels: int = 1, size: int = 28, latent_dim: int = LATENT_DIM) -> None:
        BaseEncoder.__init__(self)
        flat = 64 * (size // 4) ** 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(),
        )
        self.embedding = nn.Linear(256, latent_dim)
        self.log_var = nn.Linear(256, latent_dim)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.body(x)
        return ModelOutput(embedding=self.embedding(h), log_covariance=self.log_var(h))


class ConvDecoder(BaseDecoder):
    """vaezoo's conv decoder: Linear(256), Linear(7*7*64), ConvT 4x4/2 (64, 32), Conv 3x3, sigmoid."""

    def __init__(self, channels: int = 1, size: int = 28, latent_dim: int = LATENT_DIM) -> None:
        BaseDecoder.__init__(self)
        self.start = (64, size // 4, size // 4)
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, int(np.prod(self.start))), nn.ReLU()
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, channels, 3, 1, 1), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.deconv(self.dense(z).reshape(-1, *self.start)))


def build_model(network: str, data_shape: tuple[int, ...]) -> VAE:
    """pythae's ``VAE`` (BCE reconstruction) with the network named ``network``.

    ``data_shape`` is pythae's (C, H, W).
    """
    config = VAEConfig(input_dim=data_shape, latent_dim=LATENT_DIM, reconstruction_loss="bce")
    if network == "mlp":
        return VAE(config, encoder=MLPEncoder(int(np.prod(data_shape))), decoder=MLPDecoder(data_shape))
    if network == "conv":
        channels, size = data_shape[0], data_shape[1]
        return VAE(config, encoder=ConvEncoder(channels, size), decoder=ConvDecoder(channels, size))
    raise ValueError(f"unknown network {network!r}; known: {list(NETWORKS)}")


class _EpochTimer(TrainingCallback):
    """Records the wall and process CPU time between pythae's epoch-begin and
    epoch-end callbacks."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []
        self._start = self._cpu_start = 0.0

    def on_epoch_begin(self, training_config: BaseTrainerConfig, **kwargs: Any) -> None:
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, training_config: BaseTrainerConfig, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


class Peer:
    """Holds the data sets (by file) and one model (and optimizer) per (mode, data,
    network, batch size), so that repeated epochs continue training as a long run would."""

    def __init__(self, seed: int = 0, device: str = "cpu") -> None:
        self.seed = seed
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.datasets: dict[str, torch.Tensor] = {}
        self.models: dict[tuple[str, str, str, int], tuple[VAE, torch.optim.Optimizer | None]] = {}
        self.gemm_operands: dict[tuple, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]]] = {}
        self.workdir = tempfile.mkdtemp(prefix="pythae-peer-")

    def data(self, path: str) -> torch.Tensor:
        """The images of the ``.npy`` file ``path`` as pythae's (N, C, H, W), loaded once."""
        if path not in self.datasets:
            images = np.load(path, mmap_mode="r")
            # One copy, made once, outside every timing.
            self.datasets[path] = torch.from_numpy(np.array(np.transpose(images, (0, 3, 1, 2)), np.float32, order="C"))
        return self.datasets[path]

    def _model(self, mode: str, path: str, network: str, batch_size: int) -> tuple[VAE, torch.optim.Optimizer | None]:
        key = (mode, path, network, batch_size)
        if key not in self.models:
            torch.manual_seed(self.seed)
            model = build_model(network, tuple(self.data(path).shape[1:])).to(self.device)
            optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE) if mode == "raw" else None
            self.models[key] = (model, optimizer)
        return self.models[key]

    def epoch(self, path: str, mode: str, network: str, batch_size: int, examples: int) -> dict[str, Any]:
        """Train one epoch over the first ``examples`` examples of ``path``; return its timing."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {list(MODES)}")
        data = self.data(path)[: int(examples)]
        if mode == "raw":
            seconds, cpu_seconds, loss = self._raw_epoch(path, network, batch_size, data)
        else:
            seconds, cpu_seconds, loss = self._pipeline_epoch(path, network, batch_size, data)
        done = (len(data) // batch_size) * batch_size if mode == "raw" else len(data)
        return {
            "mode": mode,
            "network": network,
            "batch_size": batch_size,
            "examples": done,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "samples_per_second": done / seconds,
            "loss": loss,
        }

    def _raw_epoch(self, path: str, network: str, batch_size: int, data: torch.Tensor) -> tuple[float, float, float]:
        model, optimizer = self._model("raw", path, network, batch_size)
        assert optimizer is not None
        steps = len(data) // batch_size
        model.train()
        start, cpu_start = time.perf_counter(), time.process_time()
        order = torch.randperm(len(data), generator=self.generator)
        total = torch.zeros((), device=self.device)
        for step in range(steps):
            batch = data[order[step * batch_size : (step + 1) * batch_size]].to(self.device, non_blocking=True)
            loss = model({"data": batch}).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        mean_loss = float(total) / max(steps, 1)  # waits for the device
        return time.perf_counter() - start, time.process_time() - cpu_start, mean_loss

    def _pipeline_epoch(self, path: str, network: str, batch_size: int, data: torch.Tensor) -> tuple[float, float, float]:
        model, _ = self._model("pipeline", path, network, batch_size)
        config = BaseTrainerConfig(
            output_dir=self.workdir,
            per_device_train_batch_size=batch_size,
            num_epochs=1,
            learning_rate=LEARNING_RATE,
            optimizer_cls="Adam",
            no_cuda=self.device.type != "cuda",
            seed=self.seed,
        )
        timer = _EpochTimer()
        pipeline = TrainingPipeline(model=model, training_config=config)
        # pythae prints its logs; stdout carries this script's JSON alone.
        with contextlib.redirect_stdout(io.StringIO()):
            pipeline(train_data=data, callbacks=[timer])
        return timer.seconds[-1], timer.cpu_seconds[-1], float("nan")

    def gemm(self, batch_size: int, layers: list[list], examples: int) -> dict[str, Any]:
        """Time the dense GEMMs of ``examples // batch_size`` training steps and nothing
        else (no bias, activation, loss or optimizer), on fixed random operands in
        ``nn.Linear``'s layout (weight ``(outputs, inputs)``): per layer ``(inputs,
        outputs, input_gradient)`` the forward ``x @ W^T``, the weight gradient
        ``dy^T @ x`` and, where ``input_gradient``, the input gradient ``dy @ W``."""
        key = (batch_size, tuple(tuple(layer) for layer in layers))
        if key not in self.gemm_operands:
            generator = torch.Generator().manual_seed(self.seed)

            def normal(*shape: int) -> torch.Tensor:
                return torch.randn(*shape, generator=generator).to(self.device)

            self.gemm_operands[key] = [
                (normal(batch_size, int(a)), normal(int(b), int(a)), normal(batch_size, int(b)), bool(input_grad))
                for a, b, input_grad in layers
            ]
        operands = self.gemm_operands[key]
        steps = int(examples) // batch_size
        flops = sum(2 * int(a) * int(b) * (3 if input_grad else 2) for a, b, input_grad in layers)
        with torch.no_grad():
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(steps):
                for x, weight, dy, input_grad in operands:
                    torch.mm(x, weight.t())
                    torch.mm(dy.t(), x)
                    if input_grad:
                        torch.mm(dy, weight)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        return {
            "batch_size": batch_size,
            "examples": steps * batch_size,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "flops_per_example": flops,
            "gflops": flops * steps * batch_size / seconds / 1e9,
        }

    def nll(self, path: str, examples: int, num_samples: int, batch_size: int = 100) -> dict[str, Any]:
        """Time pythae's importance-sampled ``get_nll`` (its per-example loop) on the
        first ``examples`` examples of ``path``, with the MLP (the weights do not
        change the time)."""
        model, _ = self._model("raw", path, "mlp", 128)
        model.eval()
        data = self.data(path)[: int(examples)].to(self.device)
        with torch.no_grad():
            model.get_nll(data[:1], n_samples=num_samples, batch_size=batch_size)  # warm-up
            start, cpu_start = time.perf_counter(), time.process_time()
            value = model.get_nll(data, n_samples=num_samples, batch_size=batch_size)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        return {"examples": len(data), "num_samples": num_samples, "seconds": seconds, "cpu_seconds": cpu_seconds, "nll": -float(value)}


def info() -> dict[str, Any]:
    """Versions and threads of this peer."""
    import pythae

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pythae": getattr(pythae, "__version__", _dist_version("pythae")),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process in MiB: ``ru_maxrss`` (which in a child
    starts at its parent's peak) and ``VmHWM`` (this process image alone)."""
    out = {"ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                out["vmhwm_mib"] = int(line.split()[1]) / 1024
    return out


def serve(peer: Peer) -> None:
    """Answer JSON requests from stdin, one per line, until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            op = request.get("op", "epoch")
            if op == "epoch":
                answer = peer.epoch(
                    request["data"], request["mode"], request["network"], int(request["batch_size"]), int(request["examples"])
                )
            elif op == "nll":
                answer = peer.nll(request["data"], int(request["examples"]), int(request["num_samples"]))
            elif op == "gemm":
                answer = peer.gemm(int(request["batch_size"]), request["layers"], int(request["examples"]))
            elif op == "info":
                answer = {**info(), "device": str(peer.device)}
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as error:  # noqa: BLE001 -- answer every request; the caller reports it
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a .npy file of float32 images (N, H, W, C) in [0, 1]")
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin")
    parser.add_argument("--info", action="store_true", help="print versions and exit")
    parser.add_argument("--rss", action="store_true", help="one raw epoch, then print the peak RSS")
    parser.add_argument("--network", choices=NETWORKS, default="mlp")
    parser.add_argument("--mode", choices=MODES, default="raw")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--examples", type=int, default=None, help="examples per epoch (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs after one warm-up epoch")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    logging.getLogger("pythae").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.info:
        print(json.dumps(info()))
        return
    peer = Peer(args.seed, args.device)
    if args.serve:
        serve(peer)
        return
    if not args.data:
        parser.error("--data is required")
    examples = args.examples or len(peer.data(args.data))
    if args.rss:
        loaded = peak_rss_mib()
        result = peer.epoch(args.data, "raw", args.network, args.batch_size, examples)
        print(json.dumps({**result, **info(), "after_load": loaded, "peak": peak_rss_mib()}))
        return
    peer.epoch(args.data, args.mode, args.network, args.batch_size, examples)  # warm-up
    rounds = [peer.epoch(args.data, args.mode, args.network, args.batch_size, examples) for _ in range(args.rounds)]
    rates = [r["samples_per_second"] for r in rounds]
    print(json.dumps({**info(), "rounds": rounds, "median_samples_per_second": float(np.median(rates))}))


if __name__ == "__main__":
    main()
