# tools/deps.sh - sourced by tools/run and tools/test: makes sure the Debian
# packages a step needs are installed. As root it installs the missing ones
# (and says which); otherwise it prints the exact apt line and fails.

# libcurl4-openssl-dev: the wisp CLI's HTTP client. The OpenSSL flavour, as
# OpenSSL 3 is already in the closure (libmosquitto, libevent_openssl) and
# the curl the tests use is that flavour's libcurl4: no second TLS stack.
# libyaml-dev: manifests for `wisp deploy`.
WISP_BUILD_PKGS="build-essential cmake pkg-config libevent-dev libmbedtls-dev liblmdb-dev libmsgpack-dev libmosquitto-dev libjansson-dev zlib1g-dev libcurl4-openssl-dev libyaml-dev"
WISP_TEST_PKGS="python3 mosquitto mosquitto-clients curl openssl nodejs npm runc chromium debootstrap"
# what the action kinds of runtimes/kinds.json run on (python:3, nodejs)
WISP_RUNTIME_PKGS="python3 nodejs"
WISP_FUZZ_PKGS="clang libclang-rt-14-dev"
WISP_CROSS_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user"

wisp_missing() {
    missing=""
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    echo "$missing"
}

# wisp_deps PKG... : installs what is missing, or explains how.
wisp_deps() {
    missing=$(wisp_missing "$@")
    # node and npm: any installation will do (Debian's nodejs and npm, or
    # another packaging of them already on PATH; Debian's nodejs comes
    # without npm, which is a package of its own there).
    if command -v node >/dev/null; then
        missing=$(echo "$missing " | sed -e 's/ nodejs / /')
    fi
    if command -v npm >/dev/null; then
        missing=$(echo "$missing " | sed -e 's/ npm / /')
    fi
    missing=$(echo "$missing" | tr -s ' ')
    [ -z "${missing# }" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "wisp: installing Debian packages:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -q --no-install-recommends $missing >/dev/null; then
            apt-get update -q >/dev/null
            apt-get install -y -q --no-install-recommends $missing >/dev/null || return 1
        fi
    else
        echo "wisp: missing Debian packages. Install them with:" >&2
        echo "  sudo apt-get install -y$missing" >&2
        return 1
    fi
}
