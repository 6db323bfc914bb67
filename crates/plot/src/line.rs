//! Line charts: curves over layers or tasks, with markers, gaps for missing values, bands and reference lines.

use super::*;

/// One curve of a [`LineChart`].
#[derive(Clone, Debug)]
pub struct Series {
    name: String,
    x: Option<Vec<f64>>,
    y: Vec<f64>,
    band: Option<(Vec<f64>, Vec<f64>)>,
    dashed: bool,
    color: Option<Color>,
    markers: Option<bool>,
}

impl Series {
    /// A curve over x = 1, 2, …, n (layer indices).
    pub fn new(name: impl Into<String>, y: impl Into<Vec<f64>>) -> Self {
        Series {
            name: name.into(),
            x: None,
            y: y.into(),
            band: None,
            dashed: false,
            color: None,
            markers: None,
        }
    }
    /// Explicit x positions, one per y value.
    pub fn with_x(mut self, x: impl Into<Vec<f64>>) -> Self {
        self.x = Some(x.into());
        self
    }
    /// A shaded band between `lower` and `upper` (a 95% interval, ±1 sd, …).
    pub fn band(mut self, lower: impl Into<Vec<f64>>, upper: impl Into<Vec<f64>>) -> Self {
        self.band = Some((lower.into(), upper.into()));
        self
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn color(mut self, c: Color) -> Self {
        self.color = Some(c);
        self
    }
    /// Markers at the data points; by default shown when a series has at most 40 points.
    pub fn markers(mut self, on: bool) -> Self {
        self.markers = Some(on);
        self
    }
    fn xs(&self) -> Vec<f64> {
        self.x
            .clone()
            .unwrap_or_else(|| (1..=self.y.len()).map(|i| i as f64).collect())
    }
}

/// A vertical (`x`) or horizontal (`y`) reference line with a label.
#[derive(Clone, Debug)]
struct RefLine {
    vertical: bool,
    at: f64,
    label: String,
}

/// Curves over layers, with optional bands, dashes, reference lines and a log y axis.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    titles: Titles,
    series: Vec<Series>,
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    log_y: bool,
    integer_x: Option<bool>,
    refs: Vec<RefLine>,
    legend: Legend,
}

