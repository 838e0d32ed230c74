#!/usr/bin/env bash
# Set up the virtual environment if needed and start the dashboard. Extra arguments go to streamlit.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec .venv/bin/streamlit run app.py "$@"
