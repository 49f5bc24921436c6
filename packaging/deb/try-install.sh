#!/usr/bin/env bash
# Install a fleet-agent .deb into a throwaway root, check it as an admin would, then remove
# and purge it. Nothing on this machine changes:
#
#   sudo packaging/deb/try-install.sh dist/fleet-agent_<version>_<arch>.deb
#
# The root is this machine's /usr, /etc and /var seen through overlays (writes land in a
# temporary directory), in private mount and network namespaces, entered with chroot: dpkg,
# its dependency database, adduser and deb-systemd-helper are the real ones. systemd does not
# run there, as in a chroot or an image build, so the maintainer scripts must enable the unit
# without starting it. The checks, each printed as "ok: ..." or "FAILED: ..." (exit 1):
#   - dpkg -i succeeds; the fleet-agent user exists; the unit is enabled;
#   - the shipped /etc/fleet-agent/config.yaml passes `fleet-agent config check`, run as the
#     service user; `systemd-analyze verify` accepts the installed unit (ExecStart and the
#     manual page in Documentation= exist);
#   - the daemon, started as the unit starts it (user, environment, NOTIFY_SOCKET), reports
#     READY=1 and stops cleanly on SIGTERM;
#   - dpkg -r keeps the state and the configuration; dpkg -P removes both and the enablement.
# Needs root and util-linux (unshare), overlayfs and iproute2.
#
# Safety: the host's /dev and /proc are never bound into the root (its /dev holds a few
# device nodes made here, its /proc is a fresh mount), and the temporary directory is
# removed only from outside the namespace, after it is gone, when no mount is left in it
# (rm --one-file-system besides).
set -euo pipefail
deb="$(realpath "${1:?usage: try-install.sh DEB}")"

if [ -z "${FLEET_AGENT_SCRATCH:-}" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf --one-file-system "$work"' EXIT
    status=0
    FLEET_AGENT_SCRATCH="$work" unshare --mount --net --propagation private \
        bash "$0" "$deb" || status=$?
    exit "$status"
fi

if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
    echo "try-install.sh: refusing to mount outside a private mount namespace" >&2
    exit 1
fi
work="$FLEET_AGENT_SCRATCH"
root="$work/root"
mkdir -p "$root"/{usr,etc,var,tmp,run,opt,dev,proc,root}
for dir in usr etc var; do
    mkdir -p "$work/$dir-upper" "$work/$dir-work"
    mount -t overlay overlay \
        -o "lowerdir=/$dir,upperdir=$work/$dir-upper,workdir=$work/$dir-work" "$root/$dir"
done
for link in bin sbin lib lib64; do
    [ -L "/$link" ] && ln -s "$(readlink "/$link")" "$root/$link"
done
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$node"
    mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t proc proc "$root/proc"
chmod 1777 "$root/tmp"
ip link set lo up
cp "$deb" "$root/tmp/fleet-agent.deb"

failed=0
check() { # check DESCRIPTION COMMAND...: run COMMAND in the root
    local what="$1"
    shift
    if output="$(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" 2>&1)"; then
        echo "ok: $what"
    else
        echo "FAILED: $what"
        printf '%s\n' "$output" | sed 's/^/    /'
        failed=1
    fi
}

check "dpkg -i installs the package" dpkg -i /tmp/fleet-agent.deb
check "the fleet-agent system user exists" getent passwd fleet-agent
check "the unit is enabled" \
    test -L /etc/systemd/system/multi-user.target.wants/fleet-agent.service
check "the unit was not started (no systemd running)" test ! -e /run/systemd/system
check "the shipped configuration passes its own check, as the service user" \
    runuser -u fleet-agent -- fleet-agent config check --config /etc/fleet-agent/config.yaml
check "systemd-analyze verify accepts the installed unit" \
    systemd-analyze verify /lib/systemd/system/fleet-agent.service
check "fleet-agent(1) and fleet-agent-run(1) are installed" \
    man -w fleet-agent fleet-agent-run
check "the daemon starts as the unit starts it, reports READY=1 and stops on SIGTERM" \
    python3 - <<'PY'
import os, signal, socket, subprocess, sys
path = "/run/fleet-agent-notify"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o777)
sock.settimeout(120)
env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": path,
       "FLEET_AGENT_STATE_DIR": "/var/lib/fleet-agent"}  # as Environment= in the unit
daemon = subprocess.Popen(  # as User=/Group= do: no session wrapper between us and it
    ["/opt/fleet-agent/bin/fleet-agent", "run", "--config", "/etc/fleet-agent/config.yaml"],
    env=env, user="fleet-agent", group="fleet-agent", extra_groups=[],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
seen = b""
try:
    while b"READY=1" not in seen:
        seen += sock.recv(4096) + b"\n"
except TimeoutError:
    daemon.kill()
    sys.exit(f"no READY=1 in 120 s; got {seen!r}; output: {daemon.communicate()[0][-2000:]!r}")
daemon.send_signal(signal.SIGTERM)
out = daemon.communicate(timeout=90)[0]
if daemon.returncode != 0:
    sys.exit(f"exit {daemon.returncode} after SIGTERM: {out[-2000:]!r}")
PY
check "dpkg -r removes the package" dpkg -r fleet-agent
check "remove keeps the state the daemon wrote and the configuration" \
    sh -c 'test -n "$(ls -A /var/lib/fleet-agent)" && test -f /etc/fleet-agent/config.yaml'

check "dpkg -P purges it" dpkg -P fleet-agent
check "purge removes state, configuration and enablement" sh -c \
    '! test -e /var/lib/fleet-agent && ! test -e /etc/fleet-agent &&
     ! test -e /etc/systemd/system/multi-user.target.wants/fleet-agent.service'
exit "$failed"
