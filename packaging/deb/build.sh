#!/usr/bin/env bash
# Build fleet-agent_<version>-<revision>_<arch>.deb: the agent in its own virtual environment
# under /opt/fleet-agent, the systemd unit (enabled and started on installation, with the
# maintainer-script snippets dh_installsystemd generates), a configuration that passes its
# own check, manual pages generated from --help, a machine-readable copyright file and the
# Debian changelog.
#
#   packaging/deb/build.sh [OUTPUT_DIR]
#
# Needs: python3 (>= 3.11) with venv, dpkg-deb, dpkg-shlibdeps (dpkg-dev), strip (binutils),
# help2man, debhelper (for its systemd snippets). Reaches PyPI for the dependencies.
# What lintian still says about the result, and why, is in packaging/deb/lintian-notes.md.
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
# The Debian version is the first entry of packaging/deb/changelog: it must package this version.
deb_version="$(sed -n '1s/^fleet-agent (\([^)]*\)).*/\1/p' "$here/changelog")"
if [ "${deb_version%-*}" != "$version" ]; then
    echo "build.sh: packaging/deb/changelog starts at $deb_version, pyproject.toml says $version:" \
        "add a changelog entry" >&2
    exit 1
fi
maintainer="$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$here/changelog" | head -1)"
arch="$(dpkg --print-architecture)"
pyver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
autoscripts=/usr/share/debhelper/autoscripts

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
prefix=/opt/fleet-agent
site="$prefix/lib/python$pyver/site-packages"
doc="$root/usr/share/doc/fleet-agent"

# The venv is built at its staging path and relocated: scripts' shebangs name the final path.
"$python" -m venv "$root$prefix"
"$root$prefix/bin/python" -m pip install -q --disable-pip-version-check --no-compile "$repo"
"$root$prefix/bin/python" -m pip uninstall -q -y pip setuptools
# Only the agent's own entry point stays: no activate scripts, no pip, no other programs
# the dependencies install (pygmentize, markdown-it, cffi-gen-src).
find "$root$prefix/bin" -mindepth 1 \( -type f -o -type l \) \
    ! -name fleet-agent ! -name 'python*' -delete
sed -i "1s|^#!$root$prefix/bin/python|#!$prefix/bin/python|" "$root$prefix/bin/fleet-agent"
grep -rIl "$root" "$root$prefix" | xargs -r sed -i "s|$root||g"
find "$root$prefix" -name '__pycache__' -type d -prune -exec rm -rf {} +
find "$root$prefix" -name '.DS_Store' -delete
# Library modules that carry a '#!' line (prometheus_client) are not programs: blank the line
# (line numbers in tracebacks stay the same).
find "$root$site" -name '*.py' ! -perm -u+x -exec grep -l '^#!' {} + 2>/dev/null \
    | xargs -r sed -i '1s/^#!.*$//'
# PyYAML's wheel links a private copy of libyaml into yaml/_yaml*.so. fleet-agent parses YAML
# with the pure-Python yaml.SafeLoader only (agent/yamlconf.py keeps the line marks it needs
# for error messages), so the accelerator is dropped rather than shipped as an embedded library.
rm -f "$root$site"/yaml/_yaml*.so
find "$root$prefix" -type f -name '*.so*' -exec strip --strip-unneeded {} +

install -D -m 0644 "$repo/packaging/systemd/fleet-agent.service" \
    "$root/lib/systemd/system/fleet-agent.service"
install -D -m 0640 "$here/config.yaml" "$root/etc/fleet-agent/config.yaml"
install -D -m 0644 "$repo/agent/data/config.example.yaml" "$doc/config.example.yaml"
install -m 0644 "$repo/docs/operations.md" "$doc/operations.md"
install -m 0644 "$repo/README.md" "$doc/README.md"
gzip -9n -c "$here/changelog" > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
"$python" "$here/copyright.py" "$root$site" "$site" > "$doc/copyright"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/fleet-agent"
install -d -m 0750 "$root/var/lib/fleet-agent"
install -d -m 0755 "$root/usr/bin"
ln -s "$prefix/bin/fleet-agent" "$root/usr/bin/fleet-agent"

