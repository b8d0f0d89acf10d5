// OpenLayers (npm `ol`, its full build dist/ol.js) reading urbantile's OGC API - Tiles with
// its OGCVectorTile source, in headless Chromium (Debian's) driven by playwright-core. Run by
// tests/ogc_tiles.rs, which starts the server and passes
//   node web/test/ogc_tiles.mjs BASE_URL KNOWN_JSON
// KNOWN_JSON names a building (osm_id, name) and a point inside it (lonlat, from the store).
// The map fills buildings red on white; the pixel at the building must be red, and white
// when that one building (by its osm_id, read from the tile) is left unstyled. Prints one
// line per check; exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const [base, knownPath] = process.argv.slice(2);
const known = JSON.parse(readFileSync(knownPath, 'utf8'));
const olJs = fileURLToPath(new URL('../node_modules/ol/dist/ol.js', import.meta.url));
const RED = [255, 0, 0];
const WHITE = [255, 255, 255];
const near = (px, want) => px.every((v, i) => Math.abs(v - want[i]) <= 8);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const problems = [];

// Draws `source` (an OGCVectorTile's url and collections) around the building at zoom 17;
// returns the pixel at the building and the tile URLs the source asked for.
async function draw(source, hideKnown) {
  const context = await browser.newContext({ viewport: { width: 512, height: 512 } });
  const page = await context.newPage();
  // The browser asks for /favicon.ico on its own; the server has none (404).
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()}: ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  // A page of the server's own origin, so that the source's requests are same-origin.
  await page.goto(`${base}/health`);
  await page.setContent('<!doctype html><html><body style="margin:0;background:#fff">'
    + '<div id="map" style="width:512px;height:512px"></div></body></html>');
  await page.addScriptTag({ path: olJs });
  const result = await page.evaluate(async ({ base, known, source, hideKnown }) => {
    const fill = new ol.style.Style({ fill: new ol.style.Fill({ color: '#ff0000' }) });
    const src = new ol.source.OGCVectorTile({
      url: base + source.url,
      format: new ol.format.MVT(),
      collections: source.collections,
    });
    const urls = [];
    src.on('tileloadstart', (e) => urls.push(e.tile.key || ''));
    const layer = new ol.layer.VectorTile({
      source: src,
      style: (f) => (hideKnown && f.get('osm_id') === known.osm_id ? null : fill),
    });
    const center = ol.proj.fromLonLat(known.lonlat);
    const map = new ol.Map({
      target: 'map', layers: [layer], controls: [], interactions: [],
      view: new ol.View({ center, zoom: 17 }),
    });
    const deadline = (what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} in 30 s`)), 30000));
    // The source is ready once it has read the tile set metadata and its tile matrix set.
    await Promise.race([deadline('ready source'), new Promise((resolve, reject) => {
      const check = () => {
        if (src.getState() === 'ready') resolve();
        if (src.getState() === 'error') reject(new Error('the source failed to read the tile set'));
      };
      src.on('change', check);
      check();
    })]);
    await Promise.race([deadline('rendercomplete'), new Promise((resolve) => {
      map.once('rendercomplete', resolve);
      map.render();
    })]);
    const requested = performance.getEntriesByType('resource').map((e) => e.name)
      .filter((u) => u.includes('/WebMercatorQuad/'));
    return { px: map.getPixelFromCoordinate(center), requested };
  }, { base, known, source, hideKnown });
  const [x, y] = result.px.map(Math.round);
  const png = PNG.sync.read(await page.screenshot({ clip: { x, y, width: 1, height: 1 } }));
  await context.close();
  return { pixel: [png.data[0], png.data[1], png.data[2]], requested: result.requested };
}

// The XYZ tile of the building at zoom z: the tile URLs must name it as z/y/x.
function tileOf([lon, lat], z) {
  const n = 2 ** z;
  const x = Math.floor((lon + 180) / 360 * n);
  const r = lat * Math.PI / 180;
  const y = Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n);
  return { x, y };
}

try {
  const collection = { url: '/collections/buildings/tiles/WebMercatorQuad' };
  const shown = await draw(collection, false);
  assert.ok(near(shown.pixel, RED), `building ${known.name} is not drawn red: pixel ${shown.pixel}`);
  // The building's layer ends at zoom 16 (the limits): OpenLayers overzooms its z16 tile.
  const t = tileOf(known.lonlat, 16);
  const want = `/collections/buildings/tiles/WebMercatorQuad/16/${t.y}/${t.x}`;
  assert.ok(shown.requested.some((u) => u.endsWith(want)), `no request for ${want}: ${shown.requested.join(' ')}`);
  console.log(`ok - OGCVectorTile on ${collection.url} draws building "${known.name}" (${shown.pixel}) from ${want}`);

  const hidden = await draw(collection, true);
  assert.ok(near(hidden.pixel, WHITE), `with building ${known.osm_id} unstyled the pixel is ${hidden.pixel}`);
  console.log(`ok - the red pixel is that building: unstyled by its osm_id, the pixel is ${hidden.pixel}`);

  const dataset = { url: '/tiles/WebMercatorQuad', collections: ['buildings'] };
  const selected = await draw(dataset, false);
  assert.ok(near(selected.pixel, RED), `dataset tiles with collections=buildings: pixel ${selected.pixel}`);
  assert.ok(selected.requested.length > 0 && selected.requested.every((u) => u.includes('collections=buildings')),
    `dataset tile URLs: ${selected.requested.join(' ')}`);
  console.log(`ok - OGCVectorTile on the dataset tiles with collections=buildings draws it (${selected.requested.length} tiles)`);
} finally {
  await browser.close();
}
assert.deepEqual(problems, [], problems.join('\n'));
console.log('ok - no console errors or failed requests');
