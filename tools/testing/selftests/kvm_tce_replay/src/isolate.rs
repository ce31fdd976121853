// SPDX-License-Identifier: GPL-2.0

//! Runs each case in a forked child with a time limit, as kselftest's harness runs its tests,
//! so that a case that crashes (a signal, a panic, which aborts) or hangs gives `not ok` for
//! itself and the run goes on to the next case and to its Totals line.

use crate::{tap::Outcome, CaseResult, Stop};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long a case may take: the longest, the fuzzer's budget on the x86_64 debug kernel under
/// TCG, takes about a minute.
pub const LIMIT: Duration = Duration::from_secs(300);

/// Runs `case` in a child process and returns how it ended: its own result, passed back
/// through a pipe, or a failure if it died, exited without one, or outlived `limit` (then it is
/// killed).
pub fn run(case: fn() -> CaseResult, limit: Duration) -> Outcome {
    // Nothing buffered twice: the child inherits the buffer.
    let _ = std::io::stdout().flush();
    // Close-on-exec: a helper process a case spawns (and that may outlive it, unkillable in the
    // kernel) does not hold the write end, whose EOF tells that the case is over.
    let (read_end, write_end) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(ends) => ends,
        Err(e) => return Outcome::Fail(format!("pipe: {e:?}")),
    };
    // SAFETY: the runner has one thread when it forks (every case's threads lived and ended in
    // that case's child); the child runs the case, writes its result and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Outcome::Fail("fork failed".into());
    }
    if pid == 0 {
        drop(read_end);
        let result = match case() {
            Ok(()) => "P".to_string(),
            Err(Stop::Fail(why)) => format!("F{why}"),
            Err(Stop::Skip(why)) => format!("S{why}"),
        };
        let _ = File::from(write_end).write_all(result.as_bytes());
        let _ = std::io::stdout().flush();
        // SAFETY: ends the child without running the parent's exit handlers twice.
        unsafe { libc::_exit(0) };
    }
    drop(write_end);
    let mut pipe = File::from(read_end);
    let (result, timed_out) = read_until(&mut pipe, Instant::now() + limit);
    if timed_out {
        // SAFETY: `pid` is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut status = 0;
    // SAFETY: reaps our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if timed_out {
        return Outcome::Fail(format!("timed out after {} s: killed", limit.as_secs()));
    }
    decode(&result, status)
}

/// Reads `pipe` to its end or until `deadline`; returns what it read and whether time ran out.
fn read_until(pipe: &mut File, deadline: Instant) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, true);
        }
        let mut pfd = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(1000) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            continue;
        }
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The outcome a child's `result` and wait `status` stand for.
fn decode(result: &[u8], status: i32) -> Outcome {
    let text = || String::from_utf8_lossy(&result[1..]).into_owned();
    match result.first() {
        Some(b'P') => Outcome::Pass,
        Some(b'F') => Outcome::Fail(text()),
        Some(b'S') => Outcome::Skip(text()),
        _ if libc::WIFSIGNALED(status) => {
            Outcome::Fail(format!("died of signal {}", libc::WTERMSIG(status)))
        }
        _ => Outcome::Fail(format!(
            "exited with {} without a result",
            libc::WEXITSTATUS(status)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes() -> CaseResult {
        Ok(())
    }

    fn skips() -> CaseResult {
        Err(Stop::Skip("no such thing".into()))
    }

    fn fails() -> CaseResult {
        Err(Stop::Fail("wrong".into()))
    }

    fn crashes() -> CaseResult {
        // What a panic does with panic=abort.
        std::process::abort()
    }

    fn exits() -> CaseResult {
        std::process::exit(3)
    }

    fn hangs() -> CaseResult {
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn every_ending_of_a_case_is_reported() {
        let limit = Duration::from_secs(20);
        assert_eq!(run(passes, limit), Outcome::Pass);
        assert_eq!(run(skips, limit), Outcome::Skip("no such thing".into()));
        assert_eq!(run(fails, limit), Outcome::Fail("wrong".into()));
        assert_eq!(
            run(crashes, limit),
            Outcome::Fail(format!("died of signal {}", libc::SIGABRT))
        );
        assert_eq!(
            run(exits, limit),
            Outcome::Fail("exited with 3 without a result".into())
        );
        let start = Instant::now();
        assert_eq!(
            run(hangs, Duration::from_secs(1)),
            Outcome::Fail("timed out after 1 s: killed".into())
        );
        assert!(start.elapsed() < Duration::from_secs(30));
    }
}
