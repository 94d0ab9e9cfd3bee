// The host page against a real collector and a real agent process (Debian's chromium through
// playwright-core), run by tests/e2e/dashboard.rs. The agent's heartbeat is an hour, so the
// only fresh report can come from "Check now". A technician opens the host page: no Revoke
// button, and the server refuses a technician's revoke (403, with the CSRF token); pressing
// "Check now" makes the page's "Last seen" move forward. With CHECK_NOW_ROUNDS=N (> 0) it
// presses it N more times, at least 1.2 s apart (the agent's minimum interval is 1 s in the
// test), and prints the click-to-fresh-facts times measured in the page (performance.now()
// from the click to the DOM showing the new time). It then asks the Rust side (a file in
// CONTROL_DIR) to stop the agent, and "Check now" must say "Offline since …" with the "Why it
// was offline" box shown. An admin sees Revoke: cancelling the confirm dialog sends nothing,
// accepting it revokes, and the page says the certificate is revoked. The Rust side then
// checks that the agent's next report is refused. Timeouts are safety nets, not assertions.

import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = process.env;
const BASE = env.DASHBOARD_URL;
const HOST = env.DASHBOARD_HOST;
const SHOTS = env.SCREENSHOT_DIR;
const CONTROL = env.CONTROL_DIR;
const ROUNDS = Number(env.CHECK_NOW_ROUNDS || 0);
const LIMIT = 60000;
const HOST_PATH = '/hosts/' + encodeURIComponent(HOST);

function check(condition, message) {
  if (!condition) throw new Error('assertion failed: ' + message);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function signIn(browser, user, password) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(BASE + '/login?next=' + encodeURIComponent(HOST_PATH));
  await page.fill('#name', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(BASE + HOST_PATH, { timeout: LIMIT });
  await page.waitForSelector('#app[aria-busy="false"]', { timeout: LIMIT });
  await page.waitForSelector('#host-last-seen', { timeout: LIMIT });
  return { context, page };
}

// One press of "Check now", timed in the page: from the click to the summary's "Last seen"
// showing a later time (done), or to the answer's line when it is not "done".
async function pressCheckNow(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const line = document.getElementById('check-result');
    delete line.dataset.status;
    const before = Number(document.getElementById('host-last-seen').dataset.ms);
    const t0 = performance.now();
    document.getElementById('check-now').click();
    const poll = () => {
      const seen = document.getElementById('host-last-seen');
      const now = Number(seen ? seen.dataset.ms : 0);
      const status = line.dataset.status;
      if (status === 'done' && now > before) {
        resolve({ status, ms: performance.now() - t0, before, after: now, text: seen.textContent });
      } else if (status && status !== 'done') {
        resolve({ status, ms: performance.now() - t0, before, after: now, text: line.textContent });
      } else if (performance.now() - t0 > 30000) {
        resolve({ status: 'stuck:' + status, ms: performance.now() - t0, before, after: now, text: line.textContent });
      } else {
        requestAnimationFrame(poll);
      }
    };
    requestAnimationFrame(poll);
  }));
}

