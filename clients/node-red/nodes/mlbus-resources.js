"use strict";
/** mlbus resources: on any input, `msg.payload` = `GET /v1/resources` (free GPUs per queue,
 *  machines online and offline). */
const { markError } = require("../lib/inputs");

module.exports = function (RED) {
    function MlbusResourcesNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const server = RED.nodes.getNode(config.server);
        if (!server) {
            node.status({ fill: "red", shape: "ring", text: "no server" });
            return;
        }
        node.on("input", async (msg, send, done) => {
            try {
                const { value } = await server.client.call("GET", "/v1/resources");
                msg.payload = value;
                node.status({
                    fill: value.gpus.free > 0 ? "green" : "yellow",
                    shape: "dot",
                    text: `${value.gpus.free}/${value.gpus.total} GPUs free, ${value.machines.online} machines online`,
                });
                send(msg);
                done();
            } catch (err) {
                node.status({ fill: "red", shape: "dot", text: err.code || "error" });
                done(markError(msg, err));
            }
        });
    }

    RED.nodes.registerType("mlbus resources", MlbusResourcesNode);
};
