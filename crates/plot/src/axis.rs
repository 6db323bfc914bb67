//! Axis scales, "nice" tick positions (1-2-5 steps, as matplotlib's default locator) and tick
//! label formatting.

/// Maps data values to the unit interval; `log` maps log10 of the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl Scale {
    pub fn new(lo: f64, hi: f64, log: bool) -> Self {
        Scale { lo, hi, log }
    }
    /// Position in [0, 1] for values inside the range; NaN for values a log axis cannot show.
    pub fn unit(&self, v: f64) -> f64 {
        if self.log {
            if v <= 0.0 {
                return f64::NAN;
            }
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

/// Step of 1, 2, 2.5 or 5 times a power of ten giving at most `max_ticks` intervals.
pub(crate) fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = span / max_ticks.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= raw * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Tick positions inside [lo, hi].
pub(crate) fn linear_ticks(lo: f64, hi: f64, max_ticks: usize, integer: bool) -> (Vec<f64>, f64) {
    let mut step = nice_step(hi - lo, max_ticks);
    if integer && step < 1.0 {
        step = 1.0;
    }
    let first = (lo / step - 1e-9).ceil();
    let mut ticks = Vec::new();
    let mut k = first;
    loop {
        let v = k * step;
        if v > hi + step * 1e-9 || ticks.len() > 1000 {
            break;
        }
        // Round away accumulated error so that 0.30000000000000004 prints as 0.3.
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    (ticks, step)
}

/// Labelled ticks and unlabelled minor ticks of a log axis: decades, plus 2 and 5 times a decade
/// when the axis spans too few decades for the decades alone to be readable.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (major, minor) = decade_ticks(lo, hi);
    if major.len() >= 3 {
        return (major, minor);
    }
    let (two_five, rest): (Vec<f64>, Vec<f64>) = minor.into_iter().partition(|v| {
        let m = v / 10f64.powf(v.log10().floor());
        (m - 2.0).abs() < 1e-6 || (m - 5.0).abs() < 1e-6
    });
    let mut major = [major, two_five].concat();
    major.sort_by(f64::total_cmp);
    (major, rest)
}

fn decade_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let span = (b - a).max(1);
    let every = (span as f64 / 8.0).ceil().max(1.0) as i32;
    let mut major = Vec::new();
    let mut minor = Vec::new();
    for e in a..=b {
        let d = 10f64.powi(e);
        if d >= lo * (1.0 - 1e-9) && d <= hi * (1.0 + 1e-9) && (e - a) % every == 0 {
            major.push(d);
        }
        if every == 1 {
            for m in 2..10 {
                let v = d * m as f64;
                if v >= lo && v <= hi {
                    minor.push(v);
                }
            }
        }
    }
    (major, minor)
}

/// Label for a tick value on a linear axis with the given step: as many decimals as the step
/// needs, scientific notation for very large or very small magnitudes.
pub(crate) fn format_tick(v: f64, step: f64) -> String {
    let big = v.abs().max(step.abs());
    if !(1e-4..1e6).contains(&big) {
        return if v == 0.0 { "0".to_string() } else { format_sci(v) };
    }
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    let decimals = if (step * 10f64.powi(decimals as i32)).fract().abs() > 1e-6 {
        decimals + 1
    } else {
        decimals
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

pub(crate) fn format_sci(v: f64) -> String {
    let s = format!("{v:.1e}");
    s.replace(".0e", "e")
}

pub(crate) fn format_log_tick(v: f64) -> String {
    if (1e-4..1e5).contains(&v) {
        let s = format!("{v}");
        if s.contains('e') { format_sci(v) } else { s }
    } else {
        format!("1e{}", v.log10().round() as i32)
    }
}

/// A value label with three significant digits and no trailing zeros, like C's `%.3g`
/// ("0.12", "-0.0451", "12.3").
pub(crate) fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if !(1e-4..1e6).contains(&a) {
        return format_sci(v);
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Typographic minus sign for display, as matplotlib uses: "-" is a hyphen and looks short.
pub(crate) fn minus(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) => format!("\u{2212}{rest}"),
        None => s,
    }
}

/// Finite minimum and maximum of the values, if any.
pub(crate) fn finite_range(vals: impl IntoIterator<Item = f64>, positive_only: bool) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in vals {
        if v.is_finite() && (!positive_only || v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// Data range padded by 5% on each side (matplotlib's default margins); degenerate ranges are
/// widened so that a constant series still gets an axis.
pub(crate) fn padded(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if log {
        let (a, b) = (lo.log10(), hi.log10());
        let (a, b) = if b - a < 1e-9 { (a - 0.5, b + 0.5) } else { (a, b) };
        let m = (b - a) * 0.05;
        (10f64.powf(a - m), 10f64.powf(b + m))
    } else {
        let (lo, hi) = if hi - lo < 1e-12 * lo.abs().max(1.0) {
            let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - d, hi + d)
        } else {
            (lo, hi)
        };
        let m = (hi - lo) * 0.05;
        (lo - m, hi + m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_1_2_5() {
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(1.05, 6), 0.2);
        assert_eq!(nice_step(12.0, 6), 2.0);
        assert_eq!(nice_step(24.0, 6), 5.0);
        let (t, _) = linear_ticks(0.0, 1.05, 6, false);
        assert_eq!(t, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let (t, _) = linear_ticks(0.6, 4.4, 8, true);
        assert_eq!(t, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(format_tick(0.6000000000000001, 0.2), "0.6");
        assert_eq!(format_tick(-0.0000001, 0.2), "0.0");
        assert_eq!(format_tick(0.0, 1.0), "0");
        assert_eq!(format_tick(2.5, 2.5), "2.5");
        assert_eq!(format_tick(10.0, 5.0), "10");
        assert_eq!(format_tick(0.05, 0.05), "0.05");
        assert_eq!(format_tick(2e6, 1e6), "2e6");
        assert_eq!(format_log_tick(0.001), "0.001");
        assert_eq!(format_log_tick(1e6), "1e6");
        assert_eq!(format_value(0.12345), "0.123");
        assert_eq!(format_value(0.02), "0.02");
        assert_eq!(format_value(120.0), "120");
        assert_eq!(minus("-0.5".to_string()), "\u{2212}0.5");
        assert_eq!(format_value(-0.045123), "-0.0451");
        assert_eq!(format_value(12.345), "12.3");
    }

    #[test]
    fn log_ticks_cover_decades() {
        let (major, minor) = log_ticks(0.5, 200.0);
        assert_eq!(major, vec![1.0, 10.0, 100.0]);
        let (major, _) = log_ticks(8.0, 300.0);
        assert_eq!(major, vec![10.0, 20.0, 50.0, 100.0, 200.0]);
        assert!(minor.contains(&2.0) && minor.contains(&0.5) && minor.contains(&200.0));
    }
}
