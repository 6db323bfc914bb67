//! `tunnelbench report DIR`: `report.md` and `report.html` (same content) for a run folder or a
//! study folder: per-run results and normalised ID/OOD curves (each run's curves.png, with the
//! 95% interval across OOD sets), tunnel-class counts, the analysis' comparison tables and SHAP
//! slope bars when `analysis/` exists, continual-learning heatmaps when a run has
//! `accuracy_matrix.csv`, and each configuration's means across seeds for a study with
//! replicates. For a run with replicates: the aggregates across seeds (networks, curves, the
//! continual-learning table and claims).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metrics::evaluation::Intervals;
use crate::plot::write_chart;
use crate::results::{MeanMetrics, RunSummary, read_csv, write_atomic};
use crate::stats::analyze::Analysis;
use crate::stats::describe::finite;

/// A piece of the report.
enum Block {
    Heading(usize, String),
    Para(String),
    Table(Vec<String>, Vec<Vec<String>>),
    Image(String, String),
}

fn md(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, t) => s.push_str(&format!("{} {t}\n\n", "#".repeat(*level))),
            Block::Para(t) => s.push_str(&format!("{t}\n\n")),
            Block::Table(head, rows) => {
                let esc = |c: &str| c.replace('|', "\\|");
                s.push_str(&format!(
                    "| {} |\n",
                    head.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | ")
                ));
                s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for r in rows {
                    s.push_str(&format!(
                        "| {} |\n",
                        r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
                    ));
                }
                s.push('\n');
            }
            Block::Image(src, alt) => s.push_str(&format!("![{alt}]({src})\n\n")),
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(title: &str, blocks: &[Block]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         th{{background:#f4f4f4}}img{{max-width:100%}}</style>\n</head>\n<body>\n",
        esc(title)
    );
    for b in blocks {
        match b {
            Block::Heading(level, t) => s.push_str(&format!("<h{level}>{}</h{level}>\n", esc(t))),
            Block::Para(t) => s.push_str(&format!("<p>{}</p>\n", esc(t))),
            Block::Table(head, rows) => {
                s.push_str("<table>\n<tr>");
                for h in head {
                    s.push_str(&format!("<th>{}</th>", esc(h)));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", esc(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Image(src, alt) => s.push_str(&format!("<p><img src=\"{}\" alt=\"{}\"></p>\n", esc(src), esc(alt))),
        }
    }
    s.push_str("</body>\n</html>\n");
    s
}

fn num(v: Option<f64>, d: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.d$}"),
        _ => "undefined".into(),
    }
}

/// A run of the report: its folder (relative to the report folder), id and variables.
struct ReportRun {
    rel: String,
    dir: PathBuf,
    id: String,
    variables: String,
}

