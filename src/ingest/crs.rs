//! Which coordinate reference system a planner's file is in, and the way from it to the
//! WGS84 longitude and latitude the store keeps. A CRS comes as WKT (a shapefile's `.prj`,
//! ESRI WKT1; a GeoPackage's `gpkg_spatial_ref_sys.definition`, OGC WKT1 or WKT2; a
//! FlatGeobuf header) or as an EPSG code.
//!
//! Supported, and nothing else (anything else is refused by name, never guessed):
//! - longitude and latitude in degrees on WGS84 or ETRS89 (and ETRS89's national
//!   realisations such as LKS94 and EUREF-FIN);
//! - Web Mercator (EPSG:3857 and its aliases);
//! - transverse Mercator grids in metres on the GRS80 or WGS84 ellipsoid with one of those
//!   datums: every UTM zone, ETRS-TM35FIN (EPSG:3067), the Finnish GK zones (EPSG:3873 to
//!   3885), LKS94 (EPSG:3346), ETRS89 / UTM (EPSG:25828 to 25838), and any other grid so
//!   described by its parameters.
//!
//! ETRS89 and its realisations are taken as WGS84, as PROJ and GDAL do (EPSG's null
//! transformations 1149 and 1158): the two frames differ by well under a metre in Europe.
//! The maths is [`super::projection`]'s.

use geo::{Coord, MapCoords};

use crate::ingest::projection::{Ellipsoid, TransverseMercator, web_mercator_to_lon_lat};

/// Longest WKT read (a real one is under 2 KiB).
pub const MAX_WKT_BYTES: usize = 64 * 1024;
/// Deepest bracket nesting of WKT (real ones nest 4 or 5 levels).
const MAX_WKT_DEPTH: usize = 16;

/// A supported coordinate reference system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Crs {
    /// Longitude and latitude in degrees, WGS84 or a datum taken as it.
    LonLat,
    /// EPSG:3857, metres.
    WebMercator,
    /// A transverse Mercator grid, metres.
    TransverseMercator(TransverseMercator),
}

/// A CRS that is not supported, or WKT that does not say one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("coordinate system {name} is not supported: {why}; {SUPPORTED}")]
pub struct UnsupportedCrs {
    /// How the file names it (`"EPSG:2393"`, `"Finland_Zone_3"`).
    pub name: String,
    pub why: String,
}

const SUPPORTED: &str = "urbantile reads WGS84 or ETRS89 longitude/latitude, Web Mercator (EPSG:3857) \
    and transverse Mercator grids on GRS80 or WGS84 (UTM, ETRS-TM35FIN EPSG:3067, LKS94 EPSG:3346, ...); \
    reproject the file first, e.g. `ogr2ogr -t_srs EPSG:4326 out.gpkg in.gpkg`";

fn unsupported(name: impl Into<String>, why: impl Into<String>) -> UnsupportedCrs {
    UnsupportedCrs {
        name: name.into(),
        why: why.into(),
    }
}

fn tm(ellipsoid: Ellipsoid, lon0: f64, k0: f64, fe: f64, fn_: f64) -> Crs {
    Crs::TransverseMercator(TransverseMercator {
        ellipsoid,
        lat0_deg: 0.0,
        lon0_deg: lon0,
        k0,
        false_easting: fe,
        false_northing: fn_,
    })
}

impl Crs {
    /// A CRS by its EPSG code, for the codes listed in the module's header.
    pub fn from_epsg(code: i64) -> Result<Crs, UnsupportedCrs> {
        let grs80 = Ellipsoid::GRS80;
        Ok(match code {
            4326 | 4258 | 4669 | 4937 | 4936 | 4979 => Crs::LonLat,
            3857 | 900_913 | 3785 | 102_100 | 102_113 => Crs::WebMercator,
            3067 | 5048 => tm(grs80, 27.0, 0.9996, 500_000.0, 0.0),
            3346 => tm(grs80, 24.0, 0.9998, 500_000.0, 0.0),
            // ETRS-GK19FIN .. GK31FIN: central meridian n degrees, false easting n.5e6.
            3873..=3885 => {
                let n = (code - 3873 + 19) as f64;
                tm(grs80, n, 1.0, n * 1e6 + 500_000.0, 0.0)
            }
            25828..=25838 => tm(grs80, utm_meridian(code - 25800), 0.9996, 500_000.0, 0.0),
            32601..=32660 => tm(
                Ellipsoid::WGS84,
                utm_meridian(code - 32600),
                0.9996,
                500_000.0,
                0.0,
            ),
            32701..=32760 => tm(
                Ellipsoid::WGS84,
                utm_meridian(code - 32700),
                0.9996,
                500_000.0,
                10_000_000.0,
            ),
            _ => {
                return Err(unsupported(
                    format!("EPSG:{code}"),
                    "it is not one of the systems urbantile can convert",
                ));
            }
        })
    }

