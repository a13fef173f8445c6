#!/usr/bin/env bash
# The README's test command: install vaezoo with its test extra into the active Python
# (a fresh venv) and run the whole suite. Data come from $VAEZOO_DATA (default ../shared/data).
# With arguments it runs one pytest with them instead (e.g. `bash tests/run.sh tests/test_cli.py`).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q ".[test]"
if [ "$#" -gt 0 ]; then
    exec pytest "$@"
fi

# The whole suite as many short pytest processes, VAEZOO_TEST_JOBS (default 2) at a time:
# TensorFlow and XLA keep what a process compiled until it ends (every registered model in
# one process reached 19 GB and crashed), so the modules that train every registered model
# run in groups of models (tests/conftest.py, --model-shard). Each process's output is
# printed whole when it ends; a table of exit codes and seconds closes the run. Any process
# that fails, or collects nothing (exit code 5), fails the run.
parallel=${VAEZOO_TEST_JOBS:-2}
shards_of() {
    case "$1" in
        tests/test_models.py) echo 6 ;;
        tests/test_export.py | tests/test_precision.py | tests/test_nan.py) echo 3 ;;
        *) echo 1 ;;
    esac
}
jobs_=()
for module in tests/test_*.py; do
    count=$(shards_of "$module")
    if [ "$count" -eq 1 ]; then
        jobs_+=("$module")
    else
        for ((i = 1; i <= count; i++)); do jobs_+=("$module --model-shard $i/$count"); done
    fi
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_job() {  # run_job INDEX ARGS...: pytest ARGS into $logs/INDEX.log, "rc seconds" into $logs/INDEX.rc
    local index=$1 start=$SECONDS rc=0
    shift
    pytest "$@" >"$logs/$index.log" 2>&1 || rc=$?
    echo "$rc $((SECONDS - start))" >"$logs/$index.rc"
}
report() {  # print the log of every finished job not yet printed
    local index
    for index in "${!jobs_[@]}"; do
        if [ -f "$logs/$index.rc" ] && [ ! -f "$logs/$index.shown" ]; then
            echo "=== tests/run.sh: pytest ${jobs_[$index]}"
            cat "$logs/$index.log"
            touch "$logs/$index.shown"
        fi
    done
}

started=$SECONDS
running=0
for index in "${!jobs_[@]}"; do
    if [ "$running" -ge "$parallel" ]; then
        wait -n || true
        running=$((running - 1))
        report
    fi
    # shellcheck disable=SC2086  # a job is a module and its options, split on spaces
    run_job "$index" ${jobs_[$index]} &
    running=$((running + 1))
done
wait || true
report

status=0
echo "=== tests/run.sh: $((${#jobs_[@]})) pytest processes, $parallel at a time, $((SECONDS - started)) s in all"
printf '%-48s %4s %8s\n' "pytest arguments" "rc" "seconds"
for index in "${!jobs_[@]}"; do
    read -r rc seconds <"$logs/$index.rc"
    printf '%-48s %4s %8s\n' "${jobs_[$index]}" "$rc" "$seconds"
    if [ "$rc" -ne 0 ]; then
        status=1
    fi
done
exit "$status"
