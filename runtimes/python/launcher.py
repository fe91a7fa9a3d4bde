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


def unpack_zip(code):
    # Imported here: only zipped actions need them, and zipfile alone costs
    # ~5 ms of start-up every worker would otherwise pay.
    import base64
    import binascii
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(code, validate=False))) as z:
            z.extractall(".")  # extractall drops absolute paths and '..'
    except (binascii.Error, zipfile.BadZipFile, ValueError) as e:
        raise InitError("the action code is not a valid base64 zip file: %s" % error_text(e)) from None
    if not os.path.isfile("__main__.py"):
        raise InitError("the action zip file has no __main__.py at its root")


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
    # The action imports its sibling modules, and the packages of a
    # virtualenv/ shipped in the zip (OpenWhisk's convention), from here.
    paths = [here]
    lib = os.path.join(here, "virtualenv", "lib")
    if os.path.isdir(lib):
        paths += [os.path.join(lib, d, "site-packages") for d in sorted(os.listdir(lib))]
    sys.path[:0] = paths

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