    /// A CRS from WKT1 (OGC or ESRI) or WKT2. An EPSG code in the WKT's own `AUTHORITY` or
    /// `ID` is used when it is one of [`Crs::from_epsg`]'s; otherwise the definition is read.
    pub fn from_wkt(text: &str) -> Result<Crs, UnsupportedCrs> {
        if text.len() > MAX_WKT_BYTES {
            return Err(unsupported(
                "(WKT)",
                format!("its definition is over {MAX_WKT_BYTES} bytes"),
            ));
        }
        let root = parse(text).map_err(|why| unsupported("(WKT)", why))?;
        let name = format!("{:?}", root.text(0).unwrap_or(&root.keyword));
        if let Some(code) = root.epsg()
            && let Ok(crs) = Crs::from_epsg(code)
        {
            return Ok(crs);
        }
        let kw = root.keyword.to_ascii_uppercase();
        match kw.as_str() {
            "GEOGCS" | "GEOGCRS" | "GEODCRS" | "GEOGRAPHICCRS" | "GEODETICCRS" => {
                check_geographic(&root).map_err(|why| unsupported(&name, why))?;
                Ok(Crs::LonLat)
            }
            "PROJCS" | "PROJCRS" | "PROJECTEDCRS" => {
                projected(&root).map_err(|why| unsupported(&name, why))
            }
            _ => Err(unsupported(
                name,
                format!("{kw} is not a geographic or projected CRS"),
            )),
        }
    }

    /// A coordinate of this CRS as WGS84 longitude and latitude (degrees).
    pub fn to_lon_lat(&self, c: Coord<f64>) -> Coord<f64> {
        match self {
            Crs::LonLat => c,
            Crs::WebMercator => web_mercator_to_lon_lat(c),
            Crs::TransverseMercator(tm) => tm.to_lon_lat(c),
        }
    }

    /// A geometry of this CRS in WGS84 longitude and latitude.
    pub fn geometry_to_lon_lat(&self, g: geo::Geometry<f64>) -> geo::Geometry<f64> {
        match self {
            Crs::LonLat => g,
            _ => g.map_coords(|c| self.to_lon_lat(c)),
        }
    }
}

fn utm_meridian(zone: i64) -> f64 {
    (zone * 6 - 183) as f64
}

// ---------------------------------------------------------------------------------------
// WKT
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Node(Node),
    Text(String),
    Number(f64),
    /// A bare word such as `EAST` in `AXIS["Easting",EAST]`.
    Word(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    keyword: String,
    args: Vec<Arg>,
}

impl Node {
    fn text(&self, i: usize) -> Option<&String> {
        match self.args.get(i) {
            Some(Arg::Text(s)) => Some(s),
            _ => None,
        }
    }
    fn number(&self, i: usize) -> Option<f64> {
        match self.args.get(i) {
            Some(Arg::Number(n)) => Some(*n),
            _ => None,
        }
    }
    fn children(&self) -> impl Iterator<Item = &Node> {
        self.args.iter().filter_map(|a| match a {
            Arg::Node(n) => Some(n),
            _ => None,
        })
    }
    /// The first direct child with one of the keywords (case-insensitive).
    fn child(&self, keywords: &[&str]) -> Option<&Node> {
        self.children()
            .find(|n| keywords.iter().any(|k| n.keyword.eq_ignore_ascii_case(k)))
    }
    /// The first node at any depth with one of the keywords, breadth first.
    fn find(&self, keywords: &[&str]) -> Option<&Node> {
        self.child(keywords)
            .or_else(|| self.children().find_map(|c| c.find(keywords)))
    }
    /// This node's own EPSG code: `AUTHORITY["EPSG","3067"]` (WKT1), `ID["EPSG",3067]`
    /// (WKT2).
    fn epsg(&self) -> Option<i64> {
        let id = self.child(&["AUTHORITY", "ID"])?;
        if !id.text(0)?.eq_ignore_ascii_case("EPSG") {
            return None;
        }
        match id.args.get(1)? {
            Arg::Text(s) => s.trim().parse().ok(),
            Arg::Number(n) if n.fract() == 0.0 => Some(*n as i64),
            _ => None,
        }
    }
}