impl LineChart {
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            titles: Titles::new(title),
            ..Default::default()
        }
    }
    chart_setters!(legend);
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Logarithmic y axis; values ≤ 0 become gaps.
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
    /// Integer-only x ticks; by default on when every x value is a whole number (layer indices).
    pub fn integer_x(mut self, on: bool) -> Self {
        self.integer_x = Some(on);
        self
    }
    /// A dashed vertical line at `x` with a label written along it (e.g. "tunnel start (OOD)").
    pub fn vline(mut self, x: f64, label: impl Into<String>) -> Self {
        self.refs.push(RefLine {
            vertical: true,
            at: x,
            label: label.into(),
        });
        self
    }
    /// A dashed horizontal line at `y` with a label (e.g. chance level).
    pub fn hline(mut self, y: f64, label: impl Into<String>) -> Self {
        self.refs.push(RefLine {
            vertical: false,
            at: y,
            label: label.into(),
        });
        self
    }

    /// Checks the series and returns a 640×420 chart. Mismatched lengths are errors; NaN values
    /// are gaps; no series at all gives an empty plot that says "no data".
    pub fn build(self) -> Result<Chart> {
        let what = format!("line chart {:?}", self.titles.title);
        for s in &self.series {
            if let Some(x) = &s.x
                && x.len() != s.y.len()
            {
                return Err(Error::usage(format!(
                    "{what}: series {:?} has {} x values but {} y values",
                    s.name,
                    x.len(),
                    s.y.len()
                )));
            }
            if let Some((lo, up)) = &s.band
                && (lo.len() != s.y.len() || up.len() != s.y.len())
            {
                return Err(Error::usage(format!(
                    "{what}: series {:?} has {} values but its band has {} lower and {} upper values",
                    s.name,
                    s.y.len(),
                    lo.len(),
                    up.len()
                )));
            }
        }
        check_range(&what, self.x_range, false)?;
        check_range(&what, self.y_range, self.log_y)?;
        Ok(Chart::new(Body::Line(self), 640.0, 420.0))
    }

    pub(super) fn draw(&self, sc: &mut Scene, outer: Rect) {
        let log = self.log_y;
        let all_x: Vec<f64> = self.series.iter().flat_map(|s| s.xs()).collect();
        let ref_x = self.refs.iter().filter(|r| r.vertical).map(|r| r.at);
        let ref_y = self.refs.iter().filter(|r| !r.vertical).map(|r| r.at);
        let has_data = self
            .series
            .iter()
            .any(|s| s.y.iter().any(|v| v.is_finite() && (!log || *v > 0.0)));

        let (x_lo, x_hi) = match self.x_range {
            Some(r) => r,
            None => match axis::finite_range(all_x.iter().copied().chain(ref_x), false) {
                Some((a, b)) => axis::padded(a, b, false),
                None => (0.0, 1.0),
            },
        };
        let (y_lo, y_hi) = match self.y_range {
            Some(r) => r,
            None => {
                let ys = self.series.iter().flat_map(|s| {
                    let band = s.band.iter().flat_map(|(l, u)| l.iter().chain(u.iter()));
                    s.y.iter().chain(band).copied()
                });
                match axis::finite_range(ys.chain(ref_y), log) {
                    Some((a, b)) => axis::padded(a, b, log),
                    None if log => (0.1, 10.0),
                    None => (0.0, 1.0),
                }
            }
        };
        let xs = Scale::new(x_lo, x_hi, false);
        let ys = Scale::new(y_lo, y_hi, log);
        let integer_x = self
            .integer_x
            .unwrap_or(!all_x.is_empty() && all_x.iter().all(|v| !v.is_finite() || v.fract() == 0.0));

        // Tick labels decide the margins, the margins the plot area, the area the tick pixels.
        // Whole layers get one tick each while they fit (about 45 px per label).
        let max_x_ticks = if integer_x {
            (outer.w / 45.0).clamp(4.0, 20.0) as usize
        } else {
            8
        };
        let (xt, xstep) = axis::linear_ticks(x_lo, x_hi, max_x_ticks, integer_x);
        let (yt, ymin, ystep) = if log {
            let (ma, mi) = axis::log_ticks(y_lo, y_hi);
            (ma, mi, 0.0)
        } else {
            let (t, s) = axis::linear_ticks(y_lo, y_hi, 6, false);
            (t, vec![], s)
        };
        let ylabels: Vec<String> = yt
            .iter()
            .map(|v| {
                if log {
                    axis::format_log_tick(*v)
                } else {
                    tick_label(*v, ystep)
                }
            })
            .collect();
        let legend = LegendBox::new(self.legend, self.legend_entries());
        let m = self.titles.margins(
            max_width(&ylabels, TICK_SIZE),
            6.0,
            line_height(TICK_SIZE),
            legend.right_margin(16.0),
        );
        let plot = plot_area(outer, &m);
        let px = |x: f64| plot.x + (xs.unit(x) as f32) * plot.w;
        let py = |y: f64| plot.bottom() - (ys.unit(y) as f32) * plot.h;
        let in_x = |v: f64| v >= x_lo - 1e-9 * (x_hi - x_lo).abs() && v <= x_hi + 1e-9 * (x_hi - x_lo).abs();
        let in_y = |v: f64| v >= y_lo * (1.0 - 1e-12) - 1e-12 && v <= y_hi + 1e-9 * (y_hi - y_lo).abs();
        let xticks = AxisTicks {
            major: xt
                .iter()
                .filter(|v| in_x(**v))
                .map(|v| (px(*v), tick_label(*v, xstep)))
                .collect(),
            minor: vec![],
            grid: true,
        };
        let yticks = AxisTicks {
            major: yt
                .iter()
                .zip(ylabels)
                .filter(|(v, _)| in_y(**v))
                .map(|(v, l)| (py(*v), l))
                .collect(),
            minor: ymin.iter().map(|v| py(*v)).collect(),
            grid: true,
        };

        draw_grid(sc, plot, &xticks, &yticks);
        let mut points: Vec<(f32, f32)> = Vec::new();
        // Bands first so that every line stays visible above every band.
        for (i, s) in self.series.iter().enumerate() {
            let Some((lo, up)) = &s.band else { continue };
            let color = self.color_of(i).with_alpha(56);
            let x = s.xs();
            let ok = |k: usize| {
                x[k].is_finite() && lo[k].is_finite() && up[k].is_finite() && (!log || (lo[k] > 0.0 && up[k] > 0.0))
            };
            for run in runs(x.len(), ok) {
                let mut poly: Vec<(f32, f32)> = run.clone().map(|k| (px(x[k]), py(up[k]))).collect();
                poly.extend(run.rev().map(|k| (px(x[k]), py(lo[k]))));
                let clipped = clip_polygon(&poly, &plot);
                if clipped.len() >= 3 {
                    sc.push(Prim::Polygon {
                        pts: clipped,
                        fill: color,
                    });
                }
            }
        }
        // Reference labels go above the curves, so they are pushed after them.
        let mut ref_labels = Scene::new(0.0, 0.0);
        for r in &self.refs {
            let st = Stroke::dashed(REF_LINE, 1.2, &[5.0, 3.0]);
            let len = text_width(&r.label, NOTE_SIZE);
            let thick = text::cap_height(NOTE_SIZE) + text::descent(NOTE_SIZE);
            // The label and the halo behind it: along a vertical line at its top, above a
            // horizontal one at its right end.
            let (halo, at, style) = if r.vertical {
                if !in_x(r.at) {
                    continue;
                }
                let x = px(r.at);
                sc.line((x, plot.y), (x, plot.bottom()), st);
                let halo = Rect::new(x + 3.0, plot.y + 4.0, thick + 2.0, len + 4.0);
                let style = TextStyle::new(NOTE_SIZE, REF_LINE, Anchor::End, VAlign::Top).rotated();
                (halo, (x + 4.0, plot.y + 6.0), style)
            } else {
                if !in_y(r.at) || (log && r.at <= 0.0) {
                    continue;
                }
                let y = py(r.at);
                sc.line((plot.x, y), (plot.right(), y), st);
                let halo = Rect::new(plot.right() - 8.0 - len, y - 4.0 - thick, len + 4.0, thick + 2.0);
                let style = TextStyle::new(NOTE_SIZE, REF_LINE, Anchor::End, VAlign::Bottom);
                (halo, (plot.right() - 6.0, y - 4.0), style)
            };
            ref_labels.fill_rect(halo, HALO);
            ref_labels.text(at, r.label.clone(), style);
        }
        for (i, s) in self.series.iter().enumerate() {
            let color = self.color_of(i);
            let x = s.xs();
            let ok = |k: usize| x[k].is_finite() && s.y[k].is_finite() && (!log || s.y[k] > 0.0);
            let stroke = if s.dashed {
                Stroke::dashed(color, 1.8, &[6.0, 3.5])
            } else {
                Stroke::solid(color, 1.8)
            };
            let show_markers = s.markers.unwrap_or(s.y.len() <= 40);
            for run in runs(x.len(), ok) {
                let pts: Vec<(f32, f32)> = run.map(|k| (px(x[k]), py(s.y[k]))).collect();
                for piece in clip_polyline(&pts, &plot) {
                    points.extend(piece.iter().copied());
                    if piece.len() >= 2 {
                        sc.push(Prim::Polyline {
                            pts: piece,
                            stroke: stroke.clone(),
                        });
                    }
                }
                for p in &pts {
                    // Midpoints too, so that "best" legend placement also avoids long segments.
                    points.push(*p);
                }
                for w in pts.windows(2) {
                    for t in [0.25f32, 0.5, 0.75] {
                        points.push((w[0].0 + t * (w[1].0 - w[0].0), w[0].1 + t * (w[1].1 - w[0].1)));
                    }
                }
                if show_markers {
                    for p in pts.iter().filter(|p| plot.contains(**p)) {
                        sc.marker(*p, MARKERS[i % MARKERS.len()], 5.5, color);
                    }
                }
            }
        }
        sc.prims.extend(ref_labels.prims);
        if !has_data {
            no_data(sc, plot);
        }
        draw_frame(sc, plot, &xticks, &yticks, false);
        legend.draw(sc, plot, &points);
        self.titles.draw(sc, outer, plot);
    }

    fn color_of(&self, i: usize) -> Color {
        series_color(self.series[i].color, i)
    }

    fn legend_entries(&self) -> Vec<LegendEntry> {
        self.series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .map(|(i, s)| {
                let color = self.color_of(i);
                let line = if s.dashed {
                    Stroke::dashed(color, 1.8, &[6.0, 3.5])
                } else {
                    Stroke::solid(color, 1.8)
                };
                LegendEntry {
                    name: s.name.clone(),
                    color,
                    line: Some(line),
                    marker: s
                        .markers
                        .unwrap_or(s.y.len() <= 40)
                        .then_some(MARKERS[i % MARKERS.len()]),
                    patch: s.band.as_ref().map(|_| color.with_alpha(56)),
                }
            })
            .collect()
    }
}

/// Maximal runs of consecutive indices for which `ok` holds: the pieces between gaps.
fn runs(n: usize, ok: impl Fn(usize) -> bool) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for k in 0..=n {
        let good = k < n && ok(k);
        match (good, start) {
            (true, None) => start = Some(k),
            (false, Some(s)) => {
                out.push(s..k);
                start = None;
            }
            _ => {}
        }
    }
    out
}
