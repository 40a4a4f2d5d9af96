"use strict";
/**
 * One live notification stream per server (`GET /v1/notifications/stream`), shared by every
 * node that listens: the enqueue nodes following their runs, the notification nodes. It opens
 * when the first listener comes and closes with the last.
 *
 * It reconnects by itself (1 s, doubling to 15 s) after a network cut, a gateway restart or
 * the end of its token (the gateway's `token_expired` event), always with `Last-Event-ID`, so
 * nothing is missed; the last id is handed to `saveLastId` so that a restarted Node-RED resumes
 * where it stopped too. A stream that stays silent longer than `idleS` (the gateway sends a
 * keep-alive every 15 s) is taken for cut and reopened.
 */
const { EventEmitter } = require("events");
const { events } = require("./sse");
const { errorOf } = require("./errors");

class NotificationStream extends EventEmitter {
    constructor({ client, lastId = null, saveLastId = () => {}, idleS = 45, minBackoffS = 1, maxBackoffS = 15 }) {
        super();
        this.setMaxListeners(0);
        this.client = client;
        this.lastId = lastId;
        this.saveLastId = saveLastId;
        this.idleS = idleS;
        this.minBackoffS = minBackoffS;
        this.maxBackoffS = maxBackoffS;
        this.listeners = new Set();
        this.state = "closed"; // closed | connecting | connected | waiting
        this.lastError = null;
        this.connections = 0; // how many times it connected (tests, status)
        this.abort = null;
        this.loop = null;
    }

    /** Add a listener `{onNotification(n), onState(state, error)}`; returns its removal. */
    listen(listener) {
        this.listeners.add(listener);
        if (!this.loop) {
            this.stopped = false;
            this.loop = this._run().finally(() => {
                this.loop = null;
            });
        }
        listener.onState?.(this.state, this.lastError);
        return () => {
            this.listeners.delete(listener);
            if (this.listeners.size === 0) {
                this.close();
            }
        };
    }

    /** Stop (it reopens with the next listener). */
    async close() {
        this.stopped = true;
        this.abort?.abort();
        clearTimeout(this.sleeping?.timer);
        this.sleeping?.resolve();
        await this.loop;
    }

    _setState(state, error = null) {
        this.state = state;
        this.lastError = error;
        for (const l of [...this.listeners]) {
            l.onState?.(state, error);
        }
        this.emit("state", state, error);
    }

    async _run() {
        let backoff = this.minBackoffS;
        while (!this.stopped) {
            let error = null;
            const before = this.connections;
            try {
                await this._once();
            } catch (err) {
                error = err;
            }
            if (this.connections > before) {
                backoff = this.minBackoffS; // it was open: a cut, not a refusal
            }
            if (this.stopped) {
                break;
            }
            if (error) {
                this._setState("waiting", error);
                await this._sleep(backoff);
                backoff = Math.min(this.maxBackoffS, backoff * 2);
            } else {
                this._setState("connecting");
            }
        }
        this._setState("closed");
    }

    /** One connection, read until it ends; true when it was open (errors thrown). */
    async _once() {
        this._setState("connecting", this.lastError);
        this.abort = new AbortController();
        const headers = { accept: "text/event-stream" };
        if (this.lastId) {
            headers["last-event-id"] = this.lastId;
        }
        const response = await this.client.authorized("/v1/notifications/stream", {
            headers,
            signal: this.abort.signal,
        });
        if (!response.ok) {
            throw await errorOf(response);
        }
        this.connections += 1;
        this._setState("connected");
        this.emit("connected");
        let idle = null;
        const watchdog = () => {
            clearTimeout(idle);
            idle = setTimeout(() => this.abort?.abort(), this.idleS * 1000);
        };
        watchdog();
        try {
            for await (const e of events(response.body)) {
                watchdog();
                if (e.comment) {
                    continue;
                }
                if (e.event === "token_expired") {
                    this.client.tokens.invalidate();
                    return true; // reconnect at once, with a fresh token and the same last id
                }
                if (e.event !== "notification") {
                    continue;
                }
                let n;
                try {
                    n = JSON.parse(e.data);
                } catch (_) {
                    continue;
                }
                if (e.id) {
                    this.lastId = e.id;
                    this.saveLastId(e.id);
                }
                for (const l of [...this.listeners]) {
                    try {
                        l.onNotification?.(n);
                    } catch (err) {
                        this.emit("listenerError", err);
                    }
                }
            }
        } catch (err) {
            if (this.stopped) {
                return true;
            }
            throw Object.assign(new Error(`stream cut: ${err.message}`), { code: "stream_cut" });
        } finally {
            clearTimeout(idle);
        }
        if (!this.stopped) {
            throw Object.assign(new Error("stream ended by the gateway"), { code: "stream_cut" });
        }
        return true;
    }

    _sleep(s) {
        return new Promise((resolve) => {
            this.sleeping = { resolve, timer: setTimeout(resolve, s * 1000) };
        });
    }
}

module.exports = { NotificationStream };
