# /whisk.system/utils/sort: `lines` in JavaScript's default order.
def main(params):
    lines = params.get("lines") if js_truthy(params.get("lines")) else []
    js_need(lines, list, "lines.sort")
    lines = sorted(lines, key=js_sort_key)
    return {"lines": lines, "length": len(lines)}
