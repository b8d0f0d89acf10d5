// urbantile widget: <script src="https://MAPHOST/map/embed.js" data-layers="schools,parks"
// data-controls="nav,legend,popup" data-height="400px"></script> puts the city map in an
// iframe where the tag stands.
(function () {
  var script = document.currentScript;
  if (!script) return;
  var base = new URL(script.src).origin;
  var q = new URLSearchParams();
  ['layers', 'controls', 'datetime'].forEach(function (k) {
    var v = script.getAttribute('data-' + k);
    if (v) q.set(k, v);
  });
  var frame = document.createElement('iframe');
  frame.src = base + '/map?' + q.toString() + (script.getAttribute('data-view') ? '#' + script.getAttribute('data-view') : '');
  frame.title = script.getAttribute('data-title') || 'City map';
  frame.style.width = script.getAttribute('data-width') || '100%';
  frame.style.height = script.getAttribute('data-height') || '400px';
  frame.style.border = '0';
  frame.loading = 'lazy';
  frame.allow = 'fullscreen';
  script.parentNode.insertBefore(frame, script);
})();