/// Lower-case letters and digits only: `"Central_Meridian"` and `"central meridian"` meet.
fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn node(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_WKT_DEPTH {
            return Err(format!("WKT nests deeper than {MAX_WKT_DEPTH} levels"));
        }
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        let keyword = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if keyword.is_empty() {
            return Err(format!("WKT: expected a keyword at byte {}", self.i));
        }
        self.skip_ws();
        let close = match self.s.get(self.i) {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => {
                return Err(format!(
                    "WKT: expected [ after {keyword} at byte {}",
                    self.i
                ));
            }
        };
        self.i += 1;
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.i) {
                None => return Err(format!("WKT: {keyword}[ is not closed")),
                Some(c) if *c == close && args.is_empty() => {
                    self.i += 1;
                    break;
                }
                Some(b'"') => args.push(Arg::Text(self.string()?)),
                Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.') => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(
                            self.s[self.i],
                            b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                        )
                    {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    let n = t
                        .parse::<f64>()
                        .map_err(|_| format!("WKT: {t:?} at byte {start} is not a number"))?;
                    args.push(Arg::Number(n));
                }
                Some(_) => {
                    let save = self.i;
                    let mut word_end = self.i;
                    while word_end < self.s.len()
                        && (self.s[word_end].is_ascii_alphanumeric() || self.s[word_end] == b'_')
                    {
                        word_end += 1;
                    }
                    let mut after = word_end;
                    while after < self.s.len() && self.s[after].is_ascii_whitespace() {
                        after += 1;
                    }
                    if matches!(self.s.get(after), Some(b'[' | b'(')) {
                        args.push(Arg::Node(self.node(depth + 1)?));
                    } else if word_end > save {
                        args.push(Arg::Word(
                            String::from_utf8_lossy(&self.s[save..word_end]).into_owned(),
                        ));
                        self.i = word_end;
                    } else {
                        return Err(format!("WKT: unexpected character at byte {save}"));
                    }
                }
            }
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(c) if *c == close => {
                    self.i += 1;
                    break;
                }
                _ => {
                    return Err(format!(
                        "WKT: expected , or closing bracket at byte {}",
                        self.i
                    ));
                }
            }
        }
        Ok(Node { keyword, args })
    }
    /// A quoted string; `""` inside it is one quote.
    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(format!("WKT: the string at byte {start} is not closed")),
                Some(b'"') if self.s.get(self.i + 1) == Some(&b'"') => {
                    out.push(b'"');
                    self.i += 2;
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(c) => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
    }
}

fn parse(text: &str) -> Result<Node, String> {
    let mut lx = Lexer {
        s: text.trim_start_matches('\u{feff}').as_bytes(),
        i: 0,
    };
    let node = lx.node(0)?;
    lx.skip_ws();
    if lx.i != lx.s.len() {
        return Err(format!("WKT: text after the definition at byte {}", lx.i));
    }
    Ok(node)
}

/// Datums taken as WGS84 (normalised names, `D_` prefix removed).
const WGS84_DATUMS: &[&str] = &[
    "wgs1984",
    "wgs84",
    "worldgeodeticsystem1984",
    "worldgeodeticsystem1984ensemble",
    "etrs1989",
    "etrs89",
    "europeanterrestrialreferencesystem1989",
    "europeanterrestrialreferencesystem1989ensemble",
    "europeanterrestrialreferenceframe1989",
    "lithuania1994",
    "lithuania1994etrs89",
    "lks94",
    "eureffin",
];