fn rel_join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Write report.md and report.html into `dir`; returns the written files.
pub fn write_report(dir: &Path) -> Result<Vec<PathBuf>> {
    if crate::replicates::is_replicate_folder(dir) {
        let title = format!("tunnelbench report: {}", dir.display());
        let mut b = vec![Block::Heading(1, title.clone())];
        b.extend(replicate_blocks(dir)?);
        return write_pages(dir, &title, &b);
    }
    let study = dir.join("runs").is_dir();
    let mut not_run = Vec::new();
    let runs: Vec<ReportRun> = if study {
        let found = super::collect::find_runs(&[dir.to_path_buf()])?;
        not_run = found.not_run;
        found
            .finished
            .into_iter()
            .map(|r| ReportRun {
                rel: format!("runs/{}", r.id),
                variables: r
                    .marker
                    .variables
                    .iter()
                    .map(|(n, l)| format!("{n}={l}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                id: r.id,
                dir: r.dir,
            })
            .collect()
    } else if dir.join("summary.json").is_file() {
        vec![ReportRun {
            rel: String::new(),
            dir: dir.to_path_buf(),
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            variables: String::new(),
        }]
    } else {
        return Err(Error::input(
            dir,
            "neither a run folder (summary.json) nor a study folder (runs/)",
        ));
    };

    let title = format!("tunnelbench report: {}", dir.display());
    let mut b = vec![Block::Heading(1, title.clone())];
    if runs.is_empty() {
        b.push(Block::Para("No finished runs yet.".into()));
    }
    if !not_run.is_empty() {
        b.push(Block::Para(format!(
            "Not run yet: {} planned run(s) ({}); what follows covers the finished ones.",
            not_run.len(),
            not_run.join(", ")
        )));
    }

    // Per-run results and tunnel classes (trained model, main probe: the first mean entry).
    let mut rows = Vec::new();
    let mut counts = [0usize; 5];
    const CLASSES: [&str; 5] = ["negligible", "weak", "medium", "strong", "undefined"];
    for r in &runs {
        let s: RunSummary = crate::json::read(&r.dir.join("summary.json"), "a run summary")?;
        let mean = s.means.iter().find(|m| m.model == "trained");
        let get = |f: fn(&MeanMetrics) -> f64, i: fn(&Intervals) -> Option<(f64, f64)>, d: usize| {
            let ends = mean.and_then(|m| i(&m.intervals));
            interval(
                mean.map(f).and_then(finite),
                ends.map(|e| e.0),
                ends.map(|e| e.1),
                1.0,
                d,
            )
        };
        let class = mean
            .and_then(|m| m.tunnel_class)
            .map_or("undefined", |c| c.name())
            .to_string();
        counts[CLASSES.iter().position(|c| *c == class).unwrap_or(4)] += 1;
        rows.push(vec![
            r.id.clone(),
            r.variables.clone(),
            s.config.model.name.clone(),
            num(finite(s.backbone_accuracy).map(|a| 100.0 * a), 2),
            get(|m| m.mean_retained_pct, |i| i.retained_pct, 2),
            get(|m| m.mean_pearson, |i| i.pearson, 3),
            get(|m| m.mean_alignment, |i| i.alignment, 3),
            class,
        ]);
    }
    if !rows.is_empty() {
        b.push(Block::Heading(2, "Runs".into()));
        b.push(Block::Para(
            "Trained backbone, main probe; means over the OOD sets (r in %, ρ, A), in brackets their 95% intervals over resamples of the test images (method §2.8). Classes as method §2.6.".into(),
        ));
        b.push(Block::Table(
            [
                "run",
                "variables",
                "model",
                "ID accuracy %",
                "mean r %",
                "mean ρ",
                "mean A",
                "tunnel class",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        ));
        b.push(Block::Heading(2, "Tunnel classes".into()));
        b.push(Block::Table(
            CLASSES.map(String::from).to_vec(),
            vec![counts.iter().map(|c| c.to_string()).collect()],
        ));
    }

    // Curves.
    let with_curves: Vec<&ReportRun> = runs.iter().filter(|r| r.dir.join("curves.png").is_file()).collect();
    if !with_curves.is_empty() {
        b.push(Block::Heading(2, "Normalised ID and OOD curves".into()));
        b.push(Block::Para(
            "Probe accuracy per layer divided by the best layer's; the shaded band is the 95% t-interval of the mean OOD curve across OOD sets."
                .into(),
        ));
        for r in with_curves {
            if study {
                b.push(Block::Heading(3, format!("{} {}", r.id, r.variables)));
            }
            b.push(Block::Image(
                rel_join(&r.rel, "curves.png"),
                format!("curves of {}", r.id),
            ));
        }
    }

    // Continual learning.
    for r in &runs {
        if !r.dir.join("accuracy_matrix.csv").is_file() {
            continue;
        }
        let mut pngs: Vec<String> = std::fs::read_dir(&r.dir)
            .map_err(|e| Error::io(&r.dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".png") && n != "curves.png")
            .collect();
        pngs.sort();
        b.push(Block::Heading(2, format!("Continual learning: {}", r.id)));
        if pngs.is_empty() {
            b.push(Block::Para(
                "accuracy_matrix.csv is present but no heatmap PNG was written.".into(),
            ));
        }
        for p in pngs {
            b.push(Block::Image(rel_join(&r.rel, &p), p.clone()));
        }
    }

    // Analysis.
    let analysis_path = dir.join("analysis").join("analysis.json");
    if analysis_path.is_file() {
        let a = Analysis::read(&analysis_path)?;
        b.push(Block::Heading(2, "Comparisons".into()));
        let comps = &a.comparisons;
        if comps.is_empty() {
            b.push(Block::Para("No comparison had both groups in this study.".into()));
        } else {
            b.push(Block::Para(
                "Paired Wilcoxon signed-rank test between the groups' (run, OOD set) values (p, and Holm-adjusted over the metric's comparisons) and between pairs of runs, each averaged over its OOD sets (p (models), and Holm-adjusted); Cliff's δ; means with 95% intervals."
                    .into(),
            ));
            let rows = comps
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.metric.key().to_string(),
                        format!("{} vs {}", c.a, c.b),
                        c.n_pairs.to_string(),
                        format!("{:.3} [{:.3}, {:.3}]", c.mean_a, c.ci95_a.0, c.ci95_a.1),
                        format!("{:.3} [{:.3}, {:.3}]", c.mean_b, c.ci95_b.0, c.ci95_b.1),
                        p_cell(c.p_value),
                        p_cell(c.p_holm),
                        p_cell(c.p_models),
                        p_cell(c.p_models_holm),
                        format!("{:.3}", c.cliffs_delta_abs),
                        c.magnitude.map_or("-", |m| m.as_str()).to_string(),
                    ]
                })
                .collect();
            b.push(Block::Table(
                [
                    "comparison",
                    "metric",
                    "groups",
                    "pairs",
                    "mean a",
                    "mean b",
                    "p",
                    "p (Holm)",
                    "p (models)",
                    "p (models, Holm)",
                    "|δ|",
                    "magnitude",
                ]
                .map(String::from)
                .to_vec(),
                rows,
            ));
        }
        let skipped = a.skipped_comparisons.len();
        if skipped > 0 {
            b.push(Block::Para(format!(
                "{skipped} comparisons of the spec were skipped (a group absent): see analysis/analysis.json."
            )));
        }
        if !a.shap.is_empty() {
            write_chart(&a.shap_chart()?, &dir.join("analysis"), "shap_slopes_bars")?;
            b.push(Block::Heading(2, "SHAP slopes".into()));
            let fits: Vec<String> = a
                .shap
                .iter()
                .map(|r| match r.r2_cv {
                    Some(cv) => format!("{} R² {:.2} in sample, {cv:.2} cross-validated", r.metric.key(), r.r2),
                    None => format!("{} R² {:.2} in sample", r.metric.key(), r.r2),
                })
                .collect();
            b.push(Block::Para(format!(
                "Slope of each variable's SHAP values on its normalised code (GBM + TreeSHAP, method §7.5), with its 95% \
                 interval over bootstrap resamples of the runs and the share of resamples agreeing on its sign; an \
                 undefined slope (single-valued variable) is n/a. {}.",
                fits.join("; ")
            )));
            b.push(Block::Image(
                "analysis/shap_slopes_bars.png".into(),
                "SHAP slopes".into(),
            ));
            let table = a
                .shap
                .iter()
                .flat_map(|r| {
                    r.slopes.iter().map(move |f| {
                        vec![
                            r.metric.key().to_string(),
                            f.feature.clone(),
                            number(f.slope, 4),
                            match (f.ci_low, f.ci_high) {
                                (Some(lo), Some(hi)) => format!("[{lo:.4}, {hi:.4}]"),
                                _ => "-".into(),
                            },
                            f.same_sign.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v)),
                        ]
                    })
                })
                .collect();
            b.push(Block::Table(
                ["metric", "variable", "slope", "95% interval", "same sign"]
                    .map(String::from)
                    .to_vec(),
                table,
            ));
        }
    }

    let configs = dir.join(crate::study::collect::STUDY_CONFIGS);
    if configs.is_file() {
        b.extend(config_blocks(&configs)?);
    }
    write_pages(dir, &title, &b)
}

