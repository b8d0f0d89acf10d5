// Browser test of the map page: headless Chromium (Debian's) driven by playwright-core
// against a running urbantile. Run by tests/map_page.rs, which starts the server and passes
//   node web/test/map.mjs BASE_URL KNOWN_JSON SCREENSHOT_PNG
// KNOWN_JSON names a school and a building with their lon/lat (from the store), a street
// with its vertices and the middle of its longest stretch, and holds a key that may write
// urban_problems.
// Prints one line per check; exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const [base, knownPath, screenshotPath] = process.argv.slice(2);
const known = JSON.parse(readFileSync(knownPath, 'utf8'));
const BACKGROUND = [0xf2, 0xef, 0xe9];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
const problems = [];

async function open(path, viewport = { width: 1100, height: 800 }, extra = {}) {
  const context = await browser.newContext({ viewport, ...extra });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${path}: console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${path}: page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // The change feed is a request that never ends: closing the page aborts it.
    if (r.url().includes('/changes?') && r.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`${path}: request failed: ${r.url()}`);
  });
  const started = Date.now();
  await page.goto(base + path);
  await page.waitForFunction(() => window.urbantile && window.urbantile.map, null, { timeout: 60000 });
  await page.evaluate(() => window.urbantile.ready);
  return { page, context, ms: Date.now() - started };
}

async function idle(page) {
  await page.evaluate(() => new Promise((resolve) => {
    const map = window.urbantile.map;
    if (map.loaded() && !map.isMoving() && map.areTilesLoaded()) {
      map.once('idle', resolve);
      map.triggerRepaint();
    } else {
      map.once('idle', resolve);
    }
  }));
}

async function pixel(page, lonLat) {
  const [x, y] = await page.evaluate((ll) => {
    const p = window.urbantile.map.project(ll);
    return [Math.round(p.x), Math.round(p.y)];
  }, lonLat);
  const png = PNG.sync.read(await page.screenshot({ clip: { x, y, width: 1, height: 1 } }));
  return [png.data[0], png.data[1], png.data[2]];
}

const isBackground = (px) => px.every((v, i) => Math.abs(v - BACKGROUND[i]) <= 3);
const view = (ll, z) => `#${z}/${ll[1]}/${ll[0]}`;

// 1. The page loads with every layer and no console errors.
{
  const { page, context, ms } = await open('/map');
  const firstIdle = await page.evaluate(() => Math.round(window.urbantile.firstIdleMs));
  const layers = await page.locator('#layers input[type=checkbox]').count();
  assert.ok(layers >= 10, `only ${layers} layer toggles`);
  console.log(`ok - page loads with ${layers} layer toggles; first render ${firstIdle} ms after navigation start (${ms} ms to idle)`);
  await context.close();
}

// 2. The canvas shows the city where a known building is, and a map with it hidden does not;
//    toggling the layer in the panel changes those pixels.
{
  const b = known.building;
  const { page, context } = await open(`/map?show=buildings${view(b.lonlat, 17)}`);
  const shown = await pixel(page, b.lonlat);
  assert.ok(!isBackground(shown), `building ${b.name} is not drawn: pixel ${shown}`);
  await page.locator('input[data-layer=buildings]').uncheck();
  await idle(page);
  const hidden = await pixel(page, b.lonlat);
  assert.ok(isBackground(hidden), `hiding buildings left pixel ${hidden}`);
  await page.locator('input[data-layer=buildings]').check();
  await idle(page);
  assert.deepEqual(await pixel(page, b.lonlat), shown);
  const url = await page.evaluate(() => location.href);
  console.log(`ok - building "${b.name}" drawn (${shown}), hidden by its toggle (${hidden}); URL ${url.slice(base.length)}`);
  await context.close();
}

// 3. Clicking a known school and a known building opens a popup with its name.
for (const [kind, f, layer] of [['school', known.school, 'schools'], ['building', known.building, 'buildings']]) {
  const { page, context } = await open(`/map?show=${layer}${view(f.lonlat, 17)}`);
  const [x, y] = await page.evaluate((ll) => {
    const p = window.urbantile.map.project(ll);
    return [p.x, p.y];
  }, f.lonlat);
  await page.mouse.click(x, y);
  const popup = page.locator('.maplibregl-popup-content');
  await popup.waitFor({ timeout: 10000 });
  const text = await popup.innerText();
  assert.ok(text.includes(f.name), `popup for the ${kind} says ${JSON.stringify(text)}`);
  console.log(`ok - clicking the ${kind} opens a popup naming "${f.name}"`);
  await context.close();
}

