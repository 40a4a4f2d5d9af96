"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { helper, flowWith, load, collect, until, withGateway } = require("./support");

const MACHINE = "cd".repeat(32);

function ondemandNode(extra = {}) {
    return { id: "od", type: "mlbus ondemand", server: "srv", machine_id: MACHINE, endpoint: "parking_free_slots", version: "", input: "payload", inputType: "msg", wires: [["out1"]], ...extra };
}

test("ondemand: the model's answer becomes msg.payload", async () => {
    await withGateway({}, async (gw) => {
        gw.ondemand = (body) => ({ status: 200, body: { status: "ok", request_id: "od42", output: { free_slots: 7, echo: body.input } } });
        await load(flowWith(gw, [ondemandNode()]));
        const out = collect("out1");
        helper.getNode("od").receive({ payload: { capacity: 120 }, version: "2" });
        await until(() => out.length === 1);
        assert.deepEqual(out[0].payload, { free_slots: 7, echo: { capacity: 120 } });
        assert.equal(out[0].request_id, "od42");
        const sent = gw.requests.find((r) => r.path === "/v1/ondemand");
        assert.deepEqual(sent.body, { machine_id: MACHINE, endpoint: "parking_free_slots", version: "2", input: { capacity: 120 } });
        assert.match(helper.getNode("od").status.lastCall.args[0].text, /^ok in \d+ ms$/);
    });
});

for (const [status, code, headers] of [
    [422, "model_rejected", {}],
    [502, "model_failed", {}],
    [504, "model_timeout", {}],
    [429, "quota_exceeded", { "retry-after": "12" }],
]) {
    test(`ondemand: a ${status} goes to Catch with code ${code}`, async () => {
        await withGateway({}, async (gw) => {
            gw.ondemand = () => ({ status, body: { code, message: `it went ${code}`, request_id: "r1", details: { detail: "x" } }, headers });
            await load(flowWith(gw, [ondemandNode()]));
            const out = collect("out1");
            const caught = collect("caught");
            helper.getNode("od").receive({ payload: {} });
            await until(() => caught.length === 1);
            assert.equal(caught[0].error.code, code);
            assert.equal(caught[0].statusCode, status);
            assert.equal(caught[0].request_id, "r1");
            assert.deepEqual(caught[0].errorDetails, { detail: "x" });
            assert.equal(caught[0].error.source.id, "od");
            assert.equal(caught[0].retryAfter, status === 429 ? 12 : undefined);
            assert.equal(out.length, 0);
            assert.deepEqual(helper.getNode("od").status.lastCall.args[0], { fill: "red", shape: "dot", text: code });
        });
    });
}

test("ondemand: a gateway that does not answer is gateway_unreachable", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [ondemandNode()], { url: "http://127.0.0.1:9" }));
        const caught = collect("caught");
        helper.getNode("od").receive({ payload: {} });
        await until(() => caught.length === 1);
        assert.equal(caught[0].error.code, "gateway_unreachable");
    });
});

test("tokens: one token is shared, renewed by refresh before it expires, and a 401 renews it", async () => {
    await withGateway({ tokenLifeS: 2 }, async (gw) => {
        await load(flowWith(gw, [ondemandNode()]));
        const out = collect("out1");
        const od = helper.getNode("od");
        od.receive({ payload: 1 });
        od.receive({ payload: 2 });
        await until(() => out.length === 2);
        assert.deepEqual(gw.grants, ["password"]); // two calls at once, one sign-in
        await new Promise((r) => setTimeout(r, 1600)); // within the last quarter of its 2 s life
        od.receive({ payload: 3 });
        await until(() => out.length === 3);
        assert.deepEqual(gw.grants, ["password", "refresh_token"]);
        gw.tokens.clear(); // the gateway no longer accepts it (a key rotation)
        gw.refreshTokens.clear(); // and the session ended: a new sign-in
        od.receive({ payload: 4 });
        await until(() => out.length === 4);
        // the refresh token is tried first, refused, then a new sign-in
        assert.deepEqual(gw.grants, ["password", "refresh_token", "refresh_token", "password"]);
        const calls = gw.requests.filter((r) => r.path === "/v1/ondemand");
        assert.equal(calls.length, 5); // the refused call, then its one retry
        assert.equal(calls[3].headers["idempotency-key"], calls[4].headers["idempotency-key"]);
    });
});

