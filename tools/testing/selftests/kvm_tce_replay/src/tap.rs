// SPDX-License-Identifier: GPL-2.0

//! kselftest TAP output: the plan, one `ok`/`not ok` line per case, `# SKIP`, the closing
//! `# Totals:` line and the kselftest exit codes.

use std::fmt;

/// kselftest's exit code when every case passed (KSFT_PASS).
pub const KSFT_PASS: i32 = 0;
/// kselftest's exit code when a case failed (KSFT_FAIL).
pub const KSFT_FAIL: i32 = 1;
/// kselftest's exit code when every case was skipped (KSFT_SKIP).
pub const KSFT_SKIP: i32 = 4;

/// How a case ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Counts and prints results as they come.
#[derive(Default)]
pub struct Tap {
    next: usize,
    pass: usize,
    fail: usize,
    skip: usize,
    out: String,
}

impl Tap {
    /// Starts the output with the header and the plan of `cases` cases.
    pub fn new(cases: usize) -> Self {
        let mut tap = Self::default();
        tap.line(format_args!("TAP version 13"));
        tap.line(format_args!("1..{cases}"));
        tap
    }

    fn line(&mut self, args: fmt::Arguments<'_>) {
        let s = format!("{args}\n");
        print!("{s}");
        self.out.push_str(&s);
    }

    /// A diagnostic line (`# ...`).
    pub fn diag(&mut self, args: fmt::Arguments<'_>) {
        for l in format!("{args}").lines() {
            self.line(format_args!("# {l}"));
        }
    }

    /// Reports the next case.
    pub fn result(&mut self, name: &str, outcome: &Outcome) {
        self.next += 1;
        let n = self.next;
        match outcome {
            Outcome::Pass => {
                self.pass += 1;
                self.line(format_args!("ok {n} {name}"));
            }
            Outcome::Fail(why) => {
                self.fail += 1;
                self.diag(format_args!("{name}: {why}"));
                self.line(format_args!("not ok {n} {name}"));
            }
            Outcome::Skip(why) => {
                self.skip += 1;
                self.line(format_args!("ok {n} {name} # SKIP {why}"));
            }
        }
    }

    /// Prints the Totals line and returns the kselftest exit code.
    pub fn finish(mut self) -> i32 {
        let (pass, fail, skip) = (self.pass, self.fail, self.skip);
        self.line(format_args!(
            "# Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skip} error:0"
        ));
        if fail > 0 {
            KSFT_FAIL
        } else if pass == 0 && skip > 0 {
            KSFT_SKIP
        } else {
            KSFT_PASS
        }
    }

    /// Everything printed so far.
    #[cfg(test)]
    pub fn output(&self) -> &str {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_kselftest_tap() {
        let mut tap = Tap::new(3);
        tap.result("a", &Outcome::Pass);
        tap.result("b", &Outcome::Fail("x was 1\nnot 2".into()));
        tap.result("c", &Outcome::Skip("no mock".into()));
        let out = tap.output().to_string();
        assert_eq!(
            out,
            "TAP version 13\n1..3\nok 1 a\n# b: x was 1\n# not 2\nnot ok 2 b\nok 3 c # SKIP no mock\n"
        );
        assert_eq!(tap.finish(), KSFT_FAIL);
    }

    #[test]
    fn exit_codes() {
        let mut tap = Tap::new(1);
        tap.result("a", &Outcome::Skip("s".into()));
        assert_eq!(tap.finish(), KSFT_SKIP);
        let mut tap = Tap::new(1);
        tap.result("a", &Outcome::Pass);
        assert_eq!(tap.finish(), KSFT_PASS);
    }
}
