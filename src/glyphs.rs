//! Glyphs for map labels: the fonts shipped with the project (`fonts/`, embedded in the
//! binary) rendered as signed distance fields in MapLibre's glyph protocol, one protobuf
//! (`glyphs.proto`, as Mapbox defined it) per font stack and range of 256 code points.
//!
//! The SDF rendering is pbf_font_tools' (FreeType, built from source, through
//! sdf_glyph_renderer), with the parameters MapLibre's glyph atlas expects: 24 px glyphs,
//! a 3 px border around each bitmap (so a bitmap is `(width + 6) * (height + 6)` bytes),
//! an 8 px radius and a 0.25 cutoff.
//!
//! A range of one font is rendered on first use, then kept: at most the number of fonts
//! x 256 ranges (a few MB per font, most ranges being empty). Rendering takes tens of
//! milliseconds, so the caller runs [`Fonts::glyphs`] on the compute pool; answers from
//! ranges already rendered ([`Fonts::cached`]) are cheap. A range of one font is kept
//! encoded and gzipped too (Latin-1 in Noto Sans Regular: 84 KB plain, 29 KB gzipped), so the
//! usual request, a stack of one font, is answered without copying; a stack of several fonts
//! is merged and encoded per request. The HTTP side (status codes, headers) is `api::fonts`'.

use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use pbf_font_tools::prost::Message;
use pbf_font_tools::{Fontstack, Glyphs, freetype};

/// The fonts shipped in `fonts/` (SIL Open Font License, `fonts/OFL.txt`), by the name a
/// style's `text-font` gives: FreeType's family name and style name. To add a font, copy
/// its file into `fonts/` and add a line here.
const BUNDLED: &[(&str, &[u8])] = &[
    (
        "Noto Sans Regular",
        include_bytes!("../fonts/NotoSans-Regular.ttf"),
    ),
    (
        "Noto Sans Bold",
        include_bytes!("../fonts/NotoSans-Bold.ttf"),
    ),
];

/// The font labels use, and the one for cluster counts.
pub const REGULAR: &str = "Noto Sans Regular";
pub const BOLD: &str = "Noto Sans Bold";

/// Most fonts in one requested stack: a style names two or three.
pub const MAX_STACK_FONTS: usize = 4;
/// Longest font name accepted, in bytes.
pub const MAX_FONT_NAME: usize = 100;

/// Code points per range (MapLibre's glyph protocol).
const RANGE_SIZE: u32 = 256;
/// Ranges in the Basic Multilingual Plane, the only ones MapLibre asks for.
const RANGES: usize = 256;
/// SDF parameters MapLibre's glyph atlas is built for.
const SIZE_PX: usize = 24;
const RADIUS_PX: usize = 8;
const CUTOFF: f64 = 0.25;

/// Why a glyph request has no answer.
#[derive(Debug, thiserror::Error)]
pub enum GlyphError {
    /// A malformed range or font stack (the request's fault): what and where.
    #[error("{0}")]
    Malformed(String),
    #[error("unknown font {name:?}; this server has {known}")]
    UnknownFont { name: String, known: String },
    /// FreeType could not render a range of a bundled font (a bug or a broken font file).
    #[error("rendering {font:?} {range}: {detail}")]
    Render {
        font: String,
        range: GlyphRange,
        detail: String,
    },
}

/// A range of 256 code points, `N-M` with `N` a multiple of 256 and `M = N + 255`, within
/// the Basic Multilingual Plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlyphRange {
    start: u32,
}

