//! The MapLibre style for the public layers, generated from the layer files: fills with
//! outlines for polygons (3D extrusions for layers with heights, from z15), lines, circles
//! for points (clustered layers: circles sized by each cluster's count, with the count
//! written on them), colours from each layer's `[style]`, zoom ranges from the layer.
//! A layer with `[style] label = "<property>"` is labelled with that property: along its
//! lines for a line layer (street names), beside its points, inside its areas.
//!
//! Labels sit above every shape, and MapLibre's collision detection keeps them apart
//! (nothing sets `text-allow-overlap`): street names are placed first, then the names of
//! points, cluster counts and area names, in that order of priority, so that where
//! clusters crowd (a phone at the cluster maxzoom) the streets keep their names and a
//! count gives way. Their glyphs come from this server
//! (`/fonts`, [`crate::glyphs`]); the style needs nothing from the internet (no sprites),
//! though a raster base map can be added.
//!
//! The style's `metadata` lists the layers with their title, theme, colour and time extent,
//! which the map page builds its toggles, legend and time slider from.
//!
//! Tile archives served as layers ([`crate::archive`]) lie under every live layer (above
//! the raster base map, if any), each from a source of its own: a raster archive as a
//! raster layer, a vector archive as a fill, a line and a circle layer for each of its
//! `vector_layers`, by geometry type, in its `[style]` colour. They are listed in the
//! metadata's `urbantile:archives`, and carry no `urbantile:layer`, so the map page shows
//! them always.

use serde_json::{Value, json};

use crate::archive::Archive;
use crate::config::LayerDef;
use crate::index::LayerIndex;
use crate::model::time::format_rfc3339;
use crate::model::{Bbox, GeometryKind};

/// First zoom at which buildings stand up in 3D.
const EXTRUDE_FROM: u8 = 15;
const BACKGROUND: &str = "#f2efe9";

/// Height in metres from whichever of `height`, `building:levels` or `levels` the layer
/// keeps (3.2 m a storey), or `None` when it keeps none of them.
fn height_expression(def: &LayerDef) -> Option<Value> {
    let has = |k: &str| def.properties.iter().any(|p| p == k);
    let levels: Vec<Value> = ["building:levels", "levels"]
        .into_iter()
        .filter(|k| has(k))
        .map(|k| json!(["get", k]))
        .collect();
    let from_levels = (!levels.is_empty()).then(|| {
        let mut c = vec![json!("coalesce")];
        c.extend(levels);
        c.push(json!(3));
        json!(["*", 3.2, ["to-number", Value::Array(c)]])
    });
    match (has("height"), from_levels) {
        (true, Some(l)) => Some(json!(["to-number", ["coalesce", ["get", "height"], l]])),
        (true, None) => Some(json!(["to-number", ["coalesce", ["get", "height"], 10]])),
        (false, Some(l)) => Some(l),
        (false, None) => None,
    }
}

/// First zoom of name labels: below it, streets and places are too dense to name.
const LABELS_FROM: u8 = 14;
const LABEL_COLOR: &str = "#333333";
const HALO_COLOR: &str = "#ffffff";

