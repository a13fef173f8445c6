#!/usr/bin/env bash
# The README's test command: install vaezoo with its test extra into the active Python
# (a fresh venv) and run the whole suite. Data come from $VAEZOO_DATA (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q ".[test]"
if [ "$#" -gt 0 ]; then
    exec pytest "$@"
fi
# The whole suite: one pytest process per test module, because TensorFlow and XLA keep
# what a process compiled until it ends (every registered model in one process reached
# 19 GB of memory). Any module that fails or collects nothing fails the run.
status=0
for module in tests/test_*.py; do
    rc=0
    pytest "$module" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "tests/run.sh: $module exited with $rc" >&2
        status=1
    fi
done
exit "$status"