impl GlyphRange {
    /// Parses `N-M`, as the glyph URL's last segment has it (without `.pbf`).
    ///
    /// # Examples
    /// ```
    /// use urbantile::glyphs::GlyphRange;
    /// assert_eq!(GlyphRange::parse("256-511").unwrap().start(), 256);
    /// assert!(GlyphRange::parse("0-511").is_err());
    /// assert!(GlyphRange::parse("65536-65791").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<GlyphRange, GlyphError> {
        let bad = |why: &str| {
            let shown: String = text.chars().take(40).collect();
            GlyphError::Malformed(format!(
                "range {shown:?} in the path: {why}; a range is N-M with N a multiple of 256, \
                 M = N + 255 and M at most 65535, such as 0-255"
            ))
        };
        let (start, end) = text.split_once('-').ok_or_else(|| bad("no '-'"))?;
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let (Some(start), Some(end)) = (number(start), number(end)) else {
            return Err(bad("N and M must be decimal numbers"));
        };
        if start % RANGE_SIZE != 0 {
            return Err(bad("N is not a multiple of 256"));
        }
        if end != start + RANGE_SIZE - 1 {
            return Err(bad("M is not N + 255"));
        }
        if end > 0xFFFF {
            return Err(bad("past code point 65535"));
        }
        Ok(GlyphRange { start })
    }

    pub fn start(self) -> u32 {
        self.start
    }

    pub fn end(self) -> u32 {
        self.start + RANGE_SIZE - 1
    }

    fn slot(self) -> usize {
        (self.start / RANGE_SIZE) as usize
    }
}

impl std::fmt::Display for GlyphRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end())
    }
}

/// One font and its ranges rendered so far.
struct Font {
    name: &'static str,
    file: &'static [u8],
    ranges: Box<[OnceLock<Arc<Rendered>>]>,
}

/// One range of one font: its glyphs, and the answer for a stack of that font alone.
struct Rendered {
    stack: Fontstack,
    plain: Bytes,
    /// `None` when gzip failed (it does not, in memory) or saved nothing.
    gzipped: Option<Bytes>,
}

/// Encoded glyphs, as they are to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub bytes: Bytes,
    /// True when `bytes` is gzipped (only when the caller accepted gzip).
    pub gzipped: bool,
}

/// The fonts a server serves glyphs from. Shared by every request (`Arc` it).
pub struct Fonts {
    fonts: Vec<Font>,
}

impl Fonts {
    /// The fonts shipped with the project; nothing is rendered yet.
    pub fn bundled() -> Fonts {
        Fonts {
            fonts: BUNDLED
                .iter()
                .map(|&(name, file)| Font {
                    name,
                    file,
                    ranges: (0..RANGES).map(|_| OnceLock::new()).collect(),
                })
                .collect(),
        }
    }

