// SPDX-License-Identifier: MIT
// The dashboard in a real browser (Debian's chromium, headless, driven by playwright-core),
// against a real superd + proxyd running examples/demo plus a "chatter" service.
// Run by integration/test_dashboard_browser.py:  node test.mjs <config.json>
// Prints one JSON line with the measurements; exits non-zero on the first failed check.
//
// The CA is trusted the way a user's browser trusts it: imported into the NSS database
// under $HOME/.pki/nssdb (chromium on Linux reads that), not with an ignore-errors flag.

import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = { checks: [] };
const shots = cfg.shots;
fs.mkdirSync(shots, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  out.checks.push(what);
}

function get(port, p, host) {
  return new Promise((resolve, reject) => {
    const headers = host ? { Host: host } : {};
    const req = http.get({ host: "127.0.0.1", port, path: p, agent: false, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
  });
}

// page.waitForFunction() evaluates its predicate from a string, which the dashboard's CSP
// (no 'unsafe-eval') refuses; page.evaluate() goes through the debugger and is not.
async function waitFor(pg, fn, arg = null, opts = {}) {
  const end = Date.now() + (opts.timeout || 10000);
  for (;;) {
    try {
      if (await pg.evaluate(fn, arg)) return;
    } catch (e) {
      if (!/context was destroyed|navigation/i.test(String(e))) throw e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${String(fn).slice(0, 160)}`);
    await new Promise((r) => setTimeout(r, opts.polling || 30));
  }
}

const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const ctx = await chromium.launchPersistentContext(cfg.profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1440, height: 880 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  env: { ...process.env, HOME: cfg.home },
});
const page = ctx.pages()[0] || (await ctx.newPage());
const consoleErrors = [];
page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
page.on("pageerror", (e) => consoleErrors.push(String(e)));

try {
  // ---- loads over HTTPS with the CA trusted ----
  const resp = await page.goto(cfg.url, { waitUntil: "domcontentloaded" });
  check(resp.status() === 200, "dashboard loads over HTTPS (CA trusted by the profile)");
  check(resp.url().startsWith("https://locald.localhost"), "served at https://locald.localhost");
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
  await page.waitForSelector(".svc", { timeout: 10000 });

  // ---- services appear with the right states ----
  const api = await page.evaluate(async () => (await fetch("/api/state")).json());
  const want = {};
  for (const p of api.projects) for (const s of p.services) want[`${p.name}/${s.service}`] = s.state;
  await waitFor(page,
    (want) => Object.entries(want).every(([k, st]) => {
      const el = document.querySelector(`.svc[data-key="${k}"]`);
      return el && el.dataset.st === st;
    }),
    want,
    { timeout: 10000 },
  );
  check(Object.keys(want).length >= 5, `every service shown with its state (${Object.keys(want).length})`);
  check(Object.values(want).filter((s) => s === "running").length >= 4, "demo services running");

  // ---- screenshots: main view, light and dark ----
  await page.waitForTimeout(600);
  await page.screenshot({ path: path.join(shots, "main-light.png") });

  // ---- ANSI colours as styled spans ----
  const ansi = await page.evaluate(() => {
    window.__locald.setScope(null);
    const rows = [...document.querySelectorAll(".logs .vl-row")];
    const all = document.querySelector(".logs").innerText;
    const red = document.querySelector(".logs .a-f1");
    const bold = document.querySelector(".logs .a-b");
    const c256 = document.querySelector(".logs [class*='fg-ff8700']");
    const tc = document.querySelector(".logs [class*='fg-1478dc']");
    const plain = getComputedStyle(document.querySelector(".logs .ln-text")).color;
    return {
      rows: rows.length,
      raw: all.includes("\u001b[") || all.includes("[31m"),
      red: red && red.textContent,
      redColor: red && getComputedStyle(red).color,
      plain,
      bold: bold && getComputedStyle(bold).fontWeight,
      c256: c256 && getComputedStyle(c256).color,
      tc: tc && getComputedStyle(tc).color,
    };
  });
  check(ansi.red === "red alert" && ansi.redColor !== ansi.plain, `ANSI red rendered as a styled span (${ansi.redColor})`);
  check(Number(ansi.bold) >= 700, "ANSI bold rendered");
  check(ansi.c256 === "rgb(255, 135, 0)", `ANSI 256-colour rendered (${ansi.c256})`);
  check(ansi.tc === "rgb(20, 120, 220)", `ANSI truecolor rendered (${ansi.tc})`);
  check(!ansi.raw, "no raw escape sequences shown");

  // ---- a new log line appears within 200 ms ----
  const lat = [];
  for (let i = 0; i < 12; i++) {
    const token = `latency-probe-${i}-${Date.now()}`;
    await page.evaluate((token) => {
      window.__probe = new Promise((resolve) => {
        const logs = document.querySelector(".logs");
        const obs = new MutationObserver(() => {
          if (logs.textContent.includes(token)) {
            obs.disconnect();
            resolve(Date.now());
          }
        });
        obs.observe(logs, { childList: true, subtree: true, characterData: true });
      });
    }, token);
    const t0 = Date.now();
    await get(cfg.chatterPort, `/say?text=${token}`);
    const t1 = await page.evaluate(() => window.__probe);
    lat.push(t1 - t0);
    await page.waitForTimeout(100);
  }
  out.log_latency_ms = { samples: lat, p50: pct(lat, 50), max: Math.max(...lat) };

  // ---- restart from the button: the state changes live ----
  const webKey = `${cfg.project}/web`;
  const pid0 = await page.evaluate((k) => window.__locald.S.services.get(k).data.pid, webKey);
  await page.evaluate((k) => {
    window.__states = [];
    const list = document.getElementById("rack-list");
    new MutationObserver(() => {
      const el = list.querySelector(`.svc[data-key="${k}"] .state`);
      const t = el && el.textContent;
      if (t && window.__states[window.__states.length - 1] !== t) window.__states.push(t);
    }).observe(list, { childList: true, subtree: true, characterData: true });
  }, webKey);
  await page.hover(`.svc[data-key="${webKey}"]`);
  await page.click(`.svc[data-key="${webKey}"] [data-act="restart"]`);
  await waitFor(page,
    ([k, pid0]) => {
      const s = window.__locald.S.services.get(k);
      return s && s.data.state === "running" && s.data.pid && s.data.pid !== pid0 && !s.busy;
    },
    [webKey, pid0],
    { timeout: 30000 },
  );
  const states = await page.evaluate(() => window.__states);
  out.restart_states = states;
  check(states.includes("restarting…") && states[states.length - 1] === "running", `restart button: ${states.join(" → ")}`);

  // ---- detail panel (masked secrets) ----
  await page.click(`.svc[data-key="${cfg.project}/api"] .name`);
  await page.waitForSelector(".detail .env", { timeout: 10000 });
  const detailText = await page.textContent(".detail");
  check(detailText.includes("python3 api.py"), "detail shows the command");
  await page.screenshot({ path: path.join(shots, "detail-light.png") });
  await page.keyboard.press("Escape");

  // ---- search and filter ----
  await page.fill("#search", "probe-1");
  await waitFor(page, () => {
    const rows = [...document.querySelectorAll(".logs .vl-row:not([hidden])")];
    return rows.length > 0 && rows.every((r) => r.textContent.includes("probe-1"));
  });
  const marks = await page.$$eval(".logs mark", (m) => m.length);
  check(marks > 0, "search keeps only matching lines and highlights them");
  await page.fill("#search", "");
  await page.click(`.chip[data-filter="${cfg.project}/chatter"]`);
  await waitFor(page, (k) => {
    const rows = [...document.querySelectorAll(".logs .vl-row:not([hidden])")];
    return rows.length > 0 && rows.every((r) => r.dataset.key !== k);
  }, `${cfg.project}/chatter`);
  check(true, "service filter hides that service's lines");
  await page.click(`.chip[data-filter="${cfg.project}/chatter"]`);

  // Per-service view through the command palette.
  await page.keyboard.press("Control+k");
  await page.waitForSelector("#palette:not([hidden])");
  await page.keyboard.type("logs of db");
  await page.screenshot({ path: path.join(shots, "palette-light.png") });
  await page.keyboard.press("Enter");
  await waitFor(page, (k) => {
    const rows = [...document.querySelectorAll(".logs .vl-row:not([hidden])")];
    return rows.length > 0 && rows.every((r) => r.dataset.key === k);
  }, `${cfg.project}/db`);
  check(true, "command palette: per-service log view");
  await page.keyboard.press("Escape");

  // Jump to the last error.
  await page.click("#jump-error");
  await page.waitForSelector(".logs .vl-row.err");
  check(await page.$eval("#follow", (b) => b.getAttribute("aria-pressed") === "false"), "jump to last error pauses following");
  await page.click("#follow");

  // ---- requests view ----
  // Through the proxy: the demo's front end, its API, and a host nobody serves.
  for (const [h, p] of [[`${cfg.project}.localhost`, "/"], [`api.${cfg.project}.localhost`, "/visits"], [`web.${cfg.project}.localhost`, "/nope?x=1"], ["nobody.localhost", "/"]])
    for (let i = 0; i < 3; i++) await get(cfg.httpPort, p, h).catch(() => {});
  await page.keyboard.press("2");
  await waitFor(page, () => document.querySelectorAll(".requests .vl-row:not([hidden])").length > 0, null, { timeout: 10000 });
  await page.screenshot({ path: path.join(shots, "requests-light.png") });
  await page.keyboard.press("1");

  // ---- dark ----
  await page.keyboard.press("t");
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(shots, "main-dark.png") });
  await page.click(`.svc[data-key="${cfg.project}/web"] .name`);
  await page.waitForSelector(".detail .env", { timeout: 10000 });
  await page.screenshot({ path: path.join(shots, "detail-dark.png") });
  await page.keyboard.press("Escape");
  await page.keyboard.press("2");
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(shots, "requests-dark.png") });
  await page.keyboard.press("1");
  await page.keyboard.press("t");

  // ---- 100,000 lines stay fluid ----
  await get(cfg.chatterPort, "/burst?n=100000");
  await waitFor(page, () => window.__locald.ring.total - window.__locald.ring.first >= 100000, null, {
    timeout: 180000,
    polling: 500,
  });
  await page.waitForTimeout(500);
  const perf = await page.evaluate(async () => {
    const logs = document.querySelector(".logs");
    const frames = [];
    let last = performance.now();
    const n = window.__locald.view.length;
    const h = 20;
    const end = performance.now() + 4000;
    let i = 0;
    await new Promise((resolve) => {
      function step(t) {
        frames.push(t - last);
        last = t;
        // A scripted scroll: steady wheel-like steps, and now and then a big jump.
        if (i % 30 === 29) logs.scrollTop = Math.random() * n * h;
        else logs.scrollTop = Math.max(0, logs.scrollTop - 180);
        i++;
        if (t < end) requestAnimationFrame(step);
        else resolve();
      }
      requestAnimationFrame(step);
    });
    frames.shift();
    return { frames, rows: document.querySelectorAll(".logs .vl-row").length, lines: n };
  });
  const f = perf.frames;
  out.scroll = {
    lines: perf.lines,
    frames: f.length,
    p50_ms: +pct(f, 50).toFixed(2),
    p95_ms: +pct(f, 95).toFixed(2),
    max_ms: +Math.max(...f).toFixed(2),
    dom_rows: perf.rows,
  };
  check(perf.lines >= 100000, `${perf.lines} lines held`);
  check(perf.rows < 150, `bounded DOM: ${perf.rows} row elements for ${perf.lines} lines`);
  await page.screenshot({ path: path.join(shots, "100k-light.png") });

  // ---- a cross-site POST is refused ----
  const evil = await ctx.newPage();
  await evil.goto(`${cfg.evilUrl}?target=${encodeURIComponent(`${cfg.url}api/services/${cfg.project}/web/stop`)}`);
  await waitFor(evil, () => document.body && document.body.innerText.includes("PERMISSION_DENIED"), null, { timeout: 15000 });
  check(true, "cross-site form POST refused (403)");
  const still = await page.evaluate(async (k) => {
    const st = await (await fetch("/api/state")).json();
    for (const p of st.projects) for (const s of p.services) if (`${p.name}/${s.service}` === k) return s.state;
  }, webKey);
  check(still === "running", "the service was not stopped");
  await evil.close();

  out.console_errors = consoleErrors;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack ? e.stack : e);
  try {
    await page.screenshot({ path: path.join(shots, "failure.png") });
  } catch (e2) {
    /* nothing to add */
  }
  out.console_errors = consoleErrors;
} finally {
  await ctx.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
