// /whisk.system/utils/split: `payload` (turned into a string) cut at each
// `separator` (absent: at each line end, \n or \r\n) into `lines`, beside the
// payload as it came. No payload is an error, as in OpenWhisk's catalog.
function main(params) {
  const separator = params.separator || /\r?\n/;
  const text = params.payload.toString();
  return { lines: text.split(separator), payload: params.payload };
}
