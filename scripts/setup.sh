#!/usr/bin/env bash
# Install everything the tests need: .venv (infra + apps + test tools), .venv-checkov
# (the scanner, kept apart because its dependency pins clash with ours), and check for
# redis-server. With INSTALL_REDIS=1 (CI), a missing redis-server is installed with apt.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "${INSTALL_REDIS:-0}" = "1" ]; then
    echo "setup: redis-server missing, installing it with apt-get"
    SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  else
    echo "setup: redis-server is not installed; the app tests need it (TLS-capable, 6.0+)." >&2
    echo "       Debian/Ubuntu: sudo apt-get install redis-server    macOS: brew install redis" >&2
    exit 1
  fi
fi
command -v openssl >/dev/null 2>&1 || { echo "setup: openssl is needed for the TLS tests" >&2; exit 1; }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements-dev.txt

[ -x .venv-checkov/bin/python ] || "$PYTHON" -m venv .venv-checkov
.venv-checkov/bin/pip install -q --upgrade pip
.venv-checkov/bin/pip install -q -r requirements-checkov.txt
echo "setup: done ($(redis-server --version | cut -d' ' -f3), $(.venv/bin/python --version))"
