#!/usr/bin/env bash
# Set up everything the harness needs on a Debian/Ubuntu machine with Python 3.11:
# the OpenJPEG system library (for glymur), Chromium (for the tests that render report.html
# in a real browser), a virtual environment in .venv, and the project with its test extras.
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=""
apt_install() {
    [ -n "$APT_UPDATED" ] || $SUDO apt-get update -qq
    APT_UPDATED=1
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# grep without -q reads all of ldconfig's output: with -q it may exit first, and under pipefail the
# SIGPIPE that ldconfig then gets would read as "missing".
if ! ldconfig -p 2>/dev/null | grep 'libopenjp2\.so' >/dev/null; then
    echo "setup: installing libopenjp2-7 (OpenJPEG, needed by glymur)"
    apt_install libopenjp2-7
fi

# Debian's chromium (about 20 s to install); tests/test_html_report.py renders report.html with it
# headless, and skips those tests without it. Where apt has no `chromium` package (Ubuntu ships it as a
# snap), setup goes on without it.
if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (headless browser for the report.html tests)"
    apt_install chromium || echo "setup: apt has no chromium package here; the report.html browser tests will be skipped"
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

# Without a GPU, pre-install the CPU build of torch so that pip does not pull
# the multi-GB CUDA build to satisfy the project's unpinned torch requirement.
if ! command -v nvidia-smi >/dev/null 2>&1 && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install --quiet "torch==2.13.0"
fi

.venv/bin/pip install --quiet -e ".[test]"