    /// The fonts' names, as a style's `text-font` names them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fonts.iter().map(|f| f.name)
    }

    /// The fonts of a comma-separated stack (the glyph URL's `{fontstack}`, decoded), each
    /// known, in the stack's order.
    pub fn stack(&self, text: &str) -> Result<Vec<usize>, GlyphError> {
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        if names.len() > MAX_STACK_FONTS {
            return Err(GlyphError::Malformed(format!(
                "font stack in the path: {} fonts, at most {MAX_STACK_FONTS} are accepted",
                names.len()
            )));
        }
        names
            .into_iter()
            .map(|name| {
                if name.is_empty() {
                    return Err(GlyphError::Malformed(
                        "font stack in the path: an empty font name".into(),
                    ));
                }
                if name.len() > MAX_FONT_NAME {
                    return Err(GlyphError::Malformed(format!(
                        "font stack in the path: a font name of {} bytes, at most \
                         {MAX_FONT_NAME} are accepted",
                        name.len()
                    )));
                }
                self.fonts
                    .iter()
                    .position(|f| f.name == name)
                    .ok_or_else(|| GlyphError::UnknownFont {
                        name: name.to_owned(),
                        known: self.names().collect::<Vec<_>>().join(", "),
                    })
            })
            .collect()
    }

    /// The glyphs of `range` for the fonts of `stack` (from [`Fonts::stack`]), gzipped if
    /// `gzip_ok` and there is a gzipped form, when every one is rendered already; cheap.
    pub fn cached(&self, stack: &[usize], range: GlyphRange, gzip_ok: bool) -> Option<Answer> {
        let parts: Option<Vec<Arc<Rendered>>> = stack
            .iter()
            .map(|&i| self.fonts[i].ranges[range.slot()].get().cloned())
            .collect();
        Some(self.answer(stack, range, parts?, gzip_ok))
    }

    /// The glyphs of `range` for the fonts of `stack`, rendering the ranges not rendered
    /// yet (tens of milliseconds each: run it on the compute pool). A code point in several
    /// fonts of the stack takes the first font's glyph.
    pub fn glyphs(
        &self,
        stack: &[usize],
        range: GlyphRange,
        gzip_ok: bool,
    ) -> Result<Answer, GlyphError> {
        let parts = stack
            .iter()
            .map(|&i| self.rendered(i, range))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.answer(stack, range, parts, gzip_ok))
    }

    fn answer(
        &self,
        stack: &[usize],
        range: GlyphRange,
        parts: Vec<Arc<Rendered>>,
        gzip_ok: bool,
    ) -> Answer {
        if let [one] = parts.as_slice() {
            return match (&one.gzipped, gzip_ok) {
                (Some(g), true) => Answer {
                    bytes: g.clone(),
                    gzipped: true,
                },
                _ => Answer {
                    bytes: one.plain.clone(),
                    gzipped: false,
                },
            };
        }
        let mut seen = std::collections::HashSet::new();
        let mut glyphs = Vec::new();
        for part in &parts {
            for g in &part.stack.glyphs {
                if seen.insert(g.id) {
                    glyphs.push(g.clone());
                }
            }
        }
        let name = stack
            .iter()
            .map(|&i| self.fonts[i].name)
            .collect::<Vec<_>>()
            .join(",");
        Answer {
            bytes: encode(Fontstack {
                name,
                range: range.to_string(),
                glyphs,
            }),
            gzipped: false,
        }
    }

    /// One font's range, rendered now unless it was before. Two requests for a new range
    /// at once may both render it (the first result is kept): cheaper than making one
    /// pool thread wait for another, and a failure is not kept.
    fn rendered(&self, font: usize, range: GlyphRange) -> Result<Arc<Rendered>, GlyphError> {
        let font = &self.fonts[font];
        let slot = &font.ranges[range.slot()];
        if let Some(done) = slot.get() {
            return Ok(done.clone());
        }
        let stack = render(font, range)?;
        let plain = encode(stack.clone());
        let gzipped = gzip_best(&plain)
            .ok()
            .filter(|g| g.len() < plain.len())
            .map(Bytes::from);
        Ok(slot
            .get_or_init(|| {
                Arc::new(Rendered {
                    stack,
                    plain,
                    gzipped,
                })
            })
            .clone())
    }
}

