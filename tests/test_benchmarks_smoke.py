"""The benchmark machinery runs: ``benchmarks/throughput.py --smoke`` (tiny epochs, no
pythae peer) in a child process writes a JSON report with the expected keys. Nothing
here is timed: benchmarks are measured by hand, never in the test suite."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"

REPORT_KEYS = {
    "schema", "machine", "peer", "settings", "data", "results", "targets", "xla_speedups",
    "eval", "rss", "load_average", "wall_s",
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
    assert frameworks == {"vaezoo", "vaezoo-plain-step", "keras-minimal"}
    assert {row["input"] for row in report["results"]} == {"numpy", "tf.data", "tf.data-unchecked"}
    for row in report["results"]:
        assert ROW_KEYS <= set(row), row
        assert row["error"] is None, row
        assert row["samples_per_second"] > 0 and row["compile_s"] >= 0
        assert row["ratio_vs_pythae_raw"] is None  # no peer in smoke mode
    (model,) = report["eval"]["models"].values()
    assert model["seconds_per_example"] > 0 and model["extrapolated_10k_s"] > 0
    assert report["rss"]["vaezoo"]["peak"]["ru_maxrss_mib"] > 0, report["rss"]
    assert "| network | batch | variant | samples/s |" in (tmp_path / "table.md").read_text()
