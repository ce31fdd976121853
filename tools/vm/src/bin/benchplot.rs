// SPDX-License-Identifier: GPL-2.0

//! `benchplot LOG PNG FONT`: plots replay time against window size (log-log), one line per
//! strategy and population (64 KiB hardware pages), from a bench run's console log; and, when
//! the log has it, the cost curve (replay time against valid TCEs in the 2^31 window, beside a
//! memcpy of their bytes) into curve.png next to PNG. `benchplot --nested CSV PNG FONT` plots the
//! nested run's replay times (tools/bench/nested-report.py's CSV): QEMU's walk with KVM's tables
//! and the module's replay against the window's size, QEMU's extrapolated to 2^31.

use ktr_vm::bench::{curve_rows, parse, Figures};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::{error::Error, ops::Range, path::Path};

const STRATEGIES: [(&str, &str); 3] = [
    ("ours", "ours"),
    ("slots", "(b) every slot"),
    ("entries", "(a) every entry"),
];
const POPULATIONS: [&str; 4] = ["empty", "contiguous", "scattered", "dense"];

/// One line of a plot: its label, its points, its colour (an index into the palette) and its
/// width.
struct Line {
    label: String,
    points: Vec<(u64, f64)>,
    color: usize,
    width: u32,
}

/// The axes of a log-log plot: x (powers of two, labelled at `x_keys`) and y (ns).
struct Axes {
    x: Range<u64>,
    x_keys: Vec<u64>,
    x_desc: &'static str,
    y: Range<f64>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, csv, png, font] = args.as_slice() {
        if flag == "--nested" {
            let font: &'static [u8] = Box::leak(std::fs::read(font)?.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, font).map_err(|_| "bad font")?;
            return plot_nested(&std::fs::read_to_string(csv)?, Path::new(png));
        }
    }
    let [log, png, font] = args.as_slice() else {
        eprintln!("usage: benchplot LOG PNG FONT.ttf");
        std::process::exit(2);
    };
    let font: &'static [u8] = Box::leak(std::fs::read(font)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, font).map_err(|_| "bad font")?;
    let (platform, fig) = parse(&String::from_utf8_lossy(&std::fs::read(log)?));
    let mut lines = Vec::new();
    for (si, (what, label)) in STRATEGIES.iter().enumerate() {
        for (pi, pop) in POPULATIONS.iter().enumerate() {
            let points: Vec<(u64, f64)> = fig
                .iter()
                .filter(|((_, s, p, w), _)| *s == 16 && p == pop && w == what)
                // A time below the clock's resolution (0) sits on the floor of the plot.
                .map(|((w, ..), (v, _))| (1u64 << w, (*v).max(100) as f64))
                .collect();
            lines.push(Line {
                label: format!("{label}, {pop}"),
                points,
                color: si * 4 + pi,
                width: if si == 0 { 3 } else { 1 },
            });
        }
    }
    let engine = if platform.ends_with("-uml") {
        "native kernel code"
    } else {
        "QEMU TCG"
    };
    log_log(
        Path::new(png),
        &format!("Attach + replay time, 64 KiB TCEs and hw pages ({platform}: {engine})"),
        Axes {
            x: 1 << 19..1 << 32,
            x_keys: vec![1 << 20, 1 << 24, 1 << 28, 1 << 31],
            x_desc: "TCEs in the window",
            y: 1e2..1e13,
        },
        lines,
    )?;
    println!("benchplot: wrote {png}");
    let curve = Path::new(png).with_file_name("curve.png");
    if plot_curve(&platform, &fig, &curve)? {
        println!("benchplot: wrote {}", curve.display());
    }
    Ok(())
}

/// The cost curve, log-log: a line through the origin is a straight line of slope 1 there.
/// Returns false when the log has no curve.
fn plot_curve(platform: &str, fig: &Figures, path: &Path) -> Result<bool, Box<dyn Error>> {
    let rows = curve_rows(fig);
    if rows.is_empty() {
        return Ok(false);
    }
    let mut lines = Vec::new();
    for layout in ["contiguous", "scattered"] {
        let points = |pick: fn(&(String, u32, u64, u64)) -> u64| -> Vec<(u64, f64)> {
            rows.iter()
                .filter(|r| r.0 == layout)
                .map(|r| (1u64 << r.1, pick(r).max(10) as f64))
                .collect()
        };
        for (label, points, width) in [
            (format!("ours, {layout}"), points(|r| r.2), 3),
            (
                format!("memcpy of their bytes ({layout})"),
                points(|r| r.3),
                1,
            ),
        ] {
            let color = lines.len();
            lines.push(Line {
                label,
                points,
                color,
                width,
            });
        }
    }
    log_log(
        path,
        &format!("Replay time against valid TCEs, 2^31 window ({platform})"),
        Axes {
            x: 1..1 << 25,
            x_keys: (0..=24).step_by(4).map(|k| 1 << k).collect(),
            x_desc: "valid TCEs",
            y: 1e1..1e10,
        },
        lines,
    )?;
    Ok(true)
}

/// The nested run's replay time against the window: `tables,window_log2,plug,what,value` rows,
/// the first plug's.
fn plot_nested(csv: &str, path: &Path) -> Result<(), Box<dyn Error>> {
    let series = |tables: &str, what: &str| -> Vec<(u64, f64)> {
        csv.lines()
            .filter_map(|l| match l.split(',').collect::<Vec<_>>()[..] {
                [t, w, "0", x, v] if t == tables && x == what => {
                    Some((1u64 << w.parse::<u32>().ok()?, v.parse::<f64>().ok()?))
                }
                _ => None,
            })
            .collect()
    };
    let qemu = series("kvm+qemu", "qemu_walk_ns");
    let module = series("module", "module_replay_ns");
    // QEMU's walk grows with the window: the line through its first and last points, at 2^31.
    let extrapolated = match (qemu.first(), qemu.last()) {
        (Some(&(x0, y0)), Some(&(x1, y1))) if x1 > x0 => {
            let slope = (y1 - y0) / (x1 - x0) as f64;
            vec![(x1, y1), (1 << 31, y1 + slope * ((1u64 << 31) - x1) as f64)]
        }
        _ => Vec::new(),
    };
    let line = |label: &str, points, color, width| Line {
        label: label.into(),
        points,
        color,
        width,
    };
    log_log(
        path,
        "Hot-plug replay against the window, 4096 valid TCEs (nested, KVM-HV)",
        Axes {
            x: 1 << 15..1 << 32,
            x_keys: (16..=31).step_by(3).map(|k| 1 << k).collect(),
            x_desc: "TCEs in the window",
            y: 1e5..1e12,
        },
        vec![
            line("QEMU's walk, KVM's tables (upstream)", qemu, 0, 3),
            line("QEMU's walk, extrapolated", extrapolated, 0, 1),
            line("the module's replay (tce-replay=on)", module, 1, 3),
        ],
    )
}

/// Draws `lines` (those with points) on log-log `axes` into the PNG at `path`.
fn log_log(path: &Path, caption: &str, axes: Axes, lines: Vec<Line>) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            axes.x.log_scale().with_key_points(axes.x_keys),
            axes.y.log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc("ns")
        .x_label_formatter(&|x| format!("2^{}", 63 - x.leading_zeros()))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()?;
    for line in lines.into_iter().filter(|l| !l.points.is_empty()) {
        let color = Palette99::pick(line.color).to_rgba();
        let style = ShapeStyle::from(&color).stroke_width(line.width);
        chart
            .draw_series(LineSeries::new(line.points.clone(), style))?
            .label(line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
