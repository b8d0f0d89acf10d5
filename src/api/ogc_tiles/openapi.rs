//! The OpenAPI 3.0 path items of the OGC API - Tiles resources, for `/api`
//! ([`crate::api::openapi`]): the tile matrix set, the dataset's tile sets and tiles, and
//! each collection's, with the parameters the handlers accept.

use serde_json::{Map, Value, json};

use super::{JSON, MVT_CONTENT_TYPE};
use crate::config::LayerDef;
use crate::tiles::tms::{TileMatrix, WEB_MERCATOR_QUAD};

/// The OpenAPI path items of the tile resources, for the layers `public` a reader may see
/// (the `/api` document, [`crate::api::openapi`]).
pub(crate) fn openapi_paths(public: &[&LayerDef], paths: &mut Map<String, Value>) {
    use crate::api::openapi::{f_param, ok, operation, param, q};
    let object = json!({"type": "object"});
    let doc = |summary: &str, params: Vec<Value>, codes: &[u16]| {
        operation(
            summary,
            params,
            ("200", ok(summary, &[JSON, "text/html"], object.clone())),
            codes,
        )
    };
    let public_ids: Vec<&str> = public
        .iter()
        .filter(|d| !d.private)
        .map(|d| d.id.as_str())
        .collect();
    let mut collections = q(
        "collections",
        "The collections the dataset's tiles draw, in this order (default: every public one)",
        json!({"type": "array", "items": {"type": "string", "enum": public_ids}, "minItems": 1, "uniqueItems": true}),
    );
    collections["style"] = "form".into();
    collections["explode"] = false.into();
    let tile_params = |dataset: bool, timed: bool| {
        let mut out = vec![
            param(
                "tileMatrix",
                "path",
                "Tile matrix (zoom) of WebMercatorQuad",
                json!({"type": "string", "enum": TileMatrix::all().map(|m| m.zoom.to_string()).collect::<Vec<_>>()}),
                true,
            ),
            param(
                "tileRow",
                "path",
                "Row, from 0 at the north (XYZ y)",
                json!({"type": "integer", "minimum": 0}),
                true,
            ),
            param(
                "tileCol",
                "path",
                "Column, from 0 at the west (XYZ x)",
                json!({"type": "integer", "minimum": 0}),
                true,
            ),
        ];
        if dataset {
            out.push(collections.clone());
        }
        if timed {
            out.push(q(
                "datetime",
                "Only features valid at this RFC 3339 instant or within this interval \
                 (`..` for an open end), or `now`, on layers with a validity interval",
                json!({"type": "string"}),
            ));
        }
        out.extend([
            q("filter", "CQL2 filter", json!({"type": "string"})),
            q(
                "filter-lang",
                "Language of the filter",
                json!({"type": "string", "enum": ["cql2-text", "cql2-json"]}),
            ),
            q(
                "f",
                "Tile format",
                json!({"type": "string", "enum": ["mvt"]}),
            ),
            q(
                "v",
                "Ignored: a client's cache buster",
                json!({"type": "string"}),
            ),
        ]);
        out
    };
    let tile = |summary: &str, params: Vec<Value>, codes: &[u16]| {
        let mut op = operation(
            summary,
            params,
            (
                "200",
                ok(
                    "The tile",
                    &[MVT_CONTENT_TYPE],
                    json!({"type": "string", "format": "binary"}),
                ),
            ),
            codes,
        );
        op["get"]["responses"]["204"] = json!({"description": "No feature in this tile"});
        op["get"]["responses"]["304"] = json!({"description": "Not modified (If-None-Match)"});
        op
    };
    paths.insert(
        "/tileMatrixSets".into(),
        doc("Tile matrix sets", vec![f_param()], &[400]),
    );
    paths.insert(
        format!("/tileMatrixSets/{WEB_MERCATOR_QUAD}"),
        doc(
            "The WebMercatorQuad tile matrix set (OGC 2D TMS 2.0)",
            vec![f_param()],
            &[400],
        ),
    );
    paths.insert(
        "/tiles".into(),
        doc(
            "Vector tile sets of the dataset (every public layer, or those selected)",
            vec![collections.clone(), f_param()],
            &[400],
        ),
    );
    paths.insert(
        format!("/tiles/{WEB_MERCATOR_QUAD}"),
        doc(
            "Tile set metadata of the dataset's vector tiles",
            vec![collections.clone(), f_param()],
            &[400],
        ),
    );
    paths.insert(
        format!("/tiles/{WEB_MERCATOR_QUAD}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"),
        tile(
            "A vector tile of the dataset (one MVT layer per collection), z/y/x; the same \
             bytes as /tiles/{layers}/{z}/{x}/{y}.mvt",
            tile_params(true, true),
            &[400],
        ),
    );
    for def in public {
        let id = def.id.as_str();
        paths.insert(
            format!("/collections/{id}/tiles"),
            doc(
                &format!("{}: vector tile sets", def.title),
                vec![f_param()],
                &[400],
            ),
        );
        paths.insert(
            format!("/collections/{id}/tiles/{WEB_MERCATOR_QUAD}"),
            doc(
                &format!("{}: tile set metadata", def.title),
                vec![f_param()],
                &[400],
            ),
        );
        paths.insert(
            format!(
                "/collections/{id}/tiles/{WEB_MERCATOR_QUAD}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
            ),
            tile(
                &format!("{}: a vector tile, z/y/x", def.title),
                tile_params(false, def.time.is_some()),
                &[400],
            ),
        );
    }
}
