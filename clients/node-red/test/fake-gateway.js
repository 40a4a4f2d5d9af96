"use strict";
/**
 * A small fake of the mlbus gateway and of Keycloak's token endpoint, for the unit tests: the
 * same paths, answers and error shape as the real ones, with knobs to make a run end, cut the
 * notification streams, restart on the same port, or answer an error.
 */
const http = require("http");
const crypto = require("crypto");

class FakeGateway {
    constructor({ tokenLifeS = 300, refreshLifeS = 1800 } = {}) {
        this.tokenLifeS = tokenLifeS;
        this.refreshLifeS = refreshLifeS;
        this.tokens = new Map(); // access token -> expires (ms)
        this.refreshTokens = new Map();
        this.grants = []; // grant types, in order
        this.runs = new Map(); // request id -> status body
        this.notifications = []; // every notification, in order
        this.streams = new Set(); // open SSE responses
        this.streamOpens = []; // {lastEventId, at}
        this.requests = []; // {method, path, body, headers}
        this.ondemand = null; // (body) => {status, body, headers}
        this.enqueueAnswer = null; // (body) => {status, body} to refuse
        this.sockets = new Set();
        this.port = 0;
    }

    get url() {
        return `http://127.0.0.1:${this.port}`;
    }

    get tokenUrl() {
        return `${this.url}/token`;
    }

    start() {
        this.server = http.createServer((req, res) => this._handle(req, res));
        this.server.on("connection", (s) => {
            this.sockets.add(s);
            s.on("close", () => this.sockets.delete(s));
        });
        return new Promise((resolve) => this.server.listen(this.port, "127.0.0.1", () => {
            this.port = this.server.address().port;
            resolve(this);
        }));
    }

    /** Stop listening and drop every connection (a gateway that went down). */
    stop() {
        for (const res of this.streams) res.destroy();
        this.streams.clear();
        for (const s of this.sockets) s.destroy();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }

    /** Cut every open notification stream (a network cut). */
    cutStreams() {
        for (const res of this.streams) res.destroy();
        this.streams.clear();
    }

    /** End every open stream as the gateway does when the token that opened it expires. */
    expireStreams() {
        for (const res of this.streams) {
            res.end('event: token_expired\ndata: {"code": "token_expired", "message": "expired"}\n\n');
        }
        this.streams.clear();
    }

    /** A notification, to the open streams and to the history (what Last-Event-ID resumes from). */
    notify(fields) {
        const n = {
            severity: "info",
            status: "event",
            subjects: [],
            message: "",
            user: "alice",
            first_seen: new Date().toISOString(),
            ...fields,
        };
        n.id = String(this.notifications.length + 1).padStart(32, "0");
        this.notifications.push(n);
        for (const res of this.streams) res.write(frame(n));
        return n;
    }

    /** The run moves on; an end is announced with its task notification. */
    setStatus(rid, status, { error = null, announce = true } = {}) {
        const run = this.runs.get(rid);
        run.status = status;
        run.error = error;
        run.timeline.push({ status, at: new Date().toISOString(), message: error });
        const kind = { running: "task_started", completed: "task_completed", failed: "task_failed", stopped: "task_stopped" }[status];
        if (announce && kind) {
            this.notify({ kind, subject: rid, message: `request ${rid} ${status}` });
        }
    }

    _valid(req) {
        const auth = req.headers.authorization || "";
        const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
        const until = this.tokens.get(token);
        return until !== undefined && until > Date.now();
    }

