//! A back-end-neutral list of drawing primitives in CSS pixels. Charts lay themselves out once
//! into a [`Scene`]; the SVG writer and the rasteriser then draw the same geometry, so the SVG
//! and the PNG of a chart cannot disagree.

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

/// How a piece of text is drawn: its size in pixels per em, its colour, where its anchor point
/// sits, and whether it is turned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TextStyle {
    pub size: f32,
    pub color: Color,
    pub anchor: Anchor,
    pub valign: VAlign,
    /// Rotated 90° counter-clockwise (reads bottom to top), as y-axis labels are.
    pub rotated: bool,
}

impl TextStyle {
    /// Horizontal text.
    pub const fn new(size: f32, color: Color, anchor: Anchor, valign: VAlign) -> Self {
        TextStyle {
            size,
            color,
            anchor,
            valign,
            rotated: false,
        }
    }
    /// The same style turned to read bottom to top.
    pub const fn rotated(self) -> Self {
        TextStyle { rotated: true, ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkerShape {
    Circle,
    Square,
    Triangle,
    Diamond,
}

/// The shape a back end draws for a marker.
pub(crate) enum Outline {
    Circle { center: (f32, f32), r: f32 },
    Polygon(Vec<(f32, f32)>),
}

/// The outline of a `shape` marker `size` pixels across, centred at `at`.
pub(crate) fn marker_outline(at: (f32, f32), shape: MarkerShape, size: f32) -> Outline {
    let ((x, y), r) = (at, size / 2.0);
    match shape {
        MarkerShape::Circle => Outline::Circle { center: at, r },
        MarkerShape::Triangle => {
            let r = r * 1.2;
            Outline::Polygon(vec![
                (x, y - r),
                (x + r * 0.866, y + r * 0.5),
                (x - r * 0.866, y + r * 0.5),
            ])
        }
        MarkerShape::Diamond => {
            let r = r * 1.25;
            Outline::Polygon(vec![(x, y - r), (x + r * 0.75, y), (x, y + r), (x - r * 0.75, y)])
        }
        MarkerShape::Square => {
            let r = r * 0.9;
            Outline::Polygon(vec![(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)])
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Prim {
    /// An open line through the points.
    Polyline { pts: Vec<(f32, f32)>, stroke: Stroke },
    /// A filled closed shape.
    Polygon { pts: Vec<(f32, f32)>, fill: Color },
    /// A rectangle, filled, outlined or both. One without an outline is drawn with crisp edges
    /// so that neighbouring cells tile without seams.
    Rect {
        rect: Rect,
        fill: Option<Color>,
        stroke: Option<Stroke>,
    },
    /// A data-point marker `size` pixels across, centred at `at`.
    Marker {
        at: (f32, f32),
        shape: MarkerShape,
        size: f32,
        fill: Color,
    },
    /// Text placed at `at` as its style says.
    Text {
        at: (f32, f32),
        text: String,
        style: TextStyle,
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
        self.push(Prim::Polyline {
            pts: vec![a, b],
            stroke,
        });
    }
    pub fn rect(&mut self, rect: Rect, fill: Option<Color>, stroke: Option<Stroke>) {
        self.push(Prim::Rect { rect, fill, stroke });
    }
    /// A filled rectangle without an outline.
    pub fn fill_rect(&mut self, rect: Rect, fill: Color) {
        self.rect(rect, Some(fill), None);
    }
    pub fn marker(&mut self, at: (f32, f32), shape: MarkerShape, size: f32, fill: Color) {
        self.push(Prim::Marker { at, shape, size, fill });
    }
    /// Text at `at`; empty text adds nothing.
    pub fn text(&mut self, at: (f32, f32), text: impl Into<String>, style: TextStyle) {
        let text = text.into();
        if !text.is_empty() {
            self.push(Prim::Text { at, text, style });
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    pub const fn new(x: f32, y: f32, w: f32, h: f32) -> Self {
        Rect { x, y, w, h }
    }
    pub fn right(&self) -> f32 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f32 {
        self.y + self.h
    }
    pub fn contains(&self, p: (f32, f32)) -> bool {
        p.0 >= self.x && p.0 <= self.right() && p.1 >= self.y && p.1 <= self.bottom()
    }
    /// Top left, top right, bottom right, bottom left.
    pub fn corners(&self) -> [(f32, f32); 4] {
        let (x, y, w, h) = (self.x, self.y, self.w, self.h);
        [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    }
}
