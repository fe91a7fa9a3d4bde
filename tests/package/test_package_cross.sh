#!/usr/bin/env bash
# tests/package/test_package_cross.sh ARCH - the arm64 or armhf package, as
# far as this host can take it without a binfmt_misc entry for qemu:
#   - tools/package ARCH builds the .deb and the tarball (a cross Release
#     build against the sysroot);
#   - Architecture is ARCH, every ELF file in it is of ARCH's machine;
#   - every Depends entry is a package Debian has for ARCH, at the version
#     asked or newer (apt's lists for ARCH, as board/sysroot.sh keeps them);
#   - dpkg --root installs it into a scratch root (maintainer scripts run
#     chrootless: they are sh, whatever the architecture); the installed
#     wispd starts under qemu-user with the sysroot's libraries (what the
#     Depends bring on a board), answers /ping, and the installed wisp
#     creates and invokes a python:3 action through it;
#   - the tarball's wispd starts through the tree's own loader under
#     qemu-user (its sbin/wispd wrapper, with qemu put before the loader),
#     connects to a loopback mosquitto with the tree's libmosquitto, and
#     answers /ping.
# A real chroot of ARCH (debootstrap's second stage, apt-get install in it)
# needs the kernel to run ARCH's programs by itself (binfmt_misc): the
# test says whether this host has it, and does not pretend.
#
# Env: WISP_PKG_BUILD  package build dir (tools/package uses DIR-ARCH)
#      WISP_EMU        the emulator command with the sysroot (the cross
#                      build's CMAKE_CROSSCOMPILING_EMULATOR)
set -euo pipefail
arch=${1:?usage: test_package_cross.sh arm64|armhf}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${WISP_PKG_BUILD:?WISP_PKG_BUILD}
export WISP_PKG_OUT=$build/dist
read -r -a emu <<<"${WISP_EMU:?WISP_EMU}"
fail() { echo "test_package_cross($arch): FAIL: $*" >&2; exit 1; }
step() { echo "test_package_cross($arch): $*" >&2; }
. "$top/tests/package/lib.sh"
for t in dpkg-deb dpkg apt-cache curl python3 readelf "${emu[0]}"; do
    command -v "$t" >/dev/null || { echo "test_package_cross: SKIP: no $t" >&2; exit 77; }
done
case "$arch" in
    arm64) machine=AArch64 triplet=aarch64-linux-gnu qemu=qemu-aarch64 ;;
    armhf) machine=ARM triplet=arm-linux-gnueabihf qemu=qemu-arm ;;
    *) fail "no such architecture $arch" ;;
esac
if [ -d /proc/sys/fs/binfmt_misc ] && ls /proc/sys/fs/binfmt_misc | grep -q "^${qemu}$"; then
    step "binfmt_misc has $qemu: a chroot of $arch could run here (not used: this test does not need it)"
else
    step "this host has no binfmt_misc entry for $qemu: no chroot of $arch; installed with dpkg --root and run under $qemu instead"
fi

step "building the package"
deb=$("$top/tools/package" "$arch" | tail -1) || fail "tools/package $arch failed"
[ -f "$deb" ] || fail "tools/package made no .deb"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build-$arch/CMakeCache.txt")
[ "$(basename "$deb")" = "wisp_${version}_${arch}.deb" ] || fail "name $(basename "$deb")"
[ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || fail "Architecture"

root=$(mktemp -d /tmp/wisp-pkgroot-$arch.XXXXXX)
pid=""
bpid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
    rm -rf "$root"
}
trap cleanup EXIT

step "every ELF file is $machine"
dpkg-deb -x "$deb" "$root/x"
elves=0
while IFS= read -r f; do
    head -c4 "$f" | grep -q '^.ELF' || continue
    m=$(readelf -h "$f" | sed -n 's/^ *Machine: *//p')
    [ "$m" = "$machine" ] || fail "${f#"$root"/x} is $m, not $machine"
    elves=$((elves + 1))
done < <(find "$root/x" -type f)
[ "$elves" -ge 4 ] || fail "only $elves ELF files"
rm -rf "$root/x"

