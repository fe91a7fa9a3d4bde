"""Wisp's python:3 launcher: a pre-warmed worker speaking the actionloop protocol.

Wisp starts it as `python3 -I -u launcher.py` with stdin = requests, stdout
and stderr = the action's logs, fd 3 = replies, cwd = a private directory.
Protocol (one JSON object per line each way):
  ack   -> {"ok":true}                              once, before any input
  init  <- {"value":{"name","main","code","binary","env"}}
        -> {"ok":true} | {"error":"..."} (then exit 1)
  run   <- {"value":{params},"namespace":...,"activation_id":...,...}
        -> main's result, or {"error":"..."}
Flags: -I keeps PYTHON* variables, the user site and this file's directory
out of the action's interpreter; -u makes every log write reach the pipe at
once, so logs printed before a timeout kill are not lost in a buffer. -S
would save ~1 ms of a ~19 ms start but hide Debian's dist-packages from
actions. Without flags the protocol still holds (logs are flushed before
each reply); only those two properties are lost.
Everything on stdout/stderr belongs to the action: the launcher itself only
ever prints tracebacks of the action's errors there.
"""
import json
import linecache
import os
import sys
import traceback  # preloaded: the first failing activation should not pay for it

# Wisp removes a worker's directory with rmdir: whatever the launcher writes
# there outlives the worker. -I makes python ignore PYTHONDONTWRITEBYTECODE.
sys.dont_write_bytecode = True

# The replies channel. Unbuffered and binary: one os.write per reply, and a
# reply is only written after the logs of its activation are in their pipes.
REPLY_FD = 3


def encode(obj):
    """One compact JSON line; raises TypeError/ValueError if obj is not JSON."""
    try:
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate in a string: escaped output is still valid JSON.
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def reply(data):
    while data:  # a large result may need several writes into the pipe
        data = data[os.write(REPLY_FD, data):]


def flush_logs():
    # With -u this is a no-op, but the action may have swapped sys.stdout for
    # a buffered stream; its logs must be in the pipes before the reply.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def leave(status):
    # os._exit, not sys.exit: a thread the action left running must not keep
    # a dismissed worker alive (the interpreter would wait for it).
    flush_logs()
    os._exit(status)


def set_env(key, value):
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    try:
        os.environ[key] = value
    except ValueError:  # a NUL byte: no environment can hold it
        pass


def print_traceback(exc):
    # Starts below the launcher's frame that caught it: the action's author
    # needs their own frames, not ours.
    traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)


def error_text(exc):
    # str(ValueError()) is empty; the class name is better than nothing.
    return str(exc) or type(exc).__name__


class InitError(Exception):
    """The action cannot be loaded; the message is the reply's error."""


# What an action's zip may expand to: the limits wisp-unzip-exec applies to
# zipped native actions (runtimes/native/unzip.h). The action code limit is
# 48 MB of base64, and a zip bomb of it would otherwise fill the disk.
ZIP_MAX_ENTRIES = 10000
ZIP_MAX_BYTES = 256 << 20  # one entry, and all of them together
ZIP_BAD = "There was an error uncompressing the action archive: "  # OpenWhisk's words


def zip_names_checked(z):
    """Refuses, before anything is written, every entry that would land
    outside the worker's directory or outgrow the limits. zipfile's own
    extract() would quietly drop the '..' and the leading '/' instead: an
    archive that means to write elsewhere is refused, as for native actions."""
    infos = z.infolist()
    if len(infos) > ZIP_MAX_ENTRIES:
        raise InitError(ZIP_BAD + "too many entries: %d > %d" % (len(infos), ZIP_MAX_ENTRIES))
    total = 0
    seen = set()
    for info in infos:
        name = info.filename
        shown = repr(name)
        if not name.strip("/"):
            raise InitError(ZIP_BAD + "entry %s names no file" % shown)
        if "\\" in name:
            raise InitError(ZIP_BAD + "entry %s: backslash in its name" % shown)
        if name.startswith("/"):
            raise InitError(ZIP_BAD + "entry %s: absolute path" % shown)
        if ".." in name.split("/"):
            raise InitError(ZIP_BAD + "entry %s: '..' leaves the action's directory" % shown)
        if name in seen:
            raise InitError(ZIP_BAD + "entry %s appears twice" % shown)
        seen.add(name)
        if info.file_size > ZIP_MAX_BYTES:
            raise InitError(ZIP_BAD + "entry %s is too large: %d > %d bytes"
                            % (shown, info.file_size, ZIP_MAX_BYTES))
        total += info.file_size
        if total > ZIP_MAX_BYTES:
            raise InitError(ZIP_BAD + "the archive expands to more than %d bytes" % ZIP_MAX_BYTES)
    return infos


