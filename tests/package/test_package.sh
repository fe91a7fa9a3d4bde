#!/usr/bin/env bash
# tests/package/test_package.sh - builds the amd64 .deb (tools/package),
# checks it with dpkg-deb --info/--contents, installs it into a scratch root
# with dpkg --root, runs the installed wispd from there (readiness on
# NOTIFY_SOCKET, /ping, a python:3 action), unpacks the relocatable tarball
# elsewhere and runs its wispd and wisp there (a python:3 action, a zipped
# native one; --mqtt to a loopback mosquitto, whose libmosquitto must be
# the tree's), then removes (data kept) and purges (data gone). No network.
# Needs dpkg-deb, dpkg, curl, python3.
#
# Env: WISP_PKG_BUILD  build dir for the package (default build/package)
#      WISP_PKG_OUT    where the .deb goes (default $WISP_PKG_BUILD/dist)
#
# The installed wispd's defaults point at /usr/lib/wisp and /var/lib/wisp
# of the real root, which this test must not write to: it checks that every
# default path of `wispd --print-config` exists inside the scratch root,
# then runs wispd with those paths prefixed by the scratch root.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${WISP_PKG_BUILD:-$top/build/package}
export WISP_PKG_OUT=${WISP_PKG_OUT:-$build/dist}
fail() { echo "test_package: FAIL: $*" >&2; exit 1; }
step() { echo "test_package: $*" >&2; }
. "$top/tests/package/lib.sh"

for t in dpkg-deb dpkg curl python3; do
    command -v "$t" >/dev/null || { echo "test_package: SKIP: no $t" >&2; exit 77; }
done

step "building the package"
deb=$(WISP_PKG_BUILD="$build" "$top/tools/package" amd64) || fail "tools/package failed"
deb=$(tail -1 <<<"$deb")
[ -f "$deb" ] || fail "tools/package made no .deb"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ "$(basename "$deb")" = "wisp_${version}_amd64.deb" ] || fail "name $(basename "$deb")"

step "dpkg-deb --info"
info=$(dpkg-deb --info "$deb")
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = wisp ] || fail "Package"
[ "$(field Version)" = "$version" ] || fail "Version $(field Version) != $version"
[ "$(field Architecture)" = amd64 ] || fail "Architecture"
deps=$(field Depends)
for lib in libc6 libevent-core liblmdb0 libmosquitto1 libjansson4 libmsgpackc zlib1g libcurl4 \
    libmbedtls; do
    grep -q "$lib" <<<"$deps" || fail "Depends lacks $lib: $deps"
done
for s in postinst prerm postrm conffiles; do
    grep -qw "$s" <<<"$info" || fail "control member $s missing"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/wisp/wispd.conf ] ||
    fail "conffiles"

step "dpkg-deb --contents"
contents=$(dpkg-deb --contents "$deb" | awk '{print $1, $NF}')
for p in ./usr/bin/wisp ./usr/sbin/wispd ./usr/lib/wisp/kinds.json \
    ./usr/lib/wisp/wisp-unzip-exec ./usr/lib/wisp/wisp-blackbox-shim \
    ./usr/lib/wisp/runtimes/python/launcher.py ./usr/lib/wisp/runtimes/nodejs/launcher.js \
    ./usr/lib/wisp/runtimes/catalog/catalog.json ./usr/lib/wisp/board/generic.conf \
    ./etc/wisp/wispd.conf ./usr/lib/systemd/system/wispd.service \
    ./usr/share/doc/wisp/README.md ./usr/share/bash-completion/completions/wisp \
    ./usr/share/man/man8/wispd.8.gz ./usr/share/man/man1/wisp.1.gz; do
    grep -q " $p\$" <<<"$contents" || fail "$p not in the package"
done
grep -q '^drwx------ ./var/lib/wisp/$' <<<"$contents" || fail "/var/lib/wisp is not 0700"