/// The style layers drawing one urbantile layer's shapes, bottom to top.
fn style_layers(def: &LayerDef) -> Vec<Value> {
    let id = def.id.as_str();
    let color = def.style.color.as_str();
    let base = |suffix: &str, kind: &str| {
        json!({
            "id": format!("{id}-{suffix}"),
            "type": kind,
            "source": "urbantile",
            "source-layer": id,
            "minzoom": def.minzoom,
            "metadata": {"urbantile:layer": id},
        })
    };
    let mut out = Vec::new();
    match def.geometry {
        GeometryKind::Polygon => {
            let height = height_expression(def);
            let mut fill = base("fill", "fill");
            fill["paint"] = json!({"fill-color": color, "fill-opacity": 0.35});
            let mut outline = base("outline", "line");
            outline["paint"] = json!({"line-color": color, "line-width": 1, "line-opacity": 0.8});
            if let Some(h) = height {
                let from = EXTRUDE_FROM.max(def.minzoom);
                fill["maxzoom"] = json!(from);
                outline["maxzoom"] = json!(from);
                out.push(fill);
                out.push(outline);
                let mut ext = base("extrusion", "fill-extrusion");
                ext["minzoom"] = json!(from);
                let base_height = if def.properties.iter().any(|p| p == "min_height") {
                    json!(["to-number", ["coalesce", ["get", "min_height"], 0]])
                } else {
                    json!(0)
                };
                ext["paint"] = json!({
                    "fill-extrusion-color": color,
                    "fill-extrusion-height": h,
                    "fill-extrusion-base": base_height,
                    "fill-extrusion-opacity": 0.85,
                });
                out.push(ext);
            } else {
                out.push(fill);
                out.push(outline);
            }
        }
        GeometryKind::Line => {
            let mut line = base("line", "line");
            line["layout"] = json!({"line-cap": "round", "line-join": "round"});
            line["paint"] = json!({
                "line-color": color,
                "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1, 16, 3.5],
            });
            out.push(line);
        }
        GeometryKind::Point => {
            let mut circle = base("circle", "circle");
            circle["paint"] = json!({
                "circle-color": color,
                "circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 2.5, 16, 5],
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1,
            });
            if let Some(c) = &def.cluster {
                // Clusters (features with a point_count) as circles sized by their count,
                // up to the zoom where the points take over; the points without. Their
                // counts are labels (`label_layers`).
                circle["filter"] = json!(["!", ["has", "point_count"]]);
                let mut clusters = base("clusters", "circle");
                clusters["maxzoom"] = json!(c.maxzoom + 1);
                clusters["filter"] = json!(["has", "point_count"]);
                // Smaller and lighter near the cluster maxzoom, where clusters are many and
                // small, so that the streets and their names show between and through them
                // (a phone at z15 otherwise sees a carpet of discs).
                let count = json!(["get", "point_count"]);
                clusters["paint"] = json!({
                    "circle-color": color,
                    "circle-opacity": ["interpolate", ["linear"], ["zoom"], 12, 0.8, 15, 0.6],
                    "circle-radius": ["interpolate", ["linear"], ["zoom"],
                        12, ["step", count, 10, 10, 14, 50, 18, 200, 24],
                        15, ["step", count, 7, 10, 10, 50, 13, 200, 17]],
                    "circle-stroke-color": "#ffffff",
                    "circle-stroke-width": 2,
                });
                out.push(clusters);
            }
            out.push(circle);
        }
    }
    out
}

/// True for a `#rrggbb` colour light enough that white text on it is hard to read
/// (relative luminance over 0.5, sRGB weights without gamma: enough to tell yellow from red).
fn is_light(color: &str) -> bool {
    let channel = |i: usize| {
        color
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, |v| f64::from(v) / 255.0)
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5) > 0.5
}

/// The symbol layers labelling one urbantile layer: its cluster counts, and its features'
/// names when `[style] label` names a property. Each comes with its placement priority
/// (higher first: drawn above and placed before the others).
fn label_layers(def: &LayerDef) -> Vec<(u8, Value)> {
    let id = def.id.as_str();
    let symbol = |suffix: &str, minzoom: u8| {
        json!({
            "id": format!("{id}-{suffix}"),
            "type": "symbol",
            "source": "urbantile",
            "source-layer": id,
            "minzoom": minzoom,
            "metadata": {"urbantile:layer": id},
        })
    };
    let mut out = Vec::new();
    if let (GeometryKind::Point, Some(c)) = (def.geometry, &def.cluster) {
        let mut count = symbol("cluster-count", def.minzoom);
        count["maxzoom"] = json!(c.maxzoom + 1);
        count["filter"] = json!(["has", "point_count"]);
        count["layout"] = json!({
            "text-field": ["get", "point_count_abbreviated"],
            "text-font": [crate::glyphs::BOLD],
            "text-size": ["interpolate", ["linear"], ["zoom"], 12, 12, 15, 10],
        });
        // Dark digits on a light circle (yellow), white ones on a dark circle.
        count["paint"] = if is_light(&def.style.color) {
            json!({"text-color": LABEL_COLOR, "text-halo-color": "rgba(255, 255, 255, 0.5)", "text-halo-width": 1})
        } else {
            json!({"text-color": "#ffffff", "text-halo-color": "rgba(0, 0, 0, 0.35)", "text-halo-width": 1})
        };
        out.push((2, count));
    }
    let Some(property) = &def.style.label else {
        return out;
    };
    let mut label = symbol("label", LABELS_FROM.max(def.minzoom));
    let text = json!(["get", property]);
    let font = json!([crate::glyphs::REGULAR]);
    let priority = match def.geometry {
        GeometryKind::Line => {
            label["layout"] = json!({
                "text-field": text,
                "text-font": font,
                "symbol-placement": "line",
                "text-size": ["interpolate", ["linear"], ["zoom"], 14, 11, 17, 14],
                "text-max-angle": 30,
                "symbol-spacing": 300,
            });
            4
        }
        GeometryKind::Polygon => {
            label["layout"] = json!({
                "text-field": text,
                "text-font": font,
                "text-size": 12,
                "text-max-width": 8,
            });
            1
        }
        GeometryKind::Point => {
            label["layout"] = json!({
                "text-field": text,
                "text-font": font,
                "text-size": 12,
                "text-max-width": 8,
                "text-anchor": "top",
                "text-offset": [0, 0.6],
            });
            if def.cluster.is_some() {
                label["filter"] = json!(["!", ["has", "point_count"]]);
            }
            3
        }
    };
    label["paint"] = json!({
        "text-color": LABEL_COLOR,
        "text-halo-color": HALO_COLOR,
        "text-halo-width": 1.5,
    });
    out.push((priority, label));
    out
}