def nested_hint(names, wanted):
    """When every entry sits in one top-level folder that holds `wanted`,
    what the author most likely did: zipped the folder, not its contents."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1:
        top = tops.pop()
        if "%s/%s" % (top, wanted) in names:
            return " (it is in '%s/': zip the folder's contents, not the folder)" % top
    return ""


def unpack_zip(code):
    # Imported here: only zipped actions need them, and zipfile alone costs
    # ~5 ms of start-up every worker would otherwise pay.
    import base64
    import binascii
    import io
    import zipfile
    import zlib

    try:
        # Whitespace is allowed (`base64` wraps its lines); anything else
        # outside the alphabet is an error, not silently skipped.
        data = base64.b64decode("".join(code.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InitError("The action's code is not valid base64: %s" % error_text(e)) from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = zip_names_checked(z)
            # Entry by entry, streamed to disk: zipfile reads no more than an
            # entry's stated size and checks its CRC, so a header that lies
            # about the size cannot make it write more. Symlink entries
            # become small files holding the link's target, as in
            # OpenWhisk's runtimes: nothing is ever written through a link.
            for info in infos:
                z.extract(info, ".")
    except InitError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError,
            RuntimeError, NotImplementedError) as e:  # RuntimeError: encrypted entries
        raise InitError(ZIP_BAD + error_text(e)) from None
    except OSError as e:  # the disk, not the archive
        what = "'%s'" % os.path.relpath(e.filename) if e.filename else "a file"
        raise InitError(ZIP_BAD + "cannot write %s: %s" % (what, e.strerror or e)) from None
    if not os.path.isfile("__main__.py"):
        names = [i.filename for i in infos]
        raise InitError("Zip file does not include __main__.py at its root%s"
                        % nested_hint(names, "__main__.py"))


def add_virtualenv(here):
    """The packages of a virtualenv/ folder shipped in the zip (OpenWhisk's
    convention) become importable ahead of the system's. Any venv layout
    works: `python3 -m venv` (no activate_this.py, which OpenWhisk's runtime
    insists on) as well as `virtualenv`. This interpreter's own pythonX.Y
    comes first; others still serve pure-Python packages. addsitedir, so the
    venv's .pth files are honoured as its own interpreter would."""
    import site

    lib = os.path.join(here, "virtualenv", "lib")
    if not os.path.isdir(lib):
        return []
    own = "python%d.%d" % sys.version_info[:2]
    before = list(sys.path)
    for d in sorted(os.listdir(lib), key=lambda d: (d != own, d)):
        sp = os.path.join(lib, d, "site-packages")
        if os.path.isdir(sp):
            site.addsitedir(sp)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = before
    return added


def load_action(init):
    """Runs the action's code as module main__ and returns its entry function."""
    for k, v in (init.get("env") or {}).items():
        set_env(str(k), v)
    code = init.get("code")
    if not isinstance(code, str):
        raise InitError("the init message has no code")
    here = os.getcwd()
    path = os.path.join(here, "__main__.py")
    if init.get("binary"):
        unpack_zip(code)
        with open(path, "rb") as f:
            source = f.read()
    else:
        # Not written to disk (see dont_write_bytecode); registered with
        # linecache instead, so that tracebacks still show the source lines.
        source = code
        linecache.cache[path] = (len(code), None, code.splitlines(True), path)
    # The action imports its sibling modules from here, then the packages
    # of its virtualenv/, if it ships one.
    sys.path[:0] = [here] + add_virtualenv(here)

    # Named main__ as in OpenWhisk's runtime, not __main__: an action's
    # `if __name__ == "__main__":` block is for local testing and must not run.
    module = type(sys)("main__")
    module.__file__ = path
    sys.modules["main__"] = module  # pickle and dataclasses look modules up
    try:
        exec(compile(source, path, "exec"), module.__dict__)
    except Exception as e:
        print_traceback(e)
        raise InitError("the action failed to load: %s: %s" % (type(e).__name__, error_text(e))) from e

    name = init.get("main") or "main"
    fn = getattr(module, name, None)
    if fn is None:
        raise InitError("the action has no function '%s'" % name)
    if not callable(fn):
        raise InitError("the action's '%s' is not a function" % name)
    return fn


def run(main, msg, set_before):
    """Calls main for one run message; returns the reply line and the __OW_ keys set."""
    set_now = set()
    for k, v in msg.items():
        if k != "value":
            key = "__OW_" + k.upper()
            set_env(key, v)
            set_now.add(key)
    # A key the previous activation had (api_key, typically) must not leak
    # into this one.
    for key in set_before - set_now:
        os.environ.pop(key, None)

    try:
        result = main(msg.get("value", {}))
    except Exception as e:
        print_traceback(e)
        return encode({"error": error_text(e)}), set_now
    try:
        # Any value is written as is (None as null); Wisp decides whether it
        # is an acceptable result. Sets, bytes, NaN and cycles cannot be.
        return encode(result), set_now
    except (TypeError, ValueError, RecursionError) as e:
        err = "The action did not return a JSON-serialisable result: %s" % error_text(e)
        return encode({"error": err}), set_now


def serve():
    ok = encode({"ok": True})
    reply(ok)
    main = None
    ow_keys = set()
    # Bytes: json.loads decodes UTF-8 itself, so a line that is not UTF-8 is
    # one more invalid line rather than a decoding error in sys.stdin.
    for line in iter(sys.stdin.buffer.readline, b""):
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError
        except (ValueError, RecursionError):  # includes bad UTF-8
            reply(encode({"error": "invalid input line"}))
            continue
        if main is None:
            try:
                main = load_action(msg.get("value") or {})
            except Exception as e:  # InitError, or e.g. a full disk
                err = str(e) if isinstance(e, InitError) else "init failed: %s" % error_text(e)
                if e.__cause__ is None:  # else its traceback is printed already
                    print(err, file=sys.stderr)
                flush_logs()
                reply(encode({"error": err}))
                # The half-loaded action may have changed anything in this
                # process: it is not worth keeping.
                leave(1)
            flush_logs()
            reply(ok)
            continue
        result, ow_keys = run(main, msg, ow_keys)
        flush_logs()
        reply(result)
    leave(0)  # EOF: Wisp is done with this worker


if __name__ == "__main__":
    serve()
