//! Bar charts: grouped bars with error bars.

use super::*;

#[derive(Clone, Debug)]
struct BarGroup {
    name: String,
    values: Vec<f64>,
    /// Each bar's interval (low, high), drawn as an error bar.
    intervals: Option<Vec<(f64, f64)>>,
    color: Option<Color>,
}

/// Grouped bars around zero, vertical or horizontal, with optional value labels and intervals
/// drawn as error bars.
#[derive(Clone, Debug, Default)]
pub struct BarChart {
    titles: Titles,
    categories: Vec<String>,
    groups: Vec<BarGroup>,
    horizontal: bool,
    value_labels: bool,
    value_range: Option<(f64, f64)>,
    legend: Legend,
}

impl BarChart {
    pub fn new(title: impl Into<String>) -> Self {
        BarChart {
            titles: Titles::new(title),
            ..Default::default()
        }
    }
    chart_setters!(legend);
    /// Category names, in order (left to right, or top to bottom when horizontal).
    pub fn categories<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.categories = super::names(names);
        self
    }
    /// One bar per category for this group; groups sit side by side within a category.
    pub fn group(self, name: impl Into<String>, values: impl Into<Vec<f64>>) -> Self {
        self.push_group(name.into(), values.into(), None)
    }
    /// Like [`BarChart::group`] with each bar's interval (low, high) drawn as an error bar; an
    /// interval with a non-finite end is not drawn.
    pub fn group_with_intervals(
        self,
        name: impl Into<String>,
        values: impl Into<Vec<f64>>,
        intervals: impl Into<Vec<(f64, f64)>>,
    ) -> Self {
        self.push_group(name.into(), values.into(), Some(intervals.into()))
    }
    fn push_group(mut self, name: String, values: Vec<f64>, intervals: Option<Vec<(f64, f64)>>) -> Self {
        self.groups.push(BarGroup {
            name,
            values,
            intervals,
            color: None,
        });
        self
    }
    /// Colour of the most recently added group.
    pub fn color(mut self, c: Color) -> Self {
        if let Some(g) = self.groups.last_mut() {
            g.color = Some(c);
        }
        self
    }
    pub fn horizontal(mut self, on: bool) -> Self {
        self.horizontal = on;
        self
    }
    /// Print each bar's value at its end.
    pub fn value_labels(mut self, on: bool) -> Self {
        self.value_labels = on;
        self
    }
    pub fn value_range(mut self, lo: f64, hi: f64) -> Self {
        self.value_range = Some((lo, hi));
        self
    }

    /// Checks lengths and returns the chart; a horizontal chart grows with its categories.
    pub fn build(self) -> Result<Chart> {
        let what = format!("bar chart {:?}", self.titles.title);
        for g in &self.groups {
            if g.values.len() != self.categories.len() {
                return Err(Error::usage(format!(
                    "{what}: group {:?} has {} values for {} categories",
                    g.name,
                    g.values.len(),
                    self.categories.len()
                )));
            }
            if let Some(e) = &g.intervals
                && e.len() != g.values.len()
            {
                return Err(Error::usage(format!(
                    "{what}: group {:?} has {} values but {} intervals",
                    g.name,
                    g.values.len(),
                    e.len()
                )));
            }
        }
        check_range(&what, self.value_range, false)?;
        let n = self.categories.len().max(1) as f32;
        let per = (self.groups.len().max(1) as f32 * 14.0 + 10.0).max(24.0);
        let (w, h) = if self.horizontal {
            (640.0, (n * per + 120.0).clamp(260.0, 2000.0))
        } else {
            ((n * per + 160.0).clamp(480.0, 2000.0), 420.0)
        };
        Ok(Chart::new(Body::Bar(self), w, h))
    }

    fn color_of(&self, i: usize) -> Color {
        series_color(self.groups[i].color, i)
    }

    pub(super) fn draw(&self, sc: &mut Scene, outer: Rect) {
        let h = self.horizontal;
        let vals = self.groups.iter().flat_map(|g| {
            let e = g.intervals.clone().unwrap_or_default();
            g.values.iter().enumerate().flat_map(move |(k, &v)| {
                let (a, b) = e
                    .get(k)
                    .copied()
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .unwrap_or((v, v));
                [v, a, b]
            })
        });
        let (dlo, dhi) = axis::finite_range(vals.chain([0.0]), false).unwrap_or((0.0, 1.0));
        let (mut lo, mut hi) = self.value_range.unwrap_or_else(|| {
            let (a, b) = axis::padded(dlo, dhi, false);
            // Bars start at zero: no margin below a bar that starts at the axis.
            (if dlo >= 0.0 { 0.0 } else { a }, if dhi <= 0.0 { 0.0 } else { b })
        });
        let value_texts: Vec<Vec<String>> = self
            .groups
            .iter()
            .map(|g| g.values.iter().map(|v| axis::minus(axis::format_value(*v))).collect())
            .collect();
        let label_w = if self.value_labels {
            if h {
                value_texts
                    .iter()
                    .flatten()
                    .map(|t| text_width(t, NOTE_SIZE))
                    .fold(0.0, f32::max)
                    + 6.0
            } else {
                line_height(NOTE_SIZE) + 4.0
            }
        } else {
            0.0
        };

        // Category labels sit on the category axis; long ones on a vertical chart turn vertical.
        let cat_w = max_width(&self.categories, TICK_SIZE);
        let ncat = self.categories.len().max(1) as f32;
        let slot_guess = (outer.w - 120.0) / ncat;
        let rotate_cats = !h && cat_w > slot_guess * 0.9;
        let legend = LegendBox::new(self.legend, self.legend_entries());

        let (vt, vstep) = axis::linear_ticks(lo, hi, if h { 7 } else { 6 }, false);
        let vlabels: Vec<String> = vt.iter().map(|v| tick_label(*v, vstep)).collect();
        let m = if h {
            // Category names get a little more air than numbers.
            self.titles
                .margins(cat_w, 8.0, line_height(TICK_SIZE), legend.right_margin(18.0))
        } else {
            let cat_h = if rotate_cats {
                cat_w + 10.0
            } else {
                line_height(TICK_SIZE)
            };
            self.titles
                .margins(max_width(&vlabels, TICK_SIZE), 6.0, cat_h, legend.right_margin(16.0))
        };
        let plot = plot_area(outer, &m);
        // Make room for value labels beyond the longest bars.
        if self.value_labels && self.value_range.is_none() {
            let len = if h { plot.w } else { plot.h };
            let frac = (label_w / len).min(0.4) as f64;
            let span = hi - lo;
            if dhi > 0.0 {
                hi += span * frac / (1.0 - frac);
            }
            if dlo < 0.0 {
                lo -= span * frac / (1.0 - frac);
            }
        }
        let (vt, vstep) = axis::linear_ticks(lo, hi, if h { 7 } else { 6 }, false);
        let vs = Scale::new(lo, hi, false);
        let vpos = |v: f64| {
            let u = (vs.unit(v.clamp(lo, hi))) as f32;
            if h {
                plot.x + u * plot.w
            } else {
                plot.bottom() - u * plot.h
            }
        };
        let slot = if h { plot.h } else { plot.w } / ncat;
        let cat_start = if h { plot.y } else { plot.x };
        let cat_center = |k: usize| slot_center(cat_start, slot, k);
        let vticks = AxisTicks {
            major: vt.iter().map(|v| (vpos(*v), tick_label(*v, vstep))).collect(),
            minor: vec![],
            grid: true,
        };
        let cticks = AxisTicks::categories(&self.categories, cat_start, slot);
        let (xt, yt) = if h { (&vticks, &cticks) } else { (&cticks, &vticks) };
        draw_grid(sc, plot, xt, yt);

        let ng = self.groups.len().max(1) as f32;
        let bw = slot * 0.8 / ng;
        let zero = vpos(0.0);
        let mut points = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            let color = self.color_of(gi);
            for (k, v) in g.values.iter().enumerate() {
                let c0 = cat_center(k) - slot * 0.4 + bw * gi as f32;
                let cmid = c0 + bw / 2.0;
                if !v.is_finite() {
                    if self.value_labels {
                        let (x, y) = if h { (zero + 4.0, cmid) } else { (cmid, zero - 4.0) };
                        let (a, va) = if h {
                            (Anchor::Start, VAlign::Middle)
                        } else {
                            (Anchor::Middle, VAlign::Bottom)
                        };
                        sc.text((x, y), "n/a", TextStyle::new(NOTE_SIZE, MISSING, a, va));
                    }
                    continue;
                }
                let e = vpos(*v);
                let (a, b) = (zero.min(e), zero.max(e));
                let inset = (bw * 0.06).min(1.0);
                let rect = if h {
                    Rect::new(a, c0 + inset, b - a, bw - 2.0 * inset)
                } else {
                    Rect::new(c0 + inset, a, bw - 2.0 * inset, b - a)
                };
                sc.fill_rect(rect, color);
                points.extend([
                    (rect.x, rect.y),
                    (rect.right(), rect.bottom()),
                    (rect.x + rect.w / 2.0, rect.y + rect.h / 2.0),
                ]);
                let mut tip = e;
                if let Some(&(low, high)) = g
                    .intervals
                    .as_ref()
                    .and_then(|iv| iv.get(k))
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                {
                    let (p1, p2) = (vpos(low), vpos(high));
                    let st = Stroke::solid(Color::hex(0x333333), 1.1);
                    let cap = (bw * 0.2).min(4.0);
                    if h {
                        sc.line((p1, cmid), (p2, cmid), st.clone());
                        sc.line((p1, cmid - cap), (p1, cmid + cap), st.clone());
                        sc.line((p2, cmid - cap), (p2, cmid + cap), st);
                    } else {
                        sc.line((cmid, p1), (cmid, p2), st.clone());
                        sc.line((cmid - cap, p1), (cmid + cap, p1), st.clone());
                        sc.line((cmid - cap, p2), (cmid + cap, p2), st);
                    }
                    tip = if *v >= 0.0 {
                        p2.max(p1).max(e)
                    } else {
                        p1.min(p2).min(e)
                    };
                    if !h {
                        tip = if *v >= 0.0 { p1.min(p2) } else { p1.max(p2) };
                    }
                }
                if self.value_labels {
                    let t = value_texts[gi][k].clone();
                    if h {
                        let (x, an) = if *v >= 0.0 {
                            (tip.max(e) + 3.0, Anchor::Start)
                        } else {
                            (tip.min(e) - 3.0, Anchor::End)
                        };
                        sc.text((x, cmid), t, TextStyle::new(NOTE_SIZE, TEXT, an, VAlign::Middle));
                    } else {
                        let (y, va) = if *v >= 0.0 {
                            (tip.min(e) - 3.0, VAlign::Bottom)
                        } else {
                            (tip.max(e) + 3.0, VAlign::Top)
                        };
                        sc.text((cmid, y), t, TextStyle::new(NOTE_SIZE, TEXT, Anchor::Middle, va));
                    }
                }
            }
        }
        if dlo < 0.0 || lo < 0.0 {
            let st = Stroke::solid(SPINE, 1.0);
            if h {
                sc.line((zero, plot.y), (zero, plot.bottom()), st);
            } else {
                sc.line((plot.x, zero), (plot.right(), zero), st);
            }
        }
        if self.groups.iter().all(|g| g.values.iter().all(|v| !v.is_finite())) {
            no_data(sc, plot);
        }
        draw_frame(sc, plot, xt, yt, rotate_cats);
        legend.draw(sc, plot, &points);
        self.titles.draw(sc, outer, plot);
    }

    fn legend_entries(&self) -> Vec<LegendEntry> {
        // A single group needs no legend: the title says what the bars are.
        if self.groups.len() < 2 {
            return vec![];
        }
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| !g.name.is_empty())
            .map(|(i, g)| LegendEntry::patch(g.name.clone(), self.color_of(i)))
            .collect()
    }
}
