"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { helper, flowWith, load, collect, until, withGateway } = require("./support");

const TASK = "ab".repeat(32);

function enqueueNode(extra = {}) {
    return { id: "enq", type: "mlbus enqueue", server: "srv", task_id: TASK, queue_name: "", input: "payload", inputType: "msg", wires: [["out1"], ["out2"]], ...extra };
}

test("a run's end arrives on the second output with its timeline; the first output at once", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [enqueueNode()]));
        const first = collect("out1");
        const second = collect("out2");
        const enq = helper.getNode("enq");
        enq.receive({ payload: { lr: 0.01, "Args/batch_size": 64 }, topic: "nightly", mine: 7 });
        await until(() => first.length === 1, 5000, "output 1");
        const rid = first[0].request_id;
        assert.equal(first[0].payload.status, "queued");
        assert.equal(first[0].payload.queue, "gpu-a100");
        const sent = gw.requests.find((r) => r.path === "/v1/enqueue");
        assert.deepEqual(sent.body, { task_id: TASK, input: { lr: 0.01, "Args/batch_size": 64 } });
        assert.ok(sent.headers["idempotency-key"]);
        await until(() => gw.openStreams === 1, 5000, "the stream");
        assert.equal(second.length, 0);

        gw.setStatus(rid, "running");
        await until(() => enq.status.lastCall?.args[0].text === "1 running", 5000, "running status");
        gw.setStatus(rid, "completed");
        await until(() => second.length === 1, 5000, "output 2");
        const end = second[0];
        assert.equal(end.request_id, rid);
        assert.equal(end.status, "completed");
        assert.equal(end.topic, "nightly");
        assert.equal(end.mine, 7);
        assert.deepEqual(end.payload.timeline.map((t) => t.status), ["accepted", "queued", "running", "completed"]);
        assert.deepEqual(end.payload.input, { lr: 0.01, "Args/batch_size": 64 }); // passed through as the gateway says
        assert.deepEqual(enq.status.lastCall.args[0], { fill: "green", shape: "dot", text: "completed" });
    });
});

test("a failed run ends on output 2 with the task's own error and a red status", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [enqueueNode()]));
        const first = collect("out1");
        const second = collect("out2");
        helper.getNode("enq").receive({ payload: {} });
        await until(() => first.length === 1 && gw.openStreams === 1);
        gw.setStatus(first[0].request_id, "failed", { error: "CUDA out of memory" });
        await until(() => second.length === 1);
        assert.equal(second[0].status, "failed");
        assert.equal(second[0].payload.error, "CUDA out of memory");
        assert.equal(helper.getNode("enq").status.lastCall.args[0].fill, "red");
    });
});

test("1,000 runs in flight share one stream connection and each ends once", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [enqueueNode()]));
        const first = collect("out1");
        const second = collect("out2");
        const n = 1000;
        const started = Date.now();
        for (let i = 0; i < n; i += 1) helper.getNode("enq").receive({ payload: { i } });
        await until(() => first.length === n, 60000, "all accepted").catch((e) => { throw new Error(`${e.message}: ${first.length}, reqs ${gw.requests.length}, state ${helper.getNode("srv").stream.state}`); });
        await until(() => gw.openStreams === 1);
        assert.equal(helper.getNode("srv").follower.size, n);
        assert.equal(helper.getNode("enq").status.lastCall.args[0].text, `${n} queued`);
        const ending = Date.now();
        for (const m of first) gw.setStatus(m.request_id, "completed");
        await until(() => second.length === n, 30000, "all ends");
        const ended = Date.now();
        assert.equal(gw.streamOpens.length, 1); // one connection for all of them
        assert.equal(new Set(second.map((m) => m.request_id)).size, n);
        assert.deepEqual(second.map((m) => m.payload.i === undefined), Array(n).fill(true));
        // each end read once after its notification, plus the first connection's one sweep
        const reads = gw.requests.filter((r) => r.path.startsWith("/v1/requests/")).length;
        assert.ok(reads <= 2 * n, `${reads} reads`);
        assert.equal(helper.getNode("srv").follower.size, 0);
        assert.equal(helper.getNode("enq").status.lastCall.args[0].text, "completed");
        console.log(`# many runs: ${n} in flight on ${gw.streamOpens.length} connection; accepted in ${ending - started} ms, ${n} ends delivered in ${ended - ending} ms, ${reads} status reads`);
    });
});

