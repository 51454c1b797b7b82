// The web UI's user journeys in headless Chromium: `node browser/flows.mjs <flow>`, run by
// crates/berth/tests/e2e/web_browser.rs, which seeds the server and passes the flow's values
// in BERTH_FLOW (see harness.mjs). Each flow prints `ok <step>` lines and exits 0, or throws.

import {
  ARGS, expect, look, mainText, newContext, signIn, step, withBrowser,
} from './harness.mjs';

const FLOWS = {
  // A user signs in (a wrong password first), reads their Packages tab, then the
  // organization's, searches it, and meets the 404 page.
  async packages(browser) {
    const { login, org, search, found, hidden, missing } = ARGS;
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
  // packages only); a user signs in through the plain form and reads theirs.
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
    await context.close();
  },
};

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