root=$(mktemp -d /tmp/wisp-pkgroot.XXXXXX)
pid=""
tpid=""
bpid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
    [ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
    rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# chrootless: the scratch root has no shell; the maintainer scripts honour
# DPKG_ROOT. --force-depends: the libraries are the host's, not the root's.
dpkgr=(dpkg --root="$root" --log=/dev/null --force-not-root --force-depends
    --force-script-chrootless)

step "dpkg --root install"
"${dpkgr[@]}" -i "$deb" >/dev/null 2>"$root.err" || { cat "$root.err" >&2; fail "dpkg -i"; }
rm -f "$root.err"
[ "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' wisp)" = \
    "install ok installed" ] || fail "not installed"
[ "$(stat -c %a "$root/var/lib/wisp")" = 700 ] || fail "data dir mode"
cmp -s "$root/etc/wisp/wispd.conf" "$build/wispd.conf" || fail "wispd.conf differs from the build's"

wispd=$root/usr/sbin/wispd
if command -v systemd-analyze >/dev/null; then
    step "systemd-analyze verify wispd.service"
    # ExecStart must exist: point it at the scratch root's wispd
    mkdir -p "$root/unit"
    sed "s|^ExecStart=/usr/sbin/wispd|ExecStart=$wispd|" \
        "$root/usr/lib/systemd/system/wispd.service" >"$root/unit/wispd.service"
    systemd-analyze verify "$root/unit/wispd.service" || fail "systemd-analyze verify"
fi
[ "$("$wispd" --version)" = "wispd $version" ] || fail "wispd --version: $("$wispd" --version)"

step "man pages render without warnings"
if command -v groff >/dev/null; then
    for m in man8/wispd.8.gz man1/wisp.1.gz; do
        page=$(zcat "$root/usr/share/man/$m")
        warn=$(groff -man -Tutf8 -ww -z 2>&1 <<<"$page") || fail "$m: groff failed"
        [ -z "$warn" ] || fail "$m: $warn"
    done
    # every setting of wispd --help is an option of wispd(8)
    for k in $("$root/usr/sbin/wispd" --help | sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p'); do
        zcat "$root/usr/share/man/man8/wispd.8.gz" | grep -qxF ".B \\-\\-${k//-/\\-} VALUE" ||
            fail "wispd(8) lacks --$k"
    done
else
    step "no groff: man pages not rendered"
fi

step "defaults point at the installed layout"
help=$("$wispd" --help) # once: grep -q on a pipe would SIGPIPE wispd
# every key of the settings table is in wispd.conf, commented with its default
sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p' <<<"$help" | while read -r k; do
    grep -q "^#$k = " "$root/etc/wisp/wispd.conf" || fail "wispd.conf lacks $k"
done
pc=$("$wispd" --print-config --config "$root/etc/wisp/wispd.conf" \
    --board-dir "$root/usr/lib/wisp/board")
want_default() {
    local k=$1 v=$2
    # --help shows the built-in default of every key
    grep -q -- "--$k .*(default: $v)\$" <<<"$help" || fail "default of $k is not $v"
    [ -e "$root$v" ] || fail "$k default $v is not in the package"
}
want_default data /var/lib/wisp
want_default board-dir /usr/lib/wisp/board
want_default kinds /usr/lib/wisp/kinds.json
want_default runtimes-dir /usr/lib/wisp/runtimes
want_default libexec-dir /usr/lib/wisp
grep -q '^board = generic$' <<<"$pc" || fail "print-config: $pc"

step "run the installed wispd"
sock=$root/notify.sock
ready=$root/notify.msg
python3 - "$sock" "$ready" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
open(sys.argv[2] + ".bound", "w").close()
msg = s.recv(4096)
open(sys.argv[2], "wb").write(msg)
PY
npid=$!
for _ in $(seq 100); do [ -e "$ready.bound" ] && break; sleep 0.05; done
log=$root/wispd.log
NOTIFY_SOCKET=$sock WISP_GUEST_KEY=23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP \
    "$wispd" --config "$root/etc/wisp/wispd.conf" --data "$root/var/lib/wisp" \
    --board-dir "$root/usr/lib/wisp/board" --kinds "$root/usr/lib/wisp/kinds.json" \
    --runtimes-dir "$root/usr/lib/wisp/runtimes" --libexec-dir "$root/usr/lib/wisp" \
    --listen 127.0.0.1:0 --prewarm python:3=1 2>"$log" &
pid=$!
url=$(ready_url "$log" "$pid" "wispd")
wait "$npid" || fail "no NOTIFY_SOCKET message"
[ "$(cat "$ready")" = READY=1 ] || fail "NOTIFY_SOCKET got '$(cat "$ready")'"

auth=23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP
[ "$(curl -fsS "$url/ping")" = pong ] || fail "/ping"
# the API info's build is the same version (CMakeLists.txt's project VERSION)
build_v=$(curl -fsS "$url/api/v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["build"])') ||
    fail "GET /api/v1"
[ "$build_v" = "$version" ] || fail "API build $build_v != $version"
curl -fsS -u "$auth" -X PUT -H 'Content-Type: application/json' \
    "$url/api/v1/namespaces/_/actions/hello" \
    -d '{"exec":{"kind":"python:3","code":"def main(a):\n    return {\"greeting\": \"hello \" + a.get(\"name\", \"\")}\n"}}' \
    >/dev/null || fail "action PUT"
res=$(curl -fsS -u "$auth" -X POST -H 'Content-Type: application/json' \
    "$url/api/v1/namespaces/_/actions/hello?blocking=true&result=true" -d '{"name":"deb"}') ||
    fail "invoke"
[ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["greeting"])' <<<"$res")" = \
    "hello deb" ] || fail "result: $res"
# no --mqtt: libmosquitto and OpenSSL are not loaded (platform/dl.h)
if grep -E 'libmosquitto|libssl|libcrypto' "/proc/$pid/maps" >&2; then
    fail "wispd without --mqtt has libmosquitto or OpenSSL mapped"
fi
kill -TERM "$pid"
wait "$pid" || fail "wispd did not exit 0 on SIGTERM"
pid=""

step "the relocatable tarball runs from wherever it is unpacked"
tarball=$(dirname "$deb")/wisp-$version-amd64.tar.gz
[ -f "$tarball" ] || fail "no $tarball"
tree=$root/elsewhere
mkdir -p "$tree"
tar -C "$tree" -xzf "$tarball"
t=$tree/wisp-$version-amd64
[ "$(env -i "$t/sbin/wispd" --version)" = "wispd $version" ] || fail "tarball wispd --version"
for f in "$t/libexec/wispd" "$t/libexec/wisp"; do  # dynamic: lib/'s loader starts them
    readelf -l "$f" | grep -q 'Requesting program interpreter' || fail "$f is not dynamic"
done
check_tree_dlopen "$t"
# with --mqtt, when a broker is here: the dlopen'ed libmosquitto is the tree's
start_broker "$root"
tlog=$root/tarball.log
env -i PATH=/usr/bin:/bin WISP_GUEST_KEY="$auth" "$t/sbin/wispd" --data "$tree/var" \
    --listen 127.0.0.1:0 --prewarm "" "${mqtt_args[@]}" 2>"$tlog" &
tpid=$!
turl=$(ready_url "$tlog" "$tpid" "the tarball's wispd")
if [ -n "$bpid" ]; then
    check_tree_mqtt "$turl" "$tpid" "$t" "$tlog"
else
    step "no /usr/sbin/mosquitto: the tarball's --mqtt is not run"
fi
export WSK_CONFIG_FILE=$tree/wskprops
env -i WSK_CONFIG_FILE="$WSK_CONFIG_FILE" "$t/bin/wisp" property set --apihost "$turl" --auth "$auth" \
    >/dev/null || fail "tarball wisp property set"
printf 'def main(a):\n    return {"from": "tarball"}\n' >"$tree/t.py"
env -i WSK_CONFIG_FILE="$WSK_CONFIG_FILE" "$t/bin/wisp" action create t "$tree/t.py" >/dev/null ||
    fail "tarball wisp action create"
out=$(env -i WSK_CONFIG_FILE="$WSK_CONFIG_FILE" "$t/bin/wisp" action invoke t --result) ||
    fail "tarball wisp action invoke"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"from": "tarball"}, sys.argv[1]' "$out" ||
    fail "tarball invoke answered $out"
# a zipped native action: the pool runs the (static) zip helper from its work dir
python3 - "$tree/n.zip" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1], "w")
i = zipfile.ZipInfo("exec")
i.external_attr = 0o755 << 16
z.writestr(i, '#!/bin/sh\nwhile read l; do echo \'{"zip": true}\' >&3; done\n')
z.close()
PY
env -i WSK_CONFIG_FILE="$WSK_CONFIG_FILE" "$t/bin/wisp" action create n "$tree/n.zip" --kind native \
    >/dev/null || fail "tarball native zip create"
