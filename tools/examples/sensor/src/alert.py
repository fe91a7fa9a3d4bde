def main(args):
    celsius, high, low = args["celsius"], args.get("high", 30), args.get("low", 5)
    state = "high" if celsius > high else "low" if celsius < low else "ok"
    return {"site": args.get("site", ""), "celsius": celsius, "state": state}
