import json


def main(args):
    """An MQTT message as the trigger delivers it: the payload is JSON
    such as {"celsius": 21.5}, or a bare number."""
    payload = args.get("payload", "{}")
    try:
        value = json.loads(payload)
    except ValueError:
        return {"error": "not a reading: %r" % payload}
    celsius = value.get("celsius") if isinstance(value, dict) else value
    return {"celsius": float(celsius), "site": args.get("site", "")}
