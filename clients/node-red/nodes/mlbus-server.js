"use strict";
/**
 * mlbus-server: the configuration node. It holds the gateway's URL and the identity (Keycloak
 * token URL, client id; a user's name and password, or a client secret: in Node-RED's
 * credentials store, never in the flow file), and it owns what its nodes share: one token, one
 * notification stream, one follower of enqueued runs.
 */
const { TokenSource } = require("../lib/tokens");
const { MlbusClient } = require("../lib/client");
const { NotificationStream } = require("../lib/stream");
const { RunFollower } = require("../lib/follower");

module.exports = function (RED) {
    function MlbusServerNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        node.name = config.name;
        node.url = config.url;
        const creds = node.credentials || {};
        const grant = config.grant === "client_credentials" ? "client_credentials" : "password";
        node.tokens = new TokenSource({
            tokenUrl: config.tokenUrl,
            clientId: config.clientId,
            clientSecret: creds.clientSecret,
            username: grant === "password" ? creds.username : "",
            password: grant === "password" ? creds.password : "",
        });
        node.client = new MlbusClient({ url: config.url, tokens: node.tokens });
        const context = node.context();
        node.stream = new NotificationStream({
            client: node.client,
            lastId: context.get("lastEventId") || null,
            saveLastId: (id) => context.set("lastEventId", id),
            idleS: Number(config.idleS) || 45,
        });
        node.stream.on("state", (state, error) => {
            if (state === "waiting" && error) {
                node.debug(`notification stream: ${error.message}; reconnecting`);
            }
        });
        const sweepS = config.sweepS === undefined || config.sweepS === "" ? 300 : Number(config.sweepS);
        node.follower = new RunFollower({
            client: node.client,
            stream: node.stream,
            sweepS,
            log: (text) => node.debug(text),
        });

        node.on("close", async (done) => {
            node.follower.close();
            await node.stream.close();
            done();
        });
    }

    RED.nodes.registerType("mlbus-server", MlbusServerNode, {
        credentials: {
            username: { type: "text" },
            password: { type: "password" },
            clientSecret: { type: "password" },
        },
    });

    // The editor's pick lists: the catalog of a deployed server, read with its own identity.
    RED.httpAdmin.get("/mlbus-server/:id/catalog", RED.auth.needsPermission("flows.read"), async (req, res) => {
        const server = RED.nodes.getNode(req.params.id);
        if (!server || !server.client) {
            res.status(404).json({ code: "server_not_deployed", message: "Deploy the mlbus server first." });
            return;
        }
        try {
            const { value } = await server.client.call("GET", "/v1/catalog", { timeoutMs: 10000 });
            res.json(value);
        } catch (err) {
            res.status(502).json({ code: err.code || "gateway_error", message: err.message });
        }
    });
};
