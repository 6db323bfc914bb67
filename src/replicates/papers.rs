//! The question the two papers argue about, asked of a continual-learning scenario's replicates:
//! does the tunnel cause forgetting (Masarczyk et al. 2023, [M23]) or limit it (Harun et al.
//! 2024, [H24])? Each paired comparison that one of the papers makes a prediction about becomes a
//! sentence that says which paper's claim the numbers support (method §8.1, §8.2):
//!
//! - swapping the tunnel, E1 + T2 − E1 + T1 on task 1: [H24] expects a drop (task-specific
//!   learning happens in the tunnel); [M23] expects none;
//! - recovering task 1, E2 + T1 (FT) − E2 (FT): [H24] expects T1 to help;
//! - training the extractor alone on task 2, freeze-tunnel − finetune forgetting: [M23] expects
//!   less forgetting;
//! - a shallower network without the tunnel, truncated − full forgetting: [M23] expects less
//!   forgetting (when it keeps the extractor's capacity); [H24], for whom the tunnel limits
//!   forgetting, expects more.
//!
//! The tests are one family: a difference counts where its paired test is significant at the 5%
//! level after Holm's adjustment over them; otherwise the test decides for neither paper, except
//! the tunnel swap, where [M23]'s claim is the null result.

use super::continual::{Comparison, ComparisonRecord};
use crate::stats::inference::{LEVEL, holm};
use crate::stats::paired::Paired;

const H24: &str = "[H24] (Harun et al.: the tunnel limits forgetting)";
const M23: &str = "[M23] (Masarczyk et al.: the tunnel causes forgetting)";

/// Which paper a test supports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    H24,
    M23,
    Neither,
}

/// A test's outcome: which paper it supports, and the sentence that says so.
struct Outcome {
    side: Side,
    sentence: String,
}

/// One test of a family of `m`: the paired comparison and its p-value adjusted over the family
/// (Holm), which decides whether the difference is significant.
struct Judged<'a> {
    p: &'a Paired,
    adjusted: f64,
    m: usize,
}

impl Judged<'_> {
    /// Whether the difference is significant, and its sign.
    fn significant(&self) -> Option<f64> {
        (self.adjusted < 1.0 - LEVEL).then(|| self.p.mean_diff.signum())
    }

    fn text(&self) -> String {
        self.p.text_in_family(100.0, 1, " points", self.adjusted, self.m)
    }
}

/// The outcome of a test on which [H24] expects the sign `h24` and [M23] the sign `m23` (0: the
/// paper makes no prediction).
fn directional(what: String, j: &Judged, h24: f64, m23: f64) -> Outcome {
    let side = match j.significant() {
        Some(sign) if h24 != 0.0 && sign == h24 => Side::H24,
        Some(sign) if m23 != 0.0 && sign == m23 => Side::M23,
        _ => Side::Neither,
    };
    let reading = match side {
        Side::H24 => format!("supports {H24}"),
        Side::M23 => format!("supports {M23}"),
        Side::Neither if j.significant().is_some() => "a significant difference neither paper predicts".into(),
        Side::Neither => "no significant difference: decides for neither paper".into(),
    };
    Outcome {
        side,
        sentence: format!("{what}: {}; {reading}.", j.text()),
    }
}

/// A forgetting comparison on which [M23] expects less forgetting (and [H24] the sign `h24`). Less
/// forgetting from a network that also learned less (a plasticity, the accuracy on each task when
/// it was learned, lower at the 5% level before any adjustment) counts for neither paper: it
/// forgets less because it learned less, while [M23]'s claims are about networks that keep what
/// the full one learns.
fn forgetting(what: String, c: &ComparisonRecord, j: &Judged, comps: &[Comparison], h24: f64) -> Outcome {
    let plasticity = comps.iter().find(|(o, _)| {
        (
            &o.kind,
            &o.a,
            &o.b,
            &o.architecture,
            &o.variant,
            &o.strategy,
            &o.eval,
            o.metric.as_str(),
        ) == (
            &c.kind,
            &c.a,
            &c.b,
            &c.architecture,
            &c.variant,
            &c.strategy,
            &c.eval,
            "plasticity",
        )
    });
    match plasticity {
        Some((_, q)) if j.p.mean_diff < 0.0 && q.p < 1.0 - LEVEL && q.mean_diff < 0.0 => Outcome {
            side: Side::Neither,
            sentence: format!(
                "{what}: {}, but it also learned less (plasticity {}): it forgets less because it learned less, which tests neither claim.",
                j.text(),
                q.text(100.0, 1, " points")
            ),
        },
        _ => directional(what, j, h24, -1.0),
    }
}