/// gzip at the best level: a range is compressed once and sent many times (tiles use the
/// fastest level, being compressed as often as they are cut).
fn gzip_best(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2),
        flate2::Compression::best(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn encode(stack: Fontstack) -> Bytes {
    Bytes::from(
        Glyphs {
            stacks: vec![stack],
        }
        .encode_to_vec(),
    )
}

/// Renders one range of one font with FreeType. A FreeType library and face per call:
/// they are not shareable between threads, and opening a face from memory is cheap next
/// to rendering 256 glyphs.
fn render(font: &Font, range: GlyphRange) -> Result<Fontstack, GlyphError> {
    let failed = |e: &dyn std::fmt::Display| GlyphError::Render {
        font: font.name.to_owned(),
        range,
        detail: e.to_string(),
    };
    let library = freetype::Library::init().map_err(|e| failed(&e))?;
    let face = library
        .new_memory_face(Rc::new(font.file.to_vec()), 0)
        .map_err(|e| failed(&e))?;
    let mut stack = pbf_font_tools::glyph_range_for_face(
        &face,
        range.start(),
        range.end(),
        SIZE_PX,
        RADIUS_PX,
        CUTOFF,
    )
    .map_err(|e| failed(&e))?;
    stack.name = font.name.to_owned();
    Ok(stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_be_aligned_blocks_of_256_in_the_basic_plane() {
        for good in ["0-255", "256-511", "65280-65535"] {
            assert_eq!(GlyphRange::parse(good).unwrap().to_string(), good);
        }
        for bad in [
            "",
            "0",
            "0-256",
            "1-256",
            "255-0",
            "-0-255",
            "0-255-511",
            "a-b",
            "0x0-255",
            "65536-65791",
            "000000-255",
            "99999999999-0",
        ] {
            let e = GlyphRange::parse(bad).unwrap_err().to_string();
            assert!(e.contains("range") && e.contains("0-255"), "{bad}: {e}");
        }
    }

    #[test]
    fn bundled_fonts_carry_the_names_freetype_reads_from_their_files() {
        let library = freetype::Library::init().unwrap();
        for &(name, file) in BUNDLED {
            let face = library.new_memory_face(Rc::new(file.to_vec()), 0).unwrap();
            let read = format!(
                "{} {}",
                face.family_name().unwrap(),
                face.style_name().unwrap()
            );
            assert_eq!(read, name);
        }
    }

    #[test]
    fn stacks_name_known_fonts_only_and_few_of_them() {
        let fonts = Fonts::bundled();
        assert_eq!(
            fonts.stack("Noto Sans Bold, Noto Sans Regular").unwrap(),
            [1, 0]
        );
        assert!(matches!(
            fonts.stack("Noto Sans Regular,Arial Unicode MS Regular"),
            Err(GlyphError::UnknownFont { ref name, .. }) if name == "Arial Unicode MS Regular"
        ));
        for bad in [
            "",
            "Noto Sans Regular,",
            &["Noto Sans Regular"; 5].join(","),
            &"x".repeat(101),
        ] {
            assert!(
                matches!(fonts.stack(bad), Err(GlyphError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_stack_of_two_fonts_takes_each_glyph_from_the_first_that_has_it() {
        let fonts = Fonts::bundled();
        let range = GlyphRange::parse("0-255").unwrap();
        let bold = fonts
            .glyphs(&fonts.stack(BOLD).unwrap(), range, false)
            .unwrap();
        let both = fonts
            .glyphs(
                &fonts.stack(&format!("{BOLD},{REGULAR}")).unwrap(),
                range,
                true,
            )
            .unwrap();
        assert!(!both.gzipped);
        let [bold, both] = [bold, both].map(|a| Glyphs::decode(a.bytes.as_ref()).unwrap());
        assert_eq!(both.stacks[0].name, format!("{BOLD},{REGULAR}"));
        assert_eq!(both.stacks[0].glyphs, bold.stacks[0].glyphs);
    }

    #[test]
    fn a_range_is_rendered_once_and_then_answered_from_memory() {
        let fonts = Fonts::bundled();
        let stack = fonts.stack("Noto Sans Regular").unwrap();
        let range = GlyphRange::parse("0-255").unwrap();
        assert!(fonts.cached(&stack, range, false).is_none());
        let plain = fonts.glyphs(&stack, range, false).unwrap();
        assert!(!plain.gzipped);
        assert_eq!(fonts.cached(&stack, range, false).unwrap(), plain);
        let zipped = fonts.cached(&stack, range, true).unwrap();
        assert!(
            zipped.gzipped && zipped.bytes.len() < plain.bytes.len() * 3 / 4,
            "{} bytes gzipped from {}",
            zipped.bytes.len(),
            plain.bytes.len()
        );
        let unzipped =
            crate::tiles::compress::decode(&zipped.bytes, crate::tiles::compress::Encoding::Gzip)
                .unwrap();
        assert_eq!(unzipped, plain.bytes);
        let decoded = Glyphs::decode(plain.bytes.as_ref()).unwrap();
        let glyphs = &decoded.stacks[0].glyphs;
        let a = glyphs.iter().find(|g| g.id == 'ä' as u32).unwrap();
        assert!(a.width > 0 && a.height > 0);
        assert_eq!(
            a.bitmap.as_ref().unwrap().len(),
            ((a.width + 6) * (a.height + 6)) as usize
        );
    }
}