fn write_pages(dir: &Path, title: &str, b: &[Block]) -> Result<Vec<PathBuf>> {
    let md_path = dir.join("report.md");
    let html_path = dir.join("report.html");
    write_atomic(&md_path, md(b).as_bytes())?;
    write_atomic(&html_path, html(title, b).as_bytes())?;
    Ok(vec![md_path, html_path])
}

/// A number with `d` decimals, `-` when undefined.
fn number(v: Option<f64>, d: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.d$}"))
}

/// A p-value in scientific notation, `-` when there is no test.
fn p_cell(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{p:.3e}"))
}

/// `mean [low, high]` scaled by `scale`.
fn interval(mean: Option<f64>, low: Option<f64>, high: Option<f64>, scale: f64, d: usize) -> String {
    match (mean, low, high) {
        (Some(m), Some(l), Some(h)) => format!("{:.d$} [{:.d$}, {:.d$}]", scale * m, scale * l, scale * h),
        (Some(m), ..) => format!("{:.d$}", scale * m),
        _ => "undefined".into(),
    }
}

/// The report of a run with replicates: its aggregates across seeds.
fn replicate_blocks(dir: &Path) -> Result<Vec<Block>> {
    use crate::replicates::continual::ClAggregateRow;
    use crate::replicates::tunnel::{AggregateFile, AggregateRow, ControlRow};
    let done = crate::replicates::finished(dir, None)?;
    let failed = crate::replicates::failures(dir, None)?;
    let mut b = vec![Block::Para(format!(
        "{} finished replicates ({}){}; every number below is the mean across seeds with its 95% t-interval [low, high].",
        done.len(),
        done.iter()
            .map(|(k, _)| format!("seed-{k}"))
            .collect::<Vec<_>>()
            .join(", "),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", failed.len())
        }
    ))];
    if let Some((asked, missing)) = crate::replicates::not_run(&done, &failed) {
        b.push(Block::Para(format!(
            "Not run yet: {missing} of the {asked} replicates the scenario asks for."
        )));
    }
    let metrics = dir.join("metrics_aggregate.csv");
    if metrics.is_file() {
        let rows: Vec<AggregateRow> = read_csv(&metrics)?;
        let aggregate: AggregateFile = crate::json::read(&dir.join("aggregate.json"), "a replicates aggregate")?;
        let networks: Vec<((String, String), String)> = aggregate
            .networks
            .into_iter()
            .map(|n| {
                let counts = n.tunnel_classes.iter().map(|(k, v)| format!("{k} {v}"));
                ((n.model, n.probe), counts.collect::<Vec<_>>().join(", "))
            })
            .collect();
        b.push(Block::Heading(2, "Networks".into()));
        b.push(Block::Para(
            "Each network's means over the OOD sets, averaged over the seeds, with their 95% t-interval across seeds and then their 95% interval over resamples of the test images, which every seed shares (method §2.8).".into(),
        ));
        let mut table = Vec::new();
        for ((model, probe), classes) in &networks {
            let cell = |metric: &str, scale: f64, d: usize| {
                rows.iter()
                    .find(|r| &r.model == model && &r.probe == probe && r.ood_dataset == "mean" && r.metric == metric)
                    .map_or_else(
                        || "-".into(),
                        |r| {
                            let seeds = interval(r.mean, r.ci_low, r.ci_high, scale, d);
                            match (r.test_low, r.test_high) {
                                (Some(lo), Some(hi)) => {
                                    format!("{seeds}; test images [{:.d$}, {:.d$}]", scale * lo, scale * hi)
                                }
                                _ => seeds,
                            }
                        },
                    )
            };
            table.push(vec![
                model.clone(),
                probe.clone(),
                cell("retained_pct", 1.0, 2),
                cell("pearson", 1.0, 3),
                cell("alignment", 1.0, 3),
                classes.clone(),
            ]);
        }
        b.push(Block::Table(
            ["model", "probe", "mean r %", "mean ρ", "mean A", "tunnel class (seeds)"]
                .map(String::from)
                .to_vec(),
            table,
        ));
        if let Some(acc) = rows.iter().find(|r| r.metric == "backbone_accuracy") {
            b.push(Block::Para(format!(
                "Backbone accuracy (%): {}.",
                interval(acc.mean, acc.ci_low, acc.ci_high, 100.0, 2)
            )));
        }
        let control = dir.join("control_comparisons.csv");
        if control.is_file() {
            let rows: Vec<ControlRow> = read_csv(&control)?;
            b.push(Block::Heading(
                2,
                "Trained network against the random-init control".into(),
            ));
            b.push(Block::Para(
                "Differences trained − random-init paired by seed, with their 95% t-interval; p from a paired t-test below 6 seeds, Wilcoxon from 6, and adjusted (Holm) over the rows.".into(),
            ));
            let table = rows
                .iter()
                .map(|r| {
                    let d = if r.metric == "retained_pct" { 2 } else { 3 };
                    vec![
                        r.probe.clone(),
                        r.metric.clone(),
                        number(r.mean_trained, d),
                        number(r.mean_control, d),
                        interval(r.mean_diff, r.ci_low, r.ci_high, 1.0, d),
                        format!("{} {}", r.test, number(r.p, 4)),
                        number(r.p_holm, 4),
                    ]
                })
                .collect();
            b.push(Block::Table(
                [
                    "probe",
                    "metric",
                    "trained",
                    "random-init",
                    "difference",
                    "p",
                    "p (Holm)",
                ]
                .map(String::from)
                .to_vec(),
                table,
            ));
        }
        b.push(Block::Para(
            "Per OOD set and metric: metrics_aggregate.csv; per layer: probes_aggregate.csv; each seed's class: tunnel_classes.csv.".into(),
        ));
        if dir.join("curves.png").is_file() {
            b.push(Block::Heading(2, "Normalised ID and OOD curves".into()));
            b.push(Block::Para(
                "Each curve is the mean across seeds of the per-seed normalised curve (accuracy / best layer's); the band is its 95% t-interval across seeds.".into(),
            ));
            b.push(Block::Image("curves.png".into(), "curves across seeds".into()));
        }
    }
    let cl = dir.join("cl_aggregate.csv");
    if cl.is_file() {
        let rows: Vec<ClAggregateRow> = read_csv(&cl)?;
        b.push(Block::Heading(2, "Continual learning".into()));
        let mut table = Vec::new();
        for r in rows.iter().filter(|r| r.metric == "acc") {
            let cell = |metric: &str| {
                rows.iter()
                    .find(|x| {
                        x.architecture == r.architecture
                            && x.variant == r.variant
                            && x.strategy == r.strategy
                            && x.eval == r.eval
                            && x.metric == metric
                    })
                    .map_or_else(|| "-".into(), |x| interval(Some(x.mean), x.ci_low, x.ci_high, 100.0, 1))
            };
            table.push(vec![
                r.architecture.clone(),
                r.variant.clone(),
                r.strategy.clone(),
                r.eval.clone(),
                cell("acc"),
                cell("forgetting"),
                cell("bwt"),
                cell("plasticity"),
            ]);
        }
        b.push(Block::Table(
            [
                "architecture",
                "variant",
                "strategy",
                "eval",
                "ACC %",
                "forgetting %",
                "BWT %",
                "plasticity %",
            ]
            .map(String::from)
            .to_vec(),
            table,
        ));
        let swap = dir.join("swap_aggregate.csv");
        if swap.is_file() {
            #[derive(serde::Deserialize)]
            struct SwapRow {
                combination: String,
                task: usize,
                mean: Option<f64>,
                ci_low: Option<f64>,
                ci_high: Option<f64>,
            }
            let rows: Vec<SwapRow> = read_csv(&swap)?;
            let mut table: Vec<Vec<String>> = Vec::new();
            for r in rows.iter().filter(|r| r.mean.is_some()) {
                let cell = interval(r.mean, r.ci_low, r.ci_high, 100.0, 1);
                match table.iter_mut().find(|t| t[0] == r.combination) {
                    Some(t) => t[r.task.min(2)] = cell,
                    None => {
                        let mut t = vec![r.combination.clone(), "–".into(), "–".into()];
                        t[r.task.min(2)] = cell;
                        table.push(t);
                    }
                }
            }
            b.push(Block::Heading(2, "Swap protocol".into()));
            b.push(Block::Table(
                ["combination", "task 1 accuracy %", "task 2 accuracy %"]
                    .map(String::from)
                    .to_vec(),
                table,
            ));
        }
        let claims = dir.join("cl_claims.md");
        if claims.is_file() {
            b.push(Block::Heading(2, "Claims".into()));
            b.push(Block::Para(
                "Paired by seed: mean difference ± half-width of its 95% t-interval, the test's p-value and the same adjusted over the claims (Holm), which decides significance; bootstrap intervals, both tests and Cliff's δ in cl_comparisons.csv.".into(),
            ));
            let text = std::fs::read_to_string(&claims).map_err(|e| Error::io(&claims, e))?;
            for line in text.lines().filter_map(|l| l.strip_prefix("- ")) {
                b.push(Block::Para(line.to_string()));
            }
        }
    }
    Ok(b)
}

