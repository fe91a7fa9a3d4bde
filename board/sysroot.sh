#!/bin/sh
# board/sysroot.sh ARCH DESTDIR
#
# Build a cross-compilation sysroot for Wisp's third-party libraries from
# Debian's target-architecture packages, WITHOUT installing them on the host
# (libevent-dev, among others, is not Multi-Arch co-installable in Debian 12).
#
#   ARCH     Debian architecture: arm64 or armhf
#   DESTDIR  directory to populate (created; replaced atomically when rebuilt)
#
# The C library is NOT part of this sysroot: it comes from the host's cross
# packages (libc6-dev-arm64-cross / libc6-dev-armhf-cross, /usr/<triplet>).
# The toolchain files board/toolchain-*.cmake consume the result through
# WISP_SYSROOT.
#
# Steps: add the dpkg foreign architecture if missing, `apt-get update` only if
# that architecture's Debian package lists are missing (or lack a suite the
# native arch has, e.g. bookworm-security), `apt-get download pkg:ARCH`
# into a temp dir, `dpkg -x` every .deb into DESTDIR, rewrite absolute
# symlinks so they stay inside DESTDIR, and check with readelf that every
# DT_NEEDED of the extracted libraries resolves inside DESTDIR or the cross
# libc. Idempotent: exits early when DESTDIR/.complete matches the package list.
# Needs root only for `dpkg --add-architecture` / `apt-get update`.
set -eu

usage() { echo "usage: $0 {arm64|armhf} DESTDIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ARCH=$1
DESTDIR=$2

case "$ARCH" in
  arm64) TRIPLET=aarch64-linux-gnu ;;
  armhf) TRIPLET=arm-linux-gnueabihf ;;
  *) usage ;;
esac

# Development packages (headers, .so links, .pc files) plus the runtime
# libraries their .so links point to, plus the run-time dependencies of those
# libraries that are not in the cross libc (checked below with readelf):
#   libevent-openssl -> libssl3;  libmosquitto1 -> libssl3 (Debian 12's
#   libmosquitto1 is built without c-ares, so no libc-ares2). libssl-dev:
#   feeds/mqtt_tls.c checks an mqtts broker's certificate with OpenSSL
#   itself (without it a cross build refuses mqtts:// brokers).
#   libcurl4 (the OpenSSL flavour, for the wisp CLI) -> libssl3 and the
#   closure below it: HTTP/2 (nghttp2), brotli, zstd, IDN and PSL, SSH,
#   RTMP (through GnuTLS, nettle, gmp, p11-kit), LDAP (SASL, Berkeley DB)
#   and Kerberos (GSSAPI). The linker needs all of them to link wisp,
#   and the check at the end wants every DT_NEEDED found.
PACKAGES="
libevent-dev
libevent-2.1-7
libevent-core-2.1-7
libevent-extra-2.1-7
libevent-pthreads-2.1-7
libevent-openssl-2.1-7
libmbedtls-dev
libmbedtls14
libmbedx509-1
libmbedcrypto7
liblmdb-dev
liblmdb0
libmsgpack-dev
libmsgpackc2
libmosquitto-dev
libmosquitto1
libjansson-dev
libjansson4
zlib1g-dev
zlib1g
libssl-dev
libssl3
libcurl4-openssl-dev
libcurl4
libyaml-dev
libyaml-0-2
libbrotli1
libnghttp2-14
libzstd1
libidn2-0
libunistring2
libpsl5
libssh2-1
librtmp1
libgnutls30
libnettle8
libhogweed6
libgmp10
libp11-kit0
libffi8
libtasn1-6
libldap-2.5-0
libsasl2-2
libsasl2-modules-db
libdb5.3
libgssapi-krb5-2
libkrb5-3
libk5crypto3
libkrb5support0
libcom-err2
libkeyutils1
"

# Contents of the .complete stamp: arch + sorted package list.
STAMP=$(printf 'arch %s\n' "$ARCH"; for p in $PACKAGES; do echo "$p"; done | sort)

if [ -f "$DESTDIR/.complete" ] && [ "$(cat "$DESTDIR/.complete")" = "$STAMP" ]; then
  echo "sysroot.sh: $DESTDIR is up to date for $ARCH (remove $DESTDIR/.complete to rebuild)"
  exit 0
fi

# Refuse to clobber a directory we did not create.
if [ -e "$DESTDIR" ] && [ ! -f "$DESTDIR/.complete" ] && [ -n "$(ls -A "$DESTDIR" 2>/dev/null)" ]; then
  echo "sysroot.sh: $DESTDIR exists, is not empty and has no .complete stamp; refusing to overwrite" >&2
  exit 1
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "sysroot.sh: '$1' not found" >&2; exit 1; }; }
need dpkg; need apt-get; need apt-cache; need realpath

# --- 1. dpkg architecture + package lists -----------------------------------
if [ "$(dpkg --print-architecture)" != "$ARCH" ] &&
   ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
  if [ "$(id -u)" != 0 ]; then
    echo "sysroot.sh: dpkg does not know architecture $ARCH yet. As root, run once:" >&2
    echo "  sudo dpkg --add-architecture $ARCH && sudo apt-get update" >&2
    exit 1
  fi
  echo "sysroot.sh: adding dpkg architecture $ARCH"
  dpkg --add-architecture "$ARCH"
