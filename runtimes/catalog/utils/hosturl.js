// /whisk.system/utils/hosturl: the URL that invokes an action of the
// caller's namespace (`path`: "name" or "package/name"), or fires a trigger
// (`trigger: true`), or, with `web: true`, the URL of a web action (`ext`:
// .html, .http, .json, .svg or .text). Without a path: the collection's URL.
const WEB_EXTENSIONS = ['.html', '.http', '.json', '.svg', '.text'];

function main(args) {
  const host = process.env.__OW_API_HOST;
  const ns = process.env.__OW_NAMESPACE;
  const web = args.web === true;
  if (web && args.trigger) {
    return { error: 'triggers are not allowed for web actions.' };
  }
  if (web && args.ext && !WEB_EXTENSIONS.includes(args.ext)) {
    return { error: 'extension for web action must be one of [".html", ".http", ".json", ".svg", ".text"].' };
  }
  if (!web && args.trigger && args.path.indexOf('/') !== -1) {
    return { error: 'triggers are not allowed in packages.' };
  }
  const base = web
    ? `${host}/api/v1/web/${ns}`
    : `${host}/api/v1/namespaces/${ns}/${args.trigger === true ? 'triggers' : 'actions'}`;
  if (!args.path) {
    return { url: base };
  }
  // an action outside any package is in package "default" for the web
  const path = web && args.path.indexOf('/') === -1 ? `default/${args.path}` : args.path;
  const ext = web ? args.ext || '' : '';
  return { url: `${base}/${path}${ext}` };
}