out=$(env -i WSK_CONFIG_FILE="$WSK_CONFIG_FILE" "$t/bin/wisp" action invoke n --result) ||
    fail "tarball native zip invoke"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"zip": True}, sys.argv[1]' "$out" ||
    fail "tarball native zip answered $out; wispd: $(tail -n 5 "$tlog")"
kill -TERM "$tpid"
wait "$tpid" || fail "the tarball's wispd did not stop cleanly"
tpid=""
if [ -n "$bpid" ]; then
    kill "$bpid"
    wait "$bpid" 2>/dev/null || true
    bpid=""
fi
unset WSK_CONFIG_FILE

step "remove keeps the data, purge deletes it"
"${dpkgr[@]}" -r wisp >/dev/null 2>&1 || fail "dpkg -r"
[ ! -e "$root/usr/sbin/wispd" ] || fail "wispd still there after remove"
[ -s "$root/var/lib/wisp/guest.key" ] || [ -n "$(ls -A "$root/var/lib/wisp")" ] ||
    fail "remove deleted the data"
[ -e "$root/etc/wisp/wispd.conf" ] || fail "remove deleted the conffile"
"${dpkgr[@]}" -P wisp >/dev/null 2>&1 || fail "dpkg -P"
[ ! -e "$root/var/lib/wisp" ] || fail "purge kept /var/lib/wisp"
[ ! -e "$root/etc/wisp/wispd.conf" ] || fail "purge kept the conffile"
step "ok ($(basename "$deb"), $(stat -c %s "$deb") bytes)"
