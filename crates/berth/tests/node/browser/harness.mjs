// What every browser flow shares: Debian's headless Chromium driven by playwright-core, a
// fresh context (cookies, storage) per user, and `look(page, name)`, which every page a flow
// visits goes through: axe-core checks it (a violation of impact serious or critical fails
// the flow) and it is screenshot, full page at 1280 wide, into BERTH_SCREENSHOTS/<name>.png.
//
// The flows get what they need from the environment: BERTH_URL (the server), BERTH_PASSWORD
// (every user's web password), BERTH_SCREENSHOTS (a directory), BERTH_FLOW (a JSON object of
// the flow's logins, names and expectations).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The server's base URL, without a trailing slash. */
export const BASE = (process.env.BERTH_URL ?? '').replace(/\/$/, '');
/** The web password every user of the flow has. */
export const PASSWORD = process.env.BERTH_PASSWORD ?? '';
/** The flow's own values. */
export const ARGS = JSON.parse(process.env.BERTH_FLOW ?? '{}');
const SHOTS = process.env.BERTH_SCREENSHOTS ?? '';
const CHROMIUM = process.env.BERTH_CHROMIUM ?? '/usr/bin/chromium';
/** Contexts created with JavaScript off: axe cannot run in their pages. */
const SCRIPTLESS = new WeakSet();

/** Fails the flow with `message` unless `condition`. */
export function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

/** Reports a step done (the Rust test prints stdout when the flow fails). */
export function step(text) {
  console.log(`ok ${text}`);
}

/** Runs `flow(browser)` with a launched Chromium, closed afterwards whatever happens. */
export async function withBrowser(flow) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
  try {
    await flow(browser);
  } finally {
    await browser.close();
  }
}

/**
 * A fresh context (one user's browser): 1280 wide, the server's origin allowed to use the
 * clipboard. `options` are playwright's (e.g. `javaScriptEnabled: false`).
 */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    baseURL: BASE,
    ...options,
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  context.setDefaultTimeout(30_000);
  if (options.javaScriptEnabled === false) SCRIPTLESS.add(context);
  return context;
}

/**
 * Checks the page now shown: its accessibility (axe-core; serious and critical violations
 * fail, others are printed) and screenshots it as `name`. The page's CSP admits no inline
 * script, so axe is evaluated through the DevTools protocol, which the CSP does not govern.
 * Pages of a context without JavaScript cannot run axe: they are only screenshot (the flows
 * check the same pages with JavaScript too).
 */
export async function look(page, name) {
  await page.waitForLoadState('load');
  if (!SCRIPTLESS.has(page.context())) await checkAccessibility(page, name);
  if (SHOTS) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }
  step(`look ${name}`);
}

async function checkAccessibility(page, name) {
  const title = await page.title();
  const url = page.url();
  const results = await axeRun(page);
  const blocking = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const violation of results.violations) {
    if (!blocking.includes(violation)) {
      console.error(`axe (${violation.impact}) on ${name}: ${violation.id}: ${violation.help}`);
    }
  }
  if (blocking.length > 0) {
    const text = blocking
      .map((v) => `  ${v.impact} ${v.id}: ${v.help} (${v.helpUrl})\n${v.nodes
        .map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.replace(/\n/g, ' ')}\n      ${n.html}`)
        .join('\n')}`)
      .join('\n');
    throw new Error(`accessibility violations on ${name} (${url}, "${title}"):\n${text}`);
  }
}

async function axeRun(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined').catch(() => false))) {
    await page.evaluate(AXE_SOURCE);
  }
  return page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'] }));
}

/** Signs `login` in through the form in `page`, checking the form first. */
export async function signIn(page, login, { shot } = {}) {
  await page.goto('/login');
  if (shot) await look(page, shot);
  await page.getByLabel('Username').fill(login);
  await page.getByLabel('Password').fill(PASSWORD);
  await Promise.all([
    page.waitForURL((url) => url.pathname !== '/login'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.getByRole('button', { name: /Sign out/ }).waitFor();
}

/** The text of `page`'s main region. */
export async function mainText(page) {
  return page.locator('main').innerText();
}
