// SPDX-License-Identifier: GPL-2.0

//! `make profile`'s post-processing of perf output, whose Rust symbols (v0 mangling) perf cannot
//! demangle itself: `flamegraph demangle` copies stdin to stdout with every mangled Rust symbol
//! demangled (rustc-demangle, without hashes); `flamegraph PERF_SCRIPT OUT_SVG TITLE` folds
//! the stacks of a `perf script` dump (inferno's perf collapser, as stackcollapse-perf.pl) and
//! draws them as an SVG flame graph.

use inferno::collapse::{perf::Folder, Collapse};
use inferno::flamegraph::{self, Options};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};

/// `line` with each mangled Rust symbol (`_R...` or `_ZN...E`) demangled.
fn demangle_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("_R").into_iter().chain(rest.find("_ZN")).min() {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$'))
            .map_or(rest.len(), |n| at + n);
        let symbol = &rest[at..end];
        match rustc_demangle::try_demangle(symbol) {
            Ok(d) => out.push_str(&format!("{d:#}")),
            Err(_) => out.push_str(symbol),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn demangle(input: impl Read, mut output: impl Write) -> std::io::Result<()> {
    for line in BufReader::new(input).lines() {
        writeln!(output, "{}", demangle_line(&line?))?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("demangle") {
        return demangle(
            std::io::stdin().lock(),
            BufWriter::new(std::io::stdout().lock()),
        );
    }
    let [input, output, title] = args.as_slice() else {
        eprintln!("usage: flamegraph demangle | flamegraph PERF_SCRIPT OUT_SVG TITLE");
        std::process::exit(2);
    };
    let mut script = Vec::new();
    demangle(File::open(input)?, &mut script)?;
    let mut folded = Vec::new();
    Folder::default().collapse(script.as_slice(), &mut folded)?;
    let mut options = Options::default();
    options.title = title.clone();
    options.count_name = "samples".into();
    flamegraph::from_reader(
        &mut options,
        folded.as_slice(),
        BufWriter::new(File::create(output)?),
    )
}

#[cfg(test)]
mod tests {
    use super::demangle_line;

    #[test]
    fn demangles_rust_symbols_in_place() {
        let line = "  3.1% [.] _RNvNtCsg6dQY8qLjb9_19kvm_tce_replay_main6replay6replay xas_find";
        assert_eq!(
            demangle_line(line),
            "  3.1% [.] kvm_tce_replay_main::replay::replay xas_find"
        );
        assert_eq!(demangle_line("memset_orig _Rbad"), "memset_orig _Rbad");
    }
}
