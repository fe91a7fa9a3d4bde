# /whisk.system/utils/echo: answers with the parameters it was given.
def main(params):
    return params
