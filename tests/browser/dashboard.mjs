// The dashboard in a real browser (Debian's chromium through playwright-core), run by
// tests/e2e/dashboard.rs against a real collector process and a real agent. Signs in as a
// technician, finds the disk ticket of DASHBOARD_MOUNT on the queue, opens it, acknowledges
// and comments; sees on the host page why the host was offline (the collector was stopped
// before the script started, and the agent's flushed spool said why); asks the Rust side
// (a file in CONTROL_DIR) to clear the disk and waits for the page to show the ticket
// resolved live, without a reload. As an admin: the agent's certificate is listed, and a token
// created in the page is revoked (CONTROL_DIR/revoked-token: the Rust side checks enrolling
// with it is refused). Checks that the server refuses a viewer's action (403),
// a session's POST without X-CSRF-Token (403) and sends a page fetched without a session
// to sign-in (303). Screenshots of every page at 1280x720 and 390x844 go to SCREENSHOT_DIR.
// Every wait polls for a state; the timeouts are safety nets, not timing assertions.

import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = process.env;
const BASE = env.DASHBOARD_URL;
const HOST = env.DASHBOARD_HOST;
const MOUNT = env.DASHBOARD_MOUNT;
const SHOTS = env.SCREENSHOT_DIR;
const CONTROL = env.CONTROL_DIR;
const LIMIT = 60000;
const SIZES = [
  [1280, 720],
  [390, 844],
];

function check(condition, message) {
  if (!condition) throw new Error('assertion failed: ' + message);
}

async function signIn(browser, user, password) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(BASE + '/login?next=%2F');
  await page.fill('#name', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(BASE + '/', { timeout: LIMIT });
  return { context, page };
}

async function ready(page) {
  await page.waitForSelector('#app[aria-busy="false"]', { timeout: LIMIT });
  await page.waitForSelector('#conn[data-state="live"]', { timeout: LIMIT });
}

