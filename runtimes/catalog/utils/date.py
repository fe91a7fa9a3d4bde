# /whisk.system/utils/date: the current time, ISO 8601 in UTC with milliseconds.
import datetime


def main(params):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"date": now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)}
