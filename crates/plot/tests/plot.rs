//! Plot rendering: well-formed SVG, decodable non-blank PNG, NaN gaps and input errors.

use tunnelbench_plot::Error;
use tunnelbench_plot::*;

fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().expect("PNG header decodes");
    let mut buf = vec![0; reader.output_buffer_size().expect("size known")];
    let info = reader.next_frame(&mut buf).expect("PNG frame decodes");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let px = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, px)
}

fn near(p: [u8; 3], c: Color, tol: i32) -> bool {
    (p[0] as i32 - c.r as i32).abs() <= tol
        && (p[1] as i32 - c.g as i32).abs() <= tol
        && (p[2] as i32 - c.b as i32).abs() <= tol
}

fn count(px: &[[u8; 3]], c: Color) -> usize {
    px.iter().filter(|p| near(**p, c, 6)).count()
}

/// Every text node of the SVG, after XML unescaping.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

fn layer_chart() -> Chart {
    LineChart::new("Tunnel <effect> & more")
        .x_label("layer")
        .y_label("accuracy")
        .y_range(0.0, 1.05)
        .series(
            Series::new("ID", vec![0.2, 0.5, 0.8, 0.9, 0.95])
                .band(vec![0.1, 0.4, 0.7, 0.85, 0.9], vec![0.3, 0.6, 0.9, 0.95, 1.0]),
        )
        .series(Series::new("OOD: SVHN", vec![0.3, 0.6, f64::NAN, 0.5, 0.4]).dashed())
        .vline(3.0, "tunnel start (OOD)")
        .build()
        .expect("valid chart")
}

#[test]
fn line_chart_svg_is_well_formed_and_names_everything() {
    let svg = layer_chart().to_svg();
    let texts = svg_texts(&svg);
    for want in [
        "Tunnel <effect> & more",
        "layer",
        "accuracy",
        "ID",
        "OOD: SVHN",
        "tunnel start (OOD)",
        "1.0",
        "0.0",
    ] {
        assert!(texts.iter().any(|t| t == want), "missing text {want:?} in {texts:?}");
    }
    assert!(svg.contains("stroke-dasharray"), "dashed series is dashed");
    assert!(
        svg.contains(&PALETTE[0].css()),
        "first series uses the first palette colour"
    );
}

#[test]
fn line_chart_png_has_expected_size_and_series_colours() {
    let chart = layer_chart();
    let (w, h, px) = decode(&chart.to_png().expect("renders"));
    assert_eq!((w, h), chart.png_size());
    assert_eq!((w, h), (1280, 840));
    assert!(count(&px, PALETTE[0]) > 200, "first series visible");
    assert!(count(&px, PALETTE[1]) > 100, "second series visible");
    assert!(count(&px, PALETTE[2]) == 0, "no third series");
    // Text from the embedded font: dark pixels in the title strip.
    let dark_title = px[..(w * 40) as usize]
        .iter()
        .filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100)
        .count();
    assert!(dark_title > 300, "title drawn ({dark_title} dark pixels)");
}

#[test]
fn scale_changes_png_size_only() {
    let chart = layer_chart().with_size(400.0, 300.0).with_scale(1.0);
    let (w, h, _) = decode(&chart.to_png().unwrap());
    assert_eq!((w, h), (400, 300));
    assert!(chart.to_svg().contains("width=\"400\" height=\"300\""));
    let err = layer_chart().with_scale(0.0).to_png().unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
}

#[test]
fn nan_and_degenerate_inputs_do_not_panic() {
    let all_nan = LineChart::new("all NaN")
        .series(Series::new("a", vec![f64::NAN; 4]).band(vec![f64::NAN; 4], vec![f64::INFINITY; 4]))
        .series(Series::new("b", vec![]))
        .series(Series::new("c", vec![0.5]))
        .build()
        .unwrap();
    assert!(all_nan.to_png().is_ok());
    svg_texts(&all_nan.to_svg());
    let log = LineChart::new("log")
        .log_y(true)
        .series(Series::new("rank", vec![0.0, -1.0, 10.0, f64::NAN, 1000.0]))
        .series(Series::new("x", vec![f64::NAN, 5.0]).with_x(vec![f64::NAN, 2.0]))
        .build()
        .unwrap();
    assert!(log.to_png().is_ok());
    svg_texts(&log.to_svg());
    let constant = LineChart::new("flat")
        .series(Series::new("k", vec![3.0; 6]))
        .build()
        .unwrap();
    let (_, _, px) = decode(&constant.to_png().unwrap());
    assert!(count(&px, PALETTE[0]) > 100, "a constant series is still drawn");
    let bars = BarChart::new("nan bars")
        .categories(["a", "b"])
        .group("g", vec![f64::NAN, f64::NAN])
        .value_labels(true)
        .build()
        .unwrap();
    assert!(bars.to_png().is_ok());
    assert!(svg_texts(&bars.to_svg()).iter().any(|t| t == "n/a"));
    let heat = Heatmap::new("nan", vec![vec![f64::NAN, f64::NAN]]).build().unwrap();
    assert!(heat.to_png().is_ok());
}

