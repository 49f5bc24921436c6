#!/usr/bin/env bash
# Build fleet-agent_<version>_<arch>.deb: the agent in its own virtual environment under
# /opt/fleet-agent, the systemd unit, an example config and the state directory.
#
#   packaging/deb/build.sh [OUTPUT_DIR]
#
# Needs: python3 (>= 3.11) with venv, dpkg-deb. Reaches PyPI for the dependencies.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

python=/usr/bin/python3
version="$("$python" - "$repo/pyproject.toml" <<'PY'
import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])
PY
)"
arch="$(dpkg --print-architecture)"
pyver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
prefix=/opt/fleet-agent

# The venv is built at its staging path and relocated: scripts' shebangs name the final path.
"$python" -m venv "$root$prefix"
"$root$prefix/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$root$prefix/bin/python" -m pip install -q --disable-pip-version-check --no-compile "$repo"
"$root$prefix/bin/python" -m pip uninstall -q -y pip
find "$root$prefix/bin" -type f -exec grep -Il "^#!$root$prefix/bin/python" {} + \
    | xargs -r sed -i "1s|^#!$root$prefix/bin/python|#!$prefix/bin/python|"
grep -rIl "$root" "$root$prefix/bin" | xargs -r sed -i "s|$root||g"
find "$root$prefix" -name '__pycache__' -type d -prune -exec rm -rf {} +

install -D -m 0644 "$repo/packaging/systemd/fleet-agent.service" \
    "$root/lib/systemd/system/fleet-agent.service"
install -D -m 0640 "$repo/agent/data/config.example.yaml" "$root/etc/fleet-agent/config.yaml"
install -D -m 0644 "$repo/agent/data/config.example.yaml" \
    "$root/usr/share/doc/fleet-agent/config.example.yaml"
install -D -m 0644 "$repo/README.md" "$root/usr/share/doc/fleet-agent/README.md"
install -d -m 0750 "$root/var/lib/fleet-agent"
install -d -m 0755 "$root/usr/bin"
ln -s "$prefix/bin/fleet-agent" "$root/usr/bin/fleet-agent"

install -d "$root/DEBIAN"
installed_size="$(du -sk "$root" | cut -f1)"
cat > "$root/DEBIAN/control" <<CONTROL
Package: fleet-agent
Version: $version
Architecture: $arch
Maintainer: fleet-agent developers <fleet-agent@localhost>
Installed-Size: $installed_size
Depends: python3 (>= 3.11), python$pyver, adduser
Section: net
Priority: optional
Description: vendor-neutral printer fleet collector
 Discovers printers over SNMP, reads identity, page counters, supplies and
 status, checks managed-print eligibility and uploads signed reads over MQTT.
CONTROL
echo "/etc/fleet-agent/config.yaml" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if ! getent passwd fleet-agent >/dev/null; then
        adduser --system --group --home /var/lib/fleet-agent --no-create-home \
            --gecos "fleet-agent printer collector" fleet-agent >/dev/null
    fi
    chown -R fleet-agent:fleet-agent /var/lib/fleet-agent
    chgrp fleet-agent /etc/fleet-agent /etc/fleet-agent/config.yaml
    chmod 0750 /etc/fleet-agent
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
    fi
fi
exit 0
POSTINST
cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
    systemctl stop fleet-agent.service >/dev/null 2>&1 || true
fi
exit 0
PRERM
cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
exit 0
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

deb="$out/fleet-agent_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