test("tokens: the client-credentials grant, the secret from the credentials store", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [ondemandNode()], { grant: "client_credentials", clientId: "mlbus-service" }), { srv: { clientSecret: "secret" } });
        const out = collect("out1");
        helper.getNode("od").receive({ payload: 1 });
        await until(() => out.length === 1);
        assert.deepEqual(gw.grants, ["client_credentials"]);
        const form = new URLSearchParams(gw.requests.find((r) => r.path === "/token").body);
        assert.equal(form.get("client_id"), "mlbus-service");
        assert.equal(form.get("client_secret"), "secret");
        assert.equal(form.get("username"), null);
    });
});

test("tokens: a wrong password goes to Catch as token_failed", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [ondemandNode()]), { srv: { username: "alice", password: "wrong" } });
        const caught = collect("caught");
        helper.getNode("od").receive({ payload: 1 });
        await until(() => caught.length === 1);
        assert.equal(caught[0].error.code, "token_failed");
        assert.match(caught[0].error.message, /Invalid user credentials/);
        assert.equal(gw.requests.filter((r) => r.path === "/v1/ondemand").length, 0);
    });
});

test("resources: the gateway's answer on input, and a status of free GPUs", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [{ id: "res", type: "mlbus resources", server: "srv", wires: [["out1"]] }]));
        const out = collect("out1");
        helper.getNode("res").receive({ payload: "" });
        await until(() => out.length === 1);
        assert.deepEqual(out[0].payload.gpus, { total: 8, free: 3, busy: 5 });
        assert.equal(out[0].payload.queues[0].name, "gpu-a100");
        assert.deepEqual(helper.getNode("res").status.lastCall.args[0], { fill: "green", shape: "dot", text: "3/8 GPUs free, 2 machines online" });
    });
});

function notificationsNode(extra = {}) {
    return { id: "nt", type: "mlbus notifications", server: "srv", kinds: "", severity: "info", subject: "", wires: [["out1"]], ...extra };
}

test("notifications: filtered by kind, severity and subject (a pattern; grouped subjects count)", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [notificationsNode({ kinds: "machine_offline, gpu_saturated", severity: "warning", subject: "gpu-box-*" })]));
        const out = collect("out1");
        await until(() => gw.openStreams === 1);
        gw.notify({ kind: "machine_offline", severity: "warning", subject: "gpu-box-01" }); // passes
        gw.notify({ kind: "machine_offline", severity: "info", subject: "gpu-box-02" }); // too mild
        gw.notify({ kind: "task_failed", severity: "warning", subject: "gpu-box-03" }); // other kind
        gw.notify({ kind: "gpu_saturated", severity: "critical", subject: "cpu-box" }); // other subject
        gw.notify({ kind: "machine_offline", severity: "critical", subject: "2 machines", subjects: ["x", "gpu-box-09"] }); // passes
        await until(() => out.length === 2);
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(out.map((m) => m.payload.subject), ["gpu-box-01", "2 machines"]);
        assert.equal(out[0].topic, "machine_offline");
        assert.equal(out.length, 2);
    });
});

test("notifications: nothing is missed or repeated across a cut and the token's end", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [notificationsNode()]));
        const out = collect("out1");
        await until(() => gw.openStreams === 1);
        gw.notify({ kind: "a", subject: "1" });
        await until(() => out.length === 1);
        gw.cutStreams();
        gw.notify({ kind: "a", subject: "2" }); // while cut
        await until(() => out.length === 2, 8000, "the missed one after the reconnect");
        gw.expireStreams(); // the gateway ends the stream: the token expired
        gw.notify({ kind: "a", subject: "3" });
        await until(() => out.length === 3, 8000, "the one after the token's end");
        gw.notify({ kind: "a", subject: "4" });
        await until(() => out.length === 4);
        assert.deepEqual(out.map((m) => m.payload.subject), ["1", "2", "3", "4"]);
        assert.deepEqual(gw.streamOpens.map((o) => o.lastEventId), [null, gw.notifications[0].id, gw.notifications[1].id]);
        assert.equal(gw.grants.length, 2); // a new token for the stream after token_expired
        assert.deepEqual(helper.getNode("nt").status.lastCall.args[0].fill, "green");
    });
});

test("notifications: a refused token shows on the node's status", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [notificationsNode()]), { srv: { username: "alice", password: "wrong" } });
        await until(() => helper.getNode("nt").status.lastCall?.args[0].text === "token_failed");
        assert.equal(helper.getNode("nt").status.lastCall.args[0].fill, "red");
    });
});

test("the editor's catalog: a deployed server's GET /v1/catalog, read with its identity", async () => {
    await withGateway({}, async (gw) => {
        await load(flowWith(gw, [ondemandNode()]));
        const answer = await helper.request().get("/mlbus-server/srv/catalog").expect(200);
        assert.equal(answer.body.tasks[0].description, "parking");
        await helper.request().get("/mlbus-server/nope/catalog").expect(404);
    });
});
