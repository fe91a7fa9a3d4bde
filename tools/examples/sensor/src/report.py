def main(args):
    return {"report": "hourly", "site": args.get("site", "")}