function percentile(sorted, p) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
  return sorted[i];
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    // The technician: no Revoke button, and the server refuses a technician's revoke.
    const tech = await signIn(browser, env.TECH_USER, env.TECH_PASSWORD);
    const page = tech.page;
    check(await page.locator('#revoke-agent').count() === 0, 'no Revoke button for a technician');
    const refused = await page.evaluate(async (host) => {
      const s = await (await fetch('/api/session')).json();
      const r = await fetch('/api/hosts/' + encodeURIComponent(host) + '/revoke', {
        method: 'POST', headers: { 'X-CSRF-Token': s.csrf },
      });
      return r.status;
    }, HOST);
    check(refused === 403, 'a technician revoking: ' + refused);

    // "Check now": the page's "Last seen" moves forward (the agent still accepted). The live
    // channel may still be opening: "offline" or "busy" are asked again.
    let first = null;
    for (let i = 0; i < 40 && !first; i++) {
      const r = await pressCheckNow(page);
      if (r.status === 'done') first = r;
      else if (r.status === 'offline' || r.status === 'busy') await sleep(500);
      else throw new Error('check now answered ' + JSON.stringify(r));
    }
    check(first, 'check now never answered done');
    check(first.after > first.before, 'last seen moved forward: ' + JSON.stringify(first));
    const shown = await page.textContent('#check-result');
    check(/^Fresh facts taken /.test(shown), 'the answer line says fresh facts: ' + shown);
    await page.screenshot({ path: join(SHOTS, 'host-check-now-1280x720.png') });

    // Measurement mode: N presses, each after the agent's minimum interval.
    if (ROUNDS > 0) {
      const times = [];
      let busy = 0;
      while (times.length < ROUNDS) {
        await sleep(1200);
        const r = await pressCheckNow(page);
        if (r.status === 'done') times.push(r.ms);
        else if (r.status === 'busy' && busy++ < ROUNDS) continue;
        else throw new Error('check now answered ' + JSON.stringify(r));
      }
      const sorted = [...times].sort((a, b) => a - b);
      const f = (x) => x.toFixed(0);
      console.log(`check now click-to-fresh-facts over ${ROUNDS} clicks: p50 ${f(percentile(sorted, 50))} ms, p99 ${f(percentile(sorted, 99))} ms, max ${f(sorted[sorted.length - 1])} ms` + (busy ? ` (${busy} busy answers asked again)` : ''));
    }

    // The agent stopped: "Check now" says since when the host is offline.
    writeFileSync(join(CONTROL, 'stop-agent'), '1');
    const deadline = Date.now() + LIMIT;
    while (!existsSync(join(CONTROL, 'agent-stopped'))) {
      check(Date.now() < deadline, 'the agent was never stopped');
      await sleep(100);
    }
    let off = null;
    for (let i = 0; i < 60 && !off; i++) {
      const r = await pressCheckNow(page);
      if (r.status === 'offline') off = r;
      else await sleep(500);
    }
    check(off, 'check now never said offline');
    check(/^Offline since \d{4}-\d\d-\d\d \d\d:\d\d \(/.test(off.text), 'offline line: ' + off.text);
    await page.waitForSelector('#host-offline:not([hidden]) h2', { timeout: LIMIT });
    check(/Why it was offline/.test(await page.textContent('#host-offline')), 'the offline box is shown');
    await page.screenshot({ path: join(SHOTS, 'host-offline-1280x720.png') });
    await tech.context.close();

    // The admin: Revoke, after a confirm dialog (cancel sends nothing).
    const admin = await signIn(browser, env.ADMIN_USER, env.ADMIN_PASSWORD);
    const button = admin.page.locator('#revoke-agent');
    await button.waitFor({ timeout: LIMIT });
    let asked = 0;
    admin.page.on('request', (r) => { if (r.url().endsWith('/revoke')) asked++; });
    admin.page.once('dialog', (d) => d.dismiss());
    await button.click();
    await sleep(300);
    check(asked === 0, 'a cancelled confirm sends no request');
    admin.page.once('dialog', (d) => {
      check(/^Revoke every certificate of /.test(d.message()), 'confirm text: ' + d.message());
      d.accept();
    });
    await button.click();
    await admin.page.waitForSelector('#revoke-result[data-status="revoked"]', { timeout: LIMIT });
    check(/^Revoked 1 certificate\(s\) of /.test(await admin.page.textContent('#revoke-result')), 'revoked line');
    await admin.page.locator('#host-summary dd', { hasText: 'revoked' }).waitFor({ timeout: LIMIT });
    await admin.page.waitForSelector('#revoke-agent[disabled]', { timeout: LIMIT });
    await admin.page.screenshot({ path: join(SHOTS, 'host-revoked-1280x720.png') });
    // Asked again: the server says it is already revoked (409).
    const again = await admin.page.evaluate(async (host) => {
      const s = await (await fetch('/api/session')).json();
      const r = await fetch('/api/hosts/' + encodeURIComponent(host) + '/revoke', {
        method: 'POST', headers: { 'X-CSRF-Token': s.csrf },
      });
      return r.status;
    }, HOST);
    check(again === 409, 'revoking again: ' + again);
    await admin.context.close();
    console.log('host page browser test passed (check now, offline, revoke)');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
