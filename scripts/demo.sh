#!/usr/bin/env bash
# Set up a fresh machine and run the whole pipeline once against an embedded default:
# a simulated fleet of printers on loopback (snmpsim), a local MQTT broker (Mosquitto), the
# reference consumer, and the daemon for one cycle. Prints the fleet table, the eligibility
# summary and how many signed reads the consumer verified and stored.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "note: not root, so not installing ${need_apt[*]}; the demo falls back where it can" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[demo]"
exec .venv/bin/fleet-agent demo "$@"
