# /whisk.system/utils/split: `payload` cut at `separator` into `lines`.
import re


def main(params):
    if params.get("payload") is None:
        raise TypeError("Cannot read properties of %s (reading 'toString')"
                        % ("null" if "payload" in params else "undefined"))
    text = js_string(params["payload"])
    sep = params.get("separator")
    if not js_truthy(sep):
        lines = re.split(r"\r?\n", text)
    else:
        sep = js_string(sep)
        lines = text.split(sep) if sep else list(text)
    return {"lines": lines, "payload": params["payload"]}
