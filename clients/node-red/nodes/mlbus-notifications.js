"use strict";
/**
 * mlbus notifications: a source node. Each notification the server's live stream brings (your
 * own task events; admins and operators: everything) that passes the node's filters is sent as
 * `msg.payload`, with `msg.topic` = its kind. The stream is the server's one connection; it
 * reconnects with `Last-Event-ID`, so nothing is missed across a network cut, a token renewal
 * or a Node-RED restart (with a persistent context store).
 */
const SEVERITY = { info: 0, warning: 1, critical: 2 };

/** The node's filters as one predicate: kinds (a list), the lowest severity, the subject
 *  (exact, or a pattern with `*`). */
function filterOf(config) {
    const kinds = String(config.kinds || "")
        .split(/[\s,]+/)
        .filter(Boolean);
    const least = SEVERITY[config.severity] ?? 0;
    const subject = String(config.subject || "").trim();
    const pattern = subject.includes("*")
        ? new RegExp(`^${subject.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)
        : null;
    return (n) => {
        if (kinds.length > 0 && !kinds.includes(n.kind)) return false;
        if ((SEVERITY[n.severity] ?? 0) < least) return false;
        if (!subject) return true;
        const subjects = [n.subject, ...(Array.isArray(n.subjects) ? n.subjects : [])];
        return subjects.some((s) => (pattern ? pattern.test(s) : s === subject));
    };
}

module.exports = function (RED) {
    function MlbusNotificationsNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const server = RED.nodes.getNode(config.server);
        if (!server) {
            node.status({ fill: "red", shape: "ring", text: "no server" });
            return;
        }
        const accepts = filterOf(config);
        let received = 0;
        const stop = server.stream.listen({
            onNotification(n) {
                if (!accepts(n)) return;
                received += 1;
                node.status({ fill: "green", shape: "dot", text: `${n.kind} (${received})` });
                node.send({ payload: n, topic: n.kind });
            },
            onState(state, error) {
                if (state === "connected") {
                    node.status({ fill: "green", shape: "dot", text: received ? `connected (${received})` : "connected" });
                } else if (state === "waiting") {
                    const why = error?.code === "unauthorized" || error?.code === "token_failed" ? error.code : "reconnecting";
                    node.status({ fill: why === "reconnecting" ? "yellow" : "red", shape: "ring", text: why });
                } else if (state === "connecting") {
                    node.status({ fill: "yellow", shape: "ring", text: "connecting" });
                }
            },
        });
        node.on("close", (done) => {
            stop();
            done();
        });
    }

    RED.nodes.registerType("mlbus notifications", MlbusNotificationsNode);
};

module.exports.filterOf = filterOf;
