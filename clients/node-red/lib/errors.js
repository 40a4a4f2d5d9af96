"use strict";
/**
 * The one error of this palette. Node-RED copies an error's own `code` into the Catch node's
 * `msg.error.code`, so flows branch on the gateway's stable code (`task_not_found`,
 * `model_timeout`, `quota_exceeded`, ...) or on the palette's own for what never reached the
 * gateway (`gateway_unreachable`, `gateway_timeout`, `token_failed`, `invalid_input`).
 */
class MlbusError extends Error {
    constructor(message, { code, status = null, requestId = null, retryAfter = null, details = null } = {}) {
        super(message);
        this.name = "MlbusError";
        this.code = code;
        this.status = status;
        this.requestId = requestId;
        this.retryAfter = retryAfter;
        this.details = details;
    }
}

/** The error of a gateway answer that is not 2xx (its JSON body is `{code, message, request_id}`). */
async function errorOf(response) {
    let body = null;
    try {
        body = await response.json();
    } catch (_) {
        body = null;
    }
    const retry = response.headers.get("retry-after");
    const code = (body && typeof body.code === "string" && body.code) || `http_${response.status}`;
    const message = (body && typeof body.message === "string" && body.message) || `HTTP ${response.status}`;
    return new MlbusError(`${code}: ${message}`, {
        code,
        status: response.status,
        requestId: (body && body.request_id) || response.headers.get("x-request-id"),
        retryAfter: retry === null ? null : Number(retry),
        details: body && body.details !== undefined ? body.details : null,
    });
}

module.exports = { MlbusError, errorOf };
