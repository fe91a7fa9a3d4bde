from page import render


def main(args):
    return {"headers": {"Content-Type": "text/html"}, "body": render(args.get("title", "Sensor"))}
