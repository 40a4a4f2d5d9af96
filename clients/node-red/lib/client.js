"use strict";
/**
 * One gateway, one identity: authenticated JSON calls. A 401 renews the token once and tries
 * again (the gateway may have rotated its key, or the token expired in flight); every other
 * answer that is not 2xx is a MlbusError with the gateway's stable code.
 */
const crypto = require("crypto");
const { MlbusError, errorOf } = require("./errors");

class MlbusClient {
    /**
     * @param {object} o
     * @param {string} o.url  the gateway, e.g. http://mlbus:8000
     * @param {import("./tokens").TokenSource} o.tokens
     */
    constructor({ url, tokens, fetchImpl, maxCalls = 32 }) {
        this.url = String(url || "").replace(/\/+$/, "");
        this.tokens = tokens;
        this.fetch = fetchImpl || fetch;
        // At most this many JSON calls at once (a burst of 1,000 enqueues must not open 1,000
        // connections to the gateway); the others wait their turn, in order.
        this.maxCalls = maxCalls;
        this.active = 0;
        this.waiting = [];
    }

    async _slot() {
        if (this.active < this.maxCalls) {
            this.active += 1;
            return;
        }
        await new Promise((resolve) => this.waiting.push(resolve));
    }

    _release() {
        const next = this.waiting.shift();
        if (next) {
            next(); // the slot passes on
        } else {
            this.active -= 1;
        }
    }

    /** `fetch` with the bearer token; one retry with a fresh token after a 401. */
    async authorized(path, init = {}) {
        for (let attempt = 0; ; attempt += 1) {
            const token = await this.tokens.token();
            const headers = { ...(init.headers || {}), authorization: `Bearer ${token}` };
            let response;
            try {
                response = await this.fetch(`${this.url}${path}`, { ...init, headers });
            } catch (err) {
                throw unreachable(this.url, err);
            }
            if (response.status === 401 && attempt === 0) {
                this.tokens.invalidate(token);
                await response.body?.cancel?.().catch(() => {});
                continue;
            }
            return response;
        }
    }

    /** A JSON call: the answer's body, or a MlbusError. */
    async call(method, path, options = {}) {
        await this._slot();
        try {
            return await this._call(method, path, options);
        } finally {
            this._release();
        }
    }

    async _call(method, path, { body, timeoutMs = 30000, idempotent = false } = {}) {
        const headers = { accept: "application/json" };
        if (body !== undefined) {
            headers["content-type"] = "application/json";
        }
        if (idempotent) {
            // one key per call, kept across its own retry: a retried enqueue makes one run
            headers["idempotency-key"] = crypto.randomUUID();
        }
        let response;
        try {
            response = await this.authorized(path, {
                method,
                headers,
                body: body === undefined ? undefined : JSON.stringify(body),
                signal: AbortSignal.timeout(timeoutMs),
            });
        } catch (err) {
            if (err instanceof MlbusError && err.code === "gateway_unreachable" && err.cause?.name === "TimeoutError") {
                throw new MlbusError(`gateway_timeout: ${this.url} did not answer in ${timeoutMs / 1000} s`, {
                    code: "gateway_timeout",
                });
            }
            throw err;
        }
        if (!response.ok) {
            throw await errorOf(response);
        }
        const text = await response.text();
        const value = text ? JSON.parse(text) : null;
        return { value, requestId: response.headers.get("x-request-id") };
    }
}

function unreachable(url, err) {
    const error = new MlbusError(`gateway_unreachable: ${url} (${err.cause?.code || err.message})`, {
        code: "gateway_unreachable",
    });
    error.cause = err;
    if (err.name === "TimeoutError" || err.name === "AbortError") {
        error.cause = { name: "TimeoutError" };
    }
    return error;
}

module.exports = { MlbusClient };
