/**
 * Node-RED settings for mlbus' existing-client check (mlbus/servers/nodered.py starts it).
 *
 * Only the flow of this folder runs: no editor, no admin API (nothing can deploy another flow),
 * no palette installs, nothing written back to the repository. Node-RED listens on 127.0.0.1
 * only, on MLBUS_NODERED_PORT; its own state (.config.*.json) goes to MLBUS_NODERED_USER_DIR,
 * a folder outside the repository.
 */
const os = require("os");
const path = require("path");

module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.MLBUS_NODERED_PORT || "1880", 10),
    userDir: process.env.MLBUS_NODERED_USER_DIR || path.join(os.tmpdir(), "mlbus-node-red"),
    flowFile: path.join(__dirname, "flows.json"),
    flowFilePretty: true,
    // The flows file is the repository's: never rewrite it (nor a credentials file beside it).
    readOnly: true,
    credentialSecret: false,

    // No editor and no admin API: the flow's own `http in` endpoints are all that listens.
    httpAdminRoot: false,
    httpNodeRoot: "/",
    // The gateway may take a while to answer an on-demand call (the endpoint's timeout).
    httpRequestTimeout: 60000,

    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: {
        autoInstall: false,
        palette: { allowInstall: false, allowUpload: false },
        modules: { allowInstall: false },
    },
    functionExternalModules: false,

    logging: {
        console: { level: "info", metrics: false, audit: false },
    },
};
