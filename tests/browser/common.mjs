// What the browser tests share: headless Chromium (Debian's) with a page that records
// script errors, console errors and failed responses, and the check printer.
import { chromium } from "playwright-core";

export const ok = (what) => console.log(`ok - ${what}`);

// The browser and a page; `problems` collects what went wrong on the page.
export async function openPage() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.setDefaultTimeout(30000);
  return { browser, page, problems };
}
