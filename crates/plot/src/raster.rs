//! The raster back end: a scene drawn with `tiny-skia` and encoded as PNG. Text is filled from
//! the glyph outlines of the embedded font, so a PNG looks the same on every machine.

use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Transform};

use super::font;
use super::scene::{Color, Outline, Prim, Scene, Stroke, marker_outline};
use super::text::{anchor_shift, baseline_shift, glyph, text_width};
use crate::{Error, Result};

fn paint(c: Color) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(c.r, c.g, c.b, c.a);
    p.anti_alias = true;
    p
}

/// A path through the finite points of `pts`; `None` when none is finite.
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
            Prim::Rect { rect, fill, stroke } => {
                if let Some(path) = poly_path(&rect.corners(), true) {
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
            Prim::Marker { at, shape, size, fill } => {
                let path = match marker_outline(*at, *shape, *size) {
                    Outline::Circle { center: (x, y), r } => PathBuilder::from_circle(x, y, r),
                    Outline::Polygon(pts) => poly_path(&pts, true),
                };
                if let Some(path) = path {
                    pm.fill_path(&path, &paint(*fill), FillRule::Winding, base, None);
                }
            }
            Prim::Text { at, text, style } => {
                let (x, y) = *at;
                let s = style.size / font::UNITS_PER_EM;
                let dx = anchor_shift(style.anchor, text_width(text, style.size));
                let dy = baseline_shift(style.valign, style.size);
                let pt = paint(style.color);
                let mut pen = 0.0;
                for c in text.chars() {
                    let Some(g) = glyph(c) else { continue };
                    if let Some(path) = &g.path {
                        let t = if style.rotated {
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