/// A study with replicates: each configuration's means across its seeds.
fn config_blocks(path: &Path) -> Result<Vec<Block>> {
    #[derive(serde::Deserialize)]
    struct Row {
        run_id: String,
        variables: String,
        n: usize,
        metric: String,
        mean: Option<f64>,
        ci_low: Option<f64>,
        ci_high: Option<f64>,
        tunnel_classes: String,
    }
    let rows: Vec<Row> = read_csv(path)?;
    let mut table = Vec::new();
    for r in rows.iter().filter(|r| r.metric == "mean_retained_pct") {
        let cell = |metric: &str, scale: f64, d: usize| {
            rows.iter()
                .find(|x| x.run_id == r.run_id && x.metric == metric)
                .map_or_else(|| "-".into(), |x| interval(x.mean, x.ci_low, x.ci_high, scale, d))
        };
        table.push(vec![
            r.run_id.clone(),
            r.variables.clone(),
            r.n.to_string(),
            cell("backbone_accuracy", 100.0, 2),
            cell("mean_retained_pct", 1.0, 2),
            cell("mean_pearson", 1.0, 3),
            cell("mean_alignment", 1.0, 3),
            r.tunnel_classes.clone(),
        ]);
    }
    Ok(vec![
        Block::Heading(2, "Configurations across seeds".into()),
        Block::Para(
            "Each configuration's mean over its seeds with the 95% t-interval [low, high] (trained network, main probe); the comparisons above pair configurations on r, ρ, A averaged over seeds.".into(),
        ),
        Block::Table(
            ["configuration", "variables", "seeds", "ID accuracy %", "mean r %", "mean ρ", "mean A", "tunnel classes"]
                .map(String::from)
                .to_vec(),
            table,
        ),
    ])
}
