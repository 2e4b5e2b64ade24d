#!/usr/bin/env bash
# make e2e: the end-to-end tier (docs/sim.md). Builds what is not built yet (make toolchain),
# starts the local control plane unless one is up (and then stops it again), runs e2e/.
# Parts that need a tool the registries do not serve are skipped with the reason (-rs);
# the tier never passes them silently.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || { echo "error: .venv is missing; run 'make setup' first" >&2; exit 2; }
start=$SECONDS
bash toolchain/build.sh
if ! bash scripts/sim.sh status >/dev/null 2>&1; then
  trap 'bash scripts/sim.sh down' EXIT
  bash scripts/sim.sh up
fi
rc=0
.venv/bin/python -m pytest e2e -p no:cacheprovider -rs -v --durations=0 "$@" || rc=$?
echo "e2e: done in $((SECONDS - start)) s (exit $rc)"
exit $rc
