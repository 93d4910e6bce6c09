// Single sign-on in headless Chromium through a real OpenID provider (oidc-provider, run here on
// loopback with its development login and consent pages):
//   node sso.mjs <expected.json> <screenshot.png>
// expected.json: {url, provider_port, client_id, client_secret, account, deployment_name, mapping}
// The provider's token answers can be altered on demand (a tampered ID token, one for another
// audience) and its signing key replaced (rotation), as an attacker or the provider would.
// Exits non-zero with the first failed check; prints each check as it passes.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import * as jose from "jose";
import Provider from "oidc-provider";
import { ok, openPage } from "./common.mjs";

const [expectPath, shot] = process.argv.slice(2);
const want = JSON.parse(fs.readFileSync(expectPath, "utf8"));
const issuer = `http://127.0.0.1:${want.provider_port}`;

// What the next token answer gets: "pass", "tamper" (a claim changed, the signature kept) or
// "audience" (a token signed with the provider's key, for another client).
let mode = "pass";
let signingKey = null;

async function startProvider(kid) {
  const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg: "RS256", use: "sig" };
  signingKey = { privateKey, kid };
  const provider = new Provider(issuer, {
    clients: [{
      client_id: want.client_id,
      client_secret: want.client_secret,
      redirect_uris: [`${want.url}/auth/callback`],
      response_types: ["code"],
      grant_types: ["authorization_code"],
    }],
    jwks: { keys: [jwk] },
    claims: { openid: ["sub"], email: ["email"], groups: ["groups"] },
    scopes: ["openid", "email", "groups"],
    conformIdTokenClaims: false,
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({
        sub: id,
        email: `${id}@example.com`,
        groups: id.startsWith("admin") ? ["garrison-admins"] : ["garrison-readers"],
      }),
    }),
    features: { devInteractions: { enabled: true } },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/token" && ctx.body && ctx.body.id_token && mode !== "pass") {
      const [h, p, s] = ctx.body.id_token.split(".");
      const claims = JSON.parse(Buffer.from(p, "base64url").toString());
      if (mode === "tamper") {
        claims.groups = ["garrison-admins"];
        ctx.body.id_token = [h, Buffer.from(JSON.stringify(claims)).toString("base64url"), s].join(".");
      } else if (mode === "audience") {
        claims.aud = "another-client";
        ctx.body.id_token = await new jose.SignJWT(claims)
          .setProtectedHeader({ alg: "RS256", kid: signingKey.kid })
          .sign(signingKey.privateKey);
      }
      mode = "pass";
    }
  });
  const server = http.createServer(provider.callback());
  await new Promise((resolve) => server.listen(want.provider_port, "127.0.0.1", resolve));
  return server;
}

// A page of another site (localhost is not 127.0.0.1's site) that posts to garrison.
const evil = http.createServer((_req, res) => {
  res.setHeader("content-type", "text/html");
  res.end(`<!doctype html><form id=f method=post action="${want.url}/credentials/v2/${want.account}/credentials">
    <input name=name value=evil></form>
    <script>fetch("${want.url}/credentials/v2/${want.account}/credentials", {method: "POST", credentials: "include",
      headers: {"content-type": "text/plain"}, body: '{"name": "evil"}'}).catch(() => null)
      .finally(() => document.getElementById("f").submit());</script>`);
});
await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
const evilUrl = `http://localhost:${evil.address().port}/`;

let provider = await startProvider("key-1");
const { browser, page, problems } = await openPage();

// Signs in through the provider in a fresh browser context; returns the page and the callback
// URL garrison was sent to.
async function signIn(login, { expectDashboard = true } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  p.setDefaultTimeout(30000);
  p.on("pageerror", (e) => problems.push(`page error (${login}): ${e.message}`));
  let callback = null;
  p.on("request", (r) => { if (r.url().startsWith(`${want.url}/auth/callback`)) callback = r.url(); });
  await p.goto(want.url);
  await p.click("[data-testid=sso-link]");
  await p.waitForURL(`${issuer}/**`);
  await p.fill("input[name=login]", login);
  await p.fill("input[name=password]", "any");
  await p.click("button[type=submit]");
  // The provider's consent page, the first time this client asks.
  await p.waitForURL((u) => u.href.startsWith(want.url) || /interaction/.test(u.href));
  if (!p.url().startsWith(want.url)) {
    await p.click("button[type=submit]");
  }
  await p.waitForURL((u) => u.href.startsWith(want.url));
  if (expectDashboard) {
    await p.locator("[data-testid=deployment-row]", { hasText: want.deployment_name }).waitFor();
  }
  return { context, p, callback };
}

const csrfPut = (p, enabled) => p.evaluate(async ([account, name, enabled]) => {
  const s = await (await fetch("/auth/session")).json();
  const list = await (await fetch(`/deployments/v1/${account}/deployments`)).json();
  const d = list.find((x) => x.name === name);
  const r = await fetch(`/deployments/v1/${account}/deployments/${d.id}`, {
    method: "PUT", headers: { "content-type": "application/json", "x-csrf-token": s.csrf_token },
    body: JSON.stringify({ enabled }),
  });
  return { status: r.status, body: await r.json() };
}, [want.account, want.deployment_name, enabled]);

