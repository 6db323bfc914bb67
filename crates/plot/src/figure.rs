//! Figures: several charts in a grid, rendered as one picture.

use super::*;

/// Several charts in a grid, rendered as one picture.
#[derive(Clone, Debug)]
pub struct Figure {
    title: String,
    rows: usize,
    cols: usize,
    charts: Vec<Chart>,
}

impl Figure {
    /// A `rows` × `cols` grid filled row by row.
    pub fn new(rows: usize, cols: usize) -> Self {
        Figure {
            title: String::new(),
            rows,
            cols,
            charts: Vec::new(),
        }
    }
    pub fn title(mut self, s: impl Into<String>) -> Self {
        self.title = s.into();
        self
    }
    pub fn push(mut self, chart: Chart) -> Self {
        self.charts.push(chart);
        self
    }
    /// Each cell is as large as the largest chart; empty cells stay blank.
    pub fn build(self) -> Result<Chart> {
        if self.rows == 0 || self.cols == 0 {
            return Err(Error::usage(format!(
                "figure {:?}: grid {}x{} has no cells",
                self.title, self.rows, self.cols
            )));
        }
        if self.charts.len() > self.rows * self.cols {
            return Err(Error::usage(format!(
                "figure {:?}: {} charts do not fit a {}x{} grid",
                self.title,
                self.charts.len(),
                self.rows,
                self.cols
            )));
        }
        let (cw, ch) = self.cell();
        let w = cw * self.cols as f32;
        let h = ch * self.rows as f32 + self.title_h();
        Ok(Chart::new(Body::Grid(self), w, h))
    }

    fn cell(&self) -> (f32, f32) {
        let cw = self.charts.iter().map(|c| c.width).fold(200.0, f32::max);
        let ch = self.charts.iter().map(|c| c.height).fold(150.0, f32::max);
        (cw, ch)
    }

    fn title_h(&self) -> f32 {
        if self.title.is_empty() {
            0.0
        } else {
            TITLE_SIZE * 1.3 + 14.0
        }
    }

    pub(super) fn draw(&self, sc: &mut Scene, outer: Rect) {
        let th = self.title_h();
        let style = TextStyle {
            size: TITLE_SIZE + 1.0,
            ..TITLE
        };
        sc.text((outer.x + outer.w / 2.0, outer.y + 10.0), self.title.clone(), style);
        let cw = outer.w / self.cols as f32;
        let ch = (outer.h - th) / self.rows as f32;
        for (k, c) in self.charts.iter().enumerate() {
            let (i, j) = (k / self.cols, k % self.cols);
            c.draw(
                sc,
                Rect::new(outer.x + j as f32 * cw, outer.y + th + i as f32 * ch, cw, ch),
            );
        }
    }
}