// 4. Moving the time slider changes which events show.
{
  const c = known.centre;
  const { page, context } = await open(`/map?show=public_events${view(c, 14)}`);
  const count = () => page.evaluate(() => window.urbantile.map.queryRenderedFeatures({ layers: ['public_events-circle'] }).length);
  const all = await count();
  await page.locator('#time-on').check();
  await idle(page);
  const counts = [];
  for (const value of ['60', '200', '300']) {
    await page.evaluate((v) => {
      const r = document.getElementById('time-day');
      r.value = v;
      r.dispatchEvent(new Event('change'));
    }, value);
    await idle(page);
    counts.push([await page.locator('#time-label').innerText(), await count()]);
  }
  assert.ok(all > 0, 'no events drawn');
  assert.ok(counts.every(([, n]) => n < all), `the time filter did not thin the events: all ${all}, ${JSON.stringify(counts)}`);
  assert.ok(new Set(counts.map(([, n]) => n)).size > 1 || counts.some(([, n]) => n > 0), `every day shows the same events: ${JSON.stringify(counts)}`);
  const url = await page.evaluate(() => location.search);
  assert.ok(url.includes('datetime='), `the day is not in the URL: ${url}`);
  console.log(`ok - time slider: ${all} events at all times, by day ${JSON.stringify(counts)}`);
  await context.close();
}