#[test]
fn out_of_range_values_are_clipped_to_the_axes() {
    let chart = LineChart::new("clip")
        .y_range(0.0, 1.0)
        .series(Series::new("s", vec![0.5, 5.0, -3.0, 0.5]))
        .build()
        .unwrap();
    let svg = chart.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let (w, h) = chart.size();
    for n in doc.descendants().filter(|n| n.has_tag_name("polyline")) {
        for pair in n.attribute("points").unwrap().split_whitespace() {
            let (x, y) = pair.split_once(',').unwrap();
            let (x, y): (f32, f32) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(
                (0.0..=w).contains(&x) && (0.0..=h).contains(&y),
                "point {x},{y} outside the chart"
            );
        }
    }
}

#[test]
fn empty_line_chart_says_no_data() {
    let chart = LineChart::new("nothing").x_label("layer").build().unwrap();
    assert!(svg_texts(&chart.to_svg()).iter().any(|t| t == "no data"));
    assert!(chart.to_png().is_ok());
}

#[test]
fn mismatched_lengths_are_usage_errors_naming_the_series() {
    let err = LineChart::new("t")
        .series(Series::new("ID", vec![1.0, 2.0]).band(vec![1.0], vec![2.0, 3.0]))
        .build()
        .unwrap_err();
    assert!(matches!(&err, Error::Usage(m) if m.contains("\"ID\"")), "{err}");
    let err = LineChart::new("t")
        .series(Series::new("ID", vec![1.0, 2.0]).with_x(vec![1.0]))
        .build()
        .unwrap_err();
    assert!(matches!(&err, Error::Usage(_)), "{err}");
    let err = LineChart::new("t").log_y(true).y_range(0.0, 1.0).build().unwrap_err();
    assert!(err.to_string().contains("log"), "{err}");
    let err = BarChart::new("b")
        .categories(["a", "b"])
        .group("slopes", vec![1.0])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("slopes"), "{err}");
    let err = Heatmap::new("h", vec![]).build().unwrap_err();
    assert!(err.to_string().contains("no cells"), "{err}");
    let err = Heatmap::new("h", vec![vec![1.0, 2.0], vec![1.0]]).build().unwrap_err();
    assert!(err.to_string().contains("row 1"), "{err}");
    let err = Heatmap::new("h", vec![vec![1.0]])
        .row_labels(["a", "b"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("row labels"), "{err}");
    let err = Figure::new(1, 1)
        .push(layer_chart())
        .push(layer_chart())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
}

#[test]
fn horizontal_bars_extend_both_ways_from_zero() {
    let chart = BarChart::new("SHAP slopes")
        .categories(["depth", "width"])
        .group("slope", vec![1.0, -1.0])
        .horizontal(true)
        .value_labels(true)
        .build()
        .unwrap()
        .with_scale(1.0);
    let texts = svg_texts(&chart.to_svg());
    for want in ["depth", "width", "1", "\u{2212}1", "SHAP slopes"] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in {texts:?}");
    }
    let (w, _, px) = decode(&chart.to_png().unwrap());
    let cols: Vec<u32> = px
        .iter()
        .enumerate()
        .filter(|(_, p)| near(**p, PALETTE[0], 6))
        .map(|(i, _)| i as u32 % w)
        .collect();
    let (lo, hi) = (*cols.iter().min().unwrap(), *cols.iter().max().unwrap());
    // Zero sits in the middle of the value range, so the two bars together span both halves.
    let zero = (lo + hi) / 2;
    assert!(cols.iter().filter(|c| **c < zero).count() > 500 && cols.iter().filter(|c| **c > zero).count() > 500);

    let positive = BarChart::new("pos")
        .categories(["a", "b"])
        .group("g", vec![1.0, 2.0])
        .group("h", vec![0.5, 0.1])
        .build()
        .unwrap();
    let texts = svg_texts(&positive.to_svg());
    assert!(
        texts.iter().any(|t| t == "g") && texts.iter().any(|t| t == "h"),
        "legend for two groups"
    );
    let (_, _, px) = decode(&positive.to_png().unwrap());
    assert!(count(&px, PALETTE[0]) > 1000 && count(&px, PALETTE[1]) > 100);
}

/// Intervals need not be symmetric nor contain the bar's value (a bootstrap percentile interval):
/// the value axis reaches both ends, and an interval with an undefined end is left out.
#[test]
fn bar_intervals_widen_the_axis_and_skip_undefined_ends() {
    // Error bars are the only strokes 1.1 wide.
    let lines = |c: &Chart| {
        let svg = c.to_svg();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("1.1"))
            .count()
    };
    let plain = BarChart::new("slopes")
        .categories(["a", "b"])
        .group("slope", vec![1.0, -0.5])
        .horizontal(true)
        .build()
        .unwrap();
    let with = BarChart::new("slopes")
        .categories(["a", "b"])
        .group_with_intervals("slope", vec![1.0, -0.5], vec![(1.5, 4.0), (f64::NAN, 0.2)])
        .horizontal(true)
        .build()
        .unwrap();
    let texts = svg_texts(&with.to_svg());
    assert!(
        texts.iter().any(|t| t == "4"),
        "the axis reaches the interval's high end: {texts:?}"
    );
    assert!(!svg_texts(&plain.to_svg()).iter().any(|t| t == "4"));
    // One interval drawn: its line and two caps.
    assert_eq!((lines(&plain), lines(&with)), (0, 3));
    assert!(with.to_png().is_ok());
    let err = BarChart::new("b")
        .categories(["a", "b"])
        .group_with_intervals("slopes", vec![1.0, 2.0], vec![(0.0, 1.0)])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("1 intervals"), "{err}");
}

