// End to end: the real console and display pages in headless Chromium against a real
// pvm-node. One night in order: first-run setup, a tournament and its clock on a display in
// another browser, players and payouts, the cash waiting list, a node restart survived
// without a reload, and screenshots of every main page at phone and TV sizes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import jsQR from 'jsqr';
import { Node, launchBrowser, ensureShots, shots, PHONE, TV, TABLET, a11yProblems, tabOrder } from './harness.mjs';

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

/** Paints an on-page SVG QR code into a canvas and decodes its pixels with a real QR reader. */
async function readQr(page, svg) {
  const { width, pixels } = await svg.evaluate(async (el) => {
    const size = 400;
    const img = new Image();
    img.src = `data:image/svg+xml;base64,${btoa(new XMLSerializer().serializeToString(el))}`;
    await img.decode();
    const canvas = Object.assign(document.createElement('canvas'), { width: size, height: size });
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, size, size);
    return { width: size, pixels: Array.from(ctx.getImageData(0, 0, size, size).data) };
  });
  return jsQR(Uint8ClampedArray.from(pixels), width, width)?.data ?? null;
}

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
          // What the node logged last (refusals included) usually says why.
          console.error(`--- node log (tail) ---\n${node.output.slice(-4000)}`);
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
    // The QR code beside it, as a phone's camera would read it, leads to the console.
    const url = await page.locator('.url').innerText();
    assert.equal(url, `http://127.0.0.1:${node.port}`);
    assert.equal(await readQr(page, page.getByRole('img', { name: `QR code for ${url}` })), url);
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

  // Clears the messages of earlier steps, so the next one read is the answer to this step.
  const dismissToasts = async () => {
    for (const b of await console_.getByRole('button', { name: 'Dismiss' }).all()) await b.click({ timeout: 1000 }).catch(() => {});
  };

  await t.test('the structure exports as CSV and JSON and imports from both', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/structure`);
    await dismissToasts();
    await console_.getByRole('button', { name: '+ Level' }).waitFor();
    const levelsBefore = await console_.getByLabel(/^Big blind, level/).count();
    const download = async (name) => {
      const [file] = await Promise.all([console_.waitForEvent('download'), console_.getByRole('link', { name }).click()]);
      return readFileSync(await file.path(), 'utf8');
    };
    const csv = await download('Export CSV');
    assert.match(csv, /^kind,small_blind,big_blind,ante,ante_kind,duration_minutes,note\n/);
    assert.equal(csv.trim().split('\n').filter((l) => l.startsWith('level,')).length, levelsBefore, csv);
    const json = JSON.parse(await download('Export JSON'));
    assert.equal(json.items.filter((i) => i.type === 'level').length, levelsBefore);

    // A short CSV from a spreadsheet replaces the structure; its file name picks the format.
    const short = 'kind,small_blind,big_blind,ante,ante_kind,duration_minutes,note\nlevel,100,200,0,none,15,\nlevel,200,400,400,big_blind,15,\nbreak,,,,,10,Colour up the 25s\nlevel,300,600,600,big_blind,15,\nlevel,400,800,800,big_blind,15,\nlevel,500,1000,1000,big_blind,15,\n';
    await console_.getByLabel('File').setInputFiles({ name: 'short.csv', mimeType: 'text/csv', buffer: Buffer.from(short) });
    await console_.getByRole('button', { name: 'Import', exact: true }).click();
    const answer = console_.getByText('Structure imported.').or(console_.getByRole('alert'));
    await answer.first().waitFor();
    assert.equal(await answer.first().innerText(), 'Structure imported.');
    await console_.getByLabel(/^Big blind, level/).nth(4).waitFor();
    assert.equal(await console_.getByLabel(/^Big blind, level/).count(), 5);
    assert.equal(await console_.getByLabel('Big blind, level 3').inputValue(), '600');
    assert.equal(await console_.getByLabel('Colour-up note').inputValue(), 'Colour up the 25s');

    // The JSON export comes back in as it left, under a new name.
    json.name = 'Turbo (imported)';
    await console_.getByLabel('File').setInputFiles({ name: 'turbo.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(json)) });
    // Reading the file is asynchronous: the format follows the name once it is read.
    await console_.waitForFunction(() => document.querySelector('select[aria-label="Format"]')?.value === 'json');
    await console_.getByRole('button', { name: 'Import', exact: true }).click();
    await console_.waitForFunction(() => [...document.querySelectorAll('input')].some((i) => i.value === 'Turbo (imported)'));
    assert.equal(await console_.getByLabel('Structure name').inputValue(), 'Turbo (imported)');
    assert.equal(await console_.getByLabel(/^Big blind, level/).count(), levelsBefore);

    // A broken file is refused with the node's reason, naming the line.
    await console_.getByLabel('…or paste').fill('kind,small_blind,big_blind,ante,ante_kind,duration_minutes,note\nlevel,200,100,0,none,15,\n');
    await console_.getByLabel('Format').selectOption('csv');
    await console_.getByRole('button', { name: 'Import', exact: true }).click();
    const refusal = await console_.getByRole('alert').last().innerText();
    assert.match(refusal, /line 2/i, refusal);
    assert.equal(await console_.getByLabel(/^Big blind, level/).count(), levelsBefore, 'a refused import changed the structure');
    await shot(console_, 'phone-structure-import');
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
    const searchBox = console_.getByLabel('Find or add a player');
    // Staff type the next name while the last registration is still on its way: hold Ann's
    // request until Brian's name is typed, and the box must keep Brian's name afterwards.
    let releaseHeld;
    const held = new Promise((resolve) => (releaseHeld = resolve));
    const holdFirstEntry = async (route) => {
      if (route.request().method() === 'POST') await held;
      await route.continue();
    };
    await console_.route('**/api/v1/tournaments/*/entries', holdFirstEntry);
    await searchBox.fill('Ann Walsh');
    await console_.getByRole('button', { name: 'Register new player “Ann Walsh”' }).click();
    await searchBox.fill('Brian Dunne');
    releaseHeld();
    await console_.getByTestId('entry').filter({ hasText: 'Ann Walsh' }).waitFor();
    await console_.getByText('Ann Walsh registered.').waitFor();
    await console_.unroute('**/api/v1/tournaments/*/entries', holdFirstEntry);
    assert.equal(await searchBox.inputValue(), 'Brian Dunne', 'the next name typed was wiped');
    for (const name of ['Brian Dunne', 'Ciara Byrne']) {
      await searchBox.fill(name);
      await console_.getByRole('button', { name: `Register new player “${name}”` }).click();
      await console_.getByTestId('entry').filter({ hasText: name }).waitFor();
      // The box empties once the registration is acknowledged; the next name goes in after.
      await console_.waitForFunction(() => document.querySelector('input[name=player_search]')?.value === '');
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

  await t.test('theme colours and an uploaded logo reach the display; an oversized logo is refused', async () => {
    await console_.goto(`${node.url}/#/displays`);
    const theme = console_.getByRole('region', { name: 'Theme' });
    await theme.getByLabel('Accent').fill('#33ccff');
    await console_.getByText('Theme saved.').last().waitFor();
    await display.waitForFunction(() => {
      const main = document.querySelector('main.screen');
      return main && getComputedStyle(main).getPropertyValue('--accent').trim() === '#33ccff';
    });

    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
    await theme.getByLabel(/^Logo/).setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: png });
    await theme.getByRole('img', { name: 'Venue logo' }).waitFor();
    await display.locator('.brand img[src^="data:image/png;base64,"]').waitFor();

    const huge = Buffer.alloc(300 * 1024, 7);
    await theme.getByLabel(/^Logo/).setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: huge });
    // Wait for this refusal's own alert: an earlier step's alert may still be on screen.
    const alert = await console_.getByRole('alert').filter({ hasText: /at most 256 KiB/ }).last().innerText();
    assert.match(alert, /at most 256 KiB/, alert);
    await shot(console_, 'phone-displays-theme');
    await shot(display, 'tv-display-themed');
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

    // Two paid places: ICM and a chip chop now price the same stacks differently.
    await console_.goto(`${node.url}/#/t/${tournamentId}/settings`);
    await console_.getByLabel('Paid % of field').fill('50');
    await console_.getByRole('button', { name: 'Save settings' }).click();
    await console_.getByText('Settings saved.').waitFor();
    await console_.goto(`${node.url}/#/t/${tournamentId}/payouts`);
    await console_.getByRole('heading', { name: 'Payouts · 2 paid' }).waitFor();
    const prizes = [...(await console_.getByTestId('payouts').innerText()).matchAll(/€(\d+)/g)].map((m) => Number(m[1])).filter((p) => p > 0);
    assert.deepEqual(prizes.length, 2, String(prizes));
    assert.equal(prizes[0] + prizes[1], 180, String(prizes));
    const amounts = async (method) => {
      await deal.getByRole('radio', { name: method, exact: true }).click();
      for (const [name, chips] of [['Ann Walsh', '30000'], ['Brian Dunne', '20000'], ['Ciara Byrne', '10000']]) {
        await deal.getByLabel(`${name} chips`).fill(chips);
      }
      await deal.getByRole('button', { name: 'Calculate' }).click();
      const rows = deal.locator('tbody tr');
      await rows.nth(2).waitFor();
      await console_.waitForTimeout(100);
      const text = await deal.locator('tbody').innerText();
      return Object.fromEntries([...text.matchAll(/(Ann Walsh|Brian Dunne|Ciara Byrne)\s+[\d,]+\s+€([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
    };
    const icm = await amounts('ICM');
    const chop = await amounts('Chip chop');
    await shot(console_, 'phone-deal-chip-chop');
    for (const deal of [icm, chop]) {
      assert.equal(Object.keys(deal).length, 3, JSON.stringify(deal));
      assert.equal(Math.round(Object.values(deal).reduce((a, b) => a + b, 0)), 180, JSON.stringify(deal));
      assert.ok(deal['Ann Walsh'] > deal['Brian Dunne'] && deal['Brian Dunne'] > deal['Ciara Byrne'], JSON.stringify(deal));
    }
    // ICM pays the short stack more than its chip share; a chip chop pays the chip leader more.
    assert.ok(chop['Ann Walsh'] > icm['Ann Walsh'], `chip chop ${JSON.stringify(chop)} vs ICM ${JSON.stringify(icm)}`);
    assert.ok(icm['Ciara Byrne'] > chop['Ciara Byrne'], `chip chop ${JSON.stringify(chop)} vs ICM ${JSON.stringify(icm)}`);
  });

  await t.test('seating: a table is added and the players drawn into it', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/seating`);
    await console_.getByRole('button', { name: 'Add table' }).click();
    await console_.getByRole('region', { name: 'Table 1' }).waitFor();
    await console_.getByRole('button', { name: /Draw seats \(3 unseated\)/ }).click();
    await console_.getByRole('button', { name: /Draw seats \(0 unseated\)/ }).waitFor();
    const table = await console_.getByRole('region', { name: 'Table 1' }).innerText();
    for (const name of ['Ann Walsh', 'Brian Dunne', 'Ciara Byrne']) assert.ok(table.includes(name), table);

    // Two late registrations seated at a second table, then one of them moved back to table
    // 1 by hand: 4 against 1. The core proposes the move that evens it, and one tap applies it.
    await console_.getByRole('button', { name: 'Add table' }).click();
    await console_.getByRole('region', { name: 'Table 2' }).waitFor();
    await console_.evaluate(async (id) => {
      const send = async (path, body) => {
        const r = await fetch(`/api/v1/tournaments/${id}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (!r.ok) throw new Error(`${path}: ${await r.text()}`);
        return r.json();
      };
      for (const name of ['Dara Quinn', 'Eoin Byrne']) await send('/entries', { new_player: { name } });
    }, tournamentId);
    // With tables in play, a registration draws its seat at once: both go to the short table.
    await console_.getByRole('region', { name: 'Table 2' }).getByText('2/9').waitFor();
    await console_.evaluate(async (id) => {
      const d = await (await fetch(`/api/v1/tournaments/${id}`)).json();
      const [t1, t2] = [...d.tournament.floor.tables].sort((a, b) => a.number - b.number);
      const entry = Object.values(t2.occupants)[0];
      const free = Array.from({ length: t1.seat_count }, (_, i) => i + 1).find((s) => !t1.occupants[String(s)]);
      const r = await fetch(`/api/v1/tournaments/${id}/seating/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entry_id: entry, to: { table: t1.id, seat: free } }) });
      if (!r.ok) throw new Error(await r.text());
    }, tournamentId);
    const apply = console_.getByRole('button', { name: 'Apply 1 move' });
    await apply.waitFor();
    await shot(console_, 'phone-seating-balance');
    await apply.click();
    await console_.getByText('Moves applied.').waitFor();
    await apply.waitFor({ state: 'detached' });
    const count = async (n) => (await console_.getByRole('region', { name: `Table ${n}` }).innerText()).match(/(\d+)\/\d+/)[1];
    assert.equal(await count(1), '3');
    assert.equal(await count(2), '2');
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

  await t.test('a rotation screen shows its screens in turn on a TV', async () => {
    await console_.goto(`${node.url}/#/displays`);
    await console_.getByLabel('Screen name').fill('Lobby rotation');
    await console_.locator('select[name=screen_kind]').selectOption('rotation');
    const inTurn = console_.getByRole('group', { name: 'Screens in turn' });
    await inTurn.getByLabel('Main clock').check();
    await inTurn.getByLabel('Waiting list').check();
    await inTurn.getByLabel('Seconds each').fill('5');
    await console_.getByRole('button', { name: 'Save screen' }).click();
    const link = console_.getByRole('listitem').filter({ hasText: 'Lobby rotation' }).getByTestId('open-screen');
    await link.waitFor();
    const rotationId = /\/display\/([0-9a-f-]{36})/.exec(await link.getAttribute('href'))[1];
    const lobby = await tv.newPage();
    await lobby.goto(`${node.url}/display/${rotationId}`);
    // Whichever comes first, the other follows within one interval, and then the first again.
    const clock = lobby.getByTestId('clock');
    const list = lobby.getByTestId('waiting-list');
    await clock.or(list).first().waitFor();
    const firstIsClock = await clock.isVisible();
    const [a, b] = firstIsClock ? [clock, list] : [list, clock];
    await b.waitFor({ timeout: 7000 });
    await shot(lobby, 'tv-display-rotation');
    await a.waitFor({ timeout: 7000 });
    await lobby.close();
  });

  await t.test('system: network facts, and an admin manages users and roles', async () => {
    await console_.goto(`${node.url}/#/system`);
    const net = console_.getByRole('region', { name: 'Network' });
    await net.getByTestId('interface').first().waitFor();
    assert.match(await net.getByTestId('network').innerText(), new RegExp(`127\\.0\\.0\\.1:${node.port}`));
    const serving = net.getByTestId('interface').filter({ hasText: 'serves the console' });
    assert.equal(await serving.count(), 1);
    assert.match(await serving.innerText(), /127\.0\.0\.1\/8/);

    const users = console_.getByRole('region', { name: 'Users' });
    const form = users.getByRole('form', { name: 'New user' });
    await form.getByLabel('Username').fill('fiona');
    await form.getByLabel('Password').fill('fiona-pass-1');
    await form.getByLabel('Role').selectOption('floor');
    await form.getByRole('button', { name: 'Add user' }).click();
    await users.getByLabel('Role of fiona').waitFor({ timeout: 30_000 });
    assert.equal(await users.getByLabel('Role of fiona').inputValue(), 'floor');
    await users.getByLabel('Role of fiona').selectOption('dealer');
    await console_.getByText('Role changed.').waitFor();
    await users.getByRole('button', { name: 'Reset password of fiona' }).click();
    await users.getByLabel('New password for fiona').fill('short');
    await users.getByRole('button', { name: 'Set password', exact: true }).click();
    // The browser's own check stops a too-short password before it is sent.
    assert.equal(await users.getByLabel('New password for fiona').evaluate((i) => i.validity.tooShort), true);
    await users.getByLabel('New password for fiona').fill('fiona-new-pass-2');
    await users.getByRole('button', { name: 'Set password', exact: true }).click();
    await console_.getByText(/New password set for fiona/).waitFor({ timeout: 30_000 });
    await shot(console_, 'phone-system-users');

    // Fiona signs in on her own phone as a dealer: no user admin, and floor actions are refused
    // with the node's reason.
    const hers = await browser.newContext(PHONE);
    hers.setDefaultTimeout(10_000);
    const page = await hers.newPage();
    await page.goto(node.url);
    await page.getByLabel('Username').fill('fiona');
    await page.getByLabel('Password').fill('fiona-new-pass-2');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Tournaments' }).waitFor({ timeout: 30_000 });
    await page.goto(`${node.url}/#/t/${tournamentId}/clock`);
    await page.getByRole('button', { name: 'Add one minute' }).click();
    const refused = await page.getByRole('alert').first().innerText();
    assert.match(refused, /needs the floor role.*signed in as dealer/i, refused);
    await page.goto(`${node.url}/#/system`);
    await page.getByRole('heading', { name: 'My password' }).waitFor();
    assert.equal(await page.getByRole('region', { name: 'Users' }).count(), 0);

    // Disabled: her session ends at once and she cannot sign in again.
    await users.getByRole('button', { name: 'Disable fiona' }).click();
    await users.getByTestId('disabled').waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await page.getByLabel('Username').fill('fiona');
    await page.getByLabel('Password').fill('fiona-new-pass-2');
    await page.getByRole('button', { name: 'Log in' }).click();
    assert.match(await page.getByRole('alert').first().innerText(), /disabled/i);
    await hers.close();
  });

  await t.test('after the node restarts, the console says it resumed and the display recovers without a reload', async () => {
    await node.restart();
    await console_.getByText(/Reconnected: resumed after update/).waitFor({ timeout: 15_000 });
    await console_.getByTestId('link-state').filter({ hasText: 'Live' }).waitFor();
    await display.locator('[data-testid="clock"][data-status="running"]').waitFor({ timeout: 15_000 });
    await display.getByTestId('link').waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await display.evaluate(() => window.__sameDocument), true, 'the display page reloaded');
  });

  const mainPages = () => [
    ['#/', 'tournaments'],
    [`#/t/${tournamentId}/clock`, 'clock'],
    [`#/t/${tournamentId}/players`, 'players'],
    [`#/t/${tournamentId}/seating`, 'seating'],
    [`#/t/${tournamentId}/payouts`, 'payouts'],
    [`#/t/${tournamentId}/structure`, 'structure'],
    [`#/t/${tournamentId}/settings`, 'settings'],
    ['#/cash', 'cash'],
    ['#/displays', 'displays'],
    ['#/system', 'system'],
  ];
  const settle = async (page) => {
    await page.getByRole('heading').first().waitFor();
    await page.waitForLoadState('networkidle').catch(() => {});
    await page.waitForTimeout(150);
  };

  await t.test('every main page names its controls, keeps AA contrast in the dark theme, and has no positive tabindex', async () => {
    const found = [];
    for (const [path, name] of mainPages()) {
      await console_.goto(`${node.url}/${path}`);
      await settle(console_);
      for (const p of await a11yProblems(console_)) found.push(`${name}: ${p}`);
    }
    assert.deepEqual(found, []);
  });

  await t.test('the keyboard reaches the controls in reading order, with a visible focus ring', async () => {
    await console_.goto(`${node.url}/#/t/${tournamentId}/clock`);
    await settle(console_);
    const order = await tabOrder(console_);
    const regions = order.map((f) => f.region);
    // Header first, then the page, then the section links: the order they are read in.
    const firstMain = regions.indexOf('main');
    const firstNav = regions.indexOf('nav');
    assert.ok(regions.lastIndexOf('header') < firstMain && regions.lastIndexOf('main') < firstNav, regions.join(' '));
    const main = order.filter((f) => f.region === 'main');
    for (let i = 1; i < main.length; i++) {
      assert.ok(main[i].y >= main[i - 1].y - 1, `focus went up the page: ${main[i - 1].name} → ${main[i].name}`);
    }
    assert.ok(main.some((f) => f.name === 'Add one minute'), order.map((f) => f.name).join(', '));
    for (const f of order) assert.notEqual(f.outline, 'none', `no focus ring on ${f.html}`);
    // And a control works from the keyboard: Enter on "Remove one minute" takes a minute off.
    await console_.getByRole('button', { name: 'Remove one minute' }).focus();
    const secs = (t) => t.split(':').reduce((a, x) => a * 60 + Number(x), 0);
    const before = secs(await console_.getByTestId('console-time').innerText());
    await console_.keyboard.press('Enter');
    await console_.waitForFunction(
      (b) => {
        const t = document.querySelector('[data-testid="console-time"]')?.textContent ?? '';
        return t.split(':').reduce((a, x) => a * 60 + Number(x), 0) < b - 30;
      },
      before,
    );
    assert.ok(secs(await console_.getByTestId('console-time').innerText()) < before - 30);
  });

  await t.test('screenshots of the main pages at phone, tablet and TV sizes', async () => {
    for (const [path, name] of mainPages()) {
      await console_.goto(`${node.url}/${path}`);
      await settle(console_);
      await shot(console_, `phone-${name}`);
    }
    // The same floor manager on a laptop or a TV-sized browser.
    const big = await browser.newContext({ ...TV, storageState: await phone.storageState() });
    big.setDefaultTimeout(10_000);
    const wide = await big.newPage();
    for (const [path, name] of mainPages()) {
      await wide.goto(`${node.url}/${path}`);
      await settle(wide);
      await shot(wide, `tv-console-${name}`);
    }
    await big.close();
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