/// Drawing order: areas under lines under points; among areas, the earlier-appearing
/// (bigger) ones first.
fn draw_order(def: &LayerDef) -> (u8, u8, String) {
    let kind = match def.geometry {
        GeometryKind::Polygon => 0,
        GeometryKind::Line => 1,
        GeometryKind::Point => 2,
    };
    (kind, def.minzoom, def.id.to_string())
}

/// The source and the style layers of a tile archive, bottom to top.
fn archive_layers(archive: &Archive, base_url: &str) -> (Value, Vec<Value>) {
    let id = archive.id().as_str();
    let source_id = format!("archive-{id}");
    let url = format!("{base_url}/tiles/{id}.json");
    if !archive.format().is_vector() {
        let source = json!({"type": "raster", "url": url, "tileSize": 256});
        let layer = json!({"id": format!("{id}-raster"), "type": "raster", "source": source_id});
        return (source, vec![layer]);
    }
    let color = archive.def().style.color.as_str();
    let mut out = Vec::new();
    for layer in archive.vector_layers() {
        let Some(name) = layer["id"].as_str() else {
            continue;
        };
        for (kind, geometry, paint) in [
            (
                "fill",
                "Polygon",
                json!({"fill-color": color, "fill-opacity": 0.25, "fill-outline-color": color}),
            ),
            (
                "line",
                "LineString",
                json!({"line-color": color, "line-width": 1}),
            ),
            (
                "circle",
                "Point",
                json!({"circle-color": color, "circle-radius": 2.5}),
            ),
        ] {
            let mut l = json!({
                "id": format!("{id}-{name}-{kind}"),
                "type": kind,
                "source": source_id,
                "source-layer": name,
                "filter": ["==", ["geometry-type"], geometry],
                "paint": paint,
            });
            for zoom in ["minzoom", "maxzoom"] {
                if let Some(z) = layer[zoom].as_u64() {
                    // A style layer's maxzoom is exclusive, a vector layer's inclusive.
                    l[zoom] = json!(if zoom == "maxzoom" { z + 1 } else { z });
                }
            }
            out.push(l);
        }
    }
    (json!({"type": "vector", "url": url}), out)
}

