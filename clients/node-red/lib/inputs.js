"use strict";
/** Reading a node's typed inputs, with `msg` overriding the node's own fields. */
const { MlbusError } = require("./errors");

/** The value of a typedInput (`type` msg/flow/global/json/str/num/env/jsonata...). */
function typed(RED, node, type, value, msg) {
    return new Promise((resolve, reject) => {
        if (!type) {
            resolve(undefined);
            return;
        }
        RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => {
            if (err) {
                reject(new MlbusError(`invalid_input: ${err.message}`, { code: "invalid_input" }));
            } else {
                resolve(result);
            }
        });
    });
}

/** `msg[name]` when it is a non-empty string, else the node's field (trimmed). */
function text(msg, name, field) {
    const fromMsg = msg[name];
    if (typeof fromMsg === "string" && fromMsg.trim()) {
        return fromMsg.trim();
    }
    return typeof field === "string" ? field.trim() : "";
}

/** A JSON value for the gateway: objects as they are, JSON text parsed. */
function jsonValue(value, { object = false } = {}) {
    let v = value;
    if (typeof v === "string" && v.trim().startsWith("{")) {
        try {
            v = JSON.parse(v);
        } catch (_) {
            // kept as text
        }
    }
    if (object && (v === undefined || v === null)) {
        return {};
    }
    if (object && (typeof v !== "object" || Array.isArray(v))) {
        throw new MlbusError("invalid_input: the input must be an object of parameters", { code: "invalid_input" });
    }
    return v;
}

/** The fields a Catch node and a following node need, set on `msg` before the error goes. */
function markError(msg, err) {
    msg.statusCode = err.status ?? undefined;
    if (err.requestId) {
        msg.request_id = err.requestId;
    }
    if (err.retryAfter !== null && err.retryAfter !== undefined) {
        msg.retryAfter = err.retryAfter;
    }
    if (err.details !== null && err.details !== undefined) {
        msg.errorDetails = err.details;
    }
    return err;
}

module.exports = { typed, text, jsonValue, markError };
