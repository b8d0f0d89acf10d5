// The reference for tests/clusters.rs: runs the npm package supercluster (installed in
// web/node_modules by build.rs) over the points read from stdin and prints, per zoom, the
// size of each cluster and the ids of the points left alone, as JSON.
//
// stdin: {"points": [[id, lon, lat, vehicles], ...], "radius": 40, "extent": 512,
//         "minZoom": 8, "maxZoom": 14}
import Supercluster from '../web/node_modules/supercluster/index.js';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const q = JSON.parse(input);
const index = new Supercluster({
    radius: q.radius,
    extent: q.extent,
    minZoom: q.minZoom,
    maxZoom: q.maxZoom,
    map: (p) => ({vehicles: p.vehicles}),
    reduce: (acc, p) => { acc.vehicles += p.vehicles; },
});
index.load(q.points.map(([id, lon, lat, vehicles]) => ({
    type: 'Feature',
    id,
    properties: {id, vehicles},
    geometry: {type: 'Point', coordinates: [lon, lat]},
})));
const zooms = {};
for (let z = q.minZoom; z <= q.maxZoom + 1; z++) {
    const items = index.getClusters([-180, -85, 180, 85], z);
    zooms[z] = {
        clusters: items.filter((f) => f.properties.cluster).map((f) => [
            f.properties.point_count,
            f.properties.vehicles,
            f.properties.point_count_abbreviated,
        ]),
        points: items.filter((f) => !f.properties.cluster).map((f) => f.properties.id),
    };
}
process.stdout.write(JSON.stringify(zooms));
