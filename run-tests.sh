#!/usr/bin/env bash
# Set up everything the tests need (venv, Python packages, Debian's Chromium) and run the whole suite.
# Extra arguments go to pytest, e.g. ./run-tests.sh tests/test_config.py -x
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh dev
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian's chromium for the browser tests" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "the browser tests need /usr/bin/chromium: sudo apt-get install -y chromium" >&2
    fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
