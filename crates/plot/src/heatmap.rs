//! Heatmaps: a matrix of values with a colour map and its colour bar.

use super::*;

/// Colour maps for [`Heatmap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Perceptually uniform and colour-blind safe; for accuracies.
    #[default]
    Viridis,
    /// Blue–white–red, for signed values such as forgetting; pair it with a range symmetric
    /// around zero.
    RedBlue,
}

/// matplotlib 3.11.2 `colormaps["viridis"]` at 17 evenly spaced points (tests/golden/gen_font.py).
const VIRIDIS: [[u8; 3]; 17] = [
    [68, 1, 84],
    [72, 24, 106],
    [71, 45, 123],
    [66, 64, 134],
    [59, 82, 139],
    [51, 99, 141],
    [44, 114, 142],
    [38, 130, 142],
    [33, 145, 140],
    [31, 160, 136],
    [40, 174, 128],
    [63, 188, 115],
    [94, 201, 98],
    [132, 212, 75],
    [173, 220, 48],
    [216, 226, 25],
    [253, 231, 37],
];

/// matplotlib 3.11.2 `colormaps["RdBu_r"]` at 9 evenly spaced points (tests/golden/gen_font.py).
const RDBU: [[u8; 3]; 9] = [
    [5, 48, 97],
    [42, 113, 178],
    [107, 172, 209],
    [194, 221, 236],
    [247, 246, 246],
    [251, 204, 180],
    [228, 128, 102],
    [186, 40, 50],
    [103, 0, 31],
];

impl Colormap {
    /// Colour at `t` in [0, 1] (clamped), interpolated linearly between the anchors.
    pub fn at(self, t: f64) -> Color {
        let table: &[[u8; 3]] = match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::RedBlue => &RDBU,
        };
        let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
        let f = t * (table.len() - 1) as f64;
        let i = (f.floor() as usize).min(table.len() - 2);
        let u = f - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * u).round() as u8;
        let (a, b) = (table[i], table[i + 1]);
        Color::rgb(mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]))
    }
}

/// A matrix of coloured cells with row and column labels and a colour bar; NaN cells are grey
/// and hatched so that "not measured" never looks like a value.
#[derive(Clone, Debug, Default)]
pub struct Heatmap {
    titles: Titles,
    values: Vec<Vec<f64>>,
    row_labels: Vec<String>,
    col_labels: Vec<String>,
    range: Option<(f64, f64)>,
    annotate: bool,
    decimals: usize,
    colorbar_label: String,
    colormap: Colormap,
}

