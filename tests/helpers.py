"""Helpers shared by the test modules (imported as ``helpers``; see conftest.py)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import struct
import threading
import urllib.parse

import numpy as np

#: Overrides that make every registered model small enough to train in seconds.
SMALL = {"hidden_units": (32,), "latent_dim": 4, "conv_filters": (8, 16)}


def data_for(load_small, model_name: str):
    """The registry's data set for ``model_name``, small."""
    from vaezoo.registry import get_spec

    return load_small(get_spec(model_name).data)


def small_model(model_name: str, data_shape, **overrides):
    """The registered model with the SMALL overrides for data of ``data_shape``."""
    from vaezoo.training import build_for_data

    return build_for_data(model_name, tuple(data_shape), **{**SMALL, **overrides})


def data_args(model, x, y=None) -> tuple:
    """The positional data arguments of ``fit``, ``evaluate``, ``reconstruct``,
    ``importance_estimates``, ``elbo`` and ``log_likelihood``: ``(x,)``, or ``(x, y)``
    with the first ``len(x)`` labels for a conditional model (``model.conditional``)."""
    return (x, y[: len(x)]) if getattr(model, "conditional", False) else (x,)


def inputs(model, split, count: int | None = None) -> tuple:
    """``data_args`` from a data set's split (labels from ``split.y``), its first ``count`` examples."""
    return data_args(model, split.x[:count], split.y)


def sample_kwargs(model, n: int) -> dict:
    """Keyword arguments of ``model.sample(n, ...)``: labels cycling through the
    classes for a conditional model, none otherwise."""
    return {"labels": np.arange(n) % model.label_dim} if getattr(model, "conditional", False) else {}


def dataset_of(model, x, y=None):
    """A ``tf.data.Dataset`` of the examples of ``x`` (with their labels for a conditional model)."""
    from vaezoo._tf import tf

    args = data_args(model, x, y)
    return tf.data.Dataset.from_tensor_slices(args if len(args) > 1 else x)


def weights_of(model) -> list[np.ndarray]:
    return [np.array(v) for v in model.weights]


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (body, mode), mode one of ``ok``, ``error500``,
    ``no_length`` (half the body, no Content-Length), ``short`` (half the body under the
    full Content-Length) and ``reset`` (half the body, then a TCP reset)."""

    def do_GET(self) -> None:
        route = self.server.routes.get(urllib.parse.unquote(self.path))
        if route is None:
            self.send_error(404)
            return
        body, mode = route
        if mode == "error500":
            self.send_error(500)
            return
        self.send_response(200)
        if mode != "no_length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "ok":
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def loopback_server():
    """A threaded HTTP server on 127.0.0.1 (never any other address); fill ``.routes``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoopbackHandler)
    httpd.routes = {}
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
