#!/usr/bin/env bash
# Make the virtual environments of the peer servers the serving benchmark compares
# activeserve with: MLServer and PyTriton, each with onnxruntime, each in a venv of its
# own so that their pins never meet the project's.
#
#   bash benchmarks/peers/setup.sh            # both
#   bash benchmarks/peers/setup.sh mlserver   # one
#
# The venvs go to .bench-venvs/ at the repository root (gitignored). Re-running the
# script on an existing venv only re-checks its packages. PYTHON picks the interpreter
# (default: python3); PyTriton needs Linux x86_64 or aarch64 with glibc >= 2.35.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venvs="${BENCH_VENVS:-$repo_root/.bench-venvs}"
python="${PYTHON:-python3}"

# Pinned to the releases the benchmark was written and run against; raise them together
# with a fresh run of benchmarks/serving.py.
mlserver_spec="mlserver==1.7.1"
# MLServer 1.7.1's inference workers call asyncio.get_event_loop() with no loop set,
# which uvloop 0.22 and later turn into an error: every worker dies at start.
mlserver_uvloop_spec="uvloop<0.22"
pytriton_spec="nvidia-pytriton==0.7.0"
onnxruntime_spec="onnxruntime>=1.20"

make_venv() {
    local name="$1"
    shift
    local dir="$venvs/$name"

    if [[ ! -x "$dir/bin/python" ]]; then
        echo "creating $dir"
        "$python" -m venv "$dir"
    fi

    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
    echo "$name ready: $("$dir/bin/python" -m pip freeze | grep -i -E "^($name|nvidia-pytriton|onnxruntime)==" | tr '\n' ' ')"
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(mlserver pytriton)
fi

mkdir -p "$venvs"
for target in "${targets[@]}"; do
    case "$target" in
        mlserver) make_venv mlserver "$mlserver_spec" "$mlserver_uvloop_spec" "$onnxruntime_spec" ;;
        pytriton) make_venv pytriton "$pytriton_spec" "$onnxruntime_spec" ;;
        *)
            echo "unknown peer $target; expected mlserver or pytriton" >&2
            exit 2
            ;;
    esac
done
