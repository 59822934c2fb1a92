#!/usr/bin/env bash
# Installs the turnserver .deb on this machine without changing it, runs the
# installed server as the packaged user, and removes the package again.
# Driven by tests/packaging.rs, which checks the key=value lines this script
# writes to WORKDIR/results and the uclient logs it leaves in WORKDIR.
#
#   unshare --mount --pid --fork --kill-child --propagation private -- \
#       packaging/test-deb-install.sh DEB WORKDIR PORT PEER_PORT MIN_PORT MAX_PORT
#
# Why it leaves the host untouched: it runs in a private mount namespace (and
# a PID namespace, so that every process it starts dies with it) and first
# mounts overlay filesystems over /usr, /etc and /var (everything dpkg,
# adduser and the maintainer scripts write; /lib, /bin and /sbin are links
# into /usr on Debian 12), plus an empty tmpfs on /run so that no init system
# is seen and a policy-rc.d that forbids service starts. Writes land in the
# overlay's upper directories under WORKDIR and vanish with the namespace;
# the host's coturn package, its files and its dpkg database stay as they
# were. WORKDIR itself lives outside the overlays, so the caller can read
# the results afterwards.
#
# Two scenarios, each ending with `dpkg -r` and `dpkg --purge`:
#  upgrade - coturn is installed and its /etc/turnserver.conf was edited by
#            the operator; `dpkg -i` replaces coturn, keeps the edited file
#            and the existing turnserver user; the server runs from that file.
#  fresh   - no coturn, no turnserver user; `dpkg -i` creates the user and
#            /var/lib/turn; the server runs from the packaged file with its
#            SQLite user database, a user added with the packaged turnadmin.
#
# Exit status: 0 when every step ran (the checks are the caller's), 77 when
# the namespace or the overlays cannot be set up (the caller skips), other
# values when a step failed.
set -euo pipefail

DEB=$1 W=$2 PORT=$3 PEER=$4 MINP=$5 MAXP=$6
R=$W/results
: >"$R"
res() { echo "$1=$2" >>"$R"; }
say() { echo "test-deb-install: $*"; }
skip() { echo "SKIP: $*"; exit 77; }

[ "$$" -eq 1 ] || skip "not started as PID 1 of a new PID namespace (use unshare --pid --fork)"
[ "$(id -u)" -eq 0 ] || skip "needs root"

# ------------------------------------------------------------ isolation
mount --make-rprivate / 2>/dev/null || skip "cannot make mounts private"
for d in usr etc var; do
    mkdir -p "$W/ovl/$d.up" "$W/ovl/$d.work"
    mount -t overlay overlay \
        -o "lowerdir=/$d,upperdir=$W/ovl/$d.up,workdir=$W/ovl/$d.work" "/$d" \
        || skip "overlay mount on /$d failed"
done
mount -t tmpfs tmpfs /run || skip "tmpfs on /run failed"
mount -t proc proc /proc || skip "proc mount failed"
# Proof that the overlay is in place before anything is written.
touch /etc/.turnserver-pkg-test-marker
[ -e "$W/ovl/etc.up/.turnserver-pkg-test-marker" ] || skip "overlay upper dir not used"
res isolated yes

printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
chmod 755 "$W"

# The client tools come with coturn, which both scenarios remove.
mkdir -p "$W/bin"
for t in turnutils_uclient turnutils_peer; do
    cp "/usr/bin/$t" "$W/bin/$t"
done

status_of() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null || echo "not-installed"; }
owner_mode() { stat -c '%U:%G %a' "$1" 2>/dev/null || echo "missing"; }

SERVER_PID=""
NOTIFY_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# A systemd-style notification socket that records what the server sends.
start_notify() { # NAME
    rm -f "$W/notify.sock"
    python3 - "$W/notify.sock" "$W/notify-$1.txt" <<'EOF' &
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
s.settimeout(0.5)
end = time.time() + 120
with open(out, "a") as f:
    while time.time() < end:
        try:
            msg = s.recv(4096)
        except socket.timeout:
            continue
        f.write(msg.decode(errors="replace").replace("\n", " ") + "\n")
        f.flush()
EOF
    NOTIFY_PID=$!
    for _ in $(seq 50); do [ -S "$W/notify.sock" ] && break; sleep 0.1; done
}
stop_notify() { [ -n "$NOTIFY_PID" ] && kill "$NOTIFY_PID" 2>/dev/null || true; NOTIFY_PID=""; }

