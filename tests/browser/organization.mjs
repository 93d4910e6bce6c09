// The organization view in headless Chromium, against a garrison that enrolled an organization:
//   node organization.mjs <expected.json> <screenshot.png>
// expected.json: {url, key_id, secret, org_id, org_name, role, members: {account: state},
//                 excluded: {account: why}, deployment_name}
// Exits non-zero with the first failed check; prints each check as it passes.
import assert from "node:assert/strict";
import fs from "node:fs";
import { ok, openPage } from "./common.mjs";

const [expectPath, shot] = process.argv.slice(2);
const want = JSON.parse(fs.readFileSync(expectPath, "utf8"));

const { browser, page, problems } = await openPage();
try {
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });

  await page.goto(want.url);
  await page.fill("input[name=access_key_id]", want.key_id);
  await page.fill("input[name=secret_key]", want.secret);
  await page.click("button[type=submit]");
  const row = page.locator(`[data-testid=organization-row][data-organization="${want.org_id}"]`);
  await row.waitFor();
  assert.equal(await row.locator("[data-testid=organization-status]").textContent(), "ok");
  const enrolled = Object.values(want.members).filter((s) => s === "enrolled").length;
  assert.equal(await row.locator("[data-testid=org-enrolled]").textContent(), String(enrolled));
  assert.equal(await row.locator("[data-testid=org-failed]").textContent(), "0");
  assert.equal(await row.locator("[data-testid=org-excluded]").textContent(), String(Object.keys(want.excluded).length));
  ok(`organization ${want.org_name} listed: ok, ${enrolled} enrolled, ${Object.keys(want.excluded).length} left out`);

  await row.getByRole("link", { name: want.org_name }).click();
  await page.locator("[data-testid=member-row]").first().waitFor();
  assert.equal(await page.textContent("[data-testid=organization-name]"), want.org_name);
  assert.equal(await page.textContent("[data-testid=org-role]"), want.role);
  assert.equal(await page.textContent("[data-testid=org-events]"), "rule and queue in place");
  assert.equal(await page.locator("[data-testid=member-row]").count(), Object.keys(want.members).length);
  for (const [acct, state] of Object.entries(want.members)) {
    const m = page.locator(`[data-testid=member-row][data-account="${acct}"]`);
    assert.equal(await m.getAttribute("data-state"), state, acct);
    await page.waitForFunction(
      (a) => document.querySelector(`[data-testid=member-row][data-account="${a}"] [data-testid=member-deployment-status]`)?.textContent === "ok",
      acct, { timeout: 90000 });
  }
  ok(`accounts ${Object.keys(want.members).join(", ")}: enrolled, each deployment ok; role ${want.role}`);
  for (const [acct, why] of Object.entries(want.excluded)) {
    assert.equal(await page.getAttribute(`[data-testid=excluded-row][data-account="${acct}"]`, "data-why"), why, acct);
  }
  ok(`left out with why: ${JSON.stringify(want.excluded)}`);

  await page.locator("[data-testid=member-row] a", { hasText: want.deployment_name }).click();
  await page.locator("[data-testid=vpc]").first().waitFor();
  ok(`a member's deployment opens: ${want.deployment_name}`);

  await page.goBack();
  await page.locator("[data-testid=member-row]").first().waitFor();
  await page.screenshot({ path: shot, fullPage: true });
  ok(`screenshot ${shot}`);
  assert.deepEqual(problems, [], "no script errors or blocked resources");
  ok("no script errors");
} finally {
  await browser.close();
}
