// /whisk.system/utils/date: the current time as an ISO 8601 string in UTC
// with milliseconds ("2016-03-22T00:59:55.961Z"), as JSON writes a Date.
function main() {
  return { date: new Date().toISOString() };
}