# Starts /usr/bin/turnserver as the user turnserver, the way coturn.service
# does (-c /etc/turnserver.conf --pidfile=, NOTIFY_SOCKET), with loopback
# ports added on the command line (they override the file).
start_server() { # NAME extra-args...
    local name=$1; shift
    start_notify "$name"
    NOTIFY_SOCKET="$W/notify.sock" setpriv --reuid=turnserver --regid=turnserver --init-groups \
        /usr/bin/turnserver -c /etc/turnserver.conf --pidfile= \
        --listening-port="$PORT" -L 127.0.0.1 --min-port="$MINP" --max-port="$MAXP" \
        --allow-loopback-peers --log-file=stdout --max-allocate-lifetime=15 "$@" \
        >"$W/server-$name.log" 2>&1 &
    SERVER_PID=$!
    local ready=no
    for _ in $(seq 100); do
        if grep -q '^READY=1' "$W/notify-$name.txt" 2>/dev/null; then ready=yes; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    res "$name.ready" "$ready"
    res "$name.server_user" "$(ps -o user= -p "$SERVER_PID" 2>/dev/null | tr -d ' ' || echo gone)"
}

run_uclient() { # LOGNAME user password count
    "$W/bin/turnutils_peer" -L 127.0.0.1 -p "$PEER" >"$W/peer-$1.log" 2>&1 &
    local peer=$!
    sleep 0.5
    timeout 90 "$W/bin/turnutils_uclient" -e 127.0.0.1 -r "$PEER" -n "$4" -l 120 -m 1 -c \
        -u "$2" -w "$3" -p "$PORT" 127.0.0.1 >"$W/$1.log" 2>&1 || true
    kill "$peer" 2>/dev/null || true
}

# Signals as the unit and the operator send them: SIGHUP (reload) must keep
# it running; SIGUSR1 (drain) must refuse a new allocation and make the
# server exit by itself, status 0, once the first client's allocation (left
# behind by uclient, granted for 15 s) has expired.
signals_and_drain() { # NAME user password
    kill -HUP "$SERVER_PID"
    sleep 1
    if kill -0 "$SERVER_PID" 2>/dev/null; then res "$1.alive_after_hup" yes; else res "$1.alive_after_hup" no; fi
    kill -USR1 "$SERVER_PID"
    sleep 0.5
    run_uclient "uclient-drain-$1" "$2" "$3" 5
    local rc=timeout
    for _ in $(seq 400); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            rc=0; wait "$SERVER_PID" || rc=$?
            break
        fi
        sleep 0.1
    done
    res "$1.drain_exit" "$rc"
    stop_server
    sleep 0.3
    stop_notify
}

remove_and_purge() { # NAME
    dpkg -r turnserver >"$W/dpkg-remove-$1.log" 2>&1
    res "$1.removed.status" "$(status_of turnserver)"
    res "$1.removed.bin" "$([ -e /usr/bin/turnserver ] && echo present || echo absent)"
    res "$1.removed.admin" "$([ -e /usr/bin/turnadmin ] && echo present || echo absent)"
    res "$1.removed.unit" "$([ -e /lib/systemd/system/coturn.service ] && echo present || echo absent)"
    res "$1.removed.conf" "$([ -e /etc/turnserver.conf ] && echo present || echo absent)"
    res "$1.removed.user" "$(getent passwd turnserver >/dev/null && echo present || echo absent)"
    dpkg --purge turnserver >"$W/dpkg-purge-$1.log" 2>&1
    res "$1.purged.status" "$(status_of turnserver)"
    res "$1.purged.conf" "$([ -e /etc/turnserver.conf ] && echo present || echo absent)"
    res "$1.purged.default" "$([ -e /etc/default/coturn ] && echo present || echo absent)"
    res "$1.purged.user" "$(getent passwd turnserver >/dev/null && echo present || echo absent)"
    res "$1.purged.statoverride_conf" "$(dpkg-statoverride --list /etc/turnserver.conf >/dev/null 2>&1 && echo present || echo absent)"
}

