#!/usr/bin/env bash
# Set up a fresh machine and run every check: lint, types, unit and integration tests.
# Installs what it needs itself: Debian packages (mosquitto, net-snmp tools, systemd-analyze)
# and a virtual environment in .venv made from the system Python.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v snmpget >/dev/null 2>&1 || need_apt+=(snmp)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || need_apt+=(tinyproxy)
[ -x /usr/bin/microsocks ] || need_apt+=(microsocks)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v dpkg-deb >/dev/null 2>&1 || need_apt+=(dpkg)
# Building and checking the .deb (tests/integration/test_packaging.py).
command -v dpkg-shlibdeps >/dev/null 2>&1 || need_apt+=(dpkg-dev)
command -v strip >/dev/null 2>&1 || need_apt+=(binutils)
command -v help2man >/dev/null 2>&1 || need_apt+=(help2man)
command -v lintian >/dev/null 2>&1 || need_apt+=(lintian)
[ -d /usr/share/debhelper/autoscripts ] || need_apt+=(debhelper)
command -v deb-systemd-helper >/dev/null 2>&1 || need_apt+=(init-system-helpers)
command -v adduser >/dev/null 2>&1 || [ -x /usr/sbin/adduser ] || need_apt+=(adduser)
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
command -v file >/dev/null 2>&1 || need_apt+=(file)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v runuser >/dev/null 2>&1 || need_apt+=(util-linux)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${need_apt[*]} (run as root, or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,postgres]"

# The TLS WebSocket broker of the transport tests (aedes, tests/support/wsbroker.py).
if [ ! -d tests/support/node/node_modules/aedes ]; then
    npm install --silent --no-audit --no-fund --prefix tests/support/node >/dev/null
fi

# The Node verification snippet (docs/schema/snippets/verify_jose.mjs) needs the jose
# package; tests/unit/test_schema_snippets.py skips it only when npm could not install it.
if command -v npm >/dev/null 2>&1 && [ ! -f .cache/node/node_modules/jose/package.json ]; then
    mkdir -p .cache/node
    npm install --prefix .cache/node --no-audit --no-fund --silent jose >/dev/null 2>&1 \
        || echo "npm could not install jose: the Node snippet test will be skipped" >&2
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Most integration tests wait on real peers (snmpsim, Mosquitto, PostgreSQL, daemons), so
# three workers fit two cores; a test file stays on one worker (its tests share addresses).
# PYTHONNODEBUGRANGES: Debian's Python 3.11.2 keeps the ast module's recursion depth in
# shared state (CPython gh-106905, fixed in 3.11.7), and 3.11's traceback module parses
# each source line to draw its ^^^ carets; two threads formatting tracebacks at once can
# then end a worker with "AST constructor recursion depth mismatch" (an INTERNALERROR
# that hides every other result). Without column ranges, tracebacks parse nothing.
PYTHONNODEBUGRANGES=1 .venv/bin/pytest -q -p no:cacheprovider -n "${FLEET_TEST_WORKERS:-3}" \
    --dist loadfile "$@"
