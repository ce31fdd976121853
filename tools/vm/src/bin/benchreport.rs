// SPDX-License-Identifier: GPL-2.0

//! `benchreport LOG OUTDIR`: writes OUTDIR/bench.md and OUTDIR/bench.csv from a bench run's
//! console log and prints the report. The benchmark never fails a run: exits 0 unless the log
//! holds no figures.

use ktr_vm::bench::{parse, report};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(log), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: benchreport LOG OUTDIR");
        std::process::exit(2);
    };
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    let (platform, figures) = parse(&text);
    if figures.is_empty() {
        eprintln!("benchreport: no bench figures in {log}");
        std::process::exit(1);
    }
    let (md, csv, _) = report(&platform, &figures);
    let write = |name: &str, body: &str| {
        let path = std::path::Path::new(out).join(name);
        if let Err(e) = std::fs::create_dir_all(out).and_then(|()| std::fs::write(&path, body)) {
            eprintln!("benchreport: {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    write("bench.md", &md);
    write("bench.csv", &csv);
    print!("{md}");
}