/// The datum's ellipsoid, if the datum is one taken as WGS84.
fn datum_ellipsoid(geog: &Node) -> Result<Ellipsoid, String> {
    let datum = geog
        .find(&["DATUM", "GEODETICDATUM", "TRF", "ENSEMBLE"])
        .ok_or("it names no datum")?;
    let name = datum.text(0).map(String::as_str).unwrap_or("");
    let n = norm(name);
    let n = n
        .strip_prefix('d')
        .filter(|_| name.starts_with("D_"))
        .unwrap_or(&n);
    let zero_shift = datum.child(&["TOWGS84"]).is_some_and(|t| {
        t.args
            .iter()
            .all(|a| matches!(a, Arg::Number(v) if *v == 0.0))
    });
    if !WGS84_DATUMS.contains(&n) && !zero_shift {
        return Err(format!(
            "its datum {name:?} needs a datum shift to WGS84, which urbantile does not make"
        ));
    }
    let sph = datum
        .find(&["SPHEROID", "ELLIPSOID"])
        .ok_or("its datum names no ellipsoid")?;
    let (Some(a), Some(inv_f)) = (sph.number(1), sph.number(2)) else {
        return Err("its ellipsoid has no axis and flattening".into());
    };
    let el = Ellipsoid { a, f: 1.0 / inv_f };
    let near = |e: Ellipsoid| (e.a - a).abs() < 1e-3 && (1.0 / e.f - inv_f).abs() < 1e-6;
    if !(near(Ellipsoid::GRS80) || near(Ellipsoid::WGS84)) {
        return Err(format!(
            "its ellipsoid ({a} m, 1/f {inv_f}) is neither GRS80 nor WGS84"
        ));
    }
    Ok(el)
}

/// A geographic CRS in degrees from Greenwich on a datum taken as WGS84.
fn check_geographic(geog: &Node) -> Result<Ellipsoid, String> {
    let el = datum_ellipsoid(geog)?;
    if let Some(pm) = geog.child(&["PRIMEM", "PRIMEMERIDIAN"])
        && pm.number(1).is_some_and(|v| v != 0.0)
    {
        return Err("its prime meridian is not Greenwich".into());
    }
    if let Some(unit) = geog.child(&["UNIT", "ANGLEUNIT"])
        && let Some(f) = unit.number(1)
        && (f - std::f64::consts::PI / 180.0).abs() > 1e-12
    {
        return Err(format!(
            "its angles are in {:?}, not degrees",
            unit.text(0).map(String::as_str).unwrap_or("?")
        ));
    }
    Ok(el)
}

