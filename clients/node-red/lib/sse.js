"use strict";
/** Server-Sent Events from a fetch body (WHATWG's parsing rules, the parts a gateway uses). */

/**
 * Yields `{id, event, data}` for each event of `body` (an async iterable of bytes). `id` is
 * undefined when the event has none (the stream's last id stays as it was).
 */
async function* events(body) {
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let event = "";
    let id;
    for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buffer.search(/\r\n|\r|\n/)) >= 0) {
            const line = buffer.slice(0, cut);
            buffer = buffer.slice(cut + (buffer.startsWith("\r\n", cut) ? 2 : 1));
            if (line === "") {
                if (data.length > 0 || event) {
                    yield { id, event: event || "message", data: data.join("\n") };
                }
                data = [];
                event = "";
                id = undefined;
                continue;
            }
            if (line.startsWith(":")) {
                yield { comment: true }; // a keep-alive: the connection is alive
                continue;
            }
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? "" : line.slice(colon + 1);
            if (value.startsWith(" ")) {
                value = value.slice(1);
            }
            if (field === "data") {
                data.push(value);
            } else if (field === "event") {
                event = value;
            } else if (field === "id") {
                id = value;
            }
        }
    }
}

module.exports = { events };