# Manual pages: one per command and sub-command, from its --help (fleet-agent-config-check.1).
man="$root/usr/share/man/man1"
install -d "$man" "$stage/help"
"$root$prefix/bin/python" "$here/commands.py" "$stage/help" > "$stage/commands.tsv"
while IFS=$'\t' read -r name summary; do
    printf '#!/bin/sh\nexec cat %s\n' "$stage/help/$name.help" > "$stage/help/$name"
    chmod 0755 "$stage/help/$name"
    help2man --no-info --section=1 --version-string="$version" --name="$summary" \
        --source="fleet-agent $version" --manual="fleet-agent manual" "$stage/help/$name" \
        | gzip -9n > "$man/$name.1.gz"
done < "$stage/commands.tsv"
find "$man" -type f -exec chmod 0644 {} +

# Library dependencies of the bundled compiled modules, computed as dh_shlibdeps would.
mkdir -p "$stage/debian"
printf 'Source: fleet-agent\n\nPackage: fleet-agent\nArchitecture: any\n' > "$stage/debian/control"
mapfile -t elves < <(find "$root$prefix" -type f -name '*.so*' | sort)
shlibs="$(cd "$stage" && dpkg-shlibdeps -O "${elves[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
if [ -z "$shlibs" ]; then
    echo "build.sh: dpkg-shlibdeps found no library dependencies" >&2
    exit 1
fi

install -d "$root/DEBIAN"
installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
cat > "$root/DEBIAN/control" <<CONTROL
Package: fleet-agent
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: python$pyver, adduser, init-system-helpers (>= 1.54~), $shlibs
Section: net
Priority: optional
Description: vendor-neutral printer fleet collector
 Discovers printers over SNMP, reads identity, page counters, supplies and
 status, checks managed-print eligibility and uploads signed reads over MQTT.
 .
 The agent runs as the fleet-agent system user from its own virtual
 environment under /opt/fleet-agent; the systemd service is enabled and
 started on installation and contacts no device until discovery targets are
 listed in /etc/fleet-agent/config.yaml.
CONTROL
echo "/etc/fleet-agent/config.yaml" > "$root/DEBIAN/conffiles"

# dh_installsystemd's snippets, as debhelper generates them for one enabled, started unit.
snippet() { # snippet NAME: debhelper's autoscript with the unit filled in
    printf '# Automatically added by dh_installsystemd\n'
    sed -e "s/#UNITFILE#/'fleet-agent.service'/g" -e "s/#UNITFILES#/'fleet-agent.service'/g" \
        -e 's/#RESTART_ACTION#/restart/g' "$autoscripts/$1"
    printf '# End automatically added section\n'
}
{
    cat <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if ! getent passwd fleet-agent >/dev/null; then
        adduser --system --group --home /var/lib/fleet-agent --no-create-home \
            --gecos "fleet-agent printer collector" fleet-agent >/dev/null
    fi
    # Only the directories themselves: systemd's StateDirectory= keeps the contents right.
    chown fleet-agent:fleet-agent /var/lib/fleet-agent
    chmod 0750 /var/lib/fleet-agent
    chgrp fleet-agent /etc/fleet-agent /etc/fleet-agent/config.yaml
    chmod 0750 /etc/fleet-agent
fi
POSTINST
    snippet postinst-systemd-enable
    snippet postinst-systemd-restart
    echo 'exit 0'
} > "$root/DEBIAN/postinst"
{
    printf '#!/bin/sh\nset -e\n'
    snippet prerm-systemd-restart
    echo 'exit 0'
} > "$root/DEBIAN/prerm"
{
    printf '#!/bin/sh\nset -e\n'
    snippet postrm-systemd-reload-only
    snippet postrm-systemd
    cat <<'POSTRM'
# State (inventory, outbox, signing key) and the configuration directory go on purge only.
if [ "$1" = "purge" ]; then
    # The fleet-agent system user stays, as Debian does for system users: files it owned
    # elsewhere (backups, copies of the key) must not end up owned by a reused uid.
    rm -rf /var/lib/fleet-agent /etc/fleet-agent
fi
exit 0
POSTRM
} > "$root/DEBIAN/postrm"
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

deb="$out/fleet-agent_${deb_version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
