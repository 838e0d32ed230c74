#!/usr/bin/env bash
# Create .venv and install requirements.txt (or requirements-dev.txt with "dev", which adds the cluster and test tools); skipped when unchanged.
set -euo pipefail
cd "$(dirname "$0")"
req=requirements.txt
[ "${1:-}" = dev ] && req=requirements-dev.txt
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.installed-${req%.txt}-$(cat requirements*.txt | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
    touch "$stamp"
fi