try {
  // A reader: sees the deployments; no button changes one, and the API refuses it.
  const reader = await signIn("reader");
  assert.match(await reader.p.textContent("#who"), /reader@example\.com \(Read Only\)/);
  const cookies = await reader.context.cookies(want.url);
  const c = cookies.find((x) => x.name === "garrison_session");
  assert.ok(c && c.httpOnly && c.sameSite === "Lax", JSON.stringify(cookies));
  assert.ok(c.expires > Date.now() / 1000 && c.expires < Date.now() / 1000 + 3700, "short-lived");
  ok("a reader signs in through the provider: HttpOnly, SameSite=Lax, short-lived session cookie");
  await reader.p.getByRole("link", { name: want.deployment_name }).click();
  await reader.p.locator("[data-testid=enabled]").waitFor();
  await reader.p.locator("[data-testid=plan-button]").waitFor();
  assert.equal(await reader.p.locator("[data-testid=toggle-enabled]").count(), 0, "no change button");
  const refused = await csrfPut(reader.p, false);
  assert.equal(refused.status, 403, JSON.stringify(refused));
  assert.match(refused.body.message, /deployments:own:update:deployment/);
  ok(`the reader sees the deployment, has no button to change it, and the API answers 403: ${refused.body.message}`);
  await reader.p.click("#signout");
  await reader.p.locator("[data-testid=sso-link]").waitFor();
  const after = await reader.p.evaluate(async () => (await (await fetch("/auth/session")).json()).signed_in);
  assert.equal(after, false, "signed out: the session is gone");
  ok("sign-out ends the session");

  // An admin: the button is there and works.
  const admin = await signIn("admin");
  assert.match(await admin.p.textContent("#who"), /admin@example\.com \(Administrator\)/);
  await admin.p.getByRole("link", { name: want.deployment_name }).click();
  await admin.p.locator("[data-testid=toggle-enabled]").waitFor();
  assert.equal(await admin.p.textContent("[data-testid=enabled]"), "yes");
  await admin.p.click("[data-testid=toggle-enabled]");
  await admin.p.waitForFunction(() => document.querySelector("[data-testid=enabled]")?.textContent === "no");
  ok("an admin signs in, sees the button, and disables the deployment with it");

  // The provider's answer used again (the state was taken once): refused.
  assert.ok(admin.callback, "the callback was seen");
  const replay = await admin.context.request.get(admin.callback, { maxRedirects: 0 });
  assert.equal(replay.status(), 400);
  assert.match(await replay.text(), /already used or has expired/);
  ok("a replayed state is refused (400)");

  // Login CSRF: a sign-in started by an attacker (its state) finished in a victim's browser
  // is refused before any code is exchanged: the state is bound to the browser that started it.
  const attacker = await browser.newContext();
  const started = await attacker.request.get(`${want.url}/auth/login`, { maxRedirects: 0 });
  assert.equal(started.status(), 303);
  const st = new URL(started.headers()["location"]).searchParams.get("state");
  assert.ok(st, "the provider URL carries a state");
  const victim = await admin.context.request.get(`${want.url}/auth/callback?code=attackers-code&state=${encodeURIComponent(st)}`, { maxRedirects: 0 });
  assert.equal(victim.status(), 400, await victim.text());
  assert.match(await victim.text(), /did not start in this browser/);
  await attacker.close();
  ok("a sign-in started in another browser is refused (login CSRF)");

  // A cross-site POST with the admin's cookie: the browser does not send a Lax cookie, and a
  // request that does carry it without the CSRF token (or from another origin) is refused.
  const before = await admin.p.evaluate(async (a) => (await (await fetch(`/credentials/v2/${a}/credentials`)).json()).length, want.account);
  const ep = await admin.context.newPage();
  await ep.goto(evilUrl);
  await ep.waitForLoadState("networkidle").catch(() => null);
  const forged = await admin.context.request.post(`${want.url}/credentials/v2/${want.account}/credentials`, {
    headers: { origin: "http://localhost:9", "content-type": "application/json" },
    data: { name: "evil" },
  });
  assert.equal(forged.status(), 403, await forged.text());
  assert.match(await forged.text(), /cross-site request refused/);
  const noToken = await admin.context.request.post(`${want.url}/credentials/v2/${want.account}/credentials`, {
    headers: { "content-type": "application/json" }, data: { name: "evil" },
  });
  assert.equal(noToken.status(), 403, await noToken.text());
  const afterCount = await admin.p.evaluate(async (a) => (await (await fetch(`/credentials/v2/${a}/credentials`)).json()).length, want.account);
  assert.equal(afterCount, before, "nothing was created");
  ok("cross-site POSTs are refused: nothing created (Origin and CSRF token checked)");
  await admin.p.screenshot({ path: shot, fullPage: true });

  // A tampered ID token (a claim changed after signing) and one for another audience.
  for (const [m, why] of [["tamper", /Signature verification failed/], ["audience", /Invalid audiences/]]) {
    mode = m;
    const bad = await signIn("mallory", { expectDashboard: false });
    const text = await bad.p.textContent("body");
    assert.match(text, /the ID token was refused/, text);
    assert.match(text, why, text);
    const s = await bad.p.evaluate(async () => (await (await fetch("/auth/session")).json()).signed_in);
    assert.equal(s, false, "no session was opened");
    ok(`a ${m === "tamper" ? "tampered ID token" : "token for another audience"} is refused: ${text.slice(0, 160)}`);
    await bad.context.close();
  }

  // The provider rotates its signing key: garrison reads the new keys and signs the user in.
  provider.closeAllConnections();
  await new Promise((resolve) => provider.close(resolve));
  provider = await startProvider("key-2");
  const rotated = await signIn("admin");
  assert.match(await rotated.p.textContent("#who"), /Administrator/);
  ok("after the provider rotated its key, sign-in works (the new keys were fetched)");

  assert.deepEqual(problems, [], "no script errors on the main page");
  ok("no script errors");
} finally {
  await browser.close();
  provider.closeAllConnections();
  provider.close();
  evil.closeAllConnections();
  evil.close();
}
