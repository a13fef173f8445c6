#!/usr/bin/env bash
# The README's test command: install vaezoo with its test extra into the active Python
# (a fresh venv) and run the whole suite. Data come from $VAEZOO_DATA (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q ".[test]"
exec pytest "$@"