fn projected(root: &Node) -> Result<Crs, String> {
    let base = root
        .child(&["GEOGCS", "BASEGEOGCRS", "BASEGEODCRS", "GEOGCRS", "GEODCRS"])
        .ok_or("it names no geographic base")?;
    let ellipsoid = check_geographic(base)?;
    // WKT1: PROJECTION and PARAMETERs at the root; WKT2: CONVERSION[METHOD, PARAMETERs].
    let (method, params_of) = match (root.child(&["PROJECTION"]), root.child(&["CONVERSION"])) {
        (Some(p), _) => (p, root),
        (None, Some(c)) => (
            c.child(&["METHOD"])
                .ok_or("its conversion names no method")?,
            c,
        ),
        (None, None) => return Err("it names no projection".into()),
    };
    let method_name = method.text(0).cloned().unwrap_or_default();
    // Linear unit: WKT1's root UNIT (or WKT2's LENGTHUNIT, on the axes or the root).
    if let Some(unit) = root
        .child(&["UNIT", "LENGTHUNIT"])
        .or_else(|| root.find(&["LENGTHUNIT"]))
        && let Some(f) = unit.number(1)
        && f != 1.0
    {
        return Err(format!(
            "its coordinates are in {:?}, not metres",
            unit.text(0).map(String::as_str).unwrap_or("?")
        ));
    }
    let mut lat0 = 0.0;
    let mut lon0 = 0.0;
    let mut k0 = 1.0;
    let mut fe = 0.0;
    let mut fn_ = 0.0;
    for p in params_of
        .children()
        .filter(|n| n.keyword.eq_ignore_ascii_case("PARAMETER"))
    {
        let name = p.text(0).map(String::as_str).unwrap_or("");
        let v = p
            .number(1)
            .ok_or_else(|| format!("its parameter {name:?} has no value"))?;
        match norm(name).as_str() {
            "latitudeoforigin" | "latitudeofnaturalorigin" | "latitudeofcenter" => lat0 = v,
            "centralmeridian"
            | "longitudeofnaturalorigin"
            | "longitudeoforigin"
            | "longitudeofcenter" => lon0 = v,
            "scalefactor" | "scalefactoratnaturalorigin" => k0 = v,
            "falseeasting" => fe = v,
            "falsenorthing" => fn_ = v,
            "standardparallel1" | "auxiliaryspheretype" if v == 0.0 => {}
            _ if v == 0.0 => {}
            _ => return Err(format!("its parameter {name:?} = {v} is not understood")),
        }
    }
    match norm(&method_name).as_str() {
        "transversemercator" | "gausskruger" => {
            if !(k0 > 0.0 && k0.is_finite()) {
                return Err(format!("its scale factor {k0} is not positive"));
            }
            Ok(Crs::TransverseMercator(TransverseMercator {
                ellipsoid,
                lat0_deg: lat0,
                lon0_deg: lon0,
                k0,
                false_easting: fe,
                false_northing: fn_,
            }))
        }
        "mercatorauxiliarysphere" | "popularvisualisationpseudomercator" => {
            if (lat0, lon0, fe, fn_) != (0.0, 0.0, 0.0, 0.0) {
                return Err("its Web Mercator has a shifted origin".into());
            }
            Ok(Crs::WebMercator)
        }
        // GDAL's WKT1 for EPSG:3857 without its AUTHORITY: Mercator_1SP on a sphere of the
        // WGS84 radius, said in a PROJ4 extension.
        "mercator1sp"
            if root
                .child(&["EXTENSION"])
                .and_then(|e| e.text(1))
                .is_some_and(|p| p.contains("+a=6378137") && p.contains("+b=6378137")) =>
        {
            Ok(Crs::WebMercator)
        }
        _ => Err(format!(
            "its projection {method_name:?} is not one urbantile converts"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As GDAL 3.6 writes them into `.prj` files (ESRI WKT1).
    const TM35FIN_PRJ: &str = r#"PROJCS["EUREF_FIN_TM35FIN",GEOGCS["GCS_ETRS_1989",DATUM["D_ETRS_1989",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",27.0],PARAMETER["Scale_Factor",0.9996],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]"#;
    const LKS94_PRJ: &str = r#"PROJCS["LKS_1994_Lithuania_TM",GEOGCS["GCS_LKS_1994",DATUM["D_Lithuania_1994",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",24.0],PARAMETER["Scale_Factor",0.9998],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]"#;
    const WEB_MERCATOR_PRJ: &str = r#"PROJCS["WGS_1984_Web_Mercator_Auxiliary_Sphere",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Mercator_Auxiliary_Sphere"],PARAMETER["False_Easting",0.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",0.0],PARAMETER["Standard_Parallel_1",0.0],PARAMETER["Auxiliary_Sphere_Type",0.0],UNIT["Meter",1.0]]"#;
    const WGS84_PRJ: &str = r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;
    const KKJ_PRJ: &str = r#"PROJCS["Finland_Zone_3",GEOGCS["GCS_KKJ",DATUM["D_KKJ",SPHEROID["International_1924",6378388.0,297.0]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",3500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",27.0],PARAMETER["Scale_Factor",1.0],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]"#;
    /// A GeoPackage's definition of EPSG:3067 (OGC WKT1 with authorities), less its
    /// AUTHORITY so that the parameters are read.
    const TM35FIN_OGC: &str = r#"PROJCS["ETRS89 / TM35FIN(E,N)",GEOGCS["ETRS89",DATUM["European_Terrestrial_Reference_System_1989",SPHEROID["GRS 1980",6378137,298.257222101,AUTHORITY["EPSG","7019"]],AUTHORITY["EPSG","6258"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4258"]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",27],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH]]"#;
    const TM35FIN_WKT2: &str = r#"PROJCRS["ETRS89 / TM35FIN(E,N)",BASEGEOGCRS["ETRS89",ENSEMBLE["European Terrestrial Reference System 1989 ensemble",MEMBER["European Terrestrial Reference Frame 1989"],ELLIPSOID["GRS 1980",6378137,298.257222101,LENGTHUNIT["metre",1]],ENSEMBLEACCURACY[0.1]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]]],CONVERSION["TM35FIN",METHOD["Transverse Mercator",ID["EPSG",9807]],PARAMETER["Latitude of natural origin",0,ANGLEUNIT["degree",0.0174532925199433]],PARAMETER["Longitude of natural origin",27,ANGLEUNIT["degree",0.0174532925199433]],PARAMETER["Scale factor at natural origin",0.9996,SCALEUNIT["unity",1]],PARAMETER["False easting",500000,LENGTHUNIT["metre",1]],PARAMETER["False northing",0,LENGTHUNIT["metre",1]]],CS[Cartesian,2],AXIS["easting (E)",east,ORDER[1],LENGTHUNIT["metre",1]],AXIS["northing (N)",north,ORDER[2],LENGTHUNIT["metre",1]]]"#;

    #[test]
    fn prj_files_of_the_supported_systems_are_read() {
        assert_eq!(Crs::from_wkt(TM35FIN_PRJ), Crs::from_epsg(3067));
        assert_eq!(Crs::from_wkt(TM35FIN_OGC), Crs::from_epsg(3067));
        assert_eq!(Crs::from_wkt(TM35FIN_WKT2), Crs::from_epsg(3067));
        assert_eq!(Crs::from_wkt(LKS94_PRJ), Crs::from_epsg(3346));
        assert_eq!(Crs::from_wkt(WEB_MERCATOR_PRJ), Ok(Crs::WebMercator));
        assert_eq!(Crs::from_wkt(WGS84_PRJ), Ok(Crs::LonLat));
        assert!(Crs::from_epsg(3067).is_ok_and(|c| matches!(c, Crs::TransverseMercator(_))));
    }

    #[test]
    fn a_datum_that_needs_a_shift_is_refused_by_name() {
        let e = Crs::from_wkt(KKJ_PRJ).unwrap_err();
        assert_eq!(e.name, "\"Finland_Zone_3\"");
        assert!(e.why.contains("D_KKJ"), "{e}");
        assert!(e.to_string().contains("ogr2ogr -t_srs EPSG:4326"), "{e}");
        let e = Crs::from_epsg(2393).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("coordinate system EPSG:2393 is not supported")
        );
    }

    #[test]
    fn other_projections_units_and_garbage_are_refused() {
        let lcc = TM35FIN_PRJ.replace("Transverse_Mercator", "Lambert_Conformal_Conic");
        assert!(Crs::from_wkt(&lcc).unwrap_err().why.contains("Lambert"));
        let feet = TM35FIN_PRJ.replace(r#"UNIT["Meter",1.0]"#, r#"UNIT["Foot_US",0.3048006096]"#);
        assert!(Crs::from_wkt(&feet).unwrap_err().why.contains("Foot_US"));
        for bad in [
            "",
            "PROJCS[",
            "PROJCS[\"x\",]]",
            "GEOGCS[\"x\"] trailing",
            "[[[",
            "\"\"",
        ] {
            assert!(Crs::from_wkt(bad).is_err(), "{bad:?}");
        }
        let deep = "A[".repeat(100) + &"]".repeat(100);
        assert!(Crs::from_wkt(&deep).unwrap_err().why.contains("deeper"));
    }

    #[test]
    fn a_tm35fin_geometry_comes_back_to_helsinki() {
        let crs = Crs::from_wkt(TM35FIN_PRJ).unwrap();
        let g: geo::Geometry<f64> = geo::Point::new(386390.7527, 6671826.6629).into();
        let geo::Geometry::Point(p) = crs.geometry_to_lon_lat(g) else {
            panic!("not a point")
        };
        assert!(
            (p.x() - 24.9526).abs() < 1e-8 && (p.y() - 60.1675).abs() < 1e-8,
            "{p:?}"
        );
    }
}