impl Heatmap {
    /// `values[i][j]` is row i, column j (R[i][j]: after training task i, accuracy on task j).
    pub fn new(title: impl Into<String>, values: Vec<Vec<f64>>) -> Self {
        Heatmap {
            titles: Titles::new(title),
            values,
            annotate: true,
            decimals: 2,
            ..Default::default()
        }
    }
    chart_setters!();
    pub fn row_labels<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.row_labels = super::names(names);
        self
    }
    pub fn col_labels<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.col_labels = super::names(names);
        self
    }
    /// Fixed colour scale (e.g. 0..1 for accuracies, so that plots compare); by default the
    /// finite minimum and maximum.
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }
    /// Print values in the cells (default on, 2 decimals).
    pub fn annotate(mut self, on: bool, decimals: usize) -> Self {
        self.annotate = on;
        self.decimals = decimals.min(6);
        self
    }
    pub fn colorbar_label(mut self, s: impl Into<String>) -> Self {
        self.colorbar_label = s.into();
        self
    }
    pub fn colormap(mut self, c: Colormap) -> Self {
        self.colormap = c;
        self
    }

    /// Checks the matrix shape and labels; the size follows the number of cells.
    pub fn build(self) -> Result<Chart> {
        let what = format!("heatmap {:?}", self.titles.title);
        let rows = self.values.len();
        let cols = self.values.first().map_or(0, Vec::len);
        if rows == 0 || cols == 0 {
            return Err(Error::usage(format!(
                "{what}: the matrix has no cells ({rows} rows, {cols} columns)"
            )));
        }
        if let Some((i, r)) = self.values.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(Error::usage(format!(
                "{what}: row {i} has {} values but row 0 has {cols}",
                r.len()
            )));
        }
        if !self.row_labels.is_empty() && self.row_labels.len() != rows {
            return Err(Error::usage(format!(
                "{what}: {} row labels for {rows} rows",
                self.row_labels.len()
            )));
        }
        if !self.col_labels.is_empty() && self.col_labels.len() != cols {
            return Err(Error::usage(format!(
                "{what}: {} column labels for {cols} columns",
                self.col_labels.len()
            )));
        }
        check_range(&what, self.range, false)?;
        let lw = max_width(&self.row_labels, TICK_SIZE);
        let cw = if self.annotate { 46.0 } else { 30.0 };
        let w = (lw + 150.0 + cols as f32 * cw).clamp(360.0, 2400.0);
        let h = (130.0 + rows as f32 * 30.0).clamp(280.0, 2400.0);
        Ok(Chart::new(Body::Heat(self), w, h))
    }

    fn labels(given: &[String], n: usize) -> Vec<String> {
        if given.is_empty() {
            (0..n).map(|i| i.to_string()).collect()
        } else {
            given.to_vec()
        }
    }

    pub(super) fn draw(&self, sc: &mut Scene, outer: Rect) {
        let rows = self.values.len();
        let cols = self.values.first().map_or(0, Vec::len);
        if rows == 0 || cols == 0 {
            return;
        }
        let rl = Self::labels(&self.row_labels, rows);
        let cl = Self::labels(&self.col_labels, cols);
        let (lo, hi) = match self.range {
            Some(r) => r,
            None => match axis::finite_range(self.values.iter().flatten().copied(), false) {
                Some((a, b)) if b > a => (a, b),
                Some((a, _)) => (a - 0.5, a + 0.5),
                None => (0.0, 1.0),
            },
        };
        let (ct, cstep) = axis::linear_ticks(lo, hi, 5, false);
        let clabels: Vec<String> = ct.iter().map(|v| tick_label(*v, cstep)).collect();
        let bar_w = 14.0;
        let cb_room =
            14.0 + bar_w + TICK_LEN + 4.0 + max_width(&clabels, TICK_SIZE) + label_block(&self.colorbar_label) + 6.0;
        let col_w = max_width(&cl, TICK_SIZE);
        let slot_guess = (outer.w - 150.0) / cols as f32;
        let rotate = col_w > slot_guess * 0.92;
        let col_h = if rotate { col_w + 10.0 } else { line_height(TICK_SIZE) };
        let m = self.titles.margins(max_width(&rl, TICK_SIZE), 6.0, col_h, cb_room);
        let plot = plot_area(outer, &m);
        let (cw, ch) = (plot.w / cols as f32, plot.h / rows as f32);
        let scale = Scale::new(lo, hi, false);
        let ann = NOTE_SIZE.min(ch * 0.45).min(cw / (self.decimals as f32 + 3.0) * 1.6);
        for (i, row) in self.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let r = Rect::new(plot.x + j as f32 * cw, plot.y + i as f32 * ch, cw, ch);
                if v.is_finite() {
                    let c = self.colormap.at(scale.unit(*v));
                    sc.fill_rect(r, c);
                    if self.annotate && ann >= 5.0 {
                        let tc = if c.luminance() > 0.35 {
                            scene::BLACK
                        } else {
                            scene::WHITE
                        };
                        let t = axis::minus(format!("{:.*}", self.decimals, v));
                        let style = TextStyle::new(ann, tc, Anchor::Middle, VAlign::Middle);
                        sc.text((r.x + cw / 2.0, r.y + ch / 2.0), t, style);
                    }
                } else {
                    hatch(sc, r);
                }
            }
        }
        let xt = AxisTicks::categories(&cl, plot.x, cw);
        let yt = AxisTicks::categories(&rl, plot.y, ch);
        draw_frame(sc, plot, &xt, &yt, rotate);

        // Colour bar: thin slices so the gradient looks continuous in both back ends.
        let bx = plot.right() + 14.0;
        let n = (plot.h.ceil() as usize).clamp(16, 1024);
        for k in 0..n {
            let y0 = plot.bottom() - plot.h * (k + 1) as f32 / n as f32;
            let c = self.colormap.at((k as f64 + 0.5) / n as f64);
            sc.fill_rect(Rect::new(bx, y0.floor(), bar_w, plot.h / n as f32 + 1.0), c);
        }
        sc.rect(
            Rect::new(bx, plot.y, bar_w, plot.h),
            None,
            Some(Stroke::solid(SPINE, 0.8)),
        );
        let tick_style = TextStyle::new(TICK_SIZE, TEXT, Anchor::Start, VAlign::Middle);
        for (v, l) in ct.iter().zip(clabels) {
            let y = plot.bottom() - scale.unit(*v) as f32 * plot.h;
            sc.line((bx + bar_w, y), (bx + bar_w + TICK_LEN, y), Stroke::solid(SPINE, 0.8));
            sc.text((bx + bar_w + TICK_LEN + 3.0, y), l, tick_style);
        }
        let x = outer.right() - 6.0 - LABEL_SIZE;
        sc.text((x, plot.y + plot.h / 2.0), self.colorbar_label.clone(), Y_LABEL);
        self.titles.draw(sc, outer, plot);
    }
}

/// Grey cell with diagonal hatching, the usual mark for a missing value.
fn hatch(sc: &mut Scene, r: Rect) {
    sc.fill_rect(r, Color::hex(0xE6E6E6));
    let st = Stroke::solid(Color::hex(0x9A9A9A), 0.8);
    let step = 6.0;
    // Lines on a grid shared by all cells, so hatching runs on across neighbouring NaN cells.
    let mut d = step - (r.x + r.y).rem_euclid(step);
    while d < r.w + r.h {
        if let Some((a, b)) = clip::clip_segment((r.x + d, r.y), (r.x + d - r.h, r.bottom()), &r) {
            sc.line(a, b, st.clone());
        }
        d += step;
    }
}
