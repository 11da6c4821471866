#!/usr/bin/env bash
# Create or update peerpool's environments from the locked files in envs/.
#
#   envs/setup.sh [--apt] [core] [airflow] [superset]
#
# Each environment is a virtualenv under .venvs/<name>, built with uv from envs/<name>.lock.txt.
# A stamp file records the hash of the lock file it was built from: when nothing changed the
# script does nothing and returns in well under a second. --apt installs the Debian packages
# the tests use (needs root; skipped with a message otherwise).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="$ROOT/.venvs"
UV_VERSION="0.9.30"
PYTHON="${PEERPOOL_PYTHON:-$(command -v python3.11 || command -v python3)}"
APT_PACKAGES=(tshark pmacct softflowd snmpd snmp tcpdump python3-scapy chromium chromium-driver)

log() { printf 'setup: %s\n' "$*" >&2; }

uv_bin() {
    local uv="$VENVS/_uv/bin/uv"
    if [ ! -x "$uv" ] || ! "$uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
        log "installing uv $UV_VERSION into .venvs/_uv"
        "$PYTHON" -m venv "$VENVS/_uv"
        "$VENVS/_uv/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    fi
    printf '%s' "$uv"
}

stamp_of() {
    # what the environment depends on: its lock file, the python, and (core) pyproject.toml
    local name="$1"
    {
        cat "$ROOT/envs/$name.lock.txt"
        "$PYTHON" -c 'import sys; print(sys.version)'
        [ "$name" = core ] && cat "$ROOT/pyproject.toml"
        echo "setup-v1"
    } | sha256sum | cut -d' ' -f1
}

ensure_env() {
    local name="$1" venv="$VENVS/$1" want
    want="$(stamp_of "$name")"
    if [ -f "$venv/.peerpool-stamp" ] && [ "$(cat "$venv/.peerpool-stamp")" = "$want" ]; then
        return 0
    fi
    local uv
    uv="$(uv_bin)"
    log "building environment '$name' from envs/$name.lock.txt (first time: a few minutes)"
    [ -x "$venv/bin/python" ] || "$uv" venv --quiet --python "$PYTHON" "$venv"
    VIRTUAL_ENV="$venv" "$uv" pip sync --quiet "$ROOT/envs/$name.lock.txt"
    if [ "$name" = core ]; then
        VIRTUAL_ENV="$venv" "$uv" pip install --quiet --no-deps -e "$ROOT"
    fi
    echo "$want" > "$venv/.peerpool-stamp"
    log "environment '$name' ready"
}

ensure_apt() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

main() {
    local want_apt=0 envs=()
    for arg in "$@"; do
        case "$arg" in
            --apt) want_apt=1 ;;
            core|airflow|superset) envs+=("$arg") ;;
            *) log "unknown argument '$arg'; use: envs/setup.sh [--apt] [core] [airflow] [superset]"; exit 2 ;;
        esac
    done
    [ ${#envs[@]} -eq 0 ] && envs=(core airflow superset)
    mkdir -p "$VENVS"
    [ "$want_apt" = 1 ] && ensure_apt
    for name in "${envs[@]}"; do ensure_env "$name"; done
}

main "$@"