#[test]
fn heatmap_colours_labels_and_hatching() {
    let chart = Heatmap::new("R[i][j]", vec![vec![0.0, f64::NAN], vec![0.5, 1.0]])
        .row_labels(["after 1", "after 2"])
        .col_labels(["task 1", "task 2"])
        .range(0.0, 1.0)
        .colorbar_label("accuracy")
        .build()
        .unwrap();
    let texts = svg_texts(&chart.to_svg());
    for want in ["after 1", "task 2", "accuracy", "0.00", "0.50", "1.00"] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t.contains("NaN")), "NaN cell has no number");
    let (_, _, px) = decode(&chart.to_png().unwrap());
    let lo = Colormap::Viridis.at(0.0);
    let hi = Colormap::Viridis.at(1.0);
    assert!(
        count(&px, lo) > 1000 && count(&px, hi) > 1000,
        "cells at both ends of the scale"
    );
    assert!(count(&px, Color::hex(0xE6E6E6)) > 500, "NaN cell is grey");
    assert!(count(&px, Color::hex(0x9A9A9A)) > 50, "NaN cell is hatched");
}

#[test]
fn colormaps_match_matplotlib() {
    // matplotlib 3.11.2, matplotlib.colormaps[name](t) * 255 rounded (tests/golden/colormap_reference.py).
    // t, viridis, RdBu.
    let reference = [
        (0.0, [68, 1, 84], [5, 48, 97]),
        (0.3, [53, 95, 141], [144, 196, 221]),
        (0.5, [33, 145, 140], [247, 246, 246]),
        (0.7, [68, 191, 112], [243, 164, 129]),
        (1.0, [253, 231, 37], [103, 0, 31]),
    ];
    for (t, viridis, rdbu) in reference {
        for (map, want, tol) in [(Colormap::Viridis, viridis, 2), (Colormap::RedBlue, rdbu, 6)] {
            let c = map.at(t);
            assert!(near(want, c, tol), "{map:?}({t}) = {c:?}, matplotlib {want:?}");
        }
    }
    assert_eq!(Colormap::Viridis.at(f64::NAN), Colormap::Viridis.at(0.0));
    assert_eq!(Colormap::Viridis.at(7.0), Colormap::Viridis.at(1.0));
}

#[test]
fn figure_grid_combines_charts() {
    let a = layer_chart();
    let b = LineChart::new("rank")
        .log_y(true)
        .series(Series::new("rank", vec![100.0, 30.0, 10.0]))
        .build()
        .unwrap();
    let fig = Figure::new(1, 2)
        .title("ResNet-18")
        .push(a.clone())
        .push(b)
        .build()
        .unwrap();
    let (w, h) = fig.size();
    assert_eq!(w, 2.0 * a.size().0);
    assert!(h > a.size().1);
    let texts = svg_texts(&fig.to_svg());
    for want in ["ResNet-18", "Tunnel <effect> & more", "rank", "100"] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?}");
    }
    let (pw, ph, px) = decode(&fig.to_png().unwrap());
    assert_eq!((pw, ph), fig.png_size());
    // The right panel holds only the first palette colour; the left also the second.
    let right_blue = px
        .iter()
        .enumerate()
        .filter(|(i, p)| (*i as u32 % pw) > pw / 2 && near(**p, PALETTE[0], 6))
        .count();
    assert!(right_blue > 100);
}

#[test]
fn write_chart_writes_both_files_atomically() {
    let dir = std::env::temp_dir().join(format!("tunnelbench-plot-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (svg, png_path) = write_chart(&layer_chart(), &dir.join("plots"), "curves").unwrap();
    assert_eq!(svg, dir.join("plots/curves.svg"));
    svg_texts(&std::fs::read_to_string(&svg).unwrap());
    decode(&std::fs::read(&png_path).unwrap());
    let names: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    let err = write_chart(&layer_chart(), &dir, "../x").unwrap_err();
    assert!(matches!(err, Error::Usage(_)));
    // A file where the directory should be is an I/O error naming the path.
    std::fs::write(dir.join("file"), b"x").unwrap();
    let err = write_chart(&layer_chart(), &dir.join("file"), "c").unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("file")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_printable_ascii_character_renders() {
    let all: String = (32u8..127).map(|b| b as char).collect();
    let chart = LineChart::new(all.clone())
        .x_label("ρ δ ε σ ± − × ≤ ≥")
        .series(Series::new(all.clone(), vec![1.0, 2.0]))
        .build()
        .unwrap();
    let texts = svg_texts(&chart.to_svg());
    assert!(texts.contains(&all));
    assert!(chart.to_png().is_ok());
}