    async _handle(req, res) {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        const raw = Buffer.concat(chunks).toString();
        const url = new URL(req.url, this.url);
        let body = null;
        try {
            body = raw && req.headers["content-type"]?.includes("json") ? JSON.parse(raw) : raw;
        } catch (_) {
            body = raw;
        }
        this.requests.push({ method: req.method, path: url.pathname, body, headers: req.headers });
        if (url.pathname === "/token") return this._token(new URLSearchParams(raw), res);
        if (!this._valid(req)) {
            return json(res, 401, { code: "unauthorized", message: "Invalid token.", request_id: "r401" });
        }
        if (req.method === "POST" && url.pathname === "/v1/enqueue") return this._enqueue(body, res);
        if (req.method === "POST" && url.pathname === "/v1/ondemand") {
            const answer = this.ondemand ? this.ondemand(body) : { status: 200, body: { status: "ok", request_id: "od1", output: body.input } };
            return json(res, answer.status, answer.body, answer.headers);
        }
        const m = url.pathname.match(/^\/v1\/requests\/([^/]+)$/);
        if (req.method === "GET" && m) {
            const run = this.runs.get(m[1]);
            if (!run) return json(res, 404, { code: "request_not_found", message: "No such request.", request_id: "r404" });
            return json(res, 200, run);
        }
        if (req.method === "GET" && url.pathname === "/v1/notifications/stream") return this._stream(req, res);
        if (req.method === "GET" && url.pathname === "/v1/resources") {
            return json(res, 200, {
                machines: { online: 2, offline: 1 },
                gpus: { total: 8, free: 3, busy: 5 },
                queues: [{ name: "gpu-a100", length: 0, workers: 1, idle_workers: 1, free_gpus: 3, has_free_gpu: true }],
                machine_details: null,
                at: new Date().toISOString(),
            });
        }
        if (req.method === "GET" && url.pathname === "/v1/catalog") {
            return json(res, 200, { tasks: [{ task_id: "ab".repeat(32), description: "parking", default_queue: "gpu-a100", queues: ["gpu-a100"] }], endpoints: [] });
        }
        return json(res, 404, { code: "not_found", message: "No route.", request_id: "r0" });
    }

    _token(form, res) {
        const grant = form.get("grant_type");
        this.grants.push(grant);
        if (grant === "refresh_token" && !this.refreshTokens.has(form.get("refresh_token"))) {
            return json(res, 400, { error: "invalid_grant", error_description: "Token is not active" });
        }
        if (grant === "password" && form.get("password") !== form.get("username")) {
            return json(res, 401, { error: "invalid_grant", error_description: "Invalid user credentials" });
        }
        if (grant === "client_credentials" && form.get("client_secret") !== "secret") {
            return json(res, 401, { error: "unauthorized_client", error_description: "Invalid client secret" });
        }
        const access = `tok-${crypto.randomUUID()}`;
        const refresh = `ref-${crypto.randomUUID()}`;
        this.tokens.set(access, Date.now() + this.tokenLifeS * 1000);
        const body = { access_token: access, expires_in: this.tokenLifeS, token_type: "Bearer" };
        if (grant !== "client_credentials") {
            this.refreshTokens.set(refresh, true);
            Object.assign(body, { refresh_token: refresh, refresh_expires_in: this.refreshLifeS });
        }
        return json(res, 200, body);
    }

    _enqueue(body, res) {
        if (this.enqueueAnswer) {
            const answer = this.enqueueAnswer(body);
            if (answer) return json(res, answer.status, answer.body, answer.headers);
        }
        const rid = crypto.randomBytes(16).toString("hex");
        const queue = body.queue_name && body.queue_name !== "auto" ? body.queue_name : "gpu-a100";
        const at = new Date().toISOString();
        this.runs.set(rid, {
            request_id: rid,
            kind: "enqueue",
            status: "queued",
            task_id: body.task_id,
            queue,
            error: null,
            timeline: [{ status: "accepted", at }, { status: "queued", at }],
            input: body.input,
        });
        return json(res, 202, { status: "queued", request_id: rid, queue, queue_choice: body.queue_name === "auto" ? "auto: gpu-a100 has 3 free GPUs now" : null });
    }

    _stream(req, res) {
        const last = req.headers["last-event-id"] || null;
        this.streamOpens.push({ lastEventId: last, at: Date.now() });
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
        res.write("retry: 2000\n\n");
        if (last) {
            const from = this.notifications.findIndex((n) => n.id === last);
            for (const n of this.notifications.slice(from + 1)) res.write(frame(n));
        }
        this.streams.add(res);
        res.on("close", () => this.streams.delete(res));
    }

    /** Streams open now. */
    get openStreams() {
        return this.streams.size;
    }
}

function frame(n) {
    return `id: ${n.id}\nevent: notification\ndata: ${JSON.stringify(n)}\n\n`;
}

function json(res, status, body, headers = {}) {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
}

module.exports = { FakeGateway };
