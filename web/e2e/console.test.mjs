// End to end: the real console and display pages in headless Chromium against a real
// pvm-node. One night in order: first-run setup, a tournament and its clock on a display in
// another browser, players and payouts, the cash waiting list, a node restart survived
// without a reload, and screenshots of every main page at phone and TV sizes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Node, launchBrowser, ensureShots, shots, PHONE, TV, TABLET } from './harness.mjs';

const node = new Node();
let browser;
let phone; // the floor's phone
let console_; // page in `phone`
let tv; // a second, separate browser context: a TV showing a display page
let display;
let screenId;
let tournamentId;

before(async () => {
  await node.start();
  browser = await launchBrowser();
  ensureShots();
});

after(async () => {
  await browser?.close();
  await node.stop();
  node.cleanup();
});

const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });

test('a night at the venue, through the console and a display page', async (t0) => {
  // Each step builds on the one before: after a failure the rest are skipped, not piled up.
  let broken = false;
  const t = {
    test: (name, fn) =>
      t0.test(name, async (st) => {
        if (broken) return st.skip('an earlier step failed');
        try {
          await fn(st);
        } catch (e) {
          broken = true;
          await console_?.screenshot({ path: join(shots, 'failure-console.png') }).catch(() => {});
          await display?.screenshot({ path: join(shots, 'failure-display.png') }).catch(() => {});
          throw e;
        }
      }),
  };
  phone = await browser.newContext(PHONE);
  phone.setDefaultTimeout(10_000);
  console_ = await phone.newPage();
  const errors = [];
  console_.on('pageerror', (e) => errors.push(String(e)));

  await t.test('before setup, the HDMI display page shows the console address and the setup code', async () => {
    const kiosk = await browser.newContext(TV);
    const page = await kiosk.newPage();
    await page.goto(`${node.url}/display/hdmi`);
    await page.locator('.code').waitFor({ timeout: 10_000 });
    const code = node.setupCode();
    assert.ok(code);
    assert.equal((await page.locator('.code').innerText()).replace(/\W/g, ''), code.replace(/\W/g, ''));
    await shot(page, 'tv-display-setup');
    await kiosk.close();
  });

  await t.test('first-run setup with the code from the node creates the admin and names the venue', async () => {
    const code = node.setupCode();
    assert.ok(code, `no setup code printed:\n${node.output}`);
    await console_.goto(node.url);
    await console_.getByRole('heading', { name: 'Set up this venue' }).waitFor();
    await console_.getByLabel('Setup code').fill(code);
    await console_.getByLabel('Admin username').fill('owner');
    await console_.getByLabel('Password').fill('owner-pass-123');
    await console_.getByLabel('Venue name').fill('Green Baize Club');
    await console_.getByLabel('Time zone').selectOption('Europe/Dublin');
    await shot(console_, 'phone-setup');
    await console_.getByRole('button', { name: 'Create admin and start' }).click();
    // Password hashing (Argon2) in a debug build on a busy 2-core machine takes seconds.
    await console_.getByRole('heading', { name: 'Tournaments' }).waitFor({ timeout: 45_000 });
    await console_.getByText('Live', { exact: true }).waitFor();
    const venue = await (await fetch(`${node.url}/api/v1/venue`)).json();
    assert.equal(venue.name, 'Green Baize Club');
    assert.equal(venue.time_zone, 'Europe/Dublin');
  });

  await t.test('a refused action shows the node\'s own message', async () => {
    await console_.getByRole('button', { name: 'New tournament' }).click();
    await console_.getByLabel('Name', { exact: true }).fill('Bad');
    await console_.getByLabel('Buy-in').fill('10');
    await console_.getByLabel('Fee').fill('20');
    await console_.getByRole('button', { name: 'Create tournament' }).click();
    const alert = console_.getByRole('alert').first();
    await alert.waitFor();
    const text = await alert.innerText();
    assert.match(text, /fee/i, `expected the node's refusal about the fee, got: ${text}`);
  });

  await t.test('a tournament is created from a template', async () => {
    await console_.getByLabel('Name', { exact: true }).fill('Friday Turbo');
    await console_.getByLabel('Structure template').selectOption('turbo');
    await console_.getByLabel('Buy-in').fill('50');
    await console_.getByLabel('Fee').fill('5');
    await console_.getByRole('button', { name: 'Create tournament' }).click();
    await console_.waitForURL(/#\/t\/[0-9a-f-]{36}/);
    tournamentId = /#\/t\/([0-9a-f-]{36})/.exec(console_.url())[1];
    await console_.getByRole('heading', { name: 'Friday Turbo' }).waitFor();
    await console_.getByRole('button', { name: 'Start clock' }).waitFor();
  });

  await t.test('a clock screen is saved on the displays page', async () => {
    await console_.goto(`${node.url}/#/displays`);
    await console_.getByLabel('Screen name').fill('Main clock');
    await console_.locator('select[name=screen_kind]').selectOption('tournament_clock');
    await console_.getByRole('button', { name: 'Save screen' }).click();
    const open = console_.getByTestId('open-screen').first();
    await open.waitFor();
    screenId = /\/display\/([0-9a-f-]{36})/.exec(await open.getAttribute('href'))[1];
  });

  await t.test('new players register through the quick search (the node starts no clock without entries)', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/players`);
    for (const name of ['Ann Walsh', 'Brian Dunne', 'Ciara Byrne']) {
      await console_.getByLabel('Find or add a player').fill(name);
      await console_.getByRole('button', { name: `Register new player “${name}”` }).click();
      await console_.getByTestId('entry').filter({ hasText: name }).waitFor();
    }
    await console_.getByRole('button', { name: 'Playing (3)' }).waitFor();
    await shot(console_, 'phone-players');
  });

  await t.test('starting the clock shows it running on a display in another browser', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/clock`);
    await console_.getByRole('button', { name: 'Start clock' }).click();
    await console_.getByRole('button', { name: 'Pause' }).waitFor();

    tv = await browser.newContext(TV);
    tv.setDefaultTimeout(10_000);
    display = await tv.newPage();
    await display.goto(`${node.url}/display/${screenId}`);
    const clock = display.getByTestId('clock');
    await clock.and(display.locator('[data-status="running"]')).waitFor();
    const first = await display.getByTestId('time-left').innerText();
    // The display counts on its own between messages: within 1.5 s the seconds change.
    await display.waitForFunction(
      (before) => document.querySelector('[data-testid="time-left"]')?.textContent !== before,
      first,
      { timeout: 2500 },
    );
    await shot(display, 'tv-display-clock-running');
  });

  await t.test('pausing in the console shows paused on the display within a second', async () => {
    await display.evaluate(() => (window.__sameDocument = true));
    const started = Date.now();
    await console_.getByRole('button', { name: 'Pause' }).click();
    await display.getByTestId('paused').waitFor({ timeout: 1000 });
    const took = Date.now() - started;
    assert.ok(took < 1000, `display showed paused after ${took} ms`);
    const a = await display.getByTestId('time-left').innerText();
    await display.waitForTimeout(1200);
    assert.equal(await display.getByTestId('time-left').innerText(), a, 'a paused clock must not count');
    await shot(display, 'tv-display-clock-paused');
    await shot(console_, 'phone-clock');
    await console_.getByRole('button', { name: 'Resume' }).click();
    await display.locator('[data-testid="clock"][data-status="running"]').waitFor();
  });

  await t.test('a player busts (undone and redone), re-enters, and the payouts follow on console and display', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/players`);
    await display.getByTestId('players-left').filter({ hasText: '3 / 3' }).waitFor();
    await console_.getByRole('button', { name: 'Bust Ciara Byrne' }).click();
    await console_.getByRole('button', { name: 'Playing (2)' }).waitFor();
    await display.getByTestId('players-left').filter({ hasText: '2 / 3' }).waitFor();
    await console_.getByRole('button', { name: 'Undo bust' }).click();
    await console_.getByRole('button', { name: 'Playing (3)' }).waitFor();
    await console_.getByRole('button', { name: 'Bust Ciara Byrne' }).click();
    await console_.getByRole('button', { name: 'Playing (2)' }).waitFor();

    // Search finds a known player again: a re-entry for the busted one.
    await console_.getByLabel('Find or add a player').fill('ciara');
    await console_.getByRole('button', { name: 'Re-enter' }).click();
    await console_.getByRole('button', { name: 'Playing (3)' }).waitFor();

    // 4 entries × (50 − 5 fee) = 180 in the pool.
    await console_.goto(`${node.url}/#/t/${tournamentId}/payouts`);
    await console_.getByTestId('prize-pool').filter({ hasText: '€180' }).waitFor();
    await display.getByTestId('prize-pool').filter({ hasText: '€180' }).waitFor();
    const payouts = await console_.getByTestId('payouts').innerText();
    assert.match(payouts, /1st\s+€180/, payouts);
    await shot(console_, 'phone-payouts');

    // The deal calculator prices an ICM deal for the three left from their chip counts.
    const deal = console_.getByRole('region', { name: 'Deal calculator' });
    await deal.getByRole('radio', { name: 'ICM' }).click();
    for (const [name, chips] of [['Ann Walsh', '30000'], ['Brian Dunne', '20000'], ['Ciara Byrne', '10000']]) {
      await deal.getByLabel(`${name} chips`).fill(chips);
    }
    await deal.getByRole('button', { name: 'Calculate' }).click();
    await deal.getByRole('button', { name: 'Record this deal' }).waitFor();
    // One paid place: ICM equity is the chip share of €180.
    assert.match(await deal.innerText(), /Ann Walsh\s+30,000\s+€90\b/);
  });

  await t.test('seating: a table is added and the players drawn into it', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/seating`);
    await console_.getByRole('button', { name: 'Add table' }).click();
    await console_.getByRole('region', { name: 'Table 1' }).waitFor();
    await console_.getByRole('button', { name: /Draw seats \(3 unseated\)/ }).click();
    await console_.getByRole('button', { name: /Draw seats \(0 unseated\)/ }).waitFor();
    const table = await console_.getByRole('region', { name: 'Table 1' }).innerText();
    for (const name of ['Ann Walsh', 'Brian Dunne', 'Ciara Byrne']) assert.ok(table.includes(name), table);
    await shot(console_, 'phone-seating');
    await console_.goto(`${node.url}/#/t/${tournamentId}/structure`);
    await console_.getByRole('button', { name: '+ Level' }).waitFor();
    await shot(console_, 'phone-structure');
  });

  await t.test('cash waiting list: add, call (timer shows), seat', async () => {
    await console_.goto(`${node.url}/#/cash`);
    await console_.getByRole('button', { name: 'Add game' }).click();
    await console_.getByTestId('game').first().waitFor();
    await console_.getByRole('button', { name: 'Add table' }).click();
    await console_.getByRole('region', { name: /Cash table 1/ }).waitFor();
    await console_.getByRole('button', { name: 'Open table' }).click();
    await console_.getByRole('region', { name: /Cash table 1/ }).getByText('Open', { exact: true }).waitFor();

    const game = console_.getByTestId('game').first();
    await game.getByLabel('Name', { exact: true }).fill('Dara Kelly');
    await game.getByRole('button', { name: 'Add' }).click();
    const entry = console_.getByTestId('wait-entry').filter({ hasText: 'Dara Kelly' });
    await entry.waitFor();
    await entry.getByRole('button', { name: 'Call' }).click();
    await entry.getByTestId('call-timer').waitFor();
    assert.match(await entry.getByTestId('call-timer').innerText(), /Called · [45]:\d\d/);
    await shot(console_, 'phone-cash');

    // The waiting-list screen on a TV shows the called player by the privacy setting's name.
    const listScreen = await console_.evaluate(async () => {
      const r = await fetch('/api/v1/screens', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Waiting list', kind: { type: 'waiting_list', games: [] } }),
      });
      return (await r.json()).created_id;
    });
    const board = await tv.newPage();
    await board.goto(`${node.url}/display/${listScreen}`);
    await board.getByTestId('waiting-list').getByText('Dara K.').waitFor();
    await shot(board, 'tv-display-waiting-list');
    await board.close();

    await entry.getByRole('button', { name: 'Seat' }).click();
    await entry.waitFor({ state: 'detached' });
    const table = await console_.getByRole('region', { name: /Cash table 1/ }).innerText();
    assert.ok(table.includes('Dara Kelly'), table);
  });

  await t.test('after the node restarts, the console says it resumed and the display recovers without a reload', async () => {
    await node.restart();
    await console_.getByText(/Reconnected: resumed after update/).waitFor({ timeout: 15_000 });
    await console_.getByTestId('link-state').filter({ hasText: 'Live' }).waitFor();
    await display.locator('[data-testid="clock"][data-status="running"]').waitFor({ timeout: 15_000 });
    await display.getByTestId('link').waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await display.evaluate(() => window.__sameDocument), true, 'the display page reloaded');
  });

  await t.test('screenshots of the main pages at phone, tablet and TV sizes', async () => {
    for (const [path, name] of [
      ['#/', 'tournaments'],
      ['#/displays', 'displays'],
      ['#/system', 'system'],
      [`#/t/${tournamentId}/clock`, 'clock'],
    ]) {
      await console_.goto(`${node.url}/${path}`);
      await console_.getByRole('heading').first().waitFor();
      await console_.waitForTimeout(150);
      await shot(console_, `phone-${name}`);
    }
    // Same session as the phone: a second device of the same floor manager.
    const tablet = await browser.newContext({ ...TABLET, storageState: await phone.storageState() });
    tablet.setDefaultTimeout(10_000);
    const page = await tablet.newPage();
    await page.goto(`${node.url}/#/t/${tournamentId}/players`);
    await page.getByTestId('entry').first().waitFor();
    await shot(page, 'tablet-players');
    await page.goto(`${node.url}/#/cash`);
    await page.getByTestId('game').first().waitFor();
    await shot(page, 'tablet-cash');
    await tablet.close();

    const tv2 = await tv.newPage();
    await tv2.goto(`${node.url}/display/hdmi`);
    await tv2.getByTestId('clock').waitFor();
    await shot(tv2, 'tv-display-hdmi');
    const portrait = await browser.newContext({ viewport: { width: 1080, height: 1920 } });
    const p2 = await portrait.newPage();
    await p2.goto(`${node.url}/display/${screenId}`);
    await p2.getByTestId('clock').waitFor();
    await shot(p2, 'portrait-display-clock');
    await portrait.close();
    const phoneDisplay = await phone.newPage();
    await phoneDisplay.goto(`${node.url}/display/${screenId}`);
    await phoneDisplay.getByTestId('clock').waitFor();
    await shot(phoneDisplay, 'phone-display-clock');
  });

  assert.deepEqual(errors, [], `the console threw: ${errors.join('\n')}`);
});