/// The style for `layers` (public ones; the caller filters) over the tile `archives`, with
/// tiles and TileJSON under `base_url` and an optional raster base map URL template
/// (`{z}/{x}/{y}`).
pub fn style(
    layers: &[(&LayerDef, &LayerIndex)],
    archives: &[Archive],
    base_url: &str,
    basemap: Option<&str>,
) -> Value {
    let mut ordered: Vec<&(&LayerDef, &LayerIndex)> = layers.iter().collect();
    ordered.sort_by_key(|(def, _)| draw_order(def));
    let ids: Vec<&str> = layers.iter().map(|(d, _)| d.id.as_str()).collect();
    let bounds = layers
        .iter()
        .filter_map(|(_, index)| index.bounds())
        .reduce(Bbox::union);
    let center = bounds.map_or([0.0, 0.0], |b| {
        [(b.west + b.east) / 2.0, (b.south + b.north) / 2.0]
    });

    let mut style_layers_json = vec![json!({
        "id": "background",
        "type": "background",
        "paint": {"background-color": BACKGROUND},
    })];
    let mut sources = json!({
        "urbantile": {
            "type": "vector",
            "url": format!("{base_url}/tiles/{}.json", ids.join(",")),
        }
    });
    if let Some(url) = basemap {
        sources["basemap"] = json!({"type": "raster", "tiles": [url], "tileSize": 256});
        style_layers_json.push(json!({"id": "basemap", "type": "raster", "source": "basemap"}));
    }
    let mut meta_archives = Vec::new();
    for archive in archives {
        let (source, drawn) = archive_layers(archive, base_url);
        sources[format!("archive-{}", archive.id())] = source;
        let def = archive.def();
        meta_archives.push(json!({
            "id": def.id,
            "title": def.title,
            "description": def.description,
            "theme": def.style.theme,
            "format": archive.format().extension(),
            "style_layers": drawn.iter().map(|l| l["id"].clone()).collect::<Vec<_>>(),
        }));
        style_layers_json.extend(drawn);
    }
    let mut meta_layers = Vec::new();
    let mut labels = Vec::new();
    for (def, index) in ordered {
        let drawn = style_layers(def);
        let labelled = label_layers(def);
        let ids = drawn
            .iter()
            .chain(labelled.iter().map(|(_, l)| l))
            .map(|l| l["id"].clone())
            .collect::<Vec<_>>();
        labels.extend(labelled);
        meta_layers.push(json!({
            "id": def.id,
            "title": def.title,
            "description": def.description,
            "theme": def.style.theme,
            "color": def.style.color,
            "geometry": def.geometry,
            "minzoom": def.minzoom,
            "time": def.time.is_some(),
            "time_extent": index.time_extent().map(|t| {
                [t.start, t.end].map(|v| v.map(format_rfc3339))
            }),
            "style_layers": ids,
        }));
        style_layers_json.extend(drawn);
    }
    // Above every shape; MapLibre places the topmost symbols first. The sort is stable:
    // within one priority, the layers' drawing order.
    labels.sort_by_key(|(priority, _)| *priority);
    style_layers_json.extend(labels.into_iter().map(|(_, l)| l));
    json!({
        "version": 8,
        "name": "urbantile city map",
        "metadata": {
            "urbantile:layers": meta_layers,
            "urbantile:archives": meta_archives,
            "urbantile:tiles": format!("{base_url}/tiles"),
        },
        "center": center,
        "zoom": 14,
        "glyphs": format!("{base_url}/fonts/{{fontstack}}/{{range}}.pbf"),
        "sources": sources,
        "layers": style_layers_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str, text: &str) -> LayerDef {
        LayerDef::from_toml(std::path::Path::new(&format!("{id}.toml")), text).unwrap()
    }

    #[test]
    fn buildings_with_heights_are_extruded_from_z15_and_flat_below() {
        let b = def(
            "buildings",
            "title = \"B\"\ngeometry = \"polygon\"\nminzoom = 14\nproperties = [\"height\", \"building:levels\"]\n[style]\ncolor = \"#aaaaaa\"\n",
        );
        let layers = style_layers(&b);
        let kinds: Vec<&str> = layers.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["fill", "line", "fill-extrusion"]);
        assert_eq!(layers[0]["maxzoom"], 15);
        assert_eq!(layers[2]["minzoom"], 15);
        assert_eq!(layers[2]["paint"]["fill-extrusion-color"], "#aaaaaa");
        let h = layers[2]["paint"]["fill-extrusion-height"].to_string();
        assert!(h.contains("height") && h.contains("building:levels"), "{h}");
    }

    #[test]
    fn each_geometry_gets_its_kind_of_layer_and_the_layers_colour_and_zooms() {
        let p = def(
            "schools",
            "title = \"S\"\ngeometry = \"point\"\nminzoom = 13\n[style]\ncolor = \"#d95f02\"\n",
        );
        let l = def(
            "roads",
            "title = \"R\"\ngeometry = \"line\"\nminzoom = 12\n",
        );
        let a = def(
            "parks",
            "title = \"P\"\ngeometry = \"polygon\"\nminzoom = 11\n",
        );
        let point = &style_layers(&p)[0];
        assert_eq!(
            (point["type"].as_str(), point["minzoom"].as_u64()),
            (Some("circle"), Some(13))
        );
        assert_eq!(point["paint"]["circle-color"], "#d95f02");
        assert_eq!(point["source-layer"], "schools");
        assert_eq!(style_layers(&l)[0]["type"], "line");
        let kinds: Vec<_> = style_layers(&a).iter().map(|l| l["type"].clone()).collect();
        assert_eq!(kinds, ["fill", "line"]);
    }

    #[test]
    fn the_style_needs_nothing_from_the_internet_unless_a_base_map_is_set() {
        let p = def("schools", "title = \"S\"\ngeometry = \"point\"\n");
        let index = LayerIndex::default();
        let s = style(&[(&p, &index)], &[], "http://127.0.0.1:8080", None);
        assert_eq!(s["version"], 8);
        assert!(s.get("sprite").is_none());
        assert_eq!(
            s["glyphs"],
            "http://127.0.0.1:8080/fonts/{fontstack}/{range}.pbf"
        );
        assert_eq!(
            s["sources"]["urbantile"]["url"],
            "http://127.0.0.1:8080/tiles/schools.json"
        );
        assert!(s["sources"].get("basemap").is_none());
        let with = style(
            &[(&p, &index)],
            &[],
            "http://x",
            Some("https://tiles.example/{z}/{x}/{y}.png"),
        );
        assert_eq!(with["layers"][1]["id"], "basemap");
    }

    #[test]
    fn cluster_counts_are_dark_on_light_circles_and_white_on_dark_ones() {
        assert!(is_light("#ffff33") && is_light("#ffffff"));
        assert!(!is_light("#e41a1c") && !is_light("#984ea3") && !is_light("#000000"));
    }

    #[test]
    fn labels_follow_streets_name_places_and_count_clusters_above_every_shape_streets_first() {
        let roads = def(
            "roads",
            "title = \"R\"\ngeometry = \"line\"\nminzoom = 12\nproperties = [\"name\"]\n[style]\nlabel = \"name\"\n",
        );
        let events = def(
            "public_events",
            "title = \"E\"\ngeometry = \"point\"\nminzoom = 11\nproperties = [\"name\"]\ncluster = { radius_px = 40, maxzoom = 15 }\n[style]\nlabel = \"name\"\n",
        );
        let parks = def(
            "parks",
            "title = \"P\"\ngeometry = \"polygon\"\nproperties = [\"name\"]\n[style]\nlabel = \"name\"\n",
        );
        let index = LayerIndex::default();
        let s = style(
            &[(&roads, &index), (&events, &index), (&parks, &index)],
            &[],
            "http://x",
            None,
        );
        let layers = s["layers"].as_array().unwrap();
        let first_symbol = layers.iter().position(|l| l["type"] == "symbol").unwrap();
        assert!(layers[first_symbol..].iter().all(|l| l["type"] == "symbol"));
        let ids: Vec<&str> = layers[first_symbol..]
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "parks-label",
                "public_events-cluster-count",
                "public_events-label",
                "roads-label",
            ]
        );
        let street = layers.last().unwrap();
        assert_eq!(street["layout"]["symbol-placement"], "line");
        assert_eq!(street["layout"]["text-field"], json!(["get", "name"]));
        let count = &layers[first_symbol + 1];
        assert_eq!(
            count["layout"]["text-field"],
            json!(["get", "point_count_abbreviated"])
        );
        assert_eq!(count["filter"], json!(["has", "point_count"]));
        for l in &layers[first_symbol..] {
            let font = l["layout"]["text-font"][0].as_str().unwrap();
            assert!([crate::glyphs::REGULAR, crate::glyphs::BOLD].contains(&font));
            assert!(l["layout"].get("text-allow-overlap").is_none());
        }
        // The map page's toggles hide a layer's labels with its shapes.
        let meta = &s["metadata"]["urbantile:layers"];
        let events_meta = meta
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "public_events")
            .unwrap();
        let listed = events_meta["style_layers"].to_string();
        assert!(
            listed.contains("public_events-cluster-count")
                && listed.contains("public_events-label")
        );
    }
}