/// The comparisons either paper makes a prediction about.
#[derive(Clone, Copy)]
enum Test {
    Swap,
    Recovery,
    ExtractorAlone,
    NoTunnel,
}

fn test_of(c: &ComparisonRecord, main_eval: &str) -> Option<Test> {
    match (c.kind.as_str(), c.a.as_str(), c.b.as_str(), c.metric.as_str()) {
        ("swap", "E1 + T2", "E1 + T1", _) => Some(Test::Swap),
        ("swap", "E2 + T1 (FT)", "E2 (FT)", _) => Some(Test::Recovery),
        ("strategy", "freeze-tunnel", "finetune", "forgetting") if c.variant == "full" && c.eval == main_eval => {
            Some(Test::ExtractorAlone)
        }
        ("truncation", _, "full", "forgetting") if c.strategy == "finetune" && c.eval == main_eval => {
            Some(Test::NoTunnel)
        }
        _ => None,
    }
}

/// The sentences on the papers' claims, and a last one that counts them; empty where the
/// scenario makes none of the comparisons. The tests are one family: each is judged by its
/// p-value adjusted over them (Holm).
pub fn paper_claims(comps: &[Comparison], main_eval: &str) -> Vec<String> {
    let tests: Vec<(usize, Test)> = comps
        .iter()
        .enumerate()
        .filter_map(|(i, (c, _))| test_of(c, main_eval).map(|t| (i, t)))
        .collect();
    if tests.is_empty() {
        return Vec::new();
    }
    let raw: Vec<f64> = tests.iter().map(|&(i, _)| comps[i].1.p).collect();
    let m = raw.iter().filter(|p| !p.is_nan()).count();
    let mut outcomes = Vec::new();
    for (&(i, test), adjusted) in tests.iter().zip(holm(&raw)) {
        let (c, p) = &comps[i];
        let j = Judged { p, adjusted, m };
        let outcome = match test {
            Test::Swap => {
                let what = format!(
                    "Tunnel swap ({}): task-1 accuracy of E1 + T2 − E1 + T1 (H24 expects a drop, M23 none)",
                    c.architecture
                );
                let side = match j.significant() {
                    Some(s) if s < 0.0 => Side::H24,
                    Some(_) => Side::Neither,
                    None => Side::M23,
                };
                let reading = match side {
                    Side::H24 => format!("the tunnel holds task-specific learning, which supports {H24}"),
                    Side::M23 => format!("no significant drop, consistent with {M23} (a null result)"),
                    Side::Neither => "a significant gain, which neither paper predicts".into(),
                };
                Outcome {
                    side,
                    sentence: format!("{what}: {}; {reading}.", j.text()),
                }
            }
            Test::Recovery => directional(
                format!(
                    "Recovery ({}): task-1 accuracy of E2 + T1 (FT) − E2 (FT) (H24 expects T1 to help)",
                    c.architecture
                ),
                &j,
                1.0,
                0.0,
            ),
            Test::ExtractorAlone => {
                let what = format!(
                    "Training the extractor alone ({}): forgetting of freeze-tunnel − finetune, {} (M23 expects less)",
                    c.architecture, c.eval
                );
                forgetting(what, c, &j, comps, 0.0)
            }
            Test::NoTunnel => {
                let what = format!(
                    "No tunnel ({}): forgetting of {} − full, finetune, {} (M23 expects less, H24 more)",
                    c.architecture, c.a, c.eval
                );
                forgetting(what, c, &j, comps, 1.0)
            }
        };
        outcomes.push(outcome);
    }
    let count = |side| outcomes.iter().filter(|o| o.side == side).count();
    let (h, m, n) = (count(Side::H24), count(Side::M23), count(Side::Neither));
    let verdict = match h.cmp(&m) {
        std::cmp::Ordering::Greater => format!("on balance these numbers support {H24}"),
        std::cmp::Ordering::Less => format!("on balance these numbers support {M23}"),
        std::cmp::Ordering::Equal => "these numbers do not decide between the papers".into(),
    };
    let mut out: Vec<String> = outcomes.into_iter().map(|o| o.sentence).collect();
    out.push(format!(
        "Of {} tests of the papers' claims, {h} side with [H24], {m} with [M23] and {n} with neither: {verdict}.",
        h + m + n
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comparison of `a` with `b` (paired by seed) of the full network's fine-tuning.
    fn comp(kind: &str, names: (&str, &str), metric: &str, a: &[f64], b: &[f64]) -> Comparison {
        let p = Paired::of(a, b, 1);
        let record = ComparisonRecord {
            kind: kind.into(),
            a: names.0.into(),
            b: names.1.into(),
            architecture: "vgg".into(),
            variant: "full".into(),
            strategy: "finetune".into(),
            eval: "task-aware".into(),
            metric: metric.into(),
            n: p.n,
            mean_a: None,
            mean_b: None,
            mean_diff: None,
            sd_diff: None,
            ci_low: None,
            ci_high: None,
            boot_low: None,
            boot_high: None,
            test: String::new(),
            p: None,
            p_t: None,
            p_wilcoxon: None,
            cliffs_delta: None,
            p_holm: None,
        };
        (record, p)
    }

    const BASE: [f64; 5] = [0.60, 0.62, 0.58, 0.61, 0.59];

    fn shifted(by: f64) -> Vec<f64> {
        BASE.iter()
            .enumerate()
            .map(|(i, v)| v + by + 0.01 * (i % 2) as f64)
            .collect()
    }

    #[test]
    fn each_test_sides_with_the_paper_whose_prediction_it_bears_out() {
        let comps = vec![
            // A clear drop when the tunnel is swapped, and a better recovery with T1: [H24].
            comp("swap", ("E1 + T2", "E1 + T1"), "task1_accuracy", &shifted(-0.3), &BASE),
            comp(
                "swap",
                ("E2 + T1 (FT)", "E2 (FT)"),
                "task1_accuracy",
                &shifted(0.2),
                &BASE,
            ),
            // The extractor alone forgets less: [M23].
            comp(
                "strategy",
                ("freeze-tunnel", "finetune"),
                "forgetting",
                &shifted(-0.2),
                &BASE,
            ),
            // The truncated network forgets less but also learned less: neither.
            comp("truncation", ("truncated", "full"), "forgetting", &shifted(-0.2), &BASE),
            comp("truncation", ("truncated", "full"), "plasticity", &shifted(-0.3), &BASE),
        ];
        let s = paper_claims(&comps, "task-aware");
        assert_eq!(s.len(), 5, "{s:#?}");
        let expected = [
            ["Tunnel swap", "supports [H24]"],
            ["Recovery", "supports [H24]"],
            ["freeze-tunnel", "supports [M23]"],
            ["learned less", "tests neither"],
        ];
        for (line, words) in s.iter().zip(expected) {
            assert!(words.iter().all(|w| line.contains(w)), "{line}");
        }
        assert!(
            s[0].starts_with("Tunnel swap") && s[1].starts_with("Recovery"),
            "{s:#?}"
        );
        assert_eq!(
            s[4],
            "Of 4 tests of the papers' claims, 2 side with [H24], 1 with [M23] and 1 with neither: on balance \
             these numbers support [H24] (Harun et al.: the tunnel limits forgetting)."
        );
    }

    #[test]
    fn the_tests_are_judged_as_one_family() {
        let d = [-0.05, -0.03, -0.04, 0.0, -0.02];
        let drop: Vec<f64> = BASE.iter().zip(d).map(|(b, d)| b + d).collect();
        let gain: Vec<f64> = BASE.iter().zip(d).map(|(b, d)| b - d).collect();
        let comps = vec![
            comp("swap", ("E1 + T2", "E1 + T1"), "task1_accuracy", &drop, &BASE),
            comp("swap", ("E2 + T1 (FT)", "E2 (FT)"), "task1_accuracy", &gain, &BASE),
        ];
        // Each alone is significant at the 5% level (paired t, p ≈ 0.031); as a family of two, after
        // Holm's adjustment, neither is.
        assert!(comps.iter().all(|(_, p)| p.p < 0.05 && 2.0 * p.p >= 0.05));
        let s = paper_claims(&comps, "task-aware");
        assert!(
            s[0].contains("; Holm over 2: p = 0.06") && s[0].contains("consistent with [M23]"),
            "{}",
            s[0]
        );
        assert!(s[1].contains("decides for neither"), "{}", s[1]);
    }

    #[test]
    fn no_difference_decides_for_neither_but_a_swap_without_a_drop_is_m23s_null_result() {
        let comps = vec![
            comp(
                "swap",
                ("E1 + T2", "E1 + T1"),
                "task1_accuracy",
                &shifted(0.0),
                &shifted(0.0),
            ),
            comp(
                "truncation",
                ("truncated-4", "full"),
                "forgetting",
                &shifted(0.0),
                &shifted(0.0),
            ),
        ];
        let s = paper_claims(&comps, "task-aware");
        assert!(s[0].contains("consistent with [M23]"), "{}", s[0]);
        assert!(s[1].contains("decides for neither"), "{}", s[1]);
        assert!(
            s[2].contains("1 with [M23]") && s[2].contains("support [M23]"),
            "{}",
            s[2]
        );
        // Nothing either paper predicts: no sentences at all.
        assert!(
            paper_claims(
                &[comp("strategy", ("replay", "finetune"), "acc", &BASE, &BASE)],
                "task-aware"
            )
            .is_empty()
        );
    }
}