step "Depends: Debian has each for $arch"
deps=$(dpkg-deb --field "$deb" Depends)
grep -q libmosquitto1 <<<"$deps" || fail "Depends lacks libmosquitto1 (dlopen'ed): $deps"
IFS=',' read -r -a entries <<<"$deps"
for e in "${entries[@]}"; do
    e=$(sed 's/^ *//; s/ *$//' <<<"$e")
    pkg=${e%% *}
    want=$(sed -n 's/.*(>= \(.*\))/\1/p' <<<"$e")
    cand=$(apt-cache policy "$pkg:$arch" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    [ -n "$cand" ] && [ "$cand" != "(none)" ] || fail "Debian has no $pkg for $arch"
    [ -z "$want" ] || dpkg --compare-versions "$cand" ge "$want" ||
        fail "$pkg:$arch is $cand, Depends asks >= $want"
done

step "dpkg --root install"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --log=/dev/null --force-not-root --force-depends --force-architecture \
    --force-script-chrootless -i "$deb" >/dev/null 2>"$root/dpkg.err" ||
    { cat "$root/dpkg.err" >&2; fail "dpkg -i"; }
[ "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' wisp)" = \
    "install ok installed" ] || fail "not installed"

auth=23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP

step "the installed wispd under ${emu[0]}"
[ "$("${emu[@]}" "$root/usr/sbin/wispd" --version)" = "wispd $version" ] || fail "wispd --version"
log=$root/wispd.log
WISP_GUEST_KEY=$auth "${emu[@]}" "$root/usr/sbin/wispd" --config "$root/etc/wisp/wispd.conf" \
    --data "$root/var/lib/wisp" --board-dir "$root/usr/lib/wisp/board" \
    --kinds "$root/usr/lib/wisp/kinds.json" --runtimes-dir "$root/usr/lib/wisp/runtimes" \
    --libexec-dir "$root/usr/lib/wisp" --listen 127.0.0.1:0 --prewarm "" 2>"$log" &
pid=$!
url=$(ready_url "$log" "$pid" "wispd" 600)
[ "$(curl -fsS "$url/ping")" = pong ] || fail "/ping"
wisp=("${emu[@]}" "$root/usr/bin/wisp")
export WSK_CONFIG_FILE=$root/wskprops
"${wisp[@]}" property set --apihost "$url" --auth "$auth" >/dev/null || fail "wisp property set"
printf 'def main(a):\n    return {"arch": "%s"}\n' "$arch" >"$root/a.py"
"${wisp[@]}" action create a "$root/a.py" --kind python:3 >/dev/null || fail "wisp action create"
out=$("${wisp[@]}" action invoke a --result) || fail "wisp action invoke: $(tail -n 5 "$log")"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"arch": sys.argv[2]}, sys.argv[1]' \
    "$out" "$arch" || fail "invoke answered $out"
unset WSK_CONFIG_FILE
kill -TERM "$pid"
wait "$pid" || fail "wispd did not exit 0 on SIGTERM"
pid=""

step "the tarball's wispd through its own loader under $qemu"
tarball=$(dirname "$deb")/wisp-$version-$arch.tar.gz
[ -f "$tarball" ] || fail "no $tarball"
tar -C "$root" -xzf "$tarball"
t=$root/wisp-$version-$arch
# the wrapper, with the emulator put before the loader it execs
sed "s|^exec \"\$top/lib/|exec $qemu \"\$top/lib/|" "$t/sbin/wispd" >"$t/sbin/wispd.qemu"
grep -q "^exec $qemu " "$t/sbin/wispd.qemu" || fail "sbin/wispd has no exec line: $(cat "$t/sbin/wispd")"
chmod +x "$t/sbin/wispd.qemu"
[ "$(env -i PATH=/usr/bin:/bin "$t/sbin/wispd.qemu" --version)" = "wispd $version" ] ||
    fail "tarball wispd --version"
check_tree_dlopen "$t"
start_broker "$root"
tlog=$root/tarball.log
env -i PATH=/usr/bin:/bin WISP_GUEST_KEY="$auth" "$t/sbin/wispd.qemu" --data "$root/tvar" \
    --listen 127.0.0.1:0 --prewarm "" "${mqtt_args[@]}" 2>"$tlog" &
pid=$!
turl=$(ready_url "$tlog" "$pid" "the tarball's wispd" 600)
[ "$(curl -fsS "$turl/ping")" = pong ] || fail "tarball /ping"
if [ -n "$bpid" ]; then
    check_tree_mqtt "$turl" "$pid" "$t" "$tlog"
else
    step "no /usr/sbin/mosquitto: the tarball's --mqtt is not run"
fi
kill -TERM "$pid"
wait "$pid" || fail "the tarball's wispd did not stop cleanly"
pid=""
step "ok ($(basename "$deb"), $(stat -c %s "$deb") bytes; tarball $(stat -c %s "$tarball") bytes)"
