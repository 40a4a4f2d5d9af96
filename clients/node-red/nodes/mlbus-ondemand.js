"use strict";
/**
 * mlbus ondemand: call a deployed model now. `msg.payload` becomes the model's answer; an error
 * (the model's own 4xx as `model_rejected`, 502 `model_failed`, 504 `model_timeout`, 429
 * `quota_exceeded` with `msg.retryAfter`, ...) goes to Catch nodes with `msg.error.code`.
 */
const { typed, text, jsonValue, markError } = require("../lib/inputs");
const { MlbusError } = require("../lib/errors");

module.exports = function (RED) {
    function MlbusOndemandNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const server = RED.nodes.getNode(config.server);
        let inFlight = 0;
        if (!server) {
            node.status({ fill: "red", shape: "ring", text: "no server" });
            return;
        }
        const timeoutMs = (Number(config.timeoutS) || 660) * 1000; // the gateway answers 504 first

        node.on("input", async (msg, send, done) => {
            inFlight += 1;
            node.status({ fill: "blue", shape: "dot", text: inFlight > 1 ? `calling (${inFlight})` : "calling" });
            try {
                const machineId = text(msg, "machine_id", config.machine_id);
                const endpoint = text(msg, "endpoint", config.endpoint);
                const version = text(msg, "version", config.version);
                if (!machineId || !endpoint) {
                    throw new MlbusError("invalid_input: set machine_id and endpoint on the node or in msg", {
                        code: "invalid_input",
                    });
                }
                const input = jsonValue(await typed(RED, node, config.inputType || "msg", config.input || "payload", msg));
                const body = { machine_id: machineId, endpoint, input: input === undefined ? null : input };
                if (version) {
                    body.version = version;
                }
                const started = Date.now();
                const { value } = await server.client.call("POST", "/v1/ondemand", { body, timeoutMs, idempotent: true });
                msg.payload = value.output;
                msg.request_id = value.request_id;
                inFlight -= 1;
                node.status({ fill: "green", shape: "dot", text: `ok in ${Date.now() - started} ms` });
                send(msg);
                done();
            } catch (err) {
                inFlight -= 1;
                node.status({ fill: "red", shape: "dot", text: err.code || "error" });
                done(markError(msg, err));
            }
        });
    }

    RED.nodes.registerType("mlbus ondemand", MlbusOndemandNode);
};
