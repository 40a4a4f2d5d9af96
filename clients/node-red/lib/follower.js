"use strict";
/**
 * Follows enqueued runs to their end for every enqueue node of one server, over the server's
 * one notification stream: many runs in flight cost one connection, not one each.
 *
 * The gateway tells a run's user about it (`task_started`, `task_completed`, `task_failed`,
 * `task_stopped`, `task_enqueue_failed`, subject = the request id). On an end, the follower
 * reads `GET /v1/requests/{id}` (the timeline, as the gateway returns it) and hands it over.
 * Whenever the stream (re)connects (first start, a gateway restart, a Node-RED restart, the
 * token's end) every run still followed is read once, a few at a time, so an end that happened
 * while nobody listened is not missed; a slow sweep (`sweepS`) is the last safety net.
 */
const END = new Set(["completed", "failed", "stopped"]);
const KINDS = {
    task_started: "running",
    task_completed: "end",
    task_failed: "end",
    task_stopped: "end",
    task_enqueue_failed: "end",
};
const RECENT_ENDS = 10000;

class RunFollower {
    constructor({ client, stream, sweepS = 300, concurrency = 8, lostAfterS = 600, now, log = () => {} }) {
        this.client = client;
        this.stream = stream;
        this.sweepS = sweepS;
        this.concurrency = concurrency;
        this.lostAfterS = lostAfterS;
        this.now = now || (() => Date.now() / 1000);
        this.log = log;
        this.runs = new Map(); // request id -> {handler, since, checking, notFoundSince}
        this.endedEarly = new Map(); // end notifications for ids not (yet) followed
        this.unlisten = null;
        this.sweeper = null;
        this.polls = 0;
    }

    /** Follow `requestId`; `handler` gets `onStatus(status)` and, once, `onEnd(timeline)` or
     *  `onLost(error)`. */
    follow(requestId, handler, { since = this.now(), resumed = false } = {}) {
        this.runs.set(requestId, { handler, since, checking: null, notFoundSince: null });
        if (!this.unlisten) {
            this.unlisten = this.stream.listen({
                onNotification: (n) => this._notified(n),
                onState: (state) => {
                    if (state === "connected") {
                        this._sweep();
                    }
                },
            });
            if (this.sweepS > 0) {
                this.sweeper = setInterval(() => this._sweep(), this.sweepS * 1000);
            }
        }
        if (this.endedEarly.has(requestId)) {
            this.endedEarly.delete(requestId);
            this._check(requestId);
        } else if (resumed && this.stream.state === "connected") {
            this._check(requestId); // a resumed run: its end may have come while we were away
        }
    }

    /** Stop following `requestId` (no output). */
    unfollow(requestId) {
        this.runs.delete(requestId);
        if (this.runs.size === 0) {
            this.close();
        }
    }

    close() {
        clearInterval(this.sweeper);
        this.sweeper = null;
        if (this.unlisten) {
            const unlisten = this.unlisten;
            this.unlisten = null;
            unlisten();
        }
    }

    get size() {
        return this.runs.size;
    }

    _notified(n) {
        const what = KINDS[n.kind];
        if (!what || typeof n.subject !== "string") {
            return;
        }
        const run = this.runs.get(n.subject);
        if (!run) {
            if (what === "end") {
                this.endedEarly.set(n.subject, true);
                if (this.endedEarly.size > RECENT_ENDS) {
                    this.endedEarly.delete(this.endedEarly.keys().next().value);
                }
            }
            return;
        }
        if (what === "running") {
            run.handler.onStatus?.("running");
        } else {
            this._check(n.subject, 5);
        }
    }

    /** Read the run's status; deliver its end. `retries`: the end was announced, so read again
     *  a few times if the timeline does not show it yet. */
    _check(requestId, retries = 0) {
        const run = this.runs.get(requestId);
        if (!run || run.checking) {
            return run?.checking;
        }
        run.checking = this._read(requestId, run, retries).finally(() => {
            run.checking = null;
        });
        return run.checking;
    }

    async _read(requestId, run, retries) {
        for (let attempt = 0; ; attempt += 1) {
            let status;
            try {
                this.polls += 1;
                status = (await this.client.call("GET", `/v1/requests/${encodeURIComponent(requestId)}`)).value;
            } catch (err) {
                if (err.code === "request_not_found") {
                    return this._notFound(requestId, run, err);
                }
                this.log(`could not read request ${requestId}: ${err.message}`);
                return; // the next (re)connect or sweep reads it again
            }
            run.notFoundSince = null;
            if (this.runs.get(requestId) !== run) {
                return;
            }
            if (END.has(status.status)) {
                this.runs.delete(requestId);
                run.handler.onEnd(status);
                if (this.runs.size === 0) {
                    this.close();
                }
                return;
            }
            run.handler.onStatus?.(status.status);
            if (attempt >= retries) {
                return;
            }
            await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        }
    }

    _notFound(requestId, run, err) {
        // A gateway that restarted forgets requests no worker has recorded yet: keep following
        // for a while before giving up.
        run.notFoundSince = run.notFoundSince ?? this.now();
        if (this.now() - Math.max(run.since, run.notFoundSince) >= this.lostAfterS) {
            this.runs.delete(requestId);
            run.handler.onLost?.(err);
        }
    }

    /** Read every followed run, `concurrency` at a time. */
    async _sweep() {
        if (this.sweeping) {
            this.sweepAgain = true;
            return;
        }
        this.sweeping = true;
        try {
            do {
                this.sweepAgain = false;
                const ids = [...this.runs.keys()];
                let next = 0;
                const worker = async () => {
                    while (next < ids.length) {
                        await this._check(ids[next++]);
                    }
                };
                await Promise.all(Array.from({ length: Math.min(this.concurrency, ids.length) }, worker));
            } while (this.sweepAgain);
        } finally {
            this.sweeping = false;
        }
    }
}

module.exports = { RunFollower, END };
