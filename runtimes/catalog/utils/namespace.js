// /whisk.system/utils/namespace: the namespace of the key that invoked it
// (the activation's namespace, which the platform hands every run).
function main() {
  return { namespace: process.env.__OW_NAMESPACE };
}
