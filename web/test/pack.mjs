// Browser test of an offline pack: headless Chromium (Debian's) driven by playwright-core
// opens a page that reads a PMTiles pack straight from the server with the npm `pmtiles`
// protocol for MapLibre GL JS, while every request to /tiles is blocked. Run by
// tests/packs.rs, which exports the pack and passes
//   node web/test/pack.mjs BASE_URL KNOWN_JSON
// KNOWN_JSON: {"pack": "NAME.pmtiles", "building": {"name", "lonlat"}} (a building in the pack).
// Prints one line per check; exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const [base, knownPath] = process.argv.slice(2);
const known = JSON.parse(readFileSync(knownPath, 'utf8'));
const pmtilesJs = readFileSync(fileURLToPath(new URL('../node_modules/pmtiles/dist/pmtiles.js', import.meta.url)));

const page_html = `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/map/maplibre-gl.css">
<style>html, body, #map { margin: 0; width: 100%; height: 100%; }</style>
<script src="/map/maplibre-gl.js"></script><script src="/pack-test/pmtiles.js"></script>
</head><body><div id="map"></div><script>
const known = ${JSON.stringify(known)};
const protocol = new pmtiles.Protocol();
maplibregl.addProtocol('pmtiles', protocol.tile);
window.map = new maplibregl.Map({
  container: 'map', center: known.building.lonlat, zoom: 17, fadeDuration: 0,
  style: {
    version: 8,
    sources: { pack: { type: 'vector', url: 'pmtiles://' + location.origin + '/packs/' + known.pack } },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#ffffff' } },
      { id: 'buildings', type: 'fill', source: 'pack', 'source-layer': 'buildings', paint: { 'fill-color': '#ff0000' } },
    ],
  },
});
window.map.once('idle', () => { window.idle = true; });
</script></body></html>`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  let tileRequests = 0;
  let rangeRequests = 0;
  // No tile from the server: the pack is the only source.
  await context.route('**/tiles/**', (route) => { tileRequests++; return route.abort(); });
  await context.route('**/pack-test/page.html', (route) => route.fulfill({ contentType: 'text/html', body: page_html }));
  await context.route('**/pack-test/pmtiles.js', (route) => route.fulfill({ contentType: 'text/javascript', body: pmtilesJs }));
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => { if (r.url().includes('/packs/') && r.headers()['range']) rangeRequests++; });
  await page.goto(base + '/pack-test/page.html');
  await page.waitForFunction(() => window.idle === true, null, { timeout: 60000 });

  const [x, y] = await page.evaluate((ll) => {
    const p = window.map.project(ll);
    return [Math.round(p.x), Math.round(p.y)];
  }, known.building.lonlat);
  const names = await page.evaluate(([px, py]) => window.map
    .queryRenderedFeatures([px, py], { layers: ['buildings'] })
    .map((f) => f.properties.name), [x, y]);
  assert.ok(names.includes(known.building.name), `the building is not drawn there: ${JSON.stringify(names)}`);
  const png = PNG.sync.read(await page.screenshot({ clip: { x, y, width: 1, height: 1 } }));
  const px = [png.data[0], png.data[1], png.data[2]];
  assert.ok(px[0] > 200 && px[1] < 60 && px[2] < 60, `pixel at the building is ${px}, not the fill`);
  console.log(`ok - ${known.building.name} drawn from ${known.pack} (pixel ${px}), read by ${rangeRequests} range requests`);
  assert.ok(rangeRequests > 0, 'the pack was not read by range');
  assert.equal(tileRequests, 0, `${tileRequests} requests went to /tiles`);
  console.log('ok - no request went to /tiles');
  assert.deepEqual(problems, []);
  console.log('ok - no console errors');
} finally {
  await browser.close();
}
