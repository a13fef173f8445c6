"""The benchmark machinery runs: ``benchmarks/throughput.py --smoke`` (tiny epochs, no
pythae peer) in a child process writes a JSON report with the expected keys, and
``benchmarks/zoo.py --smoke`` measures models in child processes and resumes. Nothing
here is timed: benchmarks are measured by hand, never in the test suite."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
ZOO = SCRIPT.with_name("zoo.py")

REPORT_KEYS = {
    "schema", "machine", "peer", "settings", "data", "results", "targets", "xla_speedups",
    "gemm_flops_per_example", "profile", "eval", "rss", "load_average", "wall_s",
}
ROW_KEYS = {
    "network", "batch_size", "variant", "framework", "xla", "spe", "precision", "input",
    "samples_per_second", "rounds", "examples_per_epoch", "compile_s",
    "ratio_vs_pythae_raw", "ratio_vs_pythae_pipeline", "error",
}


def test_throughput_smoke_report(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out), "--markdown", str(tmp_path / "table.md")],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert REPORT_KEYS <= set(report)
    assert "skipped" in report["peer"]
    frameworks = {row["framework"] for row in report["results"]}
    assert frameworks == {
        "vaezoo", "vaezoo-no-host-read", "vaezoo-terms-check", "vaezoo-norm-check", "vaezoo-no-check",
        "vaezoo-no-guard", "vaezoo-plain-step", "keras-minimal", "gemm-tf",
    }
    assert {row["input"] for row in report["results"]} == {"numpy", "tf.data", "tf.data-unchecked"}
    for row in report["results"]:
        assert ROW_KEYS <= set(row), row
        assert row["error"] is None, row
        assert row["samples_per_second"] > 0 and row["compile_s"] >= 0
        assert row["ratio_vs_pythae_raw"] is None  # no peer in smoke mode
    # MLP 784-512-16: 784->512->32 and 16->512->784; forward and weight gradients of every
    # layer, input gradients of all but the first.
    assert report["gemm_flops_per_example"] == {"mlp": 2 * (2 * 784 * 512 + 3 * 512 * 32 + 3 * 16 * 512 + 3 * 512 * 784)}
    profile = {(row["framework"], row["xla"]): row for row in report["profile"] if row["spe"] == 1}
    assert profile["vaezoo", False]["cpu_ratio_vs_vaezoo"] == 1.0
    assert profile["vaezoo-norm-check", False]["cpu_ratio_vs_vaezoo"] > 0
    assert profile["gemm-tf", True]["cpu_gflops"] > 0 and profile["gemm-tf", False]["cpu_gflops"] > 0
    floor = profile["gemm-tf", False]["samples_per_cpu_second"]  # the floor of the XLA-off rows
    assert profile["vaezoo", False]["cpu_fraction_of_gemm_floor"] == profile["vaezoo", False]["samples_per_cpu_second"] / floor
    (model,) = report["eval"]["models"].values()
    assert model["seconds_per_example"] > 0 and model["extrapolated_10k_s"] > 0
    assert report["rss"]["vaezoo"]["peak"]["ru_maxrss_mib"] > 0, report["rss"]
    table = (tmp_path / "table.md").read_text()
    assert "| network | batch | variant | samples/s |" in table and "| network | batch | profile row |" in table


PRECISION_SCRIPT = SCRIPT.parent / "export_precision.py"
PRECISION_KEYS = {
    "model", "source", "data", "settings", "machine", "keras", "vaezoo_evaluate", "numpy_vs_tfp_max_abs_diff",
    "results", "wall_s",
}
PRECISION_ROW_KEYS = {
    "precision", "format", "bytes", "total_bytes", "parity_ok", "parity_worst", "parity_failures", "elbo", "nll",
    "delta_elbo", "delta_nll",
}


def test_export_precision_smoke_report(tmp_path):
    """``benchmarks/export_precision.py`` on a tiny model: a row per precision and format
    with sizes, parity and the ELBO/NLL change; fp32 exports reproduce the Keras figures."""
    out = tmp_path / "precision.json"
    done = subprocess.run(
        [sys.executable, str(PRECISION_SCRIPT), "--model", "vae", "--steps", "2", "--hidden-units", "16",
         "--latent-dim", "2", "--limit", "20", "--k", "5", "--batch", "10", "--calibration", "50", "--check", "8",
         "--json", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert PRECISION_KEYS <= set(report)
    assert report["settings"]["test_examples"] == 20 and report["settings"]["k"] == 5
    assert report["numpy_vs_tfp_max_abs_diff"] < 1e-6 * abs(report["keras"]["elbo"]) + 1e-3
    rows = report["results"]
    assert [(r["precision"], r["format"]) for r in rows] == [
        (p, f) for p in ("fp32", "fp16", "int8") for f in ("onnx", "tflite")
    ]
    for row in rows:
        assert PRECISION_ROW_KEYS <= set(row), row
        assert row["parity_ok"] and not row["parity_failures"], row
        assert set(row["bytes"]) == {"encoder", "decoder"} and row["total_bytes"] == sum(row["bytes"].values()) > 0
        assert row["elbo"] <= 0 and row["nll"] >= 0 and row["elbo"] <= -row["nll"] + 1e-6, row
    for row in rows:
        if row["precision"] == "fp32":
            assert abs(row["delta_elbo"]) < 1e-3 and abs(row["delta_nll"]) < 1e-3, row
        else:
            fp32 = next(r for r in rows if r["precision"] == "fp32" and r["format"] == row["format"])
            assert row["total_bytes"] < fp32["total_bytes"], row
    assert "| Keras fp32 |" in done.stdout and "| int8 | tflite |" in done.stdout


LATENCY_SCRIPT = SCRIPT.parent / "export_latency.py"


def test_export_latency_reference_decoder_report(tmp_path):
    """``benchmarks/export_latency.py --models --reference``: the issue's 16-512-784
    decoder alone, every part, engine and precision timed, sizes and parity recorded."""
    out = tmp_path / "latency.json"
    done = subprocess.run(
        [sys.executable, str(LATENCY_SCRIPT), "--models", "--reference", "--batches", "1", "--repeats", "1",
         "--budget", "0.005", "--train-steps", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (entry,) = json.loads(out.read_text())["models"]
    assert entry["model"] == "16-512-784 reference" and entry["overrides"] == {"latent_dim": 16, "hidden_units": [512]}
    assert entry["parameters"] == (784 * 512 + 512 + 512 * 32 + 32) + (16 * 512 + 512 + 512 * 784 + 784)
    engines = {"keras.predict", "keras call", "tf.function", "tf.function xla"} | {
        f"{fmt} {precision}" for fmt in ("onnx", "tflite") for precision in ("fp32", "fp16", "int8")
    }
    for part in ("encoder", "decoder", "sampler"):
        timed = {r["engine"]: r["median_ms"] for r in entry["results"] if r["part"] == part and r["batch"] == 1}
        assert set(timed) == engines and all(ms > 0 for ms in timed.values()), (part, timed)
    assert set(entry["sizes"]) == {"fp32", "fp16", "int8"}
    assert entry["sizes"]["fp32"]["worst_abs_diff"] < 1e-4
    assert "| 16-512-784 reference | decoder | 1 |" in done.stdout


def test_zoo_smoke_measures_each_model_and_resumes(tmp_path):
    """Two models (one conditional), then a resumed run: the finished record is kept as
    it was, the new model is measured, and a different budget refuses to resume."""
    out = tmp_path / "zoo.json"

    def zoo(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ZOO), "--smoke", "--json", str(out), "--markdown", str(tmp_path / "zoo.md"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)

    done = zoo("--models", "vae", "cvae")
    assert done.returncode == 0, done.stderr[-3000:]
    first = json.loads(out.read_text())
    assert [r["model"] for r in first["records"]] == ["vae", "cvae"]
    for record in first["records"]:
        assert record["test_nll"] > 0 and record["test_examples"] == 64, record
    assert 0 <= first["records"][1]["class_consistency"] <= 1

    done = zoo("--models", "vae", "swae", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    second = json.loads(out.read_text())
    assert second["records"][0] == first["records"][0]
    assert second["records"][1]["model"] == "swae" and "sliced_wasserstein" in second["records"][1]["test_terms"]
    assert "zoo: vae ..." not in done.stderr and "zoo: swae ..." in done.stderr
    table = (tmp_path / "zoo.md").read_text()
    assert "| `swae` | binarized_mnist | Sliced-Wasserstein" in table and "Kolouri et al. 2019" in table

    done = zoo("--models", "vae", "--resume", "--seed", "1")
    assert done.returncode != 0 and "cannot --resume" in done.stderr

    out.unlink()  # the same budget again from scratch: the same numbers (seeded weights, batches and noise)
    done = zoo("--models", "vae")
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads(out.read_text())["records"][0]
    assert again["test_nll"] == first["records"][0]["test_nll"] and again["final"] == first["records"][0]["final"]
