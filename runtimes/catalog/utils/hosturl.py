# /whisk.system/utils/hosturl: the URL of an action, trigger or web action.
import os

WEB_EXTENSIONS = (".html", ".http", ".json", ".svg", ".text")


def main(args):
    host = os.environ.get("__OW_API_HOST", "undefined")
    ns = os.environ.get("__OW_NAMESPACE", "undefined")
    web = args.get("web") is True
    trigger = args.get("trigger")
    ext = args.get("ext")
    path = args.get("path")
    if web and js_truthy(trigger):
        return {"error": "triggers are not allowed for web actions."}
    if web and js_truthy(ext) and ext not in WEB_EXTENSIONS:
        return {"error": 'extension for web action must be one of [".html", ".http", ".json", '
                         '".svg", ".text"].'}
    if not web and js_truthy(trigger):
        if path is None:
            raise TypeError("Cannot read properties of undefined (reading 'indexOf')")
        if isinstance(path, str) and "/" in path:
            return {"error": "triggers are not allowed in packages."}
    if web:
        base = "%s/api/v1/web/%s" % (host, ns)
    else:
        base = "%s/api/v1/namespaces/%s/%s" % (host, ns, "triggers" if trigger is True else "actions")
    if not js_truthy(path):
        return {"url": base}
    path = js_string(path)
    if web and "/" not in path:
        path = "default/" + path
    return {"url": "%s/%s%s" % (base, path, js_string(ext) if web and js_truthy(ext) else "")}
