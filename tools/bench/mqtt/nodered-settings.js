// Node-RED settings for the tools/bench/mqtt comparison target.
//
//   NODERED_FLOWS=FILE NODERED_USER_DIR=DIR \
//       node <node_modules>/node-red/red.js --settings nodered-settings.js
//
// Runs only the flow in $NODERED_FLOWS (the run script writes it from
// nodered-flows.json with the broker's port: mqtt in -> function -> mqtt
// out). No editor, no admin API and no HTTP nodes, so Node-RED opens no HTTP
// port at all (uiPort/uiHost stay loopback in case a later version does);
// no credential-secret prompt; its user dir under tools/bench/mqtt/.work.
const path = require("path");

const work = path.join(__dirname, ".work");

module.exports = {
    uiPort: parseInt(process.env.NODERED_PORT || "1880", 10),
    uiHost: "127.0.0.1",

    httpAdminRoot: false, // no editor, no admin API
    httpNodeRoot: false,  // the flow has no http nodes
    disableEditor: true,

    userDir: process.env.NODERED_USER_DIR || path.join(work, "nodered-user"),
    // absolute: a relative flowFile would resolve against the cwd or userDir
    flowFile: process.env.NODERED_FLOWS || path.join(work, "nodered-flows.json"),
    flowFilePretty: true,
    credentialSecret: false, // no credentials in the flow; never ask for a key

    // info: the start-up lines (flows started, connected to the broker) go
    // to the log; nothing is logged per message
    logging: {
        console: { level: "info", metrics: false, audit: false },
    },

    editorTheme: { projects: { enabled: false } },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    functionExternalModules: false,
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    exportGlobalContextKeys: false,
};
