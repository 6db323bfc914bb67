//! The truncated networks of `[continual.truncate]`: where each is cut, and how wide it is built.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{CutRule, SequenceResult, arch_label};
use crate::error::{Error, Result};
use crate::metrics::tunnel;
use crate::model::{ArchSpec, Backbone, parameter_count};
use crate::scenario::continual::{Sweep, TruncateConfig};

/// A truncated network: where it was cut, and its size beside the full network's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TruncationChoice {
    pub architecture: String,
    pub variant: String,
    /// The rule that chose the cut; none for a sweep's depths.
    pub rule: Option<CutRule>,
    pub k: usize,
    pub layers: usize,
    pub note: String,
    /// Width multiplier of the truncated network (wider than the full one's with `match_params`).
    pub width: f64,
    pub parameters_full: usize,
    pub parameters: usize,
}

/// The network a sequence trains: the full backbone, or its first `cut` probed layers built at
/// `arch`'s width or, capacity-matched, at a larger one.
pub(super) struct Variant {
    pub(super) label: String,
    pub(super) arch: ArchSpec,
    pub(super) cut: Option<usize>,
}

/// Choose the cut of the truncated network by `rule` from the full network's first sequence.
fn choose_cut(rule: CutRule, k: Option<usize>, full: &SequenceResult) -> (usize, String) {
    let layers = full.layers;
    match rule {
        CutRule::Given => (k.unwrap_or(layers).min(layers), "given".into()),
        CutRule::Id95 => match full.probes.first().and_then(|p| p.first()) {
            Some(curve) => {
                let k = tunnel::tunnel_start_id(curve, Default::default()).unwrap_or(layers);
                (k, "ID-95% rule on the task-1 probe curve after task 1".into())
            }
            None => (layers, "no layer probes: kept every layer".into()),
        },
        CutRule::OodPeak => match full.probes.first().and_then(|p| p.get(1)) {
            Some(curve) => {
                let k = tunnel::tunnel_start_ood(curve).unwrap_or(layers);
                (k, "OOD-peak rule on the task-2 probe curve after task 1".into())
            }
            None => (layers, "fewer than 2 tasks or no layer probes: kept every layer".into()),
        },
    }
}

/// The truncated networks of `[continual.truncate]`: one cut by its rule, or one per depth of its
/// sweep, each at the full network's width or, with `match_params`, widened to its parameter count.
pub(super) fn truncations(
    tc: &TruncateConfig,
    arch: &ArchSpec,
    full: &SequenceResult,
    classes: usize,
    resolution: usize,
) -> Result<Vec<TruncationChoice>> {
    let layers = full.layers;
    let cuts: Vec<(String, usize, String)> = match (&tc.sweep, tc.rule) {
        (Some(sweep), _) => {
            let depths: Vec<usize> = match sweep {
                Sweep::Depths(d) => d.clone(),
                Sweep::Named(_) => (1..layers).collect(),
            };
            depths
                .into_iter()
                .map(|k| (format!("truncated-{k}"), k, "sweep".to_string()))
                .collect()
        }
        (None, Some(rule)) => {
            let (k, note) = choose_cut(rule, tc.k, full);
            vec![("truncated".to_string(), k, note)]
        }
        (None, None) => return Err(Error::Internal("truncate: neither rule nor sweep".into())),
    };
    let count = |a: &ArchSpec, k: Option<usize>| parameters(a, classes, resolution, k);
    let parameters_full = count(arch, None)?;
    cuts.into_iter()
        .map(|(variant, k, note)| {
            let width = if tc.match_params {
                matched_width(arch, parameters_full, |a| count(a, Some(k)))
            } else {
                arch.width
            };
            Ok(TruncationChoice {
                architecture: arch_label(arch),
                variant,
                rule: tc.rule,
                k,
                layers,
                note,
                width,
                parameters_full,
                parameters: count(&arch.clone().with_width(width), Some(k))?,
            })
        })
        .collect()
}

/// The parameters of `a` for `classes` classes at `resolution`², cut after `k` probed layers when given.
fn parameters(a: &ArchSpec, classes: usize, resolution: usize, k: Option<usize>) -> Result<usize> {
    let device = Device::flex();
    let model = Backbone::new(a, classes, resolution, &device)?;
    Ok(parameter_count(&match k {
        Some(k) => model.truncated(k, &device)?,
        None => model,
    }))
}

/// The width multiplier at which `count` (the parameters of a truncated network at that width)
/// comes closest to `target`: doubled from `arch`'s width until it reaches the target (or the
/// largest width an architecture takes), then bisected in log-space. Widths an architecture
/// refuses (a ViT dimension that the heads do not divide) are skipped.
fn matched_width(arch: &ArchSpec, target: usize, count: impl Fn(&ArchSpec) -> Result<usize>) -> f64 {
    const MAX_WIDTH: f64 = 16.0;
    let mut best = (f64::INFINITY, arch.width);
    let mut try_width = |w: f64| -> Option<usize> {
        let n = count(&arch.clone().with_width(w)).ok()?;
        let miss = (n as f64 / target as f64 - 1.0).abs();
        if miss < best.0 {
            best = (miss, w);
        }
        Some(n)
    };
    let (mut lo, mut hi) = (arch.width, arch.width);
    while hi < MAX_WIDTH && try_width(hi).is_none_or(|n| n < target) {
        lo = hi;
        hi = (hi * 2.0).min(MAX_WIDTH);
    }
    for _ in 0..24 {
        let mid = (lo * hi).sqrt();
        match try_width(mid) {
            Some(n) if n >= target => hi = mid,
            _ => lo = mid,
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_matched_truncations_hold_the_full_parameter_count() {
        for (name, width, k) in [
            ("vggm-11", 0.125, 3),
            ("vggm-17", 0.125, 6),
            ("resnet-18", 0.125, 5),
            ("vggm-11", 1.0, 2),
        ] {
            let arch = ArchSpec::named(name).with_width(width);
            let full = parameters(&arch, 10, 32, None).unwrap();
            let plain = parameters(&arch, 10, 32, Some(k)).unwrap();
            let w = matched_width(&arch, full, |a| parameters(a, 10, 32, Some(k)));
            let matched = parameters(&arch.clone().with_width(w), 10, 32, Some(k)).unwrap();
            let miss = (matched as f64 / full as f64 - 1.0).abs();
            assert!(
                plain < full / 2,
                "{name} cut at {k}: {plain} of {full} parameters before matching"
            );
            assert!(
                miss < 0.05,
                "{name} ×{width} cut at {k}: width {w} gives {matched} for {full} ({:.1}% off)",
                100.0 * miss
            );
        }
    }
}
