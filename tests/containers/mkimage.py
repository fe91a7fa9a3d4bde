"""tests/containers/mkimage.py - builds container images without a registry
or a Docker daemon: an OCI image layout as a tar (what `skopeo copy ...
oci-archive:` writes) or a `docker save` tarball, from files on this
machine. Layers are described as lists of entries, so a test can also build
what a hostile image would carry (".." names, links out of the rootfs,
device nodes, wrong digests).

    entry: (name, kind, payload, mode)   kind: file | dir | symlink | hardlink |
                                           chardev | fifo; payload: bytes (file)
                                           or the link target
"""
import gzip
import hashlib
import io
import json
import os
import tarfile


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = mode
            ti.mtime = 0
            if kind == "file":
                ti.size = len(payload)
                t.addfile(ti, io.BytesIO(payload))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                       "hardlink": tarfile.LNKTYPE, "chardev": tarfile.CHRTYPE,
                       "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                ti.linkname = payload
            t.addfile(ti)
    return buf.getvalue()


def config_doc(diff_ids, entrypoint=None, cmd=None, env=None, labels=None, user=None,
               workdir=None, arch="amd64"):
    cfg = {}
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    if cmd is not None:
        cfg["Cmd"] = cmd
    cfg["Env"] = env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    if labels:
        cfg["Labels"] = labels
    if user:
        cfg["User"] = user
    if workdir:
        cfg["WorkingDir"] = workdir
    return {"architecture": arch, "os": "linux", "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def _add(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    ti.mtime = 0
    t.addfile(ti, io.BytesIO(data))


def oci_archive(path, layers, compress=True, tamper=None, outer_gzip=False, **cfg):
    """layers: lists of entries. tamper(name, data) -> data may change a blob
    after its digest was taken."""
    tars = [layer_tar(l) for l in layers]
    blobs = [gzip.compress(t, mtime=0) if compress else t for t in tars]
    config = json.dumps(config_doc([sha(t) for t in tars], **cfg)).encode()
    mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mt, "digest": sha(b), "size": len(b)} for b in blobs]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "platform": {"architecture": cfg.get("arch", "amd64"),
                                             "os": "linux"}}]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        _add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(t, "index.json", index)
        for data in [config, manifest] + blobs:
            name = "blobs/sha256/" + sha(data)[7:]
            _add(t, name, tamper(name, data) if tamper else data)
    data = out.getvalue()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if outer_gzip else data)
    return sha(config)[7:]


def docker_save(path, layers, repo_tag="test:latest", **cfg):
    """The classic layout: manifest.json, HEX.json, ID/layer.tar (the second
    and later identical layers as symlinks, as newer Dockers write them)."""
    tars = [layer_tar(l) for l in layers]
    config = json.dumps(config_doc([sha(t) for t in tars], **cfg)).encode()
    cfg_name = sha(config)[7:] + ".json"
    names = []
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        _add(t, cfg_name, config)
        for i, data in enumerate(tars):
            d = hashlib.sha256(b"%d" % i + data).hexdigest()
            _add(t, d + "/layer.tar", data)
            names.append(d + "/layer.tar")
        _add(t, "manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": [repo_tag],
                                                 "Layers": names}]).encode())
    with open(path, "wb") as f:
        f.write(out.getvalue())
    return sha(config)[7:]


def host_python_entries(proxy):
    """An image of this machine's Debian python3: the interpreter, the
    shared libraries it and its extension modules load (ldd), the standard
    library without tests, caches and GUI parts, and proxy at
    /action/proxy.py."""
    import glob
    import subprocess
    exe = os.path.realpath("/usr/bin/python3")
    lib = "/usr/lib/" + os.path.basename(exe)  # Debian's, whichever python runs this
    entries, seen = [], set()

    def add(path, dest=None):
        dest = (dest or path).lstrip("/")
        if dest in seen:
            return
        seen.add(dest)
        parts = dest.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in seen:
                seen.add(d)
                entries.append((d, "dir", None, 0o755))
        with open(path, "rb") as f:
            entries.append((dest, "file", f.read(), os.stat(path).st_mode & 0o755))

    sos = [exe] + glob.glob(lib + "/lib-dynload/*.so")
    for so in sos:
        out = subprocess.run(["ldd", so], capture_output=True, text=True).stdout
        for line in out.splitlines():
            part = line.split("=>")[-1].strip().split(" ")[0]
            if part.startswith("/"):  # at the path the loader looks for it
                add(os.path.realpath(part), part)
    add(exe, "/usr/bin/python3")
    skip = ("/test/", "/tests/", "/idlelib/", "/tkinter/", "/turtledemo/", "/ensurepip/",
            "/lib2to3/", "/__pycache__/", "/pydoc_data/", "/config-")
    for root, dirs, files in os.walk(lib):
        for name in files:
            p = os.path.join(root, name)
            if not any(s in p + "/" for s in skip) and not os.path.islink(p):
                add(p)
    with open(proxy, "rb") as f:
        entries.append(("action", "dir", None, 0o755))
        entries.append(("action/proxy.py", "file", f.read(), 0o644))
    return entries


def file_entry(src, dest, mode=0o755):
    with open(src, "rb") as f:
        return (dest, "file", f.read(), mode)
