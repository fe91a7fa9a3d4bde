# /whisk.system/utils/namespace: the namespace of the key that invoked it.
import os


def main(params):
    return {"namespace": os.environ.get("__OW_NAMESPACE")}
