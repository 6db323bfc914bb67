//! The SVG writer: a scene as SVG text. The font is named, not embedded; the viewer draws the
//! text with DejaVu Sans or the nearest sans-serif it has.

use std::fmt::Write as _;

use super::scene::{Anchor, Color, Outline, Prim, Scene, Stroke, marker_outline};
use super::text::baseline_shift;

/// A coordinate with at most two decimals and no trailing zeros.
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

/// A filled polygon; fewer than three points draw nothing.
fn write_polygon(s: &mut String, pts: &[(f32, f32)], fill: Color) {
    if pts.len() >= 3 {
        let _ = writeln!(
            s,
            "<polygon points=\"{}\"{}/>",
            svg_points(pts),
            svg_paint("fill", fill)
        );
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
            Prim::Polygon { pts, fill } => write_polygon(&mut s, pts, *fill),
            Prim::Rect { rect, fill, stroke } => {
                let fill = fill.map_or(" fill=\"none\"".to_string(), |c| svg_paint("fill", c));
                // Unstroked cells must tile without anti-aliased seams, as in the PNG.
                let stroke = stroke
                    .as_ref()
                    .map_or(" shape-rendering=\"crispEdges\"".to_string(), svg_stroke);
                let _ = writeln!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{fill}{stroke}/>",
                    num(rect.x),
                    num(rect.y),
                    num(rect.w.max(0.0)),
                    num(rect.h.max(0.0))
                );
            }
            Prim::Marker { at, shape, size, fill } => match marker_outline(*at, *shape, *size) {
                Outline::Circle { center: (x, y), r } => {
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"{}\"{}/>",
                        num(x),
                        num(y),
                        num(r),
                        svg_paint("fill", *fill)
                    );
                }
                Outline::Polygon(pts) => write_polygon(&mut s, &pts, *fill),
            },
            Prim::Text { at, text, style } => {
                let (x, y) = *at;
                let anchor = match style.anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let dy = baseline_shift(style.valign, style.size);
                let rot = if style.rotated { " rotate(-90)" } else { "" };
                let _ = writeln!(
                    s,
                    "<text transform=\"translate({},{}){rot}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\"{}>{}</text>",
                    num(x),
                    num(y),
                    num(dy),
                    num(style.size),
                    svg_paint("fill", style.color),
                    xml_escape(text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
