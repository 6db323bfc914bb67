//! Legends: the rows naming each series or bar group, and where the box goes.

use super::*;

/// Where a legend goes. `Best` picks the corner or edge that covers the fewest data points, as
/// matplotlib's `loc="best"` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Legend {
    #[default]
    Best,
    UpperRight,
    UpperLeft,
    LowerLeft,
    LowerRight,
    /// Outside the axes, to the right; the plot area shrinks to make room.
    Outside,
    Hidden,
}

/// What a legend row shows next to its name.
#[derive(Clone)]
pub(super) struct LegendEntry {
    pub name: String,
    pub color: Color,
    pub line: Option<Stroke>,
    pub marker: Option<MarkerShape>,
    pub patch: Option<Color>,
}

impl LegendEntry {
    /// A row with a filled patch, as for a bar group.
    pub fn patch(name: String, color: Color) -> Self {
        LegendEntry {
            name,
            color,
            line: None,
            marker: None,
            patch: Some(color),
        }
    }
}

const LEGEND_PAD: f32 = 6.0;
const LEGEND_SAMPLE: f32 = 24.0;

/// A chart's legend: its rows, where it goes and the room it takes.
pub(super) struct LegendBox {
    pos: Legend,
    entries: Vec<LegendEntry>,
    size: (f32, f32),
}

impl LegendBox {
    /// A legend placed at `pos`; a hidden one has no rows.
    pub fn new(pos: Legend, entries: Vec<LegendEntry>) -> Self {
        let entries = if pos == Legend::Hidden { vec![] } else { entries };
        let size = legend_size(&entries);
        LegendBox { pos, entries, size }
    }

    fn outside(&self) -> bool {
        self.pos == Legend::Outside && !self.entries.is_empty()
    }

    /// The chart's right margin: room for the legend when it goes outside, else `inside`.
    pub fn right_margin(&self, inside: f32) -> f32 {
        if self.outside() { self.size.0 + 20.0 } else { inside }
    }

    /// Draws the legend right of `plot` when it goes outside, else inside `plot` at its place or,
    /// for `Best`, where it hides the fewest of `points`.
    pub fn draw(&self, sc: &mut Scene, plot: Rect, points: &[(f32, f32)]) {
        if self.outside() {
            draw_legend(sc, &self.entries, (plot.right() + 12.0, plot.y));
        } else if !self.entries.is_empty() {
            let cands = legend_corner(self.pos, plot, self.size);
            if let Some(at) = best_corner(&cands, self.size, points) {
                draw_legend(sc, &self.entries, at);
            }
        }
    }
}

fn legend_size(entries: &[LegendEntry]) -> (f32, f32) {
    let tw = entries
        .iter()
        .map(|e| text_width(&e.name, LEGEND_SIZE))
        .fold(0.0, f32::max);
    let w = LEGEND_PAD * 2.0 + LEGEND_SAMPLE + 6.0 + tw;
    let h = LEGEND_PAD * 2.0 + entries.len() as f32 * line_height(LEGEND_SIZE) * 1.15;
    (w, h)
}

/// Candidate top-left corners of the legend box for a placement inside `plot`: one for a fixed
/// corner, several in order of preference for `Best`, none for `Outside` and `Hidden`.
fn legend_corner(pos: Legend, plot: Rect, size: (f32, f32)) -> Vec<(f32, f32)> {
    let m = 8.0;
    let (l, r) = (plot.x + m, plot.right() - m - size.0);
    let (t, b) = (plot.y + m, plot.bottom() - m - size.1);
    let cx = plot.x + (plot.w - size.0) / 2.0;
    let cy = plot.y + (plot.h - size.1) / 2.0;
    match pos {
        Legend::UpperRight => vec![(r, t)],
        Legend::UpperLeft => vec![(l, t)],
        Legend::LowerLeft => vec![(l, b)],
        Legend::LowerRight => vec![(r, b)],
        Legend::Best => vec![
            (r, t),
            (l, t),
            (l, b),
            (r, b),
            (r, cy),
            (l, cy),
            (cx, b),
            (cx, t),
            (cx, cy),
        ],
        Legend::Outside | Legend::Hidden => vec![],
    }
}

/// Picks the candidate box that hides the fewest data points; ties go to the earlier candidate.
fn best_corner(cands: &[(f32, f32)], size: (f32, f32), points: &[(f32, f32)]) -> Option<(f32, f32)> {
    let mut best: Option<((f32, f32), usize)> = None;
    for &(x, y) in cands {
        let r = Rect::new(x - 2.0, y - 2.0, size.0 + 4.0, size.1 + 4.0);
        let n = points.iter().filter(|p| r.contains(**p)).count();
        if best.is_none_or(|(_, bn)| n < bn) {
            best = Some(((x, y), n));
        }
    }
    best.map(|b| b.0)
}

fn draw_legend(sc: &mut Scene, entries: &[LegendEntry], at: (f32, f32)) {
    if entries.is_empty() {
        return;
    }
    let (w, h) = legend_size(entries);
    sc.rect(
        Rect::new(at.0, at.1, w, h),
        Some(Color::rgb(255, 255, 255).with_alpha(230)),
        Some(Stroke::solid(Color::hex(0xCCCCCC), 0.8)),
    );
    let row = line_height(LEGEND_SIZE) * 1.15;
    let name_style = TextStyle::new(LEGEND_SIZE, TEXT, Anchor::Start, VAlign::Middle);
    for (i, e) in entries.iter().enumerate() {
        let cy = at.1 + LEGEND_PAD + row * (i as f32 + 0.5);
        let x0 = at.0 + LEGEND_PAD;
        if let Some(c) = e.patch {
            let ph = if e.line.is_some() {
                LEGEND_SIZE * 0.9
            } else {
                LEGEND_SIZE * 0.8
            };
            sc.fill_rect(Rect::new(x0, cy - ph / 2.0, LEGEND_SAMPLE, ph), c);
        }
        if let Some(st) = &e.line {
            sc.line((x0, cy), (x0 + LEGEND_SAMPLE, cy), st.clone());
        }
        if let Some(m) = e.marker {
            sc.marker((x0 + LEGEND_SAMPLE / 2.0, cy), m, 6.0, e.color);
        }
        sc.text((x0 + LEGEND_SAMPLE + 6.0, cy), e.name.clone(), name_style);
    }
}
