//! A back-end-neutral list of drawing primitives in CSS pixels, with an SVG writer and a raster
//! back end. Charts lay themselves out once into a [`Scene`]; both outputs then come from the same
//! geometry, so the SVG and the PNG of a chart cannot disagree.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Transform};

use super::font;
use crate::error::{Error, Result};

/// An sRGB colour with straight (not premultiplied) alpha.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Color {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Color { r, g, b, a: 255 }
    }
    /// From `0xRRGGBB`, the way palettes are usually published.
    pub const fn hex(v: u32) -> Self {
        Color::rgb((v >> 16) as u8, (v >> 8) as u8, v as u8)
    }
    pub const fn with_alpha(self, a: u8) -> Self {
        Color { a, ..self }
    }
    /// `#rrggbb`, as SVG and CSS write colours.
    pub fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
    /// Relative luminance (0..1), to pick black or white text over a filled cell.
    pub(crate) fn luminance(self) -> f32 {
        fn lin(c: u8) -> f32 {
            let c = c as f32 / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        0.2126 * lin(self.r) + 0.7152 * lin(self.g) + 0.0722 * lin(self.b)
    }
}

pub(crate) const BLACK: Color = Color::rgb(0, 0, 0);
pub(crate) const WHITE: Color = Color::rgb(255, 255, 255);

#[derive(Clone, Debug)]
pub(crate) struct Stroke {
    pub color: Color,
    pub width: f32,
    pub dash: Option<Vec<f32>>,
}

