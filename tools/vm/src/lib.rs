// SPDX-License-Identifier: GPL-2.0

//! The host side of a VM run: reads the guest's console log and decides whether the run passed.
//! The guest's /init (src/bin/init.rs) prints the `KTR:` marker lines this checks.

pub mod bench;

/// Taint bits a passing run may show: TAINT_OOT_MODULE ('O'), from loading our own module, and
/// TAINT_TEST ('N'), from the KUnit tests of a kernel with the module built in.
pub const ALLOWED_TAINT: u64 = 1 << 12 | 1 << 18;

/// The KUnit suite of the module's internals (in kernels that have the module built in).
const KUNIT_SUITE: &str = "kvm_tce_replay";

/// A console line without its printk timestamp (`[    1.234567] `) and KTAP indentation.
fn untimed(line: &str) -> &str {
    let line = line.trim_start();
    let line = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest,
        None => line,
    };
    line.trim_start()
}

/// Whether `line` is KUnit's passing result line of the module's suite.
fn kunit_suite_passed(line: &str) -> bool {
    let line = untimed(line);
    line.strip_prefix("ok ")
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(n, name)| n.parse::<u32>().is_ok() && name.trim_end() == KUNIT_SUITE)
}

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
    "UBSAN:",
    "unreferenced object",
    "blocked for more than",
    "Kernel panic",
    "general protection fault",
    "Unable to handle kernel",
    "segfault at",
];

/// A VM run's mode (`ktr.mode=` on the kernel command line, the second argument of
/// tools/vm/run.sh): the one table of the modes, which `/init` reads for the programs to run and
/// the log checker for the TAP to expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The suite (`kvm_tce_replay_test`).
    Test,
    /// The suite through the installed kselftest tree's `run_kselftest.sh`.
    Kselftest,
    /// The benchmark (`kvm_tce_replay_bench`).
    Bench,
    /// The benchmark's replays repeated for `make profile`.
    Profile,
    /// The fuzzer (`kvm_tce_replay_fuzz`).
    Fuzz,
    /// `ktr probe` and `ktr demo`, `make run`'s job.
    Demo,
}

impl Mode {
    /// Every mode with its name.
    pub const ALL: [(&'static str, Mode); 6] = [
        ("test", Mode::Test),
        ("kselftest", Mode::Kselftest),
        ("bench", Mode::Bench),
        ("profile", Mode::Profile),
        ("fuzz", Mode::Fuzz),
        ("demo", Mode::Demo),
    ];

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<Mode> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, m)| m)
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |&(n, _)| n)
    }

    /// The TAP a run of this mode prints.
    pub fn tap(self) -> Tap {
        match self {
            Mode::Test => Tap::Suite,
            Mode::Kselftest => Tap::Nested,
            Mode::Bench | Mode::Profile | Mode::Fuzz | Mode::Demo => Tap::None,
        }
    }
}

/// What TAP a run prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    /// None (the demo, the benchmark).
    None,
    /// The suite's own, with its `# Totals:` line.
    Suite,
    /// kselftest's runner's, with the suite's nested in it behind `# ` (the runner's Totals
    /// line and the suite's).
    Nested,
}

/// A TAP line without the `# ` prefixes of its nesting, and how deep it was: kselftest's runner
/// prints a program's output behind `# `. A `# Totals:` line is a diagnostic of the level one
/// prefix up.
fn nested(line: &str) -> (usize, &str) {
    let mut rest = untimed(line);
    let mut depth = 0usize;
    while let Some(r) = rest.strip_prefix("# ") {
        rest = r;
        depth += 1;
    }
    if rest.starts_with("Totals:") {
        (depth.saturating_sub(1), rest)
    } else {
        (depth, rest)
    }
}