common_checks() { # NAME
    res "$1.status" "$(status_of turnserver)"
    res "$1.owner_bin" "$(dpkg -S /usr/bin/turnserver 2>/dev/null | cut -d: -f1)"
    res "$1.owner_admin" "$(dpkg -S /usr/bin/turnadmin 2>/dev/null | cut -d: -f1)"
    res "$1.unit_ours" "$(grep -q turnserver-rs /lib/systemd/system/coturn.service 2>/dev/null && echo yes || echo no)"
    res "$1.man" "$(ls /usr/share/man/man1/turnserver.1.gz /usr/share/man/man1/turnadmin.1.gz 2>/dev/null | wc -l)"
    res "$1.schema" "$([ -s /usr/share/turnserver/schema.sql ] && echo present || echo absent)"
    res "$1.ufw" "$([ -s /etc/ufw/applications.d/turnserver ] && echo present || echo absent)"
    res "$1.user" "$(getent passwd turnserver | cut -d: -f1,7)"
    res "$1.conf_mode" "$(owner_mode /etc/turnserver.conf)"
    res "$1.statedir_mode" "$(owner_mode /var/lib/turn)"
    res "$1.conffiles" "$(dpkg-query -W -f='${Conffiles}' turnserver | awk 'NF {print $1}' | sort | tr '\n' ',')"
}

# ------------------------------------------------------------ upgrade
if [ "$(status_of coturn)" = "install ok installed" ]; then
    say "scenario upgrade: coturn installed, operator-edited /etc/turnserver.conf"
    res upgrade.ran yes
    echo "# operator edit: kept across the replacement" >>/etc/turnserver.conf
    sha_before=$(sha256sum /etc/turnserver.conf | cut -d' ' -f1)
    # dpkg carries coturn's record of the conffile over (Replaces), sees the
    # operator's edit and asks; --force-confold gives the prompt's default
    # answer (keep), as `apt-get -o Dpkg::Options::=--force-confold` would.
    dpkg -i --force-confdef --force-confold "$DEB" </dev/null >"$W/dpkg-install-upgrade.log" 2>&1 \
        || { res upgrade.dpkg_install failed; cat "$W/dpkg-install-upgrade.log"; exit 1; }
    res upgrade.dpkg_install ok
    res upgrade.coturn_status "$(status_of coturn)"
    res upgrade.conf_dist "$([ -e /etc/turnserver.conf.dpkg-dist ] && echo present || echo absent)"
    res upgrade.conf_kept "$([ "$(sha256sum /etc/turnserver.conf | cut -d' ' -f1)" = "$sha_before" ] && echo yes || echo no)"
    common_checks upgrade
    start_server upgrade --lt-cred-mech --realm=example.org --user=pkguser:pkgpass
    run_uclient uclient-upgrade pkguser pkgpass 30
    signals_and_drain upgrade pkguser pkgpass
    remove_and_purge upgrade
else
    res upgrade.ran "no (coturn not installed here)"
fi

# ------------------------------------------------------------ fresh
say "scenario fresh: no coturn, no turnserver user"
dpkg --purge coturn >"$W/dpkg-purge-coturn.log" 2>&1 || true
getent passwd turnserver >/dev/null && userdel turnserver
getent group turnserver >/dev/null && groupdel turnserver
for f in /var/lib/turn /etc/turnserver.conf; do
    dpkg-statoverride --list "$f" >/dev/null 2>&1 && dpkg-statoverride --remove "$f" >/dev/null 2>&1
done
rm -rf /var/lib/turn
res fresh.pre_user "$(getent passwd turnserver >/dev/null && echo present || echo absent)"
res fresh.pre_coturn "$(status_of coturn)"
dpkg -i "$DEB" </dev/null >"$W/dpkg-install-fresh.log" 2>&1 \
    || { res fresh.dpkg_install failed; cat "$W/dpkg-install-fresh.log"; exit 1; }
res fresh.dpkg_install ok
common_checks fresh
res fresh.conf_is_packaged "$(grep -q '^userdb=/var/lib/turn/turndb' /etc/turnserver.conf && echo yes || echo no)"
start_server fresh --realm=example.org
# The packaged turnadmin, as the service user, adds a user to the packaged
# SQLite database the running server reads.
setpriv --reuid=turnserver --regid=turnserver --init-groups \
    /usr/bin/turnadmin -a -b /var/lib/turn/turndb -u alice -r example.org -p wonderland \
    >"$W/turnadmin-fresh.log" 2>&1 && res fresh.turnadmin ok || res fresh.turnadmin failed
res fresh.db_mode "$(owner_mode /var/lib/turn/turndb)"
run_uclient uclient-fresh alice wonderland 30
signals_and_drain fresh alice wonderland
remove_and_purge fresh
res fresh.purged.db "$([ -e /var/lib/turn/turndb ] && echo present || echo absent)"

res done yes
say "done"
