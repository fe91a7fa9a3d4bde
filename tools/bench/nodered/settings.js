// Node-RED settings for the tools/bench comparison target.
//
//   NODERED_PORT=PORT node <node_modules>/node-red/red.js --settings settings.js
//
// Listens on 127.0.0.1:$NODERED_PORT, serves only the flow in flows.json
// (POST /echo -> function "return msg;" -> http response 200 with the same
// JSON), with no editor or admin API, no credential-secret prompt, warn-level
// logging and its user dir under tools/bench/.work/nodered-user (or
// $NODERED_USER_DIR).
const path = require("path");

module.exports = {
    uiPort: parseInt(process.env.NODERED_PORT || "1880", 10),
    uiHost: "127.0.0.1",

    httpAdminRoot: false, // no editor, no admin API
    disableEditor: true,
    httpNodeRoot: "/",

    userDir: process.env.NODERED_USER_DIR || path.join(__dirname, "..", ".work", "nodered-user"),
    // absolute: a relative flowFile would resolve against the cwd or userDir
    flowFile: path.join(__dirname, "flows.json"),
    flowFilePretty: true,
    credentialSecret: false, // no credentials in the flow; never ask for a key

    logging: {
        console: { level: "warn", metrics: false, audit: false },
    },

    editorTheme: { projects: { enabled: false } },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    functionExternalModules: false,
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    exportGlobalContextKeys: false,
};
