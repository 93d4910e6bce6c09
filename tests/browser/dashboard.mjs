// The dashboard in headless Chromium, against a garrison that ran the demo:
//   node dashboard.mjs <expected.json> <screenshot.png>
// expected.json: {url, key_id, secret, deployment_name, vpcs, protected, appliances, appliance}
// Exits non-zero with the first failed check; prints each check as it passes.
import assert from "node:assert/strict";
import fs from "node:fs";
import { ok, openPage } from "./common.mjs";

const [expectPath, shot] = process.argv.slice(2);
const want = JSON.parse(fs.readFileSync(expectPath, "utf8"));

const { browser, page, problems } = await openPage();
try {
  await page.goto(want.url);
  await page.fill("input[name=access_key_id]", want.key_id);
  await page.fill("input[name=secret_key]", "not-the-secret");
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.getElementById("signin-error").textContent.length > 0);
  ok(`a wrong secret is refused: ${await page.textContent("#signin-error")}`);
  // The failed sign-in logs the 401 as a console error; only later problems count.
  problems.length = 0;

  await page.fill("input[name=secret_key]", want.secret);
  await page.click("button[type=submit]");
  const row = page.locator("[data-testid=deployment-row]", { hasText: want.deployment_name });
  await row.waitFor();
  assert.equal(await row.locator("[data-testid=deployment-status]").textContent(), "ok");
  ok(`signed in; deployment ${want.deployment_name} listed as ok`);

  await row.getByRole("link", { name: want.deployment_name }).click();
  await page.locator("[data-testid=vpc]").first().waitFor();
  assert.equal(await page.locator("[data-testid=vpc]").count(), want.vpcs, "VPCs shown");
  assert.equal(await page.locator("[data-testid=vpc][data-status=protected]").count(), want.protected, "protected VPCs");
  assert.equal(await page.textContent("[data-testid=protected-count]"), String(want.protected));
  assert.equal(await page.locator("[data-testid=appliance]").count(), want.appliances, "appliance rows");
  assert.equal(await page.textContent("[data-testid=appliance-count]"), String(want.appliances));
  for (const [vpc, status] of Object.entries(want.vpc_status)) {
    assert.equal(await page.getAttribute(`[data-testid=vpc][data-vpc="${vpc}"]`, "data-status"), status, vpc);
  }
  ok(`${want.vpcs} VPCs (${want.protected} protected) and ${want.appliances} appliances, each VPC with its status`);
  assert.match(await page.textContent("[data-testid=cost]"), /^\$\d+\.\d\d\/month$/);
  assert.notEqual(await page.textContent("[data-testid=audit-health]"), "failed");
  ok(`cost ${await page.textContent("[data-testid=cost]")}, audit source ${await page.textContent("[data-testid=audit-health]")}`);
  // The health panel: nothing weakens the demo's protection.
  assert.equal(await page.textContent("[data-testid=health-status]"), "healthy");
  await page.locator("[data-testid=no-health-items]").waitFor();
  ok("health: nothing weakens its protection");
  // What the tuning option costs, and each VPC's cost.
  assert.match(await page.textContent(`[data-testid=option-cost][data-option="${want.option}"]`), /\+\$0\.00\/month$/);
  if (want.vpc_cost) {
    assert.equal(await page.locator(`[data-testid=vpc][data-vpc="${want.vpc_cost.vpc}"] [data-testid=vpc-cost]`).first().textContent(), want.vpc_cost.text);
  }
  ok(`option ${want.option} costs nothing; VPC cost shown (${want.vpc_cost ? want.vpc_cost.text : "–"})`);
  // Traffic mirroring (span_port_enabled): how many interfaces a VPC mirrors to its IDS.
  assert.equal(await page.locator(`[data-testid=vpc][data-vpc="${want.mirrored.vpc}"] [data-testid=vpc-mirrored]`).first().textContent(), want.mirrored.text);
  ok(`mirroring shown: ${want.mirrored.vpc}${want.mirrored.text}`);
  // The findings put on the default bus: listed highest first, beside their VPC.
  const finding = page.locator(`[data-testid=finding][data-finding="${want.finding.id}"]`);
  await finding.waitFor({ timeout: 60000 });
  assert.equal(await finding.getAttribute("data-severity"), want.finding.severity);
  assert.equal(await finding.locator("[data-testid=finding-asset]").textContent(), want.finding.asset);
  assert.equal(await finding.locator("[data-testid=finding-unprotected]").count(), 0, "its VPC is protected");
  await finding.locator("[data-testid=finding-asset]").click();
  const vpcBox = page.locator(`[data-testid=vpc][data-vpc="${want.finding.vpc}"]`);
  assert.ok((await vpcBox.getAttribute("class")).includes("selected"), "the link leads to its VPC");
  assert.match(await vpcBox.locator("[data-testid=vpc-findings]").first().textContent(), /1 active finding/);
  ok(`finding ${want.finding.id} (${want.finding.severity}) shown beside VPC ${want.finding.vpc}`);
  if (want.exposed) {
    const ex = page.locator(`[data-testid=finding][data-finding="${want.exposed.id}"]`);
    await ex.waitFor({ timeout: 60000 });
    assert.equal(await ex.locator("[data-testid=finding-unprotected]").count(), 1);
    const rows = await page.locator("[data-testid=finding]").evaluateAll((rs) => rs.map((r) => r.dataset.finding));
    assert.equal(rows[0], want.exposed.id, "critical first");
    ok(`finding ${want.exposed.id} says its asset is not protected`);
  }

  const fresh = await page.textContent("[data-testid=feed-freshness]");
  assert.ok(fresh.includes(want.feed) && fresh.includes("last event") && fresh.includes("last log file"), fresh);
  ok(`freshness: ${fresh}`);

  await page.click(`[data-testid=appliance][data-instance="${want.appliance}"]`);
  await page.waitForFunction(
    (id) => document.querySelector("[data-testid=activity-subject]")?.textContent === id,
    want.appliance,
  );
  const entries = page.locator("[data-testid=activity-entry]");
  const n = await entries.count();
  assert.ok(n >= 1, "the appliance has activity");
  for (let i = 0; i < n; i++) {
    assert.ok((await entries.nth(i).textContent()).includes(want.appliance), "every entry is about the appliance");
  }
  assert.ok((await entries.allTextContents()).some((t) => t.includes("RunInstances")), "its launch is in the activity");
  ok(`following appliance ${want.appliance}: ${n} entr(y/ies), its RunInstances among them`);

  // The page refreshes itself; the selection survives a refresh.
  await page.waitForTimeout(2500);
  assert.equal(await page.textContent("[data-testid=activity-subject]"), want.appliance);
  ok("the view refreshes itself and keeps the selection");

  await page.screenshot({ path: shot, fullPage: true });
  ok(`screenshot ${shot}`);

  // While the page stays open, the deployment changes through the API (one VPC excluded):
  // the page follows the change and the reconcile that removes the VPC's appliances.
  const basic = Buffer.from(`${want.key_id}:${want.secret}`).toString("base64");
  const auth = await (await fetch(`${want.url}/aims/v1/authenticate`, { method: "POST", headers: { authorization: `Basic ${basic}` } })).json();
  const headers = { "x-aims-auth-token": auth.authentication.token, "content-type": "application/json" };
  const depUrl = `${want.url}/deployments/v1/${auth.authentication.account.id}/deployments/${want.deployment_id}`;
  const dep = await (await fetch(depUrl, { headers })).json();
  dep.scope.exclude.push({ type: "vpc", key: `/aws/${want.exclude.region}/vpc/${want.exclude.vpc}` });
  const put = await fetch(depUrl, { method: "PUT", headers, body: JSON.stringify({ scope: dep.scope, version: dep.version }) });
  assert.equal(put.status, 200, await put.text());
  await page.waitForFunction(
    (vpc) => document.querySelector(`[data-testid=vpc][data-vpc="${vpc}"]`)?.dataset.status === "excluded",
    want.exclude.vpc,
  );
  const left = String(want.appliances - want.exclude.appliances);
  await page.waitForFunction((n) => document.querySelector("[data-testid=appliance-count]")?.textContent === n, left, { timeout: 90000 });
  assert.equal(await page.locator(`[data-testid=vpc][data-vpc="${want.exclude.vpc}"] [data-testid=appliance]`).count(), 0);
  ok(`without a reload: ${want.exclude.vpc} excluded, then its appliance(s) removed by the reconcile (${left} left)`);

  await page.click("[data-testid=plan-button]");
  await page.waitForFunction(() => document.querySelector("[data-testid=plan-counts]"), null, { timeout: 60000 });
  assert.match(await page.textContent("[data-testid=plan-counts]"), /^0 action\(s\)/);
  assert.match(await page.textContent("[data-testid=plan-cost]"), /^Appliances: \$\d+\.\d\d\/month now, \$\d+\.\d\d\/month planned \(\+\$0\.00\)$/);
  ok(`plan preview after the reconcile: ${await page.textContent("[data-testid=plan-counts]")}`);
  assert.deepEqual(problems, [], "no script errors or blocked resources");
  ok("no script errors");
} finally {
  await browser.close();
}