fi

# Debian suites (bookworm, bookworm-updates, bookworm-security, ...) that have
# a native-arch Packages list but none for $ARCH. Third-party repositories are
# ignored (their dists are not named after the Debian codename and they are
# often single-arch).
NATIVE=$(dpkg --print-architecture)
# shellcheck disable=SC1091
CODENAME=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-bookworm}")
LISTS=/var/lib/apt/lists
missing_lists() {
  for f in "$LISTS"/*_dists_"$CODENAME"*_binary-"$NATIVE"_Packages*; do
    [ -e "$f" ] || continue
    base=${f##*/}
    case "$base" in *_dists_"$CODENAME"_*|*_dists_"$CODENAME"-*) ;; *) continue ;; esac
    stem=${base%%_binary-*}
    set -- "$LISTS/${stem}_binary-${ARCH}"_Packages*
    [ -e "$1" ] || echo "$stem"
  done
}
have_lists() {
  for f in "$LISTS"/*_binary-"$ARCH"_Packages*; do [ -e "$f" ] && return 0; done
  return 1
}
if ! have_lists || [ -n "$(missing_lists)" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "sysroot.sh: $ARCH package lists missing or incomplete. As root, run:" >&2
    echo "  sudo apt-get update" >&2
    exit 1
  fi
  echo "sysroot.sh: $ARCH package lists missing or incomplete; running apt-get update"
  # Unreachable third-party repositories only produce warnings; what matters
  # is that the Debian lists for $ARCH arrive, which is checked right after.
  apt-get update || true
  have_lists || { echo "sysroot.sh: apt-get update did not fetch $ARCH lists" >&2; exit 1; }
  for m in $(missing_lists); do
    echo "sysroot.sh: WARNING: no $ARCH list for ${m}; packages from it (e.g. security" \
         "updates) will be missing and older versions used" >&2
  done
fi

# --- 2. download --------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wisp-sysroot.XXXXXX")
NEW="$DESTDIR.new.$$"
cleanup() { rm -rf "$TMP" "$NEW"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# Let apt's unprivileged _apt user write the downloads (avoids the
# "Download is performed unsandboxed as root" warning).
chmod 0755 "$TMP"
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$TMP"; fi

SPECS=""
for p in $PACKAGES; do SPECS="$SPECS $p:$ARCH"; done
echo "sysroot.sh: downloading for $ARCH:$SPECS"
# shellcheck disable=SC2086
(cd "$TMP" && apt-get download -q $SPECS)

# --- 3. extract ---------------------------------------------------------------
mkdir -p "$NEW"
for deb in "$TMP"/*.deb; do
  echo "sysroot.sh:   $(basename "$deb")"
  dpkg -x "$deb" "$NEW"
done
# Drop what a build never needs (docs, man pages) to keep the tree small.
rm -rf "$NEW/usr/share/doc" "$NEW/usr/share/man" "$NEW/usr/share/lintian"

# --- 4. make absolute symlinks relative (stay inside the sysroot) ----------
find "$NEW" -type l | while IFS= read -r link; do
  target=$(readlink "$link")
  case "$target" in
    /*)
      rel=$(realpath -s -m --relative-to="$(dirname "$link")" "$NEW$target")
      ln -sfn "$rel" "$link"
      echo "sysroot.sh:   fixed symlink ${link#"$NEW"} -> $target  =>  $rel"
      ;;
  esac
done

# --- 5. every DT_NEEDED must resolve in the sysroot or the cross libc ------
READELF=""
for r in readelf "$TRIPLET-readelf"; do
  if command -v "$r" >/dev/null 2>&1; then READELF=$r; break; fi
done
if [ -n "$READELF" ]; then
  missing=""
  find "$NEW" -type f -name 'lib*.so*' > "$TMP/solist"
  while IFS= read -r so; do
    for lib in $("$READELF" -d "$so" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      found=""
      for d in "$NEW/usr/lib/$TRIPLET" "$NEW/lib/$TRIPLET" "/usr/$TRIPLET/lib"; do
        if [ -e "$d/$lib" ]; then found=1; break; fi
      done
      [ -n "$found" ] || missing="$missing ${so#"$NEW"}:$lib"
    done
  done < "$TMP/solist"
  if [ -n "$missing" ]; then
    echo "sysroot.sh: unresolved run-time dependencies (add their packages to PACKAGES):" >&2
    for m in $missing; do echo "  $m" >&2; done
    exit 1
  fi
  echo "sysroot.sh: all DT_NEEDED entries resolve (sysroot + /usr/$TRIPLET/lib)"
else
  echo "sysroot.sh: warning: no readelf; skipping run-time dependency check" >&2
fi

# --- 6. publish atomically -------------------------------------------------
printf '%s\n' "$STAMP" > "$NEW/.complete"
rm -rf "$DESTDIR"
mkdir -p "$(dirname "$DESTDIR")"
mv "$NEW" "$DESTDIR"
echo "sysroot.sh: $ARCH sysroot ready in $DESTDIR"
