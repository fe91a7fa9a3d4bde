#!/usr/bin/env bash
# tests/package/test_install_debootstrap.sh - installs the amd64 package as
# a user would, on a fresh Debian 12: a minbase root made by debootstrap
# (cached, see below), `apt-get install ./wisp_VERSION_amd64.deb` there (its
# Depends from Debian's mirror), wispd started the way the unit starts it
# (its ExecStart, NOTIFY_SOCKET readiness), /ping, a python:3 action created
# and invoked with the packaged `wisp`, an upgrade to a newer version over
# it (data kept), then `apt-get purge` (the data dir goes); last, the
# offline install: the .deb and the archives apt downloaded for it, into a
# second fresh root with no network (unshare -n) and no package lists.
# Root only; needs debootstrap, chroot, unshare, curl, python3 and Debian's
# mirror (the one this host's apt uses).
#
# Cache: the pristine minbase root is kept as a tarball in
#   ${WISP_DEBOOTSTRAP_CACHE:-/var/cache/wisp-test}/bookworm-minbase-amd64.tar
# (about 60 MB; remove it to start over). The root is unpacked afresh for
# every run, so nothing of one run reaches the next.
#
# Env: WISP_PKG_BUILD  build dir for the package (as test_package.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${WISP_PKG_BUILD:-$top/build/package}
export WISP_PKG_OUT=${WISP_PKG_OUT:-$build/dist}
cache=${WISP_DEBOOTSTRAP_CACHE:-/var/cache/wisp-test}
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
step() { echo "test_install: $*" >&2; }
skip() { echo "test_install: SKIP: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"
for t in debootstrap chroot unshare curl python3 tar; do
    command -v "$t" >/dev/null || skip "no $t"
done
[ "$(dpkg --print-architecture)" = amd64 ] || skip "the root is amd64"

# The mirror this host's apt uses for bookworm (deb822 or one-line format).
mirror=$({
    grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '{print $2}'
} | grep -E '^https?://.*/debian/?$' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

tarball=$cache/bookworm-minbase-amd64.tar
if [ ! -s "$tarball" ]; then
    step "debootstrap --variant=minbase bookworm from $mirror (cached in $tarball)"
    mkdir -p "$cache"
    fresh=$(mktemp -d /tmp/wisp-debootstrap.XXXXXX)
    debootstrap --variant=minbase bookworm "$fresh" "$mirror" >"$fresh.log" 2>&1 ||
        { tail -n 20 "$fresh.log" >&2; rm -rf "$fresh" "$fresh.log"; fail "debootstrap"; }
    tar -C "$fresh" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$fresh" "$fresh.log"
fi

step "building the package"
deb=$(WISP_PKG_BUILD="$build" "$top/tools/package" amd64) || fail "tools/package failed"
deb=$(tail -1 <<<"$deb")
[ -f "$deb" ] || fail "tools/package made no .deb"

root=$(mktemp -d /tmp/wisp-root.XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    for m in "$root/dev/pts" "$root/dev" "$root/proc"; do
        mountpoint -q "$m" && umount -l "$m"
    done
    rm -rf "$root" "$root.bundle"
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"
chmod 0755 "$root" # "/" of the root, which workers (nobody) traverse; mktemp made it 0700
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

step "apt-get install ./$(basename "$deb") (and python3, for the python:3 action)"
cp "$deb" "$root/tmp/"
in_root apt-get update -q >"$root.apt" 2>&1 || { cat "$root.apt" >&2; fail "apt-get update"; }
in_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" python3 \
    >"$root.apt" 2>&1 || { tail -n 30 "$root.apt" >&2; fail "apt-get install"; }
rm -f "$root.apt"
[ "$(in_root dpkg-query -W -f='${Status}' wisp)" = "install ok installed" ] || fail "not installed"
in_root wisp --help >/dev/null || fail "the packaged wisp does not run"

step "wispd started as the unit starts it"
exec_start=$(sed -n 's/^ExecStart=//p' "$root/usr/lib/systemd/system/wispd.service")
[ -n "$exec_start" ] || fail "no ExecStart in wispd.service"
notify=$root/run/notify.sock
mkdir -p "$root/run"
python3 - "$notify" >"$root.ready" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
print(s.recv(4096).decode(), flush=True)
PY
listener=$!
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.1; done
# shellcheck disable=SC2086 # ExecStart is words, as systemd splits it
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET=/run/notify.sock \
    $exec_start --listen 127.0.0.1:0 2>"$root.log" &
pid=$!
wait "$listener" || { cat "$root.log" >&2; fail "no READY=1 on NOTIFY_SOCKET"; }
grep -q "READY=1" "$root.ready" || fail "NOTIFY_SOCKET got: $(cat "$root.ready")"
port=$(sed -n 's#^wispd: ready on http://127.0.0.1:\([0-9]*\)$#\1#p' "$root.log")
[ -n "$port" ] || fail "no ready line: $(cat "$root.log")"
[ "$(curl -sf "http://127.0.0.1:$port/ping")" = pong ] || fail "/ping"

step "a python:3 action through the packaged wisp"
key=$(cat "$root/var/lib/wisp/guest.key")
printf 'def main(a):\n    return {"hello": a.get("name", "?")}\n' >"$root/tmp/hello.py"
in_root wisp property set --apihost "http://127.0.0.1:$port" --auth "$key" >/dev/null ||
    fail "wisp property set"
in_root wisp action create hello /tmp/hello.py >/dev/null ||
    fail "wisp action create; wispd said: $(cat "$root.log")"
out=$(in_root wisp action invoke hello -p name debian --result) || fail "wisp action invoke"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"hello": "debian"}, sys.argv[1]' "$out" ||
    fail "invoke answered: $out"
kill -TERM "$pid"
wait "$pid" || fail "wispd did not stop cleanly on SIGTERM: $(tail -n 5 "$root.log")"
pid=""
rm -f "$root.log" "$root.ready"

# An upgrade: the same package with a higher version (repacked), installed
# over it; the data dir, its action and its activation stay.
step "upgrade over it: the data stays"
repack=$(mktemp -d /tmp/wisp-repack.XXXXXX)
dpkg-deb -R "$deb" "$repack/pkg"
old_version=$(sed -n 's/^Version: //p' "$repack/pkg/DEBIAN/control")
sed -i "s/^Version: .*/Version: ${old_version}+up1/" "$repack/pkg/DEBIAN/control"
dpkg-deb -b "$repack/pkg" "$root/tmp/wisp_up.deb" >/dev/null
rm -rf "$repack"
in_root apt-get install -y -q --no-install-recommends /tmp/wisp_up.deb >"$root.apt" 2>&1 ||
    { tail -n 30 "$root.apt" >&2; fail "apt-get install of the newer package"; }
rm -f "$root.apt"
[ "$(in_root dpkg-query -W -f='${Version}' wisp)" = "${old_version}+up1" ] || fail "not upgraded"
[ "$(cat "$root/var/lib/wisp/guest.key")" = "$key" ] || fail "guest.key changed in the upgrade"
# shellcheck disable=SC2086
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $exec_start \
    --listen 127.0.0.1:0 2>"$root.log" &
pid=$!
for _ in $(seq 300); do grep -q '^wispd: ready on' "$root.log" && break; sleep 0.1; done
port=$(sed -n 's#^wispd: ready on http://127.0.0.1:\([0-9]*\)$#\1#p' "$root.log")
[ -n "$port" ] || fail "no ready line after the upgrade: $(cat "$root.log")"
in_root wisp property set --apihost "http://127.0.0.1:$port" >/dev/null
out=$(in_root wisp action invoke hello -p name again --result) || fail "the action after the upgrade"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"hello": "again"}, sys.argv[1]' "$out" ||
    fail "after the upgrade, invoke answered: $out"
n=$(in_root wisp activation list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] || fail "activations after the upgrade: $n, not 2"
kill -TERM "$pid"
wait "$pid" || fail "wispd did not stop cleanly after the upgrade"
pid=""
rm -f "$root.log"

step "apt-get purge"
in_root apt-get purge -y -q wisp >/dev/null 2>&1 || fail "apt-get purge"
[ ! -e "$root/var/lib/wisp" ] || fail "/var/lib/wisp left after purge"
[ ! -e "$root/usr/sbin/wispd" ] || fail "/usr/sbin/wispd left after purge"

# Offline: what apt downloaded into this root for the install (its
# archive cache: every dependency a fresh Debian 12 lacks) plus the .deb,
# installed into another fresh root that has no network at all (its own
# empty network namespace) and no package lists.
step "offline install: the .deb and its dependencies from an apt cache, no network"
bundle=$root.bundle
mkdir -p "$bundle"
cp "$root"/var/cache/apt/archives/*.deb "$deb" "$bundle/" ||
    fail "apt kept no archives in $root/var/cache/apt/archives"
for m in "$root/dev/pts" "$root/dev" "$root/proc"; do
    mountpoint -q "$m" && umount -l "$m"
done
rm -rf "$root"
mkdir "$root"
tar -C "$root" -xf "$tarball"
chmod 0755 "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
rm -rf "$root"/var/lib/apt/lists/*
mv "$bundle" "$root/tmp/bundle"
in_root_offline() { unshare -n chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
in_root_offline sh -c 'apt-get install -y -q --no-install-recommends /tmp/bundle/*.deb' \
    >"$root.apt" 2>&1 || { tail -n 30 "$root.apt" >&2; fail "offline apt-get install"; }
rm -f "$root.apt"
[ "$(in_root_offline dpkg-query -W -f='${Status}' wisp)" = "install ok installed" ] ||
    fail "not installed offline"
[ "$(in_root_offline wispd --version)" = "wispd $old_version" ] || fail "offline wispd --version"
in_root_offline wisp --help >/dev/null || fail "the offline-installed wisp does not run"
step "ok"
