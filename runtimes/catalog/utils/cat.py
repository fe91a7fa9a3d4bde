# /whisk.system/utils/cat: `lines` joined with newlines as `payload`.
def main(params):
    lines = params.get("lines") if js_truthy(params.get("lines")) else []
    js_need(lines, list, "lines.join")
    return {"lines": lines, "payload": js_join(lines, "\n")}
