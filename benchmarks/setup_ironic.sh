#!/usr/bin/env bash
# Create the OpenStack Ironic virtualenv used by ironic_side_by_side.py.
#
# Usage: benchmarks/setup_ironic.sh [VENV_DIR]
#   VENV_DIR defaults to benchmarks/.venv-ironic.
#   IRONIC_VERSION (env) pins the release; default 39.0.0, falling back to the
#   newest release pip can find when that one is unavailable.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.venv-ironic}"
version="${IRONIC_VERSION:-39.0.0}"
python="${PYTHON:-python3}"

if [[ -x "$venv/bin/ironic" && -x "$venv/bin/ironic-dbsync" ]]; then
    echo "Ironic venv already present: $venv"
    exit 0
fi

echo "Creating Ironic venv in $venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip

if ! "$venv/bin/pip" install "ironic==$version"; then
    echo "ironic==$version not installable, trying the newest release" >&2
    "$venv/bin/pip" install ironic
fi

"$venv/bin/pip" show ironic | sed -n 's/^Version: /Installed ironic /p'
