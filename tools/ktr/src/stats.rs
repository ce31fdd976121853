// SPDX-License-Identifier: GPL-2.0

//! `ktr stats`: the module's memory and every live table with its last replay, parsed from the
//! debugfs file the module writes (rust/stats.rs, `Summary`).

use serde::Serialize;
use std::path::Path;

/// The module's debugfs listing of live tables.
pub const TABLES: &str = "/sys/kernel/debug/kvm_tce_replay/tables";

/// The module-wide memory line.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Bytes live for tables and their TCE pages.
    pub table_bytes: u64,
    /// Bytes live for mock groups and their hardware pages.
    pub mock_bytes: u64,
}

/// What the last replay into a group did.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct LastReplay {
    /// TCE pages (or page slots, or entries, by strategy) walked.
    pub walked: u64,
    /// TCE slots looked at inside the walked pages.
    pub visited: u64,
    /// Valid TCEs replayed.
    pub tces: u64,
    /// Entries skipped as failing the `H_PUT_TCE` checks.
    pub skipped: u64,
    /// Hardware entries written.
    pub hw_entries: u64,
    /// Duration in nanoseconds.
    pub ns: u64,
}

/// One live table.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Its logical I/O bus number.
    pub liobn: u64,
    /// TCEs in the window.
    pub entries: u64,
    /// TCE pages allocated.
    pub pages_allocated: u64,
    /// IOMMU groups attached.
    pub groups: u64,
    /// Replays run.
    pub replays: u64,
    /// The last replay.
    pub last: LastReplay,
}

/// The whole listing.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The module's memory.
    pub memory: Memory,
    /// The live tables, in creation order.
    pub tables: Vec<Table>,
}

fn number(word: &str) -> Result<u64, String> {
    let parsed = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    };
    parsed.map_err(|_| format!("not a number: {word:?}"))
}

/// `liobn 0x1: entries 2 pages_allocated 3 ... last: walked 4 ... ns 9`.
fn table(line: &str) -> Result<Table, String> {
    let rest = line.strip_prefix("liobn ").ok_or("no liobn")?;
    let (liobn, rest) = rest.split_once(':').ok_or("no ':' after the liobn")?;
    let mut t = Table {
        liobn: number(liobn)?,
        ..Table::default()
    };
    let mut words = rest.split_whitespace();
    let mut last = false;
    while let Some(key) = words.next() {
        if key == "last:" {
            last = true;
            continue;
        }
        let value = number(words.next().ok_or(format!("no value for {key}"))?)?;
        let field = match (last, key) {
            (false, "entries") => &mut t.entries,
            (false, "pages_allocated") => &mut t.pages_allocated,
            (false, "groups") => &mut t.groups,
            (false, "replays") => &mut t.replays,
            (true, "walked") => &mut t.last.walked,
            (true, "visited") => &mut t.last.visited,
            (true, "tces") => &mut t.last.tces,
            (true, "skipped") => &mut t.last.skipped,
            (true, "hw_entries") => &mut t.last.hw_entries,
            (true, "ns") => &mut t.last.ns,
            _ => continue,
        };
        *field = value;
    }
    Ok(t)
}

/// Parses the debugfs file's text.
pub fn parse(text: &str) -> Result<Stats, String> {
    let mut stats = Stats::default();
    for line in text.lines() {
        if let Some(mem) = line.strip_prefix("memory: tables ") {
            // `memory: tables N B, mock groups M B`
            let (tables, mock) = mem
                .split_once(" B, mock groups ")
                .ok_or(format!("bad memory line {line:?}"))?;
            stats.memory = Memory {
                table_bytes: number(tables)?,
                mock_bytes: number(mock.trim_end_matches(" B"))?,
            };
        } else if line.starts_with("liobn ") {
            stats
                .tables
                .push(table(line).map_err(|e| format!("{e} in {line:?}"))?);
        }
    }
    Ok(stats)
}

/// Reads and parses `file`.
pub fn read(file: &Path) -> Result<Stats, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "{}: {e} (is the module loaded and debugfs mounted?)",
            file.display()
        )
    })?;
    parse(&text)
}

/// The listing as text lines, each starting with `prefix`.
pub fn lines(s: &Stats, prefix: &str) -> Vec<String> {
    let mut out = vec![format!(
        "{prefix}memory: tables {} B, mock groups {} B; {} live tables",
        s.memory.table_bytes,
        s.memory.mock_bytes,
        s.tables.len()
    )];
    for t in &s.tables {
        out.push(format!(
            "{prefix}liobn {:#x}: {} entries, {} TCE pages, {} groups, {} replays; last replay: \
             {} TCEs into {} hardware entries, {} walked, {} visited, {} skipped, {} us",
            t.liobn,
            t.entries,
            t.pages_allocated,
            t.groups,
            t.replays,
            t.last.tces,
            t.last.hw_entries,
            t.last.walked,
            t.last.visited,
            t.last.skipped,
            t.last.ns / 1000
        ));
    }
    out
}

/// Prints the listing of `file`.
pub fn run(file: &Path, json: bool) -> Result<bool, Box<dyn std::error::Error>> {
    let stats = read(file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        for line in lines(&stats, "stats: ") {
            println!("{line}");
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rust/stats.rs writes for two tables, one of them replayed.
    const LISTING: &str = "memory: tables 17408 B, mock groups 0 B\n\
        liobn 0x80000001: entries 2147483648 pages_allocated 32 groups 1 replays 2 last: \
        walked 32 visited 16384 tces 16384 skipped 0 hw_entries 262144 ns 1500000\n\
        liobn 0x5: entries 16 pages_allocated 0 groups 0 replays 0 last: walked 0 visited 0 \
        tces 0 skipped 0 hw_entries 0 ns 0\n";

    #[test]
    fn parses_the_module_listing() {
        let s = parse(LISTING).unwrap();
        assert_eq!(
            s.memory,
            Memory {
                table_bytes: 17408,
                mock_bytes: 0
            }
        );
        assert_eq!(s.tables.len(), 2);
        assert_eq!(
            s.tables[0],
            Table {
                liobn: 0x8000_0001,
                entries: 1 << 31,
                pages_allocated: 32,
                groups: 1,
                replays: 2,
                last: LastReplay {
                    walked: 32,
                    visited: 16384,
                    tces: 16384,
                    skipped: 0,
                    hw_entries: 1 << 18,
                    ns: 1_500_000,
                },
            }
        );
        assert_eq!(s.tables[1].liobn, 5);
        assert_eq!(s.tables[1].entries, 16);
    }

    #[test]
    fn no_table_and_json() {
        let s = parse("memory: tables 0 B, mock groups 4096 B\n").unwrap();
        assert!(s.tables.is_empty());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"memory":{"table_bytes":0,"mock_bytes":4096},"tables":[]}"#
        );
    }

    #[test]
    fn bad_lines_say_where() {
        let e = parse("liobn 0x1: entries many\n").unwrap_err();
        assert!(e.contains("\"many\"") && e.contains("liobn 0x1"), "{e}");
        assert!(parse("memory: tables 1 B\n").is_err());
    }

    #[test]
    fn text_lines() {
        let s = parse(LISTING).unwrap();
        let l = lines(&s, "stats: ");
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[0],
            "stats: memory: tables 17408 B, mock groups 0 B; 2 live tables"
        );
        assert!(l[1].starts_with("stats: liobn 0x80000001: 2147483648 entries, 32 TCE pages"));
        assert!(l[1].ends_with(
            "16384 TCEs into 262144 hardware entries, 32 walked, 16384 visited, 0 skipped, 1500 us"
        ));
    }
}
