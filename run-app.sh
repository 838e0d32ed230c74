#!/usr/bin/env bash
# Set up the virtual environment if needed and start the dashboard for this machine only (http://localhost:8501).
# --share opens it to the network: it then needs a password (NNAPP_PASSWORD, or password = "..." in
# .streamlit/secrets.toml) on every page, and shows the browser no error details. Other arguments go to streamlit.
set -euo pipefail
cd "$(dirname "$0")"
share=()
args=()
for arg in "$@"; do
    if [ "$arg" = --share ]; then
        share=(--server.address 0.0.0.0 --client.showErrorDetails none)
    else
        args+=("$arg")
    fi
done
if [ ${#share[@]} -gt 0 ] && [ -z "${NNAPP_PASSWORD:-}" ] && ! grep -qsE '^[[:space:]]*password[[:space:]]*=' .streamlit/secrets.toml; then
    echo "run-app.sh: --share needs a password: set NNAPP_PASSWORD, or password = \"...\" in .streamlit/secrets.toml" >&2
    exit 2
fi
./setup.sh
exec .venv/bin/streamlit run serve.py ${share[@]+"${share[@]}"} ${args[@]+"${args[@]}"}
