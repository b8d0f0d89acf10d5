// urbantile map page: every public layer of this server on one MapLibre map, grouped by
// theme with toggles and a legend, a popup with a feature's attributes, a time slider for
// layers with a validity interval, and a URL that keeps the view and the chosen layers.
// Edits made while the page is open appear without a reload: the page follows the
// server's change feed (GET /changes) and refetches its tiles after each change.
//
// Query parameters (also for the embeddable widget):
//   layers=a,b          the layers the map offers (default: every public layer)
//   show=a,b            the ones switched on at first (default: all offered)
//   controls=...        any of layers, legend, time, nav, popup; or none (default: all)
//   datetime=DAY        start with the time filter on that day (YYYY-MM-DD)
// The view is kept in the hash: #zoom/lat/lon.
(function () {
  'use strict';

  var THEMES = ['planning', 'transport', 'permits', 'events', 'services', 'citizens'];
  var DAY_MS = 86400000;
  var params = new URLSearchParams(location.search);
  var controls = (function () {
    var c = params.get('controls');
    if (c === null) return new Set(['layers', 'time', 'nav', 'popup']);
    return new Set(c.split(',').map(function (s) { return s.trim(); }).filter(Boolean));
  })();

  var state = { offered: [], shown: new Set(), day: null, version: null };
  var ready = {};
  ready.promise = new Promise(function (resolve, reject) { ready.resolve = resolve; ready.reject = reject; });
  window.urbantile = { ready: ready.promise };

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }

  function dayString(ms) { return new Date(ms).toISOString().slice(0, 10); }

  function tileUrl(base) {
    var url = base + '/' + state.offered.map(function (l) { return l.id; }).join(',') + '/{z}/{x}/{y}.mvt';
    var q = [];
    if (state.day !== null) {
      var d = dayString(state.day);
      q.push('datetime=' + encodeURIComponent(d + 'T00:00:00Z/' + d + 'T23:59:59Z'));
    }
    // After an edit, new tile URLs get past the browser's HTTP cache; the server ignores v.
    if (state.version !== null) q.push('v=' + encodeURIComponent(state.version));
    return q.length ? url + '?' + q.join('&') : url;
  }

  // Keep the chosen layers and day in the query string; MapLibre keeps the view in the hash.
  function saveUrl() {
    var q = new URLSearchParams(location.search);
    var all = state.offered.length === state.shown.size;
    if (all) q.delete('show'); else q.set('show', Array.from(state.shown).join(','));
    if (state.day === null) q.delete('datetime'); else q.set('datetime', dayString(state.day));
    var s = q.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : '') + location.hash);
  }

  function setShown(map, layer, on) {
    if (on) state.shown.add(layer.id); else state.shown.delete(layer.id);
    layer.style_layers.forEach(function (id) {
      map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
    });
    saveUrl();
  }

  function swatch(layer) {
    var s = el('span', { className: 'swatch ' + layer.geometry });
    s.style.background = layer.color;
    return s;
  }

  function buildPanel(map) {
    var box = document.getElementById('layers');
    var withToggles = controls.has('layers');
    THEMES.forEach(function (theme) {
      var members = state.offered.filter(function (l) { return l.theme === theme; });
      if (!members.length) return;
      box.appendChild(el('h2', { text: theme }));
      members.forEach(function (layer) {
        var parts = [swatch(layer), el('span', { text: layer.title })];
        if (withToggles) {
          var cb = el('input', { type: 'checkbox', 'data-layer': layer.id });
          cb.checked = state.shown.has(layer.id);
          cb.addEventListener('change', function () { setShown(map, layer, cb.checked); });
          parts.unshift(cb);
        }
        var row = el('label', { title: layer.description }, parts);
        box.appendChild(row);
      });
    });
  }

  function buildTime(map, base) {
    var timed = state.offered.filter(function (l) { return l.time && l.time_extent; });
    var starts = [], ends = [];
    timed.forEach(function (l) {
      if (l.time_extent[0]) starts.push(Date.parse(l.time_extent[0]));
      if (l.time_extent[1]) ends.push(Date.parse(l.time_extent[1]));
    });
    if (!starts.length) return;
    var first = Math.floor(Math.min.apply(null, starts) / DAY_MS) * DAY_MS;
    var last = Math.floor(Math.max.apply(null, ends.length ? ends : starts) / DAY_MS) * DAY_MS;
    var section = document.getElementById('time');
    var on = document.getElementById('time-on');
    var range = document.getElementById('time-day');
    var label = document.getElementById('time-label');
    section.hidden = false;
    range.max = String(Math.round((last - first) / DAY_MS));
    var initial = state.day !== null ? state.day : Math.min(Math.max(Date.now(), first), last);
    range.value = String(Math.round((initial - first) / DAY_MS));
    on.checked = state.day !== null;
    range.disabled = !on.checked;
    function apply() {
      var day = first + Number(range.value) * DAY_MS;
      state.day = on.checked ? day : null;
      range.disabled = !on.checked;
      label.textContent = on.checked ? dayString(day) : 'all times';
      map.getSource('urbantile').setTiles([tileUrl(base)]);
      saveUrl();
    }
    on.addEventListener('change', apply);
    range.addEventListener('input', function () {
      label.textContent = dayString(first + Number(range.value) * DAY_MS);
    });
    range.addEventListener('change', apply);
    label.textContent = on.checked ? dayString(initial) : 'all times';
  }

  // Follow the change feed of the offered layers; a burst of edits costs one refetch.
  function follow(map, base) {
    if (!window.EventSource) return;
    var ids = state.offered.map(function (l) { return l.id; }).join(',');
    var feed = new EventSource('/changes?layers=' + encodeURIComponent(ids));
    var pending = null;
    function refresh(e) {
      state.version = e.lastEventId || String(Date.now());
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        map.getSource('urbantile').setTiles([tileUrl(base)]);
        window.urbantile.refreshes = (window.urbantile.refreshes || 0) + 1;
      }, 50);
    }
    feed.addEventListener('change', refresh);
    feed.addEventListener('reset', refresh);
    window.urbantile.changes = feed;
  }

  function popupFor(map) {
    var byStyleLayer = {};
    state.offered.forEach(function (l) {
      l.style_layers.forEach(function (id) { byStyleLayer[id] = l; });
    });
    var ids = Object.keys(byStyleLayer);
    function hit(point) {
      var found = map.queryRenderedFeatures(point, { layers: ids });
      return found.length ? found[0] : null;
    }
    map.on('mousemove', function (e) {
      map.getCanvas().style.cursor = hit(e.point) ? 'pointer' : '';
    });
    map.on('click', function (e) {
      // A finger is less precise than a mouse: look in a small box around the tap.
      var p = e.point;
      var f = hit(p) || hit([[p.x - 6, p.y - 6], [p.x + 6, p.y + 6]]);
      if (!f) return;
      // A cluster opens by zooming in to where it splits.
      if (f.properties.cluster) {
        map.easeTo({ center: f.geometry.coordinates, zoom: f.properties.expansion_zoom });
        return;
      }
      var layer = byStyleLayer[f.layer.id];
      var rows = Object.keys(f.properties).map(function (k) {
        return el('tr', {}, [el('th', { text: k }), el('td', { text: String(f.properties[k]) })]);
      });
      var title = f.properties.name || f.properties.project || f.properties.permit_no || f.properties.ticket_no || layer.title;
      var body = el('div', { className: 'feature' }, [
        el('h3', { text: String(title) }),
        el('div', { text: layer.title }),
        el('table', {}, rows)
      ]);
      new maplibregl.Popup({ maxWidth: '300px' }).setLngLat(e.lngLat).setDOMContent(body).addTo(map);
    });
  }

  async function main() {
    var style = await (await fetch('/style.json')).json();
    var meta = style.metadata['urbantile:layers'];
    var base = style.metadata['urbantile:tiles'];
    var wanted = params.get('layers');
    state.offered = wanted === null ? meta : meta.filter(function (l) {
      return wanted.split(',').indexOf(l.id) >= 0;
    });
    var show = params.get('show');
    state.offered.forEach(function (l) {
      if (show === null || show.split(',').indexOf(l.id) >= 0) state.shown.add(l.id);
    });
    var day = params.get('datetime');
    if (day && !isNaN(Date.parse(day))) state.day = Date.parse(day.slice(0, 10));

    // Tiles come straight from the tile URL (not the TileJSON) so that the time filter can
    // change it; only the offered layers are in it.
    var tj = await (await fetch(style.sources.urbantile.url)).json();
    style.sources.urbantile = {
      type: 'vector', tiles: [tileUrl(base)], minzoom: tj.minzoom, maxzoom: tj.maxzoom,
      bounds: tj.bounds, attribution: tj.attribution
    };
    var offeredIds = new Set(state.offered.map(function (l) { return l.id; }));
    style.layers = style.layers.filter(function (l) {
      var owner = l.metadata && l.metadata['urbantile:layer'];
      if (!owner) return true;
      if (!offeredIds.has(owner)) return false;
      l.layout = Object.assign({}, l.layout, { visibility: state.shown.has(owner) ? 'visible' : 'none' });
      return true;
    });

    var options = { container: 'map', style: style, hash: true, attributionControl: { compact: true } };
    if (!location.hash) {
      options.bounds = tj.bounds;
      options.fitBoundsOptions = { padding: 20 };
    }
    var map = new maplibregl.Map(options);
    window.urbantile.map = map;
    window.urbantile.state = state;
    if (controls.has('nav')) map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), 'top-right');

    var panel = document.getElementById('panel');
    if (controls.has('layers') || controls.has('legend') || controls.has('time')) {
      panel.hidden = false;
      if (controls.has('layers') || controls.has('legend')) buildPanel(map);
      var toggle = document.getElementById('panel-toggle');
      if (window.matchMedia('(max-width: 640px)').matches) {
        panel.classList.add('collapsed');
        toggle.hidden = false;
      }
      toggle.addEventListener('click', function () {
        var open = panel.classList.toggle('collapsed') === false;
        toggle.setAttribute('aria-expanded', String(open));
      });
    }
    if (controls.has('popup')) popupFor(map);
    map.once('load', function () {
      if (controls.has('time')) buildTime(map, base);
      follow(map, base);
    });
    map.once('idle', function () {
      window.urbantile.firstIdleMs = performance.now();
      ready.resolve(map);
    });
    map.on('error', function (e) { console.error('map error', e && e.error ? e.error.message : e); });
  }

  main().catch(function (e) {
    console.error(e);
    ready.reject(e);
  });
})();
