"use strict";
/**
 * mlbus enqueue: start a training run and follow it to its end.
 *
 * Output 1, at once: the gateway's answer (`request_id`, `queue`, `queue_choice`).
 * Output 2, when the run ends (completed, failed with the task's own error, stopped): the run's
 * timeline as `GET /v1/requests/{id}` returns it, with the original message's other properties.
 * Runs being followed are kept in the node's context, so a restarted Node-RED (with a
 * persistent context store) resumes them from their request ids.
 */
const { typed, text, jsonValue, markError } = require("../lib/inputs");
const { MlbusError } = require("../lib/errors");

const KEY = "runs";
const KEEP_MSG_BYTES = 64 * 1024;

module.exports = function (RED) {
    function MlbusEnqueueNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const server = RED.nodes.getNode(config.server);
        const context = node.context();
        const counts = { queued: 0, running: 0 };
        const states = new Map(); // request id -> queued | running
        let last = null; // the last end: completed | failed | stopped

        if (!server) {
            node.status({ fill: "red", shape: "ring", text: "no server" });
            return;
        }

        function show() {
            counts.queued = 0;
            counts.running = 0;
            for (const s of states.values()) {
                counts[s === "running" ? "running" : "queued"] += 1;
            }
            const parts = [];
            if (counts.queued) parts.push(`${counts.queued} queued`);
            if (counts.running) parts.push(`${counts.running} running`);
            const stream = server.stream.state;
            if (parts.length > 0) {
                const cut = stream === "waiting";
                node.status({
                    fill: cut ? "yellow" : "blue",
                    shape: cut ? "ring" : "dot",
                    text: parts.join(", ") + (cut ? " (reconnecting)" : ""),
                });
            } else if (last) {
                const fill = { completed: "green", failed: "red", stopped: "grey" }[last] || "grey";
                node.status({ fill, shape: "dot", text: last });
            } else {
                node.status({});
            }
        }

        const saved = () => context.get(KEY) || {};
        function remember(rid, entry) {
            const runs = saved();
            runs[rid] = entry;
            context.set(KEY, runs);
        }
        function forget(rid) {
            const runs = saved();
            delete runs[rid];
            context.set(KEY, runs);
        }

        function follow(rid, entry, resumed) {
            states.set(rid, entry.status === "running" ? "running" : "queued");
            server.follower.follow(
                rid,
                {
                    onStatus(status) {
                        if (states.has(rid) && (status === "running" || status === "queued")) {
                            states.set(rid, status);
                            show();
                        }
                    },
                    onEnd(timeline) {
                        states.delete(rid);
                        forget(rid);
                        last = timeline.status;
                        const msg = { ...(entry.msg || {}) };
                        msg._msgid = RED.util.generateId();
                        msg.payload = timeline;
                        msg.request_id = rid;
                        msg.status = timeline.status;
                        show();
                        node.send([null, msg]);
                    },
                    onLost(err) {
                        states.delete(rid);
                        forget(rid);
                        show();
                        const msg = { ...(entry.msg || {}), request_id: rid };
                        node.error(markError(msg, err), msg);
                    },
                },
                { since: entry.accepted_at || Date.now() / 1000, resumed }
            );
        }

        // Runs this node was following when Node-RED stopped: follow them again.
        for (const [rid, entry] of Object.entries(saved())) {
            follow(rid, entry, true);
        }
        const streamState = () => show();
        server.stream.on("state", streamState);
        show();

        node.on("input", async (msg, send, done) => {
            try {
                const taskId = text(msg, "task_id", config.task_id);
                if (!taskId) {
                    throw new MlbusError("invalid_input: no task_id (set it on the node or in msg.task_id)", {
                        code: "invalid_input",
                    });
                }
                const queue = text(msg, "queue_name", config.queue_name);
                const input = jsonValue(await typed(RED, node, config.inputType || "msg", config.input || "payload", msg), {
                    object: true,
                });
                const body = { task_id: taskId, input };
                if (queue) {
                    body.queue_name = queue;
                }
                const { value } = await server.client.call("POST", "/v1/enqueue", { body, idempotent: true });
                const rid = value.request_id;
                const kept = keepable(msg);
                const entry = {
                    task_id: taskId,
                    queue: value.queue,
                    accepted_at: Date.now() / 1000,
                    status: "queued",
                    msg: kept,
                };
                remember(rid, entry);
                follow(rid, entry, false);
                show();
                msg.payload = value;
                msg.request_id = rid;
                send([msg, null]);
                done();
            } catch (err) {
                done(markError(msg, err));
            }
        });

        node.on("close", (removed, done) => {
            server.stream.removeListener("state", streamState);
            for (const rid of states.keys()) {
                server.follower.unfollow(rid);
            }
            if (removed) {
                context.set(KEY, {}); // a deleted node follows nothing any more
            }
            done();
        });
    }

    /** What of the input message is kept for output 2 (JSON-safe, bounded; not the input). */
    function keepable(msg) {
        const { payload, req, res, _msgid, ...rest } = msg;
        try {
            const json = JSON.stringify(rest);
            if (json.length <= KEEP_MSG_BYTES) {
                return JSON.parse(json);
            }
        } catch (_) {
            // not JSON-safe: keep only the topic
        }
        return typeof msg.topic === "string" ? { topic: msg.topic } : {};
    }

    RED.nodes.registerType("mlbus enqueue", MlbusEnqueueNode);
};
