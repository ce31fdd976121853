// SPDX-License-Identifier: GPL-2.0

//! The host side of a VM run: reads the guest's console log and decides whether the run passed.
//! The guest's /init (src/bin/init.rs) prints the `KTR:` marker lines this checks.

pub mod bench;

/// Taint bits a passing run may show: TAINT_OOT_MODULE ('O'), from loading our own module.
pub const ALLOWED_TAINT: u64 = 1 << 12;

/// Kernel messages that fail a run wherever they appear.
const KERNEL_FAILURES: &[&str] = &[
    "BUG:",
    "WARNING:",
    "Oops",
    "soft lockup",
    "hard LOCKUP",
    "detected stall",
    "self-detected stall",
    "KASAN",
    "Kernel panic",
    "general protection fault",
    "Unable to handle kernel",
    "segfault at",
];

/// What the check of a log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Every reason the run failed; empty if it passed.
    pub failures: Vec<String>,
    /// The TAP `# Totals:` line, if any.
    pub totals: Option<String>,
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks a console log. `need_totals` is false for modes that print no TAP (the demo).
pub fn check_log(log: &str, need_totals: bool) -> Verdict {
    let mut v = Verdict::default();
    let mut loaded = false;
    let mut harness_ok = false;
    let mut rmmod_ok = false;
    let mut taint_seen = false;
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("not ok ") {
            v.failures.push(format!("failed case: {line}"));
        }
        if line.starts_with("# Totals:") {
            v.totals = Some(line.to_string());
        }
        if let Some(bad) = KERNEL_FAILURES.iter().find(|p| line.contains(*p)) {
            v.failures.push(format!("kernel reported {bad:?}: {line}"));
        }
        if let Some(rest) = line.strip_prefix("KTR: ") {
            if rest.starts_with("module loaded") {
                loaded = true;
            } else if let Some(code) = rest.strip_prefix("harness exit ") {
                harness_ok = code.trim() == "0";
                if !harness_ok {
                    v.failures.push(format!("harness exited {}", code.trim()));
                }
            } else if let Some(t) = rest.strip_prefix("tainted ") {
                taint_seen = true;
                match t.trim().parse::<u64>() {
                    Ok(t) if t & !ALLOWED_TAINT == 0 => {}
                    _ => v
                        .failures
                        .push(format!("kernel tainted {} (allowed: 4096)", t.trim())),
                }
            } else if rest.starts_with("rmmod ok") {
                rmmod_ok = true;
            } else if rest.starts_with("rmmod failed") || rest.starts_with("error") {
                v.failures.push(line.to_string());
            }
        }
    }
    if !loaded {
        v.failures.push("the module was not loaded".into());
    }
    if loaded && !harness_ok && !v.failures.iter().any(|f| f.starts_with("harness exited")) {
        v.failures.push("the harness did not finish".into());
    }
    if need_totals && v.totals.is_none() {
        v.failures.push("no '# Totals:' line".into());
    }
    if !taint_seen {
        v.failures.push("no taint report".into());
    }
    if !rmmod_ok {
        v.failures.push("the module was not unloaded".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[    0.1] Linux version 7.3\nKTR: module loaded\nTAP version 13\n1..1\n\
        ok 1 a\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\nKTR: harness exit 0\n\
        KTR: tainted 4096\nKTR: rmmod ok\n";

    #[test]
    fn a_clean_run_passes() {
        let v = check_log(GOOD, true);
        assert_eq!(v.failures, Vec::<String>::new());
        assert!(v.totals.unwrap().contains("pass:1"));
    }

    #[test]
    fn each_rule_fails_a_run() {
        let bad = [
            GOOD.replace("ok 1 a", "not ok 1 a"),
            GOOD.replace(
                "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n",
                "",
            ),
            GOOD.replace("KTR: rmmod ok", "KTR: rmmod failed: EBUSY"),
            GOOD.replace("KTR: rmmod ok", ""),
            GOOD.replace("tainted 4096", "tainted 4608"),
            GOOD.replace("harness exit 0", "harness exit 1"),
            GOOD.replace("KTR: harness exit 0\n", ""),
            GOOD.replace("KTR: module loaded\n", ""),
            format!("{GOOD}[ 3.0] WARNING: CPU: 0 PID: 1 at mm/memory.c:1\n"),
            format!("{GOOD}[ 3.0] BUG: kernel NULL pointer dereference\n"),
            format!("{GOOD}[ 30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!\n"),
            format!("{GOOD}[ 30.0] rcu: INFO: rcu_sched self-detected stall on CPU\n"),
            format!("{GOOD}[ 3.0] Oops: general protection fault\n"),
        ];
        for log in &bad {
            assert!(!check_log(log, true).passed(), "passed: {log}");
        }
    }

    #[test]
    fn demo_needs_no_totals() {
        let demo = GOOD.replace(
            "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n",
            "",
        );
        assert!(check_log(&demo, false).passed());
    }
}
