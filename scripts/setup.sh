#!/usr/bin/env bash
# Creates .venv (if missing) and installs the project with its test extras:
# torch 2.13.0 first (constraints.txt), then everything else from PyPI ranges.
# Usage: scripts/setup.sh [--browser]   (--browser also installs Chromium, ChromeDriver and node via apt)
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh installs torch's CPU
# build from PyTorch's own index (PyPI's Linux wheel is the CUDA build, several GB).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ -e .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "error: .venv exists but has no working pip (left by an earlier failed setup?);" \
       "remove it (rm -rf .venv) and run this again" >&2
  exit 1
fi
if [ ! -e .venv ]; then
  if ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
    echo "error: $python cannot create a virtual environment with pip (no venv/ensurepip module);" \
         "install it first, e.g. on Debian or Ubuntu: sudo apt-get install python3-venv" >&2
    exit 1
  fi
  if ! "$python" -m venv .venv; then
    rm -rf .venv  # made by this run just now: do not leave a half-made environment behind
    echo "error: $python -m venv failed (see above); on Debian or Ubuntu install python3-venv" >&2
    exit 1
  fi
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt)
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" --index-url "$TORCH_INDEX_URL" "torch>=2.2"
  else
    "${pip[@]}" "torch>=2.2"
  fi
  "${pip[@]}" -e ".[test]"
  touch "$stamp"
fi
if [ "${1:-}" = "--browser" ] && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    && command -v node >/dev/null; }; then
  # Chromium and ChromeDriver for the browser tests; node for the unit tests of assets/*.js.
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver nodejs >/dev/null
fi
