// /whisk.system/utils/cat: `lines` (an array, absent: none) joined with
// newlines as `payload`, beside the lines themselves; other parameters are
// left out of the answer.
function main(params) {
  const lines = params.lines || [];
  return { lines: lines, payload: lines.join('\n') };
}
