// /whisk.system/utils/head: the first `num` items of `lines` (num absent or
// 0: one item), and the num it used.
function main(params) {
  const lines = params.lines || [];
  const num = params.num || 1;
  return { lines: lines.slice(0, num), num: num };
}
