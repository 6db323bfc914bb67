//! Text metrics and glyph outlines from the embedded font: how wide a label is, where its
//! baseline goes, and the shapes the rasteriser fills.

use std::collections::HashMap;
use std::sync::OnceLock;

use tiny_skia::PathBuilder;

use super::font;
use super::scene::{Anchor, VAlign};

/// One character of the embedded font: its advance in font units and its outline in font units,
/// y up.
pub(crate) struct Glyph {
    pub advance: f32,
    pub path: Option<tiny_skia::Path>,
}

fn glyphs() -> &'static HashMap<char, Glyph> {
    static CACHE: OnceLock<HashMap<char, Glyph>> = OnceLock::new();
    CACHE.get_or_init(|| {
        font::GLYPHS
            .iter()
            .map(|&(c, adv, outline)| {
                (
                    c,
                    Glyph {
                        advance: adv as f32,
                        path: parse_outline(outline),
                    },
                )
            })
            .collect()
    })
}

/// Characters the embedded font lacks are drawn as U+FFFD so that a missing glyph is visible
/// rather than silently dropped.
pub(crate) fn glyph(c: char) -> Option<&'static Glyph> {
    let g = glyphs();
    g.get(&c).or_else(|| g.get(&'\u{fffd}'))
}

fn parse_outline(s: &str) -> Option<tiny_skia::Path> {
    let mut pb = PathBuilder::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut nums: Vec<f32> = Vec::with_capacity(6);
    while i < bytes.len() {
        let cmd = bytes[i];
        i += 1;
        nums.clear();
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        for tok in s[start..i].split_ascii_whitespace() {
            nums.push(tok.parse().ok()?);
        }
        match (cmd, nums.as_slice()) {
            (b'M', [x, y]) => pb.move_to(*x, *y),
            (b'L', [x, y]) => pb.line_to(*x, *y),
            (b'Q', [a, b, x, y]) => pb.quad_to(*a, *b, *x, *y),
            (b'C', [a, b, c, d, x, y]) => pb.cubic_to(*a, *b, *c, *d, *x, *y),
            (b'Z', []) => pb.close(),
            _ => return None,
        }
    }
    pb.finish()
}

/// Width in pixels of `text` at font size `size` (pixels per em).
pub(crate) fn text_width(text: &str, size: f32) -> f32 {
    let units: f32 = text.chars().map(|c| glyph(c).map_or(0.0, |g| g.advance)).sum();
    units * size / font::UNITS_PER_EM
}

pub(crate) fn cap_height(size: f32) -> f32 {
    font::CAP_HEIGHT * size / font::UNITS_PER_EM
}

pub(crate) fn descent(size: f32) -> f32 {
    -font::DESCENT * size / font::UNITS_PER_EM
}

/// Baseline offset (down positive, text frame) for a vertical alignment.
pub(crate) fn baseline_shift(valign: VAlign, size: f32) -> f32 {
    match valign {
        VAlign::Middle => cap_height(size) / 2.0,
        VAlign::Top => cap_height(size),
        VAlign::Bottom => -descent(size),
    }
}

/// Offset (text frame) from the anchor point to where the text starts.
pub(crate) fn anchor_shift(anchor: Anchor, width: f32) -> f32 {
    match anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => -width / 2.0,
        Anchor::End => -width,
    }
}