// 5. On a phone the panel folds behind a button, and a tap opens a popup.
{
  const s = known.school;
  const { page, context } = await open(`/map?show=schools${view(s.lonlat, 17)}`, { width: 390, height: 760 },
    { isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  assert.ok(await page.locator('#panel-toggle').isVisible(), 'no panel button on a phone');
  assert.ok(!(await page.locator('#panel').isVisible()), 'the panel covers the map on a phone');
  await page.locator('#panel-toggle').tap();
  assert.ok(await page.locator('#panel').isVisible(), 'the panel button does not open the panel');
  await page.locator('#panel-toggle').tap();
  const [x, y] = await page.evaluate((ll) => {
    const p = window.urbantile.map.project(ll);
    return [p.x, p.y];
  }, s.lonlat);
  await page.touchscreen.tap(x, y);
  await page.locator('.maplibregl-popup-content').waitFor({ timeout: 10000 });
  console.log('ok - phone: panel behind a button, tap opens a popup');
  await context.close();
}

// 6. The embeddable widget shows only its layers and controls.
{
  const { page, context } = await open('/map?layers=schools,parks&controls=nav,legend');
  const rows = await page.locator('#layers label').count();
  const toggles = await page.locator('#layers input').count();
  assert.equal(rows, 2);
  assert.equal(toggles, 0);
  assert.ok(await page.locator('.maplibregl-ctrl-zoom-in').isVisible());
  console.log('ok - widget: two layers in the legend, no toggles, zoom buttons');
  await context.close();
}

// 7. A report written while the page is open appears without a reload, and goes when deleted.
{
  const c = known.centre;
  const { page, context } = await open(`/map?show=urban_problems${view(c, 17)}`);
  // An empty spot on screen: step east from the centre until the map shows background.
  let spot = null;
  for (let i = 0; i < 40 && !spot; i++) {
    const ll = [c[0] + i * 0.0002, c[1]];
    const around = await Promise.all([[0, 0], [0.00003, 0], [-0.00003, 0], [0, 0.00002], [0, -0.00002]]
      .map(([dx, dy]) => pixel(page, [ll[0] + dx, ll[1] + dy])));
    if (around.every(isBackground)) spot = ll;
  }
  assert.ok(spot, 'no empty spot near the centre');
  const auth = { Authorization: `Bearer ${known.key}`, 'Content-Type': 'application/geo+json' };
  const posted = await fetch(`${base}/collections/urban_problems/items`, {
    method: 'POST', headers: auth,
    body: JSON.stringify({ type: 'Feature', geometry: { type: 'Point', coordinates: spot },
      properties: { ticket_no: 'LIVE-1', category: 'lighting', status: 'new', reported_at: '2026-11-22T08:00:00Z' } }),
  });
  assert.equal(posted.status, 201);
  const answered = Date.now();
  const waitFor = async (want, what) => {
    for (;;) {
      if (want(await pixel(page, spot))) return Date.now() - answered;
      assert.ok(Date.now() - answered < 15000, `${what} did not happen within 15 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const drawn = await waitFor((px) => !isBackground(px), 'the new report being drawn');
  const location = posted.headers.get('location');
  const gone = await fetch(location, { method: 'DELETE', headers: auth });
  assert.equal(gone.status, 204);
  const deletedAt = Date.now();
  await waitFor(isBackground, 'the deleted report vanishing');
  const reloads = await page.evaluate(() => performance.getEntriesByType('navigation').length);
  assert.equal(reloads, 1, 'the page reloaded');
  console.log(`ok - live: a posted report drawn ${drawn} ms after its POST was answered, gone ${Date.now() - deletedAt} ms after its DELETE`);
  await context.close();
}

// Label pixels: what a screenshot shows with the labels that hides with every symbol layer
// hidden (map.setLayoutProperty), as [x, y] of the changed pixels.
async function labelPixels(page) {
  const shot = async () => PNG.sync.read(await page.screenshot());
  const setSymbols = (visibility) => page.evaluate((v) => {
    const map = window.urbantile.map;
    for (const l of map.getStyle().layers) if (l.type === 'symbol') map.setLayoutProperty(l.id, 'visibility', v);
  }, visibility);
  await idle(page);
  const shown = await shot();
  await setSymbols('none');
  await idle(page);
  const hidden = await shot();
  await setSymbols('visible');
  await idle(page);
  const changed = [];
  for (let y = 0; y < shown.height; y++) {
    for (let x = 0; x < shown.width; x++) {
      const i = (y * shown.width + x) * 4;
      const d = Math.abs(shown.data[i] - hidden.data[i]) + Math.abs(shown.data[i + 1] - hidden.data[i + 1])
        + Math.abs(shown.data[i + 2] - hidden.data[i + 2]);
      if (d > 60) changed.push([x, y]);
    }
  }
  return changed;
}

// Distance in px from a point to a segment.
function toSegment([px, py], [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy || 1)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// 8. Labels: a known street's name is written along it, and a cluster's count on it; both
//    are pixels that go when the symbol layers are hidden.
{
  const s = known.street;
  const { page, context } = await open(`/map?show=roads${view(s.lonlat, 17)}`);
  await idle(page);
  const placed = await page.evaluate(() => window.urbantile.map.queryRenderedFeatures({ layers: ['roads-label'] })
    .map((f) => f.properties.name));
  assert.ok(placed.includes(s.name), `the street "${s.name}" is not labelled; labels placed: ${JSON.stringify([...new Set(placed)])}`);
  const changed = await labelPixels(page);
  const line = await page.evaluate((ll) => ll.map((p) => {
    const q = window.urbantile.map.project(p);
    return [q.x, q.y];
  }), s.line);
  const along = changed.filter((p) => line.slice(1).some((b, i) => toSegment(p, line[i], b) <= 12));
  assert.ok(along.length >= 40, `only ${along.length} label pixels along "${s.name}" (${changed.length} in all)`);
  console.log(`ok - street label: "${s.name}" placed, ${along.length} label pixels along it (${changed.length} label pixels on screen)`);
  await context.close();
}
{
  const c = known.centre;
  const { page, context } = await open(`/map?show=accidents${view(c, 13)}`);
  await idle(page);
  const counts = await page.evaluate(() => window.urbantile.map.queryRenderedFeatures({ layers: ['accidents-cluster-count'] })
    .map((f) => ({ text: String(f.properties.point_count_abbreviated), lonlat: f.geometry.coordinates })));
  assert.ok(counts.length > 0, 'no cluster count is placed');
  const changed = await labelPixels(page);
  const centres = await page.evaluate((cs) => cs.map((k) => {
    const q = window.urbantile.map.project(k.lonlat);
    return [q.x, q.y];
  }), counts);
  // The count's pixels sit on its cluster: within a few px of its centre.
  const near = centres.map((p) => changed.filter(([x, y]) => Math.abs(x - p[0]) <= 14 && Math.abs(y - p[1]) <= 9).length);
  const best = near.indexOf(Math.max(...near));
  assert.ok(near[best] >= 10, `only ${near[best]} label pixels on the cluster counting ${counts[best].text}`);
  console.log(`ok - cluster counts: ${counts.length} placed; the one reading "${counts[best].text}" has ${near[best]} label pixels on its circle`);
  await context.close();
}

// 9. A screenshot for the README: the centre in 3D.
{
  const c = known.centre;
  const { page, context } = await open(`/map#15.6/${c[1]}/${c[0]}/-20/55`, { width: 1200, height: 750 });
  await page.screenshot({ path: screenshotPath });
  console.log(`ok - screenshot written to ${screenshotPath}`);
  await context.close();
}

await browser.close();
if (problems.length) {
  console.log(problems.join('\n'));
  process.exit(1);
}
console.log('ok - no console errors, page errors or failed requests');