impl Stroke {
    pub fn solid(color: Color, width: f32) -> Self {
        Stroke {
            color,
            width,
            dash: None,
        }
    }
    pub fn dashed(color: Color, width: f32, dash: &[f32]) -> Self {
        Stroke {
            color,
            width,
            dash: Some(dash.to_vec()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// Where the anchor point sits vertically relative to the text, in the text's own frame (so it
/// also applies to rotated text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VAlign {
    /// Centre of the capital letters: what looks centred for labels.
    Middle,
    /// Top of the capitals.
    Top,
    /// Bottom of the descenders.
    Bottom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkerShape {
    Circle,
    Square,
    Triangle,
    Diamond,
}

#[derive(Clone, Debug)]
pub(crate) enum Prim {
    Polyline {
        pts: Vec<(f32, f32)>,
        stroke: Stroke,
    },
    Polygon {
        pts: Vec<(f32, f32)>,
        fill: Color,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Option<Color>,
        stroke: Option<Stroke>,
    },
    Marker {
        x: f32,
        y: f32,
        shape: MarkerShape,
        size: f32,
        fill: Color,
    },
    Text {
        x: f32,
        y: f32,
        text: String,
        size: f32,
        color: Color,
        anchor: Anchor,
        valign: VAlign,
        /// Rotated 90° counter-clockwise (reads bottom to top), as y-axis labels are.
        rotated: bool,
    },
}

pub(crate) struct Scene {
    pub width: f32,
    pub height: f32,
    pub prims: Vec<Prim>,
}

impl Scene {
    pub fn new(width: f32, height: f32) -> Self {
        Scene {
            width,
            height,
            prims: Vec::new(),
        }
    }
    pub fn push(&mut self, p: Prim) {
        self.prims.push(p);
    }
    pub fn line(&mut self, a: (f32, f32), b: (f32, f32), stroke: Stroke) {
        self.prims.push(Prim::Polyline {
            pts: vec![a, b],
            stroke,
        });
    }
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        x: f32,
        y: f32,
        text: impl Into<String>,
        size: f32,
        color: Color,
        anchor: Anchor,
        valign: VAlign,
        rotated: bool,
    ) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        self.prims.push(Prim::Text {
            x,
            y,
            text,
            size,
            color,
            anchor,
            valign,
            rotated,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Text metrics

struct Glyph {
    advance: f32,
    path: Option<tiny_skia::Path>,
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
fn glyph(c: char) -> Option<&'static Glyph> {
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
fn baseline_shift(valign: VAlign, size: f32) -> f32 {
    match valign {
        VAlign::Middle => cap_height(size) / 2.0,
        VAlign::Top => cap_height(size),
        VAlign::Bottom => -descent(size),
    }
}

fn anchor_shift(anchor: Anchor, width: f32) -> f32 {
    match anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => -width / 2.0,
        Anchor::End => -width,
    }
}

// ---------------------------------------------------------------------------------------------
// SVG back end

fn num(v: f32) -> String {
    let r = (v * 100.0).round() / 100.0;
    let r = if r == 0.0 { 0.0 } else { r };
    let s = format!("{r:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn svg_paint(attr: &str, c: Color) -> String {
    let mut s = format!(" {attr}=\"{}\"", c.css());
    if c.a < 255 {
        let _ = write!(s, " {attr}-opacity=\"{}\"", num(c.a as f32 / 255.0));
    }
    s
}

fn svg_stroke(st: &Stroke) -> String {
    let mut s = svg_paint("stroke", st.color);
    let _ = write!(s, " stroke-width=\"{}\"", num(st.width));
    if let Some(d) = &st.dash {
        let d: Vec<String> = d.iter().map(|v| num(*v)).collect();
        let _ = write!(s, " stroke-dasharray=\"{}\"", d.join(" "));
    }
    s
}

fn svg_points(pts: &[(f32, f32)]) -> String {
    let v: Vec<String> = pts.iter().map(|(x, y)| format!("{},{}", num(*x), num(*y))).collect();
    v.join(" ")
}

fn marker_points(shape: MarkerShape, x: f32, y: f32, r: f32) -> Vec<(f32, f32)> {
    match shape {
        MarkerShape::Triangle => {
            let r = r * 1.2;
            vec![(x, y - r), (x + r * 0.866, y + r * 0.5), (x - r * 0.866, y + r * 0.5)]
        }
        MarkerShape::Diamond => {
            let r = r * 1.25;
            vec![(x, y - r), (x + r * 0.75, y), (x, y + r), (x - r * 0.75, y)]
        }
        MarkerShape::Square | MarkerShape::Circle => {
            let r = r * 0.9;
            vec![(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)]
        }
    }
}

pub(crate) fn to_svg(scene: &Scene) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans, Verdana, Arial, Helvetica, sans-serif\">",
        w = num(scene.width),
        h = num(scene.height)
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
    for p in &scene.prims {
        match p {
            Prim::Polyline { pts, stroke } => {
                if pts.len() < 2 {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\"{} stroke-linejoin=\"round\" stroke-linecap=\"butt\"/>",
                    svg_points(pts),
                    svg_stroke(stroke)
                );
            }
            Prim::Polygon { pts, fill } => {
                if pts.len() < 3 {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "<polygon points=\"{}\"{}/>",
                    svg_points(pts),
                    svg_paint("fill", *fill)
                );
            }
            Prim::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
            } => {
                let fill = fill.map_or(" fill=\"none\"".to_string(), |c| svg_paint("fill", c));
                // Unstroked cells must tile without anti-aliased seams, as in the PNG.
                let stroke = stroke
                    .as_ref()
                    .map_or(" shape-rendering=\"crispEdges\"".to_string(), svg_stroke);
                let _ = writeln!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{fill}{stroke}/>",
                    num(*x),
                    num(*y),
                    num(w.max(0.0)),
                    num(h.max(0.0))
                );
            }
            Prim::Marker {
                x,
                y,
                shape,
                size,
                fill,
            } => {
                let r = size / 2.0;
                if *shape == MarkerShape::Circle {
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"{}\"{}/>",
                        num(*x),
                        num(*y),
                        num(r),
                        svg_paint("fill", *fill)
                    );
                } else {
                    let pts = marker_points(*shape, *x, *y, r);
                    let _ = writeln!(
                        s,
                        "<polygon points=\"{}\"{}/>",
                        svg_points(&pts),
                        svg_paint("fill", *fill)
                    );
                }
            }
            Prim::Text {
                x,
                y,
                text,
                size,
                color,
                anchor,
                valign,
                rotated,
            } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let dy = baseline_shift(*valign, *size);
                let rot = if *rotated { " rotate(-90)" } else { "" };
                let _ = writeln!(
                    s,
                    "<text transform=\"translate({},{}){rot}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\"{}>{}</text>",
                    num(*x),
                    num(*y),
                    num(dy),
                    num(*size),
                    svg_paint("fill", *color),
                    xml_escape(text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

// ---------------------------------------------------------------------------------------------
// Raster back end

fn paint(c: Color) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(c.r, c.g, c.b, c.a);
    p.anti_alias = true;
    p
}

fn poly_path(pts: &[(f32, f32)], close: bool) -> Option<tiny_skia::Path> {
    let mut pb = PathBuilder::new();
    let mut it = pts.iter().filter(|(x, y)| x.is_finite() && y.is_finite());
    let (x0, y0) = it.next()?;
    pb.move_to(*x0, *y0);
    for (x, y) in it {
        pb.line_to(*x, *y);
    }
    if close {
        pb.close();
    }
    pb.finish()
}

fn sk_stroke(st: &Stroke) -> tiny_skia::Stroke {
    tiny_skia::Stroke {
        width: st.width,
        line_cap: LineCap::Butt,
        line_join: LineJoin::Round,
        dash: st
            .dash
            .as_ref()
            .and_then(|d| tiny_skia::StrokeDash::new(d.clone(), 0.0)),
        ..Default::default()
    }
}

/// Renders at `scale` device pixels per CSS pixel and encodes an opaque RGB PNG.
pub(crate) fn to_png(scene: &Scene, scale: f32) -> Result<Vec<u8>> {
    let (w, h) = ((scene.width * scale).round(), (scene.height * scale).round());
    if !(w >= 1.0 && h >= 1.0 && w * h <= 2.0e8) {
        return Err(Error::usage(format!(
            "plot size {w}x{h} pixels (scale {scale}) is empty or too large to render"
        )));
    }
    let (w, h) = (w as u32, h as u32);
    let mut pm =
        Pixmap::new(w, h).ok_or_else(|| Error::usage(format!("plot size {w}x{h} pixels cannot be allocated")))?;
    pm.fill(tiny_skia::Color::WHITE);
    let base = Transform::from_scale(scale, scale);
    for p in &scene.prims {
        match p {
            Prim::Polyline { pts, stroke } => {
                if let Some(path) = poly_path(pts, false) {
                    pm.stroke_path(&path, &paint(stroke.color), &sk_stroke(stroke), base, None);
                }
            }
            Prim::Polygon { pts, fill } => {
                if let Some(path) = poly_path(pts, true) {
                    pm.fill_path(&path, &paint(*fill), FillRule::Winding, base, None);
                }
            }
            Prim::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
            } => {
                let pts = [(*x, *y), (x + w, *y), (x + w, y + h), (*x, y + h)];
                if let Some(path) = poly_path(&pts, true) {
                    if let Some(c) = fill {
                        let mut pt = paint(*c);
                        // Heatmap cells must tile without hairline seams between neighbours.
                        pt.anti_alias = stroke.is_some();
                        pm.fill_path(&path, &pt, FillRule::Winding, base, None);
                    }
                    if let Some(st) = stroke {
                        pm.stroke_path(&path, &paint(st.color), &sk_stroke(st), base, None);
                    }
                }
            }
            Prim::Marker {
                x,
                y,
                shape,
                size,
                fill,
            } => {
                let r = size / 2.0;
                let path = if *shape == MarkerShape::Circle {
                    PathBuilder::from_circle(*x, *y, r)
                } else {
                    poly_path(&marker_points(*shape, *x, *y, r), true)
                };
                if let Some(path) = path {
                    pm.fill_path(&path, &paint(*fill), FillRule::Winding, base, None);
                }
            }
            Prim::Text {
                x,
                y,
                text,
                size,
                color,
                anchor,
                valign,
                rotated,
            } => {
                let s = size / font::UNITS_PER_EM;
                let dx = anchor_shift(*anchor, text_width(text, *size));
                let dy = baseline_shift(*valign, *size);
                let pt = paint(*color);
                let mut pen = 0.0;
                for c in text.chars() {
                    let Some(g) = glyph(c) else { continue };
                    if let Some(path) = &g.path {
                        let t = if *rotated {
                            Transform::from_row(0.0, -s, -s, 0.0, x + dy, y - pen - dx)
                        } else {
                            Transform::from_row(s, 0.0, 0.0, -s, x + pen + dx, y + dy)
                        };
                        pm.fill_path(path, &pt, FillRule::Winding, base.pre_concat(t), None);
                    }
                    pen += g.advance * s;
                }
            }
        }
    }
    encode_png(&pm)
}

fn encode_png(pm: &Pixmap) -> Result<Vec<u8>> {
    // The background is opaque white, so premultiplied and straight RGB agree; dropping alpha
    // makes smaller files.
    let rgb: Vec<u8> = pm.data().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, pm.width(), pm.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut wr = enc
            .write_header()
            .map_err(|e| Error::Internal(format!("PNG encoding: {e}")))?;
        wr.write_image_data(&rgb)
            .map_err(|e| Error::Internal(format!("PNG encoding: {e}")))?;
        wr.finish().map_err(|e| Error::Internal(format!("PNG encoding: {e}")))?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Geometry: clipping is done on the geometry so that both back ends need no clip support.

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    pub fn right(&self) -> f32 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f32 {
        self.y + self.h
    }
    pub fn contains(&self, p: (f32, f32)) -> bool {
        p.0 >= self.x && p.0 <= self.right() && p.1 >= self.y && p.1 <= self.bottom()
    }
}

/// Clips one segment to `r` (Liang–Barsky); `None` when it lies wholly outside.
pub(crate) fn clip_segment(a: (f32, f32), b: (f32, f32), r: &Rect) -> Option<((f32, f32), (f32, f32))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f32, 1.0f32);
    for (p, q) in [
        (-dx, a.0 - r.x),
        (dx, r.right() - a.0),
        (-dy, a.1 - r.y),
        (dy, r.bottom() - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Clips a polyline to `r`, splitting it where it leaves and re-enters.
pub(crate) fn clip_polyline(pts: &[(f32, f32)], r: &Rect) -> Vec<Vec<(f32, f32)>> {
    let mut out: Vec<Vec<(f32, f32)>> = Vec::new();
    let mut cur: Vec<(f32, f32)> = Vec::new();
    if pts.len() == 1 && r.contains(pts[0]) {
        return vec![pts.to_vec()];
    }
    for w in pts.windows(2) {
        match clip_segment(w[0], w[1], r) {
            Some((a, b)) => {
                if cur
                    .last()
                    .is_none_or(|l| (l.0 - a.0).abs() > 1e-4 || (l.1 - a.1).abs() > 1e-4)
                {
                    if cur.len() > 1 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push(a);
                }
                cur.push(b);
            }
            None => {
                if cur.len() > 1 {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// Clips a polygon to `r` (Sutherland–Hodgman; exact for a convex clip region).
pub(crate) fn clip_polygon(pts: &[(f32, f32)], r: &Rect) -> Vec<(f32, f32)> {
    let mut poly = pts.to_vec();
    type Inside = fn((f32, f32), &Rect) -> f32;
    let edges: [Inside; 4] = [
        |p, r| p.0 - r.x,
        |p, r| r.right() - p.0,
        |p, r| p.1 - r.y,
        |p, r| r.bottom() - p.1,
    ];
    for inside in edges {
        if poly.is_empty() {
            break;
        }
        let input = std::mem::take(&mut poly);
        for i in 0..input.len() {
            let a = input[i];
            let b = input[(i + 1) % input.len()];
            let (da, db) = (inside(a, r), inside(b, r));
            if da >= 0.0 {
                poly.push(a);
            }
            if (da >= 0.0) != (db >= 0.0) {
                let t = da / (da - db);
                poly.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
            }
        }
    }
    poly
}