/// What the check of a log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Every reason the run failed; empty if it passed.
    pub failures: Vec<String>,
    /// The suite's TAP `# Totals:` line, if any.
    pub totals: Option<String>,
    /// The Totals line of kselftest's runner, if any (a nested run).
    pub runner_totals: Option<String>,
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks a console log whose programs print `tap`.
pub fn check_log(log: &str, tap: Tap) -> Verdict {
    let mut v = Verdict::default();
    let mut loaded = false;
    let mut harness_ok = false;
    let mut rmmod_ok = false;
    let mut built_in = false;
    let mut taint_seen = false;
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        let (depth, tap_line) = nested(line);
        if tap_line.starts_with("not ok ") {
            v.failures.push(format!("failed case: {line}"));
        }
        if tap_line.starts_with("Totals:") {
            match (tap, depth) {
                (Tap::Nested, 0) => v.runner_totals = Some(line.to_string()),
                (Tap::Nested, 1) | (Tap::Suite | Tap::None, 0) => v.totals = Some(line.to_string()),
                _ => v
                    .failures
                    .push(format!("Totals line nested {depth} deep: {line}")),
            }
        }
        if let Some(bad) = KERNEL_FAILURES.iter().find(|p| line.contains(*p)) {
            v.failures.push(format!("kernel reported {bad:?}: {line}"));
        }
        if let Some(rest) = line.strip_prefix("KTR: ") {
            if rest.starts_with("module loaded") {
                loaded = true;
            } else if rest.starts_with("module built in") {
                (loaded, built_in) = (true, true);
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
    if tap != Tap::None && v.totals.is_none() {
        v.failures.push("no '# Totals:' line of the suite".into());
    }
    if tap == Tap::Nested && v.runner_totals.is_none() {
        v.failures
            .push("no '# Totals:' line of kselftest's runner".into());
    }
    if !taint_seen {
        v.failures.push("no taint report".into());
    }
    // A built-in module (UML) cannot be unloaded; its KUnit suite must have passed instead.
    if built_in {
        if !log.lines().any(kunit_suite_passed) {
            v.failures
                .push("the module's KUnit suite did not pass".into());
        }
    } else if !rmmod_ok {
        v.failures.push("the module was not unloaded".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name() {
        for (name, mode) in Mode::ALL {
            assert_eq!(Mode::from_name(name), Some(mode));
            assert_eq!(mode.name(), name);
        }
        assert_eq!(Mode::from_name("tset"), None);
        assert_eq!(
            Mode::from_name("kselftest").map(Mode::tap),
            Some(Tap::Nested)
        );
    }

    const GOOD: &str = "[    0.1] Linux version 7.3\nKTR: module loaded\nTAP version 13\n1..1\n\
        ok 1 a\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\nKTR: harness exit 0\n\
        KTR: tainted 4096\nKTR: rmmod ok\n";

    #[test]
    fn a_clean_run_passes() {
        let v = check_log(GOOD, Tap::Suite);
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
            format!("{GOOD}[ 3.0] BUG: KASAN: slab-use-after-free in xa_load+0x1/0x2\n"),
            format!("{GOOD}[ 3.0] UBSAN: shift-out-of-bounds in mm/memory.c:1:2\n"),
            format!("{GOOD}KTR: kmemleak: unreferenced object 0xffff888 (size 64):\n"),
            format!(
                "{GOOD}[ 40.0] INFO: task kvm_tce_replay_:37 blocked for more than 30 seconds.\n"
            ),
            format!(
                "{GOOD}[ 3.0] BUG: sleeping function called from invalid context at mm/slub.c:1\n"
            ),
        ];
        for log in &bad {
            assert!(!check_log(log, Tap::Suite).passed(), "passed: {log}");
        }
    }

    /// A UML run: the module is built in and its KUnit suite ran at boot.
    const BUILT_IN: &str = "[    0.1] Linux version 7.3\n[    0.2]     KTAP version 1\n\
        [    0.2]     # Subtest: kvm_tce_replay\n[    0.2]     ok 1 sparse_map\n\
        [    0.3] ok 1 kvm_tce_replay\nKTR: module built in\nTAP version 13\n1..1\nok 1 a\n\
        # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\nKTR: harness exit 0\n\
        KTR: tainted 266240\n";

    #[test]
    fn a_built_in_module_needs_its_kunit_suite_not_rmmod() {
        assert_eq!(
            check_log(BUILT_IN, Tap::Suite).failures,
            Vec::<String>::new()
        );
        let bad = [
            BUILT_IN.replace("[    0.3] ok 1 kvm_tce_replay\n", ""),
            BUILT_IN.replace("ok 1 kvm_tce_replay", "not ok 1 kvm_tce_replay"),
            BUILT_IN.replace("    ok 1 sparse_map", "    not ok 1 sparse_map"),
            BUILT_IN.replace("ok 1 kvm_tce_replay", "ok 1 other_suite"),
            BUILT_IN.replace("tainted 266240", "tainted 266241"),
        ];
        for log in &bad {
            assert!(!check_log(log, Tap::Suite).passed(), "passed: {log}");
        }
    }

    #[test]
    fn demo_needs_no_totals() {
        let demo = GOOD.replace(
            "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n",
            "",
        );
        assert!(check_log(&demo, Tap::None).passed());
    }

    /// The x86_64 run through kselftest's runner: the suite's TAP behind `# `.
    const NESTED: &str = "KTR: module loaded\nTAP version 13\n1..1\n\
        # timeout set to 1200\n# selftests: kvm_tce_replay: kvm_tce_replay_test\n\
        # TAP version 13\n# 1..2\n# ok 1 a\n# ok 2 b # SKIP no mock\n\
        # # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0\n\
        ok 1 selftests: kvm_tce_replay: kvm_tce_replay_test\n\
        # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\nKTR: harness exit 0\n\
        KTR: tainted 4096\nKTR: rmmod ok\n";

    #[test]
    fn a_nested_run_needs_both_totals_and_no_failed_case_at_any_depth() {
        let v = check_log(NESTED, Tap::Nested);
        assert_eq!(v.failures, Vec::<String>::new());
        assert!(v
            .totals
            .unwrap()
            .contains("pass:1 fail:0 xfail:0 xpass:0 skip:1"));
        assert!(v.runner_totals.unwrap().contains("skip:0"));
        let bad = [
            NESTED.replace("# ok 1 a", "# not ok 1 a"),
            NESTED.replace("ok 1 selftests", "not ok 1 selftests"),
            NESTED.replace(
                "# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0\n",
                "",
            ),
            NESTED.replace(
                "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n",
                "",
            ),
            // The suite skipped as a whole (no device): no Totals of its own.
            NESTED.replace("# 1..2", "# 1..0 # SKIP no device").replace(
                "# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0\n",
                "",
            ),
        ];
        for log in &bad {
            assert!(!check_log(log, Tap::Nested).passed(), "passed: {log}");
        }
        // The suite's log is not a nested one, nor the other way round.
        assert!(!check_log(NESTED, Tap::Suite).passed());
        assert!(!check_log(GOOD, Tap::Nested).passed());
    }
}
