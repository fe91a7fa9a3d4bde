#!/usr/bin/env python3
"""board/debian/wisp-tarball.py STAGE ARCH VERSION OUT_DIR LIBDIR... - makes
wisp-VERSION-ARCH.tar.gz, the relocatable tree for boards that are not
Debian, from the staged install of a package build (STAGE/usr/...).

The tree, unpacked anywhere:
  bin/wisp, sbin/wispd   sh wrappers: the real program through the bundled
                         dynamic loader with lib/ as its only library path
  libexec/               the real programs
  lib/                   every shared library they need, glibc and the
                         loader included (so the board's own libraries,
                         musl or an older glibc, do not matter)
  lib/wisp/              kinds.json, runtimes/, board/, the helpers (static:
                         the pool copies them where workers run them)
  etc/wispd.conf, share/ the config file, man pages, the README
wispd is given its install paths relative to the tree (--kinds,
--runtimes-dir, --board-dir, --libexec-dir); --data defaults to ./var of
the directory it is started in, or name one. Libraries are found by
following DT_NEEDED and the .note.dlopen notes (the libraries a program
dlopens, platform/dl.h) from the programs through LIBDIR... (the host's or
the sysroot's multiarch dirs and the cross libc's). The bundled loader's
--library-path holds for dlopen too.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile

stage, arch, version, out = sys.argv[1:5]
libdirs = sys.argv[5:]
name = "wisp-%s-%s" % (version, arch)


def needed(path):
    """(DT_NEEDED sonames, PT_INTERP) of an ELF file, from readelf."""
    r = subprocess.run(["readelf", "-d", "-l", "-W", path], capture_output=True, text=True)
    sonames, interp = [], None
    for line in r.stdout.splitlines():
        if "(NEEDED)" in line:
            sonames.append(line.split("[", 1)[1].split("]", 1)[0])
        if "[Requesting program interpreter:" in line:
            interp = line.split(":", 1)[1].strip(" ]")
    return sonames, interp


def dlopened(path):
    """Sonames the .note.dlopen ELF notes of a file name (platform/dl.h)."""
    r = subprocess.run(["readelf", "-W", "-p", ".note.dlopen", path], capture_output=True, text=True)
    names = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*\[\s*[0-9a-f]+\]\s+(\[.*\])\s*$", line)
        if m:
            names += [so for note in json.loads(m.group(1)) for so in note["soname"]]
    return names


def find(soname):
    for d in libdirs:
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return os.path.realpath(p)
    sys.exit("wisp-tarball: %s not found in %s" % (soname, " ".join(libdirs)))


def main():
    tmp = os.path.join(out, name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    root = os.path.join(tmp, name)
    usr = os.path.join(stage, "usr")
    for d in ("bin", "sbin", "libexec", "lib", "etc", "share"):
        os.makedirs(os.path.join(root, d))
    shutil.copytree(os.path.join(usr, "lib", "wisp"), os.path.join(root, "lib", "wisp"))
    for sub in ("man", "doc"):
        if os.path.isdir(os.path.join(usr, "share", sub)):
            shutil.copytree(os.path.join(usr, "share", sub), os.path.join(root, "share", sub))
    shutil.copy(os.path.join(stage, "etc", "wisp", "wispd.conf"), os.path.join(root, "etc"))
    programs = {"wispd": os.path.join(usr, "sbin", "wispd"), "wisp": os.path.join(usr, "bin", "wisp")}
    for helper in ("wisp-unzip-exec", "wisp-blackbox-shim"):  # copied where workers run them
        if needed(os.path.join(usr, "lib", "wisp", helper))[1]:
            sys.exit("wisp-tarball: %s is not static" % helper)
    interp = None
    todo = list(programs.values())
    libs = {}
    while todo:
        path = todo.pop()
        sonames, i = needed(path)
        sonames += dlopened(path)
        interp = interp or i
        for so in sonames:
            if so not in libs:
                libs[so] = find(so)
                todo.append(libs[so])
    if not interp:
        sys.exit("wisp-tarball: the programs name no dynamic loader")
    loader = os.path.basename(interp)
    libs[loader] = find(loader)
    for so, path in libs.items():
        shutil.copy(path, os.path.join(root, "lib", so))
    for prog, path in programs.items():
        shutil.copy(path, os.path.join(root, "libexec", prog))
    wrappers = {
        "sbin/wispd": ("..", "wispd",
                       '--kinds "$top/lib/wisp/kinds.json" --runtimes-dir "$top/lib/wisp/runtimes" '
                       '--board-dir "$top/lib/wisp/board" --libexec-dir "$top/lib/wisp" '),
        "bin/wisp": ("..", "wisp", ""),
    }
    for rel, (up, prog, extra) in wrappers.items():
        p = os.path.join(root, rel)
        with open(p, "w") as f:
            f.write('#!/bin/sh\n# %s of the relocatable tree: libexec/%s through the bundled loader\n'
                    'top=$(cd "$(dirname "$0")/%s" && pwd)\n'
                    'exec "$top/lib/%s" --library-path "$top/lib" "$top/libexec/%s" %s"$@"\n'
                    % (rel, prog, up, loader, prog, extra))
        os.chmod(p, 0o755)
    for d, _, files in os.walk(root):  # no setuid, group or world writes
        for fn in files:
            p = os.path.join(d, fn)
            os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & 0o755)
    tarball = os.path.join(out, name + ".tar.gz")
    with tarfile.open(tarball + ".part", "w:gz") as t:
        t.add(root, arcname=name, filter=lambda ti: (setattr(ti, "uid", 0), setattr(ti, "gid", 0),
                                                     setattr(ti, "uname", "root"),
                                                     setattr(ti, "gname", "root"), ti)[-1])
    os.replace(tarball + ".part", tarball)
    shutil.rmtree(tmp)
    print(tarball)


main()
