#!/usr/bin/env bash
# make e2e: the end-to-end tier (docs/sim.md). Builds what is not built yet (make toolchain),
# starts the local control plane unless one is up (then checks that a second sim-up leaves it
# alone, and at the end that sim-down leaves no process and no file), runs e2e/.
# Parts that need a tool the registries do not serve are skipped with the reason (-rs);
# the tier never passes them silently.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || { echo "error: .venv is missing; run 'make setup' first" >&2; exit 2; }
start=$SECONDS
bash toolchain/build.sh

down_and_check() {
  local rc=$?
  bash scripts/sim.sh down
  local left=()
  ip netns list 2>/dev/null | grep -qw "${SIM_NETNS:-redis-keda-sim}" && left+=("network namespace")
  [[ ! -e .tools/sim ]] || left+=(".tools/sim")
  pgrep -f "$PWD/.tools/bin/(etcd|kube-|kwok)" >/dev/null && left+=("processes: $(pgrep -af "$PWD/.tools/bin/(etcd|kube-|kwok)" | tr '\n' ';')")
  if [[ ${#left[@]} -gt 0 ]]; then
    echo "e2e: sim-down left behind: ${left[*]}" >&2
    rc=1
  fi
  echo "e2e: done in $((SECONDS - start)) s (exit $rc)"
  exit $rc
}

if ! bash scripts/sim.sh status >/dev/null 2>&1; then
  trap down_and_check EXIT
  bash scripts/sim.sh up
  again=$(bash scripts/sim.sh up)
  [[ $again == *"already up"* ]] || { echo "e2e: a second sim-up did not leave the running sim alone: $again" >&2; exit 1; }
fi
.venv/bin/python -m pytest e2e -p no:cacheprovider -rs -v --durations=0 "$@"
