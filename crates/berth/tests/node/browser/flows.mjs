// The web UI's user journeys in headless Chromium: `node browser/flows.mjs <flow>`, run by
// crates/berth/tests/e2e/web_browser.rs, which seeds the server and passes the flow's values
// in BERTH_FLOW (see harness.mjs). Each flow prints `ok <step>` lines and exits 0, or throws.

import {
  ARGS, expect, look, mainText, newContext, signIn, step, withBrowser,
} from './harness.mjs';

const FLOWS = {
  // A user signs in (a wrong password first), reads their Packages tab, then the
  // organization's, searches it, and meets the 404 page; given a `package`, opens it (a nested
  // one), copies its pull command, filters its untagged versions, deletes one and restores it.
  async packages(browser) {
    const { login, org, search, found, hidden, missing, package: pkg } = ARGS;
    const context = await newContext(browser);
    const page = await context.newPage();

    await page.goto('/login');
    await page.getByLabel('Username').fill(login);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect((await page.getByRole('alert').innerText()).includes('Incorrect username or password'),
      'a wrong password is refused with a message');
    await look(page, 'sign-in-refused');

    await signIn(page, login, { shot: 'sign-in' });
    expect(new URL(page.url()).pathname === `/${login}`, `signed in, the user lands on their packages (${page.url()})`);
    await page.getByRole('heading', { level: 1, name: login }).waitFor();
    await look(page, 'user-packages');

    await page.goto(`/orgs/${org}/packages`);
    const list = page.getByRole('list', { name: 'Packages' });
    for (const name of [...found, ...hidden]) {
      await list.getByRole('link', { name, exact: true }).waitFor();
    }
    await look(page, 'org-packages');

    await page.getByLabel('Find a package').fill(search);
    await Promise.all([
      page.waitForURL((url) => url.searchParams.get('q') === search),
      page.getByRole('button', { name: 'Search' }).click(),
    ]);
    const names = await list.getByRole('link').allInnerTexts();
    expect(found.every((name) => names.includes(name)), `the search finds ${found} (${names})`);
    expect(hidden.every((name) => !names.includes(name)), `the search leaves out ${hidden} (${names})`);
    expect(await page.getByLabel('Find a package').inputValue() === search, 'the search box keeps the query');
    step(`search ${search} ${names.length}`);

    if (pkg) {
      // The nested package's page: the pull command of its newest tag, copied.
      await list.getByRole('link', { name: pkg.name, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: `${org} / ${pkg.name}` }).waitFor();
      const pull = (await page.locator('main code').first().innerText()).trim();
      expect(pull === pkg.pull, `the package page shows ${pkg.pull} (${pull})`);
      await look(page, 'package');
      await page.getByRole('button', { name: 'Copy the pull command' }).click();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      expect(copied === pkg.pull, `the copy button copies the pull command (${copied})`);
      step('pull-copied');

      // Its versions, the untagged ones, one deleted and restored through the buttons.
      await page.getByRole('navigation', { name: 'Package' }).getByRole('link', { name: /Versions/ }).click();
      const versions = page.getByRole('list', { name: 'Versions' });
      await versions.waitFor();
      expect(await versions.getByRole('listitem').count() === pkg.versions,
        `all ${pkg.versions} versions are listed`);
      await look(page, 'package-versions');
      const filters = page.getByRole('navigation', { name: 'Versions' });
      await Promise.all([
        page.waitForURL((url) => url.search.includes('untagged')),
        filters.getByRole('link', { name: 'Untagged', exact: true }).click(),
      ]);
      const untagged = versions.getByRole('listitem');
      expect(await untagged.count() === 1, 'one untagged version');
      const digest = await untagged.first().locator('h2 code').getAttribute('title');
      expect(digest === pkg.untagged, `the untagged version is ${pkg.untagged} (${digest})`);
      const row = (list) => list.getByRole('listitem')
        .filter({ has: page.locator(`h2 code[title="${digest}"]`) });
      await look(page, 'package-versions-untagged');

      // berth.js asks first: dismissed, nothing happens; accepted, the form is sent.
      let asked = '';
      page.once('dialog', (dialog) => { asked = dialog.message(); dialog.dismiss(); });
      await untagged.first().getByRole('button', { name: /Delete/ }).click();
      await page.waitForTimeout(300);
      expect(asked.startsWith('Delete version'), `the delete button asks first (${asked})`);
      expect(await untagged.count() === 1 && page.url().includes('untagged'), 'dismissed, nothing is deleted');
      page.once('dialog', (dialog) => dialog.accept());
      await untagged.first().getByRole('button', { name: /Delete/ }).click();
      await page.getByRole('status').filter({ hasText: 'deleted' }).waitFor();
      expect(await row(versions).count() === 0, 'the deleted version is gone from the list');
      expect(await versions.getByRole('listitem').count() === pkg.versions - 1, 'the others stay');
      step('version-deleted');
      await filters.getByRole('link', { name: 'Deleted' }).click();
      await page.waitForURL((url) => url.search.includes('deleted'));
      await row(versions).waitFor();
      await look(page, 'package-versions-deleted');
      await row(versions).getByRole('button', { name: /Restore/ }).click();
      await page.getByRole('status').filter({ hasText: 'restored' }).waitFor();
      await page.goto(new URL(page.url()).pathname);
      await row(versions).waitFor();
      expect(await versions.getByRole('listitem').count() === pkg.versions,
        'the restored version is live again');
      step('version-restored');

      // One version's own page (the API's html_url of a version).
      await page.goto(pkg.version.path);
      const only = page.getByRole('list', { name: 'Versions' }).getByRole('listitem');
      expect(await only.count() === 1, 'a version page shows that version');
      expect(await only.locator('h2 code').getAttribute('title') === pkg.version.digest,
        `the version page shows ${pkg.version.digest}`);
      await look(page, 'package-version');

    }

    const missingAnswer = await page.goto(missing);
    expect(missingAnswer.status() === 404, `${missing} answers 404 (${missingAnswer.status()})`);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    await look(page, 'not-found');

    await Promise.all([
      page.waitForURL((url) => url.pathname === '/login'),
      page.getByRole('button', { name: /Sign out/ }).click(),
    ]);
    step('sign-out');
    await context.close();
  },

  // Pages read without JavaScript: a visitor reads the organization's Packages tab (public
  // packages only); a user signs in through the plain form and reads it, and (read_package)
  // the private package's page and versions.
  async nojs(browser) {
    const { login, org, public: visible, private: invisible } = ARGS;
    const context = await newContext(browser, { javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`/orgs/${org}/packages`);
    let text = await mainText(page);
    expect(text.includes(visible), `a visitor reads ${visible} without JavaScript`);
    expect(!text.includes(invisible), `a visitor does not see ${invisible}`);
    step('visitor-reads-tab');

    await signIn(page, login);
    await page.goto(`/orgs/${org}/packages`);
    text = await mainText(page);
    expect(text.includes(visible) && text.includes(invisible), `${login} reads both packages without JavaScript`);
    step('user-reads-tab');

    if (ARGS.read_package) {
      await page.getByRole('link', { name: invisible, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: `${org} / ${invisible}` }).waitFor();
      text = await mainText(page);
      expect(text.includes(`docker pull`) && text.includes(`/${org}/${invisible}:`), 'the package page reads without JavaScript');
      await page.getByRole('link', { name: /Versions/ }).first().click();
      await page.getByRole('list', { name: 'Versions' }).getByRole('listitem').first().waitFor();
      step('user-reads-package');
    }
    await context.close();
  },

  // A user generates a classic token in the settings pages: its secret is shown once (and
  // copied with the copy button), never again on the list. The flow prints the secret for
  // the test, which pushes with it (skopeo).
  async token(browser) {
    const { login, note, scope } = ARGS;
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, login);
    await page.goto('/settings/tokens');
    await look(page, 'settings-tokens-empty');
    await page.getByRole('link', { name: 'Generate new token (classic)' }).click();
    await page.getByRole('heading', { level: 1, name: /classic/ }).waitFor();
    await look(page, 'settings-token-new');
    await page.getByLabel('Note').fill(note);
    await page.getByLabel('Expiration').selectOption('7');
    await page.getByLabel(scope, { exact: true }).check();
    await page.getByRole('button', { name: 'Generate token' }).click();
    const shown = page.locator('#new-token');
    await shown.waitFor();
    const secret = (await shown.innerText()).trim();
    expect(/^berthp_\w+$/.test(secret), `a classic token's secret is shown (${secret})`);
    await look(page, 'settings-token-created');
    await page.getByRole('button', { name: 'Copy to clipboard' }).click();
    await page.getByRole('button', { name: 'Copied!' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied === secret, `the copy button copies the secret (${copied})`);
    step('secret-copied');

    // Never again: not on the list, not after reading the list again.
    await page.getByRole('link', { name: 'Back to your tokens' }).click();
    await page.getByRole('heading', { level: 2, name: new RegExp(note) }).waitFor();
    await page.reload();
    expect(!(await page.content()).includes(secret), 'the list never shows the secret');
    expect((await mainText(page)).includes('Never used'), 'the new token was never used');
    await look(page, 'settings-tokens');
    step('secret-shown-once');
    console.log(`secret ${secret}`);

    // The other settings pages, through the settings menu.
    const menu = page.getByRole('navigation', { name: 'Settings' });
    for (const [item, shot] of [['Sessions', 'settings-sessions'],
      ['Password and authentication', 'settings-security']]) {
      await menu.getByRole('link', { name: item }).click();
      await page.getByRole('heading', { level: 1 }).waitFor();
      await look(page, shot);
    }
    expect((await mainText(page)).includes('Password'), 'the password page reads');
    await page.goto('/settings/personal-access-tokens/new');
    await page.getByRole('heading', { level: 1 }).waitFor();
    await look(page, 'settings-token-new-fine-grained');
    await context.close();
  },

  // A user adds a webhook through the form (Berth pings it); the test then publishes a
  // package, whose delivery the flow finds in the hook's log and redelivers from there.
  async webhook(browser) {
    const { login, url, package: pkg } = ARGS;
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, login);
    await page.goto('/settings/hooks');
    await page.getByRole('link', { name: 'Add webhook' }).click();
    await look(page, 'settings-hook-new');
    await page.getByLabel('Payload URL').fill(url);
    await page.getByLabel('Content type').selectOption('json');
    await page.getByLabel('Secret').fill('s3cret');
    await page.getByLabel('Packages', { exact: true }).check();
    await page.getByLabel('Active').check();
    await Promise.all([
      page.waitForURL(/\/settings\/hooks\/\d+$/),
      page.getByRole('button', { name: 'Add webhook' }).click(),
    ]);
    await page.getByRole('status').filter({ hasText: 'ping' }).waitFor();
    step('hook-created');

    const published = page.locator('details[data-delivery-state="delivered"]')
      .filter({ hasText: 'package.published' });
    await reloadUntil(page, async () => (await published.count()) >= 1, 'the package delivery');
    const delivery = published.first();
    await delivery.locator('summary').click();
    const details = await delivery.innerText();
    expect(details.includes(pkg), `the log shows the payload of ${pkg}`);
    expect(/Response\s+200/.test(details), `the log shows the receiver's 200 (${details.slice(0, 400)})`);
    await look(page, 'settings-hook');
    step('delivery-logged');

    await Promise.all([
      page.waitForResponse((answer) => answer.request().method() === 'POST'
        && answer.url().endsWith('/redeliver')),
      delivery.getByRole('button', { name: /Redeliver/ }).click(),
    ]);
    await page.waitForLoadState('load');
    await reloadUntil(page, async () => (await published.count()) >= 2
      && (await published.filter({ hasText: 'redelivery' }).count()) === 1, 'the redelivery');
    step('redelivered');

    await page.goto('/settings/hooks');
    await page.getByRole('list', { name: 'Webhooks' }).getByRole('link', { name: url, exact: true }).waitFor();
    await look(page, 'settings-hooks');
    await context.close();
  },

  // An organization admin makes one package public, confirming by typing its name, and
  // grants a team read access to another; a visitor then sees the public one, and the team's
  // member (signed in in a browser of her own) the private one, which she could not before.
  async share(browser) {
    const { admin, member, org, team, public: open, private: shared } = ARGS;
    const memberContext = await newContext(browser);
    const memberPage = await memberContext.newPage();
    await signIn(memberPage, member);
    const sharedPage = `/orgs/${org}/packages/container/package/${encodeURIComponent(shared)}`;
    const before = await memberPage.goto(sharedPage);
    expect(before.status() === 404, `${member} cannot see ${shared} yet (${before.status()})`);
    step('member-cannot-see');

    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, admin);

    // Public, with the type-the-name confirmation.
    await page.goto(`/orgs/${org}/packages/container/package/${encodeURIComponent(open)}`);
    await page.getByRole('link', { name: 'Package settings' }).click();
    await page.getByRole('heading', { level: 1, name: /settings/ }).waitFor();
    await look(page, 'package-settings');
    const makePublic = page.getByRole('button', { name: 'Make public' });
    const confirmation = page.getByLabel(/to confirm/).first();
    expect(await makePublic.isDisabled(), 'Make public waits for the name');
    await confirmation.fill(`${open}-not`);
    expect(await makePublic.isDisabled(), 'a wrong name keeps it disabled');
    await confirmation.fill(open);
    expect(await makePublic.isEnabled(), 'the typed name enables it');
    await makePublic.click();
    await page.getByRole('status').filter({ hasText: /public/i }).waitFor();
    expect((await mainText(page)).includes('This package is public'), 'the package is public now');
    step('made-public');

    // A team's read access to the private package.
    await page.goto(`/orgs/${org}/packages/container/${encodeURIComponent(shared)}/settings`);
    const access = page.getByRole('region', { name: 'Manage access' });
    await access.getByLabel('Kind').selectOption('team');
    await access.getByLabel('Login or team slug').fill(team);
    await access.getByLabel('Role', { exact: true }).selectOption('read');
    await access.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('status').waitFor();
    const grants = page.getByRole('table', { name: `Roles on ${shared}` });
    await grants.getByRole('rowheader', { name: new RegExp(`team ${team}`) }).waitFor();
    await look(page, 'package-settings-access');
    step('team-granted');

    // The organization's settings, as its admin.
    for (const [path, shot] of [['packages', 'org-settings-packages'],
      ['security', 'org-settings-security'], ['hooks', 'org-settings-hooks']]) {
      await page.goto(`/organizations/${org}/settings/${path}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await look(page, shot);
    }

    const after = await memberPage.goto(sharedPage);
    expect(after.status() === 200, `${member} sees ${shared} through the team (${after.status()})`);
    expect(!(await mainText(memberPage)).includes('Package settings'), 'read is no admin');
    step('member-sees');
    const settings = await memberPage.goto(`/orgs/${org}/packages/container/${encodeURIComponent(shared)}/settings`);
    expect(settings.status() === 403, `a reader gets the 403 page for the settings (${settings.status()})`);
    await memberPage.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
    await look(memberPage, 'forbidden');

    const visitor = await newContext(browser);
    const visitorPage = await visitor.newPage();
    const seen = await visitorPage.goto(`/orgs/${org}/packages/container/package/${encodeURIComponent(open)}`);
    expect(seen.status() === 200, `a visitor sees the public ${open} (${seen.status()})`);
    await look(visitorPage, 'package-public-visitor');
    step('visitor-sees');
    await Promise.all([context.close(), memberContext.close(), visitor.close()]);
  },
};

/** Reloads `page` until `done()` holds (at most 45 s). */
async function reloadUntil(page, done, what) {
  const deadline = Date.now() + 45_000;
  while (!(await done())) {
    expect(Date.now() < deadline, `timed out waiting for ${what} on ${page.url()}`);
    await page.waitForTimeout(250);
    await page.reload();
  }
}

const name = process.argv[2];
const flow = FLOWS[name];
if (!flow) {
  console.error(`no flow ${name}; flows: ${Object.keys(FLOWS).join(', ')}`);
  process.exit(2);
}
try {
  await withBrowser(flow);
  console.log('done');
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
}
