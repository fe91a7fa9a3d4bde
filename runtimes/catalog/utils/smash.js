// /whisk.system/utils/smash: every parameter but `$fieldName`, nested under
// the property that `$fieldName` names.
function main(args) {
  const field = args.$fieldName;
  if (typeof field !== 'string') {
    return { error: "Expected an argument '$fieldName' of type 'string'." };
  }
  delete args.$fieldName;
  return { [field]: args };
}