test("a refused enqueue goes to Catch with the gateway's code; nothing is followed", async () => {
    await withGateway({}, async (gw) => {
        gw.enqueueAnswer = () => ({ status: 429, body: { code: "quota_exceeded", message: "Too many runs.", request_id: "r429" }, headers: { "retry-after": "30" } });
        await load(flowWith(gw, [enqueueNode()]));
        const caught = collect("caught");
        const first = collect("out1");
        helper.getNode("enq").receive({ payload: {} });
        await until(() => caught.length === 1);
        assert.equal(caught[0].error.code, "quota_exceeded");
        assert.equal(caught[0].statusCode, 429);
        assert.equal(caught[0].retryAfter, 30);
        assert.match(caught[0].error.message, /Too many runs/);
        assert.equal(first.length, 0);
        assert.equal(gw.openStreams, 0);
    });
});

test("msg.task_id and msg.queue_name override the node; a missing task id is caught", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [enqueueNode({ task_id: "" })]));
        const caught = collect("caught");
        const first = collect("out1");
        helper.getNode("enq").receive({ payload: {} });
        await until(() => caught.length === 1);
        assert.equal(caught[0].error.code, "invalid_input");
        helper.getNode("enq").receive({ payload: '{"lr": 1}', task_id: "cd".repeat(32), queue_name: "auto" });
        await until(() => first.length === 1);
        const sent = gw.requests.find((r) => r.path === "/v1/enqueue");
        assert.deepEqual(sent.body, { task_id: "cd".repeat(32), queue_name: "auto", input: { lr: 1 } });
        assert.match(first[0].payload.queue_choice, /^auto:/);
    });
});

test("an end that happens while the stream is cut arrives after the reconnect (Last-Event-ID)", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [enqueueNode()]));
        const first = collect("out1");
        const second = collect("out2");
        helper.getNode("enq").receive({ payload: {} });
        helper.getNode("enq").receive({ payload: {} });
        await until(() => first.length === 2 && gw.openStreams === 1);
        const reads = () => gw.requests.filter((r) => r.path.startsWith("/v1/requests/")).length;
        await until(() => reads() === 2, 5000, "the first connection's reads"); // done, not racing
        gw.setStatus(first[0].request_id, "running");
        await until(() => helper.getNode("srv").stream.lastId !== null);
        const lastSeen = helper.getNode("srv").stream.lastId;
        gw.cutStreams();
        gw.setStatus(first[0].request_id, "completed"); // nobody listens now
        await until(() => second.length === 1, 8000, "the end after reconnecting");
        assert.equal(second[0].request_id, first[0].request_id);
        assert.equal(gw.streamOpens.length, 2);
        assert.equal(gw.streamOpens[1].lastEventId, lastSeen);
        gw.setStatus(first[1].request_id, "stopped");
        await until(() => second.length === 2);
        assert.equal(second[1].status, "stopped");
    });
});

test("following survives a gateway restart: a run that ended meanwhile is read on reconnect", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [enqueueNode()]));
        const first = collect("out1");
        const second = collect("out2");
        helper.getNode("enq").receive({ payload: {} });
        await until(() => first.length === 1 && gw.openStreams === 1);
        await gw.stop();
        await until(() => helper.getNode("srv").stream.state === "waiting", 5000, "the cut to be seen");
        gw.runs.get(first[0].request_id).status = "completed"; // ended while the gateway was down
        gw.notifications = []; // and the restarted gateway has no notification to replay
        await gw.start();
        await until(() => second.length === 1, 10000, "the end after the restart");
        assert.equal(second[0].status, "completed");
    });
});
