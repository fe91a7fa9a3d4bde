# /whisk.system/utils/head: the first `num` items of `lines`.
def main(params):
    lines = params.get("lines") if js_truthy(params.get("lines")) else []
    num = params.get("num") if js_truthy(params.get("num")) else 1
    js_need(lines, (list, str), "lines.slice")
    end = js_integer(num)
    if end < 0:
        end = max(len(lines) + end, 0)
    return {"lines": lines[:int(min(end, len(lines)))], "num": num}
