#!/usr/bin/env bash
# Set up the virtual environment that `make demo` and `make test` run in (the Makefile calls
# this once and records it with a stamp file; rerunning it is harmless).
#
#   - the virtual environment $VENV (default .venv), made with $PYTHON (>= 3.10)
#   - torch: the CPU build pinned by $TORCH_CPU, or the default build where nvidia-smi works
#   - audiolens in editable mode with the extras $EXTRAS
#   - espeak-ng (speech synthesis for the demo data and some tests) and chromium (the test that
#     opens report.html in a headless browser) via apt-get, when missing and this user may
#     install packages; without apt-get the tests that need them skip and say why
#   - a torchvision or torchaudio that fails to import is removed: `transformers` imports them
#     when present and then fails on every model class; audiolens needs neither.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_CPU=${TORCH_CPU:-torch==2.13.0}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
EXTRAS=${EXTRAS:-test,docs,plot}

say() { echo "setup: $*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

apt_updated=
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq || return 1; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup: needs Python >= 3.10 as '$PYTHON' (make ... PYTHON=/path/to/python3.X)" >&2
  exit 1
fi

if ! command -v espeak-ng >/dev/null 2>&1; then
  if apt_install espeak-ng; then say "installed espeak-ng"
  else say "espeak-ng missing and not installable here: the demo data and some tests need it" >&2
  fi
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if apt_install chromium; then say "installed chromium"
  else say "chromium missing and not installable here: the headless-browser test of report.html skips" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $("$PYTHON" --version 2>&1)"
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian ships venv's pip bootstrap separately (python3.X-venv).
    rm -rf "$VENV"
    ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python$ver-venv" || apt_install python3-venv || {
      echo "setup: '$PYTHON -m venv' failed; install python$ver-venv" >&2; exit 1; }
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
pip() { "$PY" -m pip "$@"; }

if nvidia-smi >/dev/null 2>&1; then
  say "NVIDIA GPU found: default torch build"
  pip install -q torch
elif "$PY" -c "import torch, sys; sys.exit(not torch.__version__.startswith('${TORCH_CPU#torch==}'))" \
    2>/dev/null; then
  say "torch ${TORCH_CPU#torch==} already installed"
else
  # A plain index (PyPI) serves the CUDA build on Linux, several GB; take the CPU build from
  # the configured indexes when they have one, else from PyTorch's CPU index.
  found=$(pip install -q --dry-run --no-deps --report - "$TORCH_CPU" 2>/dev/null |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["install"][0]["metadata"]["version"])' \
    2>/dev/null || true)
  if [[ "$found" == *+cpu* || "$(uname -s)" != Linux ]]; then
    say "installing $TORCH_CPU ($found)"
    pip install -q "$TORCH_CPU"
  else
    say "installing $TORCH_CPU from $TORCH_CPU_INDEX"
    pip install -q "$TORCH_CPU" --index-url "$TORCH_CPU_INDEX"
  fi
fi

say "installing audiolens[$EXTRAS]"
pip install -q -e ".[$EXTRAS]"

for pkg in torchvision torchaudio; do
  if pip show -q "$pkg" >/dev/null 2>&1 && ! "$PY" -c "import $pkg" >/dev/null 2>&1; then
    say "removing $pkg: it does not import with this torch"
    pip uninstall -q -y "$pkg"
  fi
done
"$PY" -c "import torch, audiolens.hooked; print('setup: ready, torch', torch.__version__)"
