# /whisk.system/utils/smash: every parameter but `$fieldName`, nested under it.
def main(args):
    field = args.get("$fieldName")
    if not isinstance(field, str):
        return {"error": "Expected an argument '$fieldName' of type 'string'."}
    del args["$fieldName"]
    return {field: args}