async function shoot(page, name, path) {
  for (const [width, height] of SIZES) {
    await page.setViewportSize({ width, height });
    await page.goto(BASE + path);
    if (name === 'login') await page.waitForSelector('#name', { timeout: LIMIT });
    else await ready(page);
    await page.screenshot({ path: join(SHOTS, `${name}-${width}x${height}.png`), fullPage: false });
  }
  await page.setViewportSize({ width: 1280, height: 720 });
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    // A page fetched without a session is sent to sign in (303 to /login?next=…).
    const bare = await fetch(BASE + '/fleet?q=x', { redirect: 'manual' });
    check(bare.status === 303, 'no session: status ' + bare.status);
    check(bare.headers.get('location') === '/login?next=/fleet%3Fq%3Dx', 'redirect to ' + bare.headers.get('location'));
    const anon = await browser.newContext();
    const anonPage = await anon.newPage();
    await anonPage.goto(BASE + '/trends');
    await anonPage.waitForURL(/\/login\?next=\/trends$/, { timeout: LIMIT });
    await anon.close();

    // The technician: queue -> ticket -> acknowledge -> comment.
    const { context, page } = await signIn(browser, env.TECH_USER, env.TECH_PASSWORD);
    await ready(page);
    const row = page.locator('#queue-rows tr', { hasText: MOUNT }).first();
    await row.waitFor({ timeout: LIMIT });
    const id = await row.getAttribute('data-ticket-id');
    check(id, 'the disk ticket is on the queue');
    await shoot(page, 'queue', '/');
    await page.locator('#queue-rows tr[data-ticket-id="' + id + '"] a[href^="/tickets/"]').click();
    await page.waitForURL(BASE + '/tickets/' + id, { timeout: LIMIT });
    await page.waitForSelector('#ticket-state[data-state="new"]', { timeout: LIMIT });
    await ready(page);
    await page.click('button[data-action="acknowledge"]');
    await page.waitForSelector('#ticket-state[data-state="acknowledged"]', { timeout: LIMIT });
    await page.fill('#comment-text', 'Looking at it <b>now</b>');
    await page.click('button[data-action="comment"]');
    await page.locator('ol.timeline li[data-kind="comment"]', { hasText: 'Looking at it <b>now</b>' }).waitFor({ timeout: LIMIT });
    check(await page.locator('ol.timeline b').count() === 0, 'a comment is shown as text, not HTML');

    // The host page explains the outage the Rust side caused before this script started.
    await page.goto(BASE + '/hosts/' + encodeURIComponent(HOST));
    await ready(page);
    await page.waitForSelector('#host-offline:not([hidden]) #offline-recovered', { timeout: LIMIT });
    const why = await page.textContent('#host-offline');
    check(/Why it was offline/.test(why), 'the offline box: ' + why);
    check(/could not reach the collector: \d+ failed uploads since .*\(Unavailable\)/.test(why), 'the diagnosis: ' + why);
    check(/reached the collector again at \d{4}-\d\d-\d\d \d\d:\d\d/.test(why), 'the recovery: ' + why);
    await page.goto(BASE + '/tickets/' + id);
    await page.waitForSelector('#ticket-state[data-state="acknowledged"]', { timeout: LIMIT });
    await ready(page);

    // The disk is cleared by the Rust side; the page shows the ticket resolved without a reload.
    await page.evaluate(() => { window.__notReloaded = true; });
    writeFileSync(join(CONTROL, 'clear-disk'), id);
    await page.waitForSelector('#ticket-state[data-state="resolved"]', { timeout: LIMIT });
    check(await page.evaluate(() => window.__notReloaded === true), 'the page was not reloaded');

    // A POST of the session without its CSRF token is refused.
    const noCsrf = await page.evaluate(async (ticket) => {
      const r = await fetch('/api/tickets/' + ticket + '/actions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ action: 'comment', text: 'no token' }),
      });
      return r.status;
    }, id);
    check(noCsrf === 403, 'POST without X-CSRF-Token: ' + noCsrf);

    // Screenshots of every page at both sizes.
    const pages = [
      ['fleet', '/fleet'], ['host', '/hosts/' + encodeURIComponent(HOST)],
      ['ticket', '/tickets/' + id], ['handoff', '/handoff'], ['trends', '/trends'],
    ];
    for (const [name, path] of pages) await shoot(page, name, path);
    await context.close();

    const anonShots = await browser.newContext();
    await shoot(await anonShots.newPage(), 'login', '/login');
    await anonShots.close();

    const admin = await signIn(browser, env.ADMIN_USER, env.ADMIN_PASSWORD);
    await shoot(admin.page, 'admin', '/admin');
    await admin.page.waitForSelector('#admin-users table', { timeout: LIMIT });
    // The agent's certificate is listed, valid, linked to its host page.
    const cert = admin.page.locator('#admin-certificates tr[data-subject="' + HOST + '"]');
    await cert.waitFor({ timeout: LIMIT });
    check(await cert.getAttribute('data-state') === 'valid', 'the agent certificate is valid');
    check(await cert.locator('a[href="/hosts/' + encodeURIComponent(HOST) + '"]').count() === 1, 'linked to its host');
    // A token is created, shown once, then revoked after the confirm dialog; the Rust side
    // checks that enrolling with it is refused.
    await admin.page.fill('input[aria-label="Token label"]', 'revoked-in-browser');
    await admin.page.click('#admin-tokens button[type=submit]');
    const secret = await admin.page.textContent('#new-token', { timeout: LIMIT });
    check(/^\S{16,}$/.test(secret), 'the new token is shown: ' + secret);
    const tokenRow = admin.page.locator('#admin-tokens tr', { hasText: 'revoked-in-browser' });
    await tokenRow.waitFor({ timeout: LIMIT });
    check(await tokenRow.getAttribute('data-state') === 'valid', 'a new token is valid');
    admin.page.once('dialog', (d) => d.accept());
    await tokenRow.locator('button', { hasText: 'Revoke' }).click();
    await admin.page.locator('#admin-tokens tr[data-state="revoked"]', { hasText: 'revoked-in-browser' }).waitFor({ timeout: LIMIT });
    writeFileSync(join(CONTROL, 'revoked-token'), secret);
    await admin.page.screenshot({ path: join(SHOTS, 'admin-revoked-token-1280x720.png'), fullPage: true });
    await admin.context.close();

    // A viewer cannot acknowledge: the server answers 403 even with the CSRF token.
    const viewer = await signIn(browser, env.VIEWER_USER, env.VIEWER_PASSWORD);
    await viewer.page.goto(BASE + '/tickets/' + id);
    await ready(viewer.page);
    check(await viewer.page.locator('button[data-action="acknowledge"]').count() === 0, 'no acknowledge button for a viewer');
    const refused = await viewer.page.evaluate(async (ticket) => {
      const s = await (await fetch('/api/session')).json();
      const r = await fetch('/api/tickets/' + ticket + '/actions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
        body: JSON.stringify({ action: 'reopen' }),
      });
      return r.status;
    }, id);
    check(refused === 403, 'a viewer acting: ' + refused);
    await viewer.context.close();
    console.log('dashboard browser test passed; screenshots in ' + SHOTS);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
