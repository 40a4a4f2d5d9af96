"use strict";
/**
 * Keycloak tokens for one server: the password grant (a user's name and password) or the
 * client-credentials grant (a client id and secret). One token is shared by every node of the
 * server; it is renewed before it expires (the refresh token while that is valid, else a new
 * grant), and concurrent callers share one renewal.
 */
const { MlbusError } = require("./errors");

const MARGIN_S = 30; // renew this long before expiry (a quarter of the lifetime for short tokens)

class TokenSource {
    /**
     * @param {object} o
     * @param {string} o.tokenUrl  `<realm URL>/protocol/openid-connect/token`
     * @param {string} o.clientId
     * @param {string} [o.clientSecret]
     * @param {string} [o.username]  with a password: the password grant; without: client credentials
     * @param {string} [o.password]
     * @param {() => number} [o.now]  seconds
     */
    constructor({ tokenUrl, clientId, clientSecret, username, password, now, fetchImpl }) {
        this.tokenUrl = tokenUrl;
        this.clientId = clientId;
        this.clientSecret = clientSecret || "";
        this.username = username || "";
        this.password = password || "";
        this.now = now || (() => Date.now() / 1000);
        this.fetch = fetchImpl || fetch;
        this.current = null; // {access, renewAt, refresh, refreshUntil}
        this.pending = null;
        this.grants = 0; // how many token calls were made (tests and status)
    }

    /** A valid access token, renewed first when it is close to expiry. */
    async token() {
        if (this.current && this.now() < this.current.renewAt) {
            return this.current.access;
        }
        if (!this.pending) {
            this.pending = this._renew().finally(() => {
                this.pending = null;
            });
        }
        return this.pending;
    }

    /** Forget the access token (the gateway refused it): the next call renews. */
    invalidate(token) {
        if (this.current && (token === undefined || this.current.access === token)) {
            this.current = { ...this.current, renewAt: 0 };
        }
    }

    async _renew() {
        const old = this.current;
        if (old && old.refresh && this.now() < old.refreshUntil) {
            try {
                return await this._grant({ grant_type: "refresh_token", refresh_token: old.refresh });
            } catch (_) {
                // an ended session (logout, idle timeout, restart): start a new one
            }
        }
        if (this.username) {
            return this._grant({ grant_type: "password", username: this.username, password: this.password });
        }
        return this._grant({ grant_type: "client_credentials" });
    }

    async _grant(fields) {
        const form = new URLSearchParams({ client_id: this.clientId, ...fields });
        if (this.clientSecret) {
            form.set("client_secret", this.clientSecret);
        }
        this.grants += 1;
        let response;
        try {
            response = await this.fetch(this.tokenUrl, {
                method: "POST",
                headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
                body: form.toString(),
                signal: AbortSignal.timeout(15000),
            });
        } catch (err) {
            throw new MlbusError(`token_failed: ${this.tokenUrl} did not answer (${err.message})`, { code: "token_failed" });
        }
        let body = {};
        try {
            body = await response.json();
        } catch (_) {
            body = {};
        }
        if (!response.ok || typeof body.access_token !== "string") {
            const why = body.error_description || body.error || `HTTP ${response.status}`;
            throw new MlbusError(`token_failed: ${why}`, { code: "token_failed", status: response.status });
        }
        const now = this.now();
        const life = Number(body.expires_in) || 60;
        const refreshLife = Number(body.refresh_expires_in) || 0;
        this.current = {
            access: body.access_token,
            renewAt: now + life - Math.min(MARGIN_S, life / 4),
            refresh: typeof body.refresh_token === "string" ? body.refresh_token : null,
            refreshUntil: now + refreshLife - Math.min(MARGIN_S, refreshLife / 4),
        };
        return this.current.access;
    }
}

module.exports = { TokenSource };
