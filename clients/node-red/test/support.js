"use strict";
/** What the unit tests share: the test helper, a fake gateway per test, waiting on conditions. */
const helper = require("node-red-node-test-helper");
const { FakeGateway } = require("./fake-gateway");

helper.init(require.resolve("node-red"));

const NODES = [
    require("../nodes/mlbus-server.js"),
    require("../nodes/mlbus-enqueue.js"),
    require("../nodes/mlbus-ondemand.js"),
    require("../nodes/mlbus-notifications.js"),
    require("../nodes/mlbus-resources.js"),
];

/** A server config node for `gateway` (alice, password grant) and the nodes of `flow`. */
function flowWith(gateway, nodes, server = {}) {
    const onTab = [
        { id: "out1", type: "helper" },
        { id: "out2", type: "helper" },
        { id: "caught", type: "helper" },
        { id: "catcher", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
        ...nodes,
    ].map((n) => ({ z: "tab", ...n }));
    return [
        { id: "tab", type: "tab", label: "test" },
        { id: "srv", type: "mlbus-server", url: gateway.url, tokenUrl: gateway.tokenUrl, clientId: "nodered-iotedge", grant: "password", sweepS: 0, ...server },
        ...onTab,
    ];
}

const ALICE = { srv: { username: "alice", password: "alice" } };

async function load(flow, credentials = ALICE) {
    await helper.load(NODES, flow, credentials);
}

/** Collects what a helper node receives. */
function collect(id) {
    const got = [];
    helper.getNode(id).on("input", (msg) => got.push(msg));
    return got;
}

/** Waits until `predicate()` is true (checked every 10 ms), or fails after `timeoutMs`. */
async function until(predicate, timeoutMs = 5000, what = "the condition") {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting for ${what}`);
        }
        await new Promise((r) => setTimeout(r, 10));
    }
}

async function withGateway(options, body) {
    const gateway = await new FakeGateway(options).start();
    try {
        await body(gateway);
    } finally {
        await helper.unload();
        await gateway.stop().catch(() => {});
    }
}

module.exports = { helper, flowWith, load, collect, until, withGateway, ALICE };
