#!/usr/bin/env bash
# One-shot set-up on a fresh Debian 12 / Python 3.11 machine: system tools, .venv, snnkit + extras.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq iverilog >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq iverilog >/dev/null
    fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
$PIP install -q -c .ci/constraints.txt torch==2.13.0
$PIP install -q -c .ci/constraints.txt -e ".[hdl,dev,sweep]" snntorch nirtorch
# norse's torchvision requirement resolves to a CUDA build that fails to import next to CPU torch.
$PIP install -q -c .ci/constraints.txt --no-deps "norse>=1.1"
# NIR peers whose exports the tests import: sinabs (needs pbr), rockpool (pure Python; its
# optional extras are not needed for NIR export). --no-deps keeps torch as installed.
$PIP install -q -c .ci/constraints.txt pbr
$PIP install -q -c .ci/constraints.txt --no-deps "sinabs>=3.1" "rockpool>=3.1"
.venv/bin/python -c "import torch, nir, snntorch, norse, sinabs, rockpool, cocotb, pymetis, ray; print('snnkit env ok: torch', torch.__version__)"
