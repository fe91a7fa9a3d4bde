// /whisk.system/utils/sort: `lines` in JavaScript's default order (each
// item compared as a string, by UTF-16 code units: 10 sorts before 9), and
// how many there are.
function main(params) {
  const lines = params.lines || [];
  lines.sort();
  return { lines: lines, length: lines.length };
}
