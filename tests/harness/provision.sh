#!/usr/bin/env bash
# Bring this machine to the state the test suite needs: packages, a running Docker Engine in
# Swarm mode, the Portainer stand-in image and the project's venv. Safe to run again: every
# step checks first and does nothing when its work is already done.
#
# Usage: provision.sh [--venv-only]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state_dir="/var/lib/phoenix-certbot-test"
# systemd for systemd-analyze and, with systemd-container (systemd-nspawn), to boot a
# throwaway machine that runs the units (tests/harness/nspawn.py); nothing starts on the
# host. certbot and python3-venv: Debian's certbot, and phoenix-certbot installed for it
# on Debian's Python (tests/hooks/test_debian_certbot.py). shellcheck lints the hooks.
# golang-go builds the stand-in image (tests/harness/standin).
packages=(
    docker.io busybox-static pebble iproute2 openssl systemd systemd-container shellcheck
    certbot python3-venv golang-go
)
python="${PYTHON:-python3}"

log() { printf 'provision: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

install_packages() {
    local missing=() pkg
    for pkg in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return
    fi
    if ! is_root || ! command -v apt-get >/dev/null; then
        log "missing packages ${missing[*]} and cannot apt-get install them here"
        return
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# promtool checks the metrics file. Debian ships it only inside the prometheus package,
# whose install would also set up (and maybe start) a Prometheus server: take the one
# binary out of the package instead.
install_promtool() {
    command -v promtool >/dev/null && return
    if ! is_root || ! command -v apt-get >/dev/null; then
        log "promtool missing and cannot be installed here"
        return
    fi
    local tmp
    tmp="$(mktemp -d)"
    log "extracting promtool from Debian's prometheus package"
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) \
        || { apt-get update -qq && (cd "$tmp" && apt-get download -qq prometheus >/dev/null); }
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    install -m 0755 "$tmp/root/usr/bin/promtool" /usr/local/bin/promtool
    rm -rf "$tmp"
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

start_dockerd() {
    if docker_answers; then
        return
    fi
    command -v dockerd >/dev/null || die "dockerd is not installed"
    is_root || die "Docker Engine is not running and only root can start it"
    log "starting dockerd (log: /var/log/dockerd.log)"
    # No systemd on these machines: run the daemon detached from this shell's session.
    setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    local deadline=$((SECONDS + 30))
    until docker_answers; do
        ((SECONDS < deadline)) || die "dockerd did not answer within 30 s; see /var/log/dockerd.log"
        sleep 0.5
    done
}

ensure_swarm() {
    local state
    state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
    case "$state" in
        active)
            [[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" == "true" ]] \
                || die "this engine is in a swarm but is not a manager"
            ;;
        inactive)
            log "initialising a one-node swarm on 127.0.0.1"
            docker swarm init --advertise-addr 127.0.0.1 >/dev/null
            # Remember that we made it, so nothing ever tears down a swarm someone else owns.
            mkdir -p "$state_dir"
            docker info --format '{{.Swarm.NodeID}}' > "$state_dir/swarm-created"
            ;;
        *)
            # pending/error/locked: changing it could break someone else's cluster.
            die "swarm state is '$state'; not touching it"
            ;;
    esac
}

ensure_venv() {
    local venv="$repo_root/.venv" stamp want
    want="$(cat "$repo_root/setup.cfg" "$repo_root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    stamp="$venv/.phoenix-provision-stamp"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating $venv"
        "$python" -m venv "$venv"
    fi
    log "installing the project and its test extras into $venv (log: $venv/pip-install.log)"
    # pip's output goes to a file: this machine's pip config makes it print many warnings.
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -e "$repo_root[test]" \
        > "$venv/pip-install.log" 2>&1; then
        tail -n 30 "$venv/pip-install.log" >&2
        die "pip install failed"
    fi
    printf '%s\n' "$want" > "$stamp"
}

# --venv-only: what lint and unit tests need, without touching packages or Docker.
if [[ "${1:-}" == "--venv-only" ]]; then
    ensure_venv
    exit 0
fi

install_packages
install_promtool
start_dockerd
ensure_swarm
bash "$repo_root/tests/harness/standin/build.sh" >/dev/null
ensure_venv
log "ready"
