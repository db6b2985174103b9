// The web console in headless Chromium. Run by
// tests/integration/test_api_console.c, which starts vigil with the seed's
// events and sets VIGIL_URL, KAFKA_BOOTSTRAPS, VIGIL_TOPIC, SCREENSHOT_DIR
// and VIGIL_TEST_HTTP_TOKEN. Uses the system chromium: playwright-core never
// downloads a browser. Any failure (chromium missing included) exits 1.
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.VIGIL_URL;
const shots = process.env.SCREENSHOT_DIR || "build/screenshots";
const FAILING = "workflow:v1:ingestion-shipment-orders:public";
const TIMEOUT = 15000 * Number(process.env.VIGIL_TEST_TIMEOUT_SCALE || 1);

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok - " + what);
}

function produce(key, event) {
  const r = spawnSync("kcat", ["-P", "-b", process.env.KAFKA_BOOTSTRAPS, "-t", process.env.VIGIL_TOPIC, "-K", "|"], {
    input: key + "|" + JSON.stringify(event) + "\n",
    encoding: "utf8",
    timeout: 30000,
  });
  if (r.status !== 0) throw new Error("kcat failed: " + (r.stderr || r.error));
}

async function rowsOf(page) {
  return page.$$eval("#resources tbody tr", (trs) =>
    trs.map((tr) => ({
      id: tr.dataset.id,
      cls: tr.className,
      name: tr.querySelector("td.name").textContent.trim(),
      status: tr.querySelector("td.status").textContent.trim(),
      runtime: tr.querySelector("td.runtime").textContent.trim(),
    }))
  );
}

mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "vigil-chromium-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    // The refused silence (403) is logged by the browser as a failed load: expected.
    if (m.type() === "error" && !m.text().includes("status of 403")) errors.push(m.text());
  });

  // 1. The Resources table, then a search for "ingestion".
  await page.goto(base + "/");
  await page.waitForSelector("#resources tbody tr");
  check((await page.title()).includes("Resources"), "the console loads");
  check(
    (await page.$$eval("#resources thead th", (ths) => ths.map((t) => t.textContent.trim()))).join(" ") ===
      "NAME VERSION TYPE WORKSPACE STATUS RUNTIME OWNER HEALTH SINCE",
    "the seed's columns plus HEALTH and SINCE"
  );
  await page.waitForSelector("#live.on");
  await page.fill("#q", "ingestion");
  await page.waitForFunction(() => document.querySelectorAll("#resources tbody tr").length === 2);
  let rows = await rowsOf(page);
  check(
    rows.every((r) => r.name.startsWith("ingestion-") && r.status === "active" && r.runtime === "succeeded"),
    "search \"ingestion\": the two seed workflows, active / succeeded"
  );
  check(new URL(page.url()).searchParams.get("q") === "ingestion", "the search is in the URL");
  await page.screenshot({ path: join(shots, "console-search.png"), fullPage: true });

  // Keyboard: "/" focuses the search box.
  await page.locator("body").click({ position: { x: 5, y: 300 } });
  await page.keyboard.press("/");
  check((await page.evaluate(() => document.activeElement.id)) === "q", "'/' focuses the search");

  // 2. Open one: its identity and timeline.
  await page.click('#resources a[href="/resources/' + encodeURIComponent("workflow:v1:ingestion-delivery-events:public") + '"]');
  await page.waitForSelector("#timeline li");
  const timeline = await page.$$eval("#timeline li", (lis) => lis.map((li) => li.textContent.replace(/\s+/g, " ").trim()));
  check(timeline.length >= 3, "the Resource page shows a timeline (" + timeline.length + " entries)");
  check(timeline.some((t) => t.includes("runtime") && t.includes("succeeded")), "the timeline has running → succeeded");
  check(timeline.some((t) => t.includes("completed in 7m20s")), "the timeline has the event's message");
  check((await page.textContent("#card-runtime")).includes("succeeded"), "current runtime with since");
  await page.screenshot({ path: join(shots, "console-resource.png"), fullPage: true });

  // 3. Back to the list; a runtime fails; the row turns red without reloading.
  await page.goto(base + "/?q=ingestion");
  await page.waitForSelector("#live.on");
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  produce(FAILING, {
    resource: { type: "workflow", name: "ingestion-shipment-orders", workspace: "public", version: "v1", owner: "iamgroot" },
    runtime: "failed",
    time: "2026-11-28T10:20:00Z",
    message: "container main OOMKilled",
  });
  await page.waitForFunction(
    (id) => {
      const tr = document.querySelector('#resources tr[data-id="' + id + '"]');
      return tr && tr.classList.contains("h-unhealthy") && tr.querySelector("td.runtime").textContent.trim() === "failed";
    },
    FAILING,
    { timeout: TIMEOUT * 2 }
  );
  check(await page.evaluate(() => window.__notReloaded === true), "the row changed without a reload");
  const colour = await page.$eval('#resources tr[data-id="' + FAILING + '"] td.runtime .badge', (b) => getComputedStyle(b).backgroundColor);
  const [r, g, b] = colour.match(/\d+/g).map(Number);
  check(r > 200 && g < 240 && b < 240 && r > g + 20, "the failed badge is red (" + colour + ")");
  rows = await rowsOf(page);
  check(rows.find((x) => x.id === "workflow:v1:ingestion-delivery-events:public").runtime === "succeeded", "the other row is unchanged");
  await page.waitForFunction(() => Number(document.querySelector('#counts a[data-health="unhealthy"] b').textContent) === 1);
  check(true, "the health counts follow (1 unhealthy among the matches)");
  await page.screenshot({ path: join(shots, "console-failed.png"), fullPage: true });

  // 4. Phone width: no sideways scrolling, cells labelled.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, "no horizontal overflow at 390 px (" + overflow + ")");
  await page.screenshot({ path: join(shots, "console-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // 5. Incidents: firing ones, and a silence that asks for the token.
  await page.goto(base + "/incidents");
  await page.waitForSelector("#firing tbody tr");
  const firing = await page.$$eval("#firing tbody tr", (trs) => trs.map((tr) => tr.textContent));
  check(firing.some((t) => t.includes("ingestion-shipment-orders")), "the new incident is firing");
  await page.click('#firing tr:has-text("ingestion-shipment-orders") button.silence');
  await page.waitForSelector("#silence-dialog[open]");
  await page.fill('#silence-form input[name="token"]', "wrong-token");
  await page.click("#silence-ok");
  await page.waitForFunction(() => document.getElementById("silence-error").textContent.length > 0);
  check((await page.textContent("#silence-error")).includes("wrong token"), "a wrong token is refused (403)");
  await page.fill('#silence-form input[name="token"]', process.env.VIGIL_TEST_HTTP_TOKEN);
  await page.click("#silence-ok");
  await page.waitForFunction(() => !document.getElementById("silence-dialog").open);
  check((await page.textContent("#live")).startsWith("silence "), "the silence was created");
  await page.screenshot({ path: join(shots, "console-incidents.png"), fullPage: true });

  check(errors.length === 0, "no script errors (" + errors.join("; ") + ")");
} catch (e) {
  failed = true;
  console.error("not ok - " + (e && e.stack ? e.stack : e));
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
