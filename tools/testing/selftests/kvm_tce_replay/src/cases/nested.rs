// SPDX-License-Identifier: GPL-2.0

//! The nested run: in the powernv VM (L1, KVM-HV, edu bound to vfio-pci), the series' QEMU
//! runs a pseries guest on KVM (L2) whose 64-bit DMA window already holds its RAM's TCEs when
//! edu is hot-plugged into it; twice, with `tce-replay=off` (KVM's tables, QEMU replays the
//! whole window) and `tce-replay=on` (the module's tables, its attach replays, QEMU skips).
//! The guest's DMA through edu must work after the plug and after an unplug and replug.

use crate::{cases::fuzz::arg, diag, ensure, ensure_eq, kvm, CaseResult, Stop};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The ppc64le QEMU tree, the L2 kernel and its /init, where the VM's initramfs puts them.
const QEMU: &str = "/usr/bin/qemu-system-ppc64";
const L2_KERNEL: &str = "/nested/vmlinux";
const L2_INITRD: &str = "/nested/initramfs.cpio";
const DEBUGFS_TABLES: &str = "/sys/kernel/debug/kvm_tce_replay/tables";
/// The guest's RAM: 256 MiB, 4096 TCEs of 64 KiB in its direct-mapped window.
const L2_RAM_MIB: u64 = 256;
const TCE_SHIFT: u32 = 16;

/// What the L2 guest prints on its console, line by line, and what QEMU's monitor answers.
struct L2 {
    qemu: Child,
    console_in: ChildStdin,
    console: Receiver<String>,
    monitor_in: std::fs::File,
    monitor: Receiver<u8>,
    /// Every console line so far (printed when something fails).
    log: Vec<String>,
}

/// Reads `r` into the channel, line by line or byte by byte, on a thread of its own.
fn lines(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn bytes(mut r: impl Read + Send + 'static) -> Receiver<u8> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 256];
        while let Ok(n @ 1..) = r.read(&mut b) {
            if b[..n].iter().any(|&c| tx.send(c).is_err()) {
                break;
            }
        }
    });
    rx
}

fn fifo(path: &str) -> Result<(), Stop> {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .map_err(|e| Stop::Fail(format!("mkfifo {path}: {e}")))
}

impl L2 {
    /// Starts QEMU: the pseries machine on KVM with VOF, the guest's RAM with room to grow to
    /// `maxmem_gib` (Linux sizes its direct-mapped window to span it), a virtio device whose
    /// driver makes the guest create that window, the monitor on a pipe.
    fn start(replay: bool, maxmem_gib: u64, trace: &str) -> Result<Self, Stop> {
        fifo("/tmp/l2mon.in")?;
        fifo("/tmp/l2mon.out")?;
        let machine = format!(
            "pseries,accel=kvm,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,\
             cap-ccf-assist=off,tce-replay={}",
            if replay { "on" } else { "off" }
        );
        let mut qemu = Command::new(QEMU)
            .args(["-machine", &machine, "-smp", "1", "-display", "none"])
            .args(["-m", &format!("{L2_RAM_MIB}M,slots=4,maxmem={maxmem_gib}G")])
            .args(["-kernel", L2_KERNEL, "-initrd", L2_INITRD])
            .args(["-append", "console=hvc0 quiet panic=-1", "-no-reboot"])
            // 64 KiB TCEs only: the host's (L1's) pages, which VFIO's window must use too.
            .args(["-global", "spapr-pci-host-bridge.pgsz=0x10000"])
            .args([
                "-device",
                "virtio-rng-pci,iommu_platform=on,disable-legacy=on,addr=1",
            ])
            .args([
                "-chardev",
                "pipe,id=mon,path=/tmp/l2mon",
                "-mon",
                "chardev=mon,mode=readline",
            ])
            .args([
                "-serial",
                "stdio",
                "-trace",
                trace,
                "-D",
                "/tmp/l2-trace.log",
            ])
            .args(["-msg", "timestamp=on"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Stop::Fail(format!("{QEMU}: {e}")))?;
        let console_in = qemu.stdin.take().unwrap();
        let console = lines(qemu.stdout.take().unwrap());
        let open = |p| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map_err(|e| Stop::Fail(format!("{p}: {e}")))
        };
        let monitor_in = open("/tmp/l2mon.in")?;
        let monitor = bytes(open("/tmp/l2mon.out")?);
        let mut l2 = Self {
            qemu,
            console_in,
            console,
            monitor_in,
            monitor,
            log: Vec::new(),
        };
        l2.prompt(Duration::from_secs(60))?;
        Ok(l2)
    }

    /// The monitor's output up to its next prompt.
    fn prompt(&mut self, timeout: Duration) -> Result<String, Stop> {
        let start = Instant::now();
        let mut out = Vec::new();
        while !out.ends_with(b"(qemu) ") {
            let left = timeout.saturating_sub(start.elapsed());
            match self.monitor.recv_timeout(left) {
                Ok(b) => out.push(b),
                Err(_) => {
                    return Err(self.fail(format!(
                        "no monitor prompt in {timeout:?}: {:?}",
                        String::from_utf8_lossy(&out)
                    )))
                }
            }
        }
        Ok(String::from_utf8_lossy(&out[..out.len() - 7]).into_owned())
    }

    /// One monitor command: its output (the echoed command left out) and how long it took.
    fn hmp(&mut self, cmd: &str) -> Result<(String, Duration), Stop> {
        let start = Instant::now();
        writeln!(self.monitor_in, "{cmd}").map_err(|e| Stop::Fail(format!("monitor: {e}")))?;
        let out = self.prompt(Duration::from_secs(600))?;
        let took = start.elapsed();
        let out = out
            .split_once('\n')
            .map_or("", |(_, o)| o)
            .trim()
            .to_string();
        Ok((out, took))
    }

    /// The guest's next `GUEST:` line (its text after the marker); an error line fails.
    fn guest(&mut self, timeout: Duration) -> Result<String, Stop> {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let line = match self.console.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.fail(format!("no word from the guest in {timeout:?}")))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.qemu.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(self.fail(format!("QEMU exited ({status})")));
                }
            };
            self.log.push(line.clone());
            if let Some(msg) = line.split_once("GUEST: ").map(|(_, m)| m.to_string()) {
                if msg.starts_with("error") {
                    return Err(self.fail(msg));
                }
                return Ok(msg);
            }
        }
    }

    /// Sends `cmd` to the guest's /init and waits for its answer.
    fn tell(&mut self, cmd: &str) -> Result<String, Stop> {
        writeln!(self.console_in, "{cmd}").map_err(|e| Stop::Fail(format!("console: {e}")))?;
        self.guest(Duration::from_secs(300))
    }

    /// A failure with the guest's console so far.
    fn fail(&self, why: String) -> Stop {
        for line in self.log.iter().rev().take(40).rev() {
            diag!("L2: {line}");
        }
        Stop::Fail(why)
    }
}

impl Drop for L2 {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// `key value` pairs of a `GUEST:` line, as numbers (hex with 0x).
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace().find_map(|kv| {
        let v = kv.strip_prefix(key)?.strip_prefix('=')?;
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    })
}

fn mem_free_kib() -> u64 {
    crate::fixture::mem_free() >> 10
}

/// The module's line for `liobn` in debugfs's `tables`, as `key value` pairs.
fn module_table(liobn: u64) -> Option<String> {
    std::fs::read_to_string(DEBUGFS_TABLES)
        .ok()?
        .lines()
        .find(|l| l.starts_with(&format!("liobn {liobn:#x}:")))
        .map(str::to_string)
}

fn module_stat(line: &str, key: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// What one plug of edu cost, as measured from L1.
#[derive(Debug)]
pub struct Plug {
    /// device_add's time on the monitor: VFIO's container, window, attach and replay.
    pub device_add: Duration,
    /// L1's MemFree before minus after the plug, in KiB.
    pub mem_kib: i64,
    /// The guest's longest RTAS call during device_add, in us: QEMU's big lock held.
    pub stall_us: u64,
    /// With the module: its table's pages and last replay (pages walked, TCEs, ns).
    pub module: Option<(u64, u64, u64, u64)>,
}

/// A run of one mode: the guest's window and each plug.
#[derive(Debug)]
pub struct Run {
    pub window_shift: u32,
    pub ram_tces: u64,
    pub plugs: Vec<Plug>,
    /// QEMU's trace: how often it skipped the replay and attached a group.
    pub skips: usize,
    pub attaches: usize,
    /// QEMU's walks of the 64-bit window: (entries, TCEs notified, ns).
    pub walks: Vec<(u64, u64, u64)>,
}

/// Plugs edu (`bdf`, bound to vfio-pci in L1) into a new L2 guest `plugs` times, with the
/// module's tables or KVM's.
pub fn run(replay: bool, maxmem_gib: u64, bdf: &str, plugs: usize) -> Result<Run, Stop> {
    let _ = std::fs::remove_file("/tmp/l2-trace.log");
    let mut l2 = L2::start(replay, maxmem_gib, "spapr_tce_replay_*")?;
    let ready = l2.guest(Duration::from_secs(600))?;
    diag!(
        "L2 (tce-replay={}): {ready}",
        if replay { "on" } else { "off" }
    );
    let (Some(liobn), Some(page_shift), Some(shift)) = (
        field(&ready, "liobn"),
        field(&ready, "page_shift"),
        field(&ready, "window_shift"),
    ) else {
        return Err(l2.fail(format!("the guest's window: {ready}")));
    };
    ensure_eq!(page_shift, TCE_SHIFT as u64);
    let ram_tces = (L2_RAM_MIB << 20) >> TCE_SHIFT;
    let mut run = Run {
        window_shift: shift as u32,
        ram_tces,
        plugs: Vec::new(),
        skips: 0,
        attaches: 0,
        walks: Vec::new(),
    };
    if replay {
        // The guest's direct mapping is in the module's table before any device is plugged.
        let t =
            module_table(liobn).ok_or_else(|| l2.fail(format!("no module table {liobn:#x}")))?;
        ensure_eq!(module_stat(&t, "entries"), Some(1 << (shift - page_shift)));
    }
    for i in 0..plugs {
        let free = mem_free_kib();
        l2.tell("stall")?;
        // After an unplug VFIO lets the device go when the last reference to it drops, after
        // an RCU grace period of QEMU's: until then device_add says it is still attached.
        let start = Instant::now();
        let (out, device_add) = loop {
            let (out, took) = l2.hmp(&format!("device_add vfio-pci,host={bdf},id=edu,addr=2"))?;
            if !out.contains("already attached") || start.elapsed() > Duration::from_secs(30) {
                break (out, took);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        ensure!(out.is_empty(), "device_add: {out}");
        let mem_kib = free as i64 - mem_free_kib() as i64;
        let stall = l2.tell("stall")?;
        let stall_us = field(&stall, "max_us").ok_or_else(|| l2.fail(stall.clone()))?;
        // The guest went on calling QEMU through the plug (none of its calls was lost).
        ensure!(
            field(&stall, "calls").is_some_and(|c| c > 0),
            "plug {i}: {stall}"
        );
        let module = if replay {
            let t = module_table(liobn).ok_or_else(|| l2.fail("module table gone".into()))?;
            let s = |k| module_stat(&t, k).unwrap_or(u64::MAX);
            Some((s("pages_allocated"), s("walked"), s("tces"), s("ns")))
        } else {
            None
        };
        let plugged = l2.tell("plug")?;
        ensure!(plugged.starts_with("plugged"), "plug {i}: {plugged}");
        let dma = l2.tell("dma")?;
        diag!(
            "plug {i}: device_add {device_add:?}, the guest stalled up to {stall_us} us, L1's MemFree fell {mem_kib} KiB, module (pages, walked, TCEs, ns) {module:?}; {plugged}; {dma}"
        );
        ensure!(
            dma == format!("dma {n}/{n} copies intact", n = 16),
            "plug {i}: the guest's DMA through edu: {dma}"
        );
        if let Some((_, _, tces, _)) = module {
            // The kernel replayed exactly the TCEs the guest's direct mapping put: its RAM.
            ensure_eq!(tces, ram_tces);
        }
        run.plugs.push(Plug {
            device_add,
            mem_kib,
            stall_us,
            module,
        });
        let (out, _) = l2.hmp("device_del edu")?;
        ensure!(out.is_empty(), "device_del: {out}");
        ensure_eq!(l2.tell("unplug")?, "unplugged");
        // QEMU removes the device once the guest isolated its slot.
        let start = Instant::now();
        while l2.hmp("info pci")?.0.contains("11e8") {
            ensure!(
                start.elapsed() < Duration::from_secs(60),
                "edu still plugged 60 s after the guest let it go"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if replay {
            // The group left the module's tables with the device (the kernel's count), once
            // QEMU's VFIO let the device go.
            let groups = || module_table(liobn).and_then(|t| module_stat(&t, "groups"));
            while groups() != Some(0) {
                ensure!(
                    start.elapsed() < Duration::from_secs(60),
                    "edu's group still attached to the window 60 s after the unplug: {:?}",
                    module_table(liobn)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // The trace is complete once QEMU has exited (VFIO lets the last device go after an RCU
    // grace period, and the log is flushed at exit).
    let _ = writeln!(l2.console_in, "poweroff");
    let start = Instant::now();
    while l2.qemu.try_wait().ok().flatten().is_none() {
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "QEMU still running 60 s after the guest's poweroff"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let trace = std::fs::read_to_string("/tmp/l2-trace.log").unwrap_or_default();
    let count = |ev: &str| trace.lines().filter(|l| l.contains(ev)).count();
    for l in trace.lines().filter(|l| !l.contains("set_slot")) {
        diag!("QEMU: {l}");
    }
    run.skips = count("spapr_tce_replay_skip");
    run.attaches = count("spapr_tce_replay_attach");
    // QEMU's own walks of the window (`walked N entries, notified M in T ns`), the DDW's.
    run.walks = trace
        .lines()
        .filter(|l| l.contains("spapr_tce_replay_walk") && l.contains(&format!("liobn={liobn:#x}")))
        .filter_map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            Some((*n.first()?, *n.get(1)?, *n.get(2)?))
        })
        .collect();
    Ok(run)
}

/// What the nested run needs: the ppc64le QEMU, the L2 guest, KVM-HV that runs guests, an edu
/// bound to vfio-pci.
pub fn need() -> Result<String, Stop> {
    crate::vfio::need_platform(true)?;
    for f in [QEMU, L2_KERNEL, L2_INITRD] {
        if !std::path::Path::new(f).exists() {
            return Err(Stop::Skip(format!(
                "{f} missing (the VM's initramfs carries it on powernv)"
            )));
        }
    }
    if let Some(why) = kvm::unavailable() {
        return Err(Stop::Skip(why));
    }
    Ok(crate::vfio::devices(1)?.remove(0))
}

/// Hot-plug into an existing window, both ways: DMA works after the plug and the replug; with
/// the module the kernel replayed the guest's TCEs and QEMU skipped, without it QEMU replayed.
pub fn nested_hotplug() -> CaseResult {
    let bdf = need()?;
    let maxmem = maxmem_gib(arg("nested_log2").unwrap_or(16) as u32);
    let off = run(false, maxmem, &bdf, 2)?;
    let on = run(true, maxmem, &bdf, 2)?;
    ensure_eq!(off.window_shift, on.window_shift);
    // QEMU's trace: with KVM's tables nothing of the series runs; with the module every plug
    // attached the group to the windows and skipped their replay (every unplug detached it:
    // checked in the kernel's count by `run`).
    ensure_eq!((off.skips, off.attaches), (0, 0));
    // Without the module QEMU walked every entry of the window at each plug, and found the
    // guest's RAM there; with it, never.
    ensure_eq!(off.walks.len(), 2);
    for &(entries, valid, _) in &off.walks {
        ensure_eq!(
            (entries, valid),
            (1 << (off.window_shift - TCE_SHIFT), off.ram_tces)
        );
    }
    ensure_eq!(on.walks.len(), 0);
    ensure!(
        on.skips >= 2,
        "QEMU skipped the replay {} times in 2 plugs",
        on.skips
    );
    ensure!(
        on.attaches >= 2,
        "QEMU attached {} groups in 2 plugs",
        on.attaches
    );
    let [kvm, module] = super::hcall_cost(2)?;
    diag!("one H_PUT_TCE: {kvm} ns into KVM's table (in the kernel), {module} ns into the module's (an exit to the VMM and an ioctl)");
    for (what, r) in [("off", &off), ("on", &on)] {
        for (i, p) in r.plugs.iter().enumerate() {
            diag!(
                "tce-replay={what} window 2^{} TCEs: plug {i}: device_add {:?}, L1's MemFree fell {} KiB",
                r.window_shift - TCE_SHIFT,
                p.device_add,
                p.mem_kib
            );
        }
    }
    Ok(())
}

/// The window of 2^`log2` TCEs of 64 KiB: `maxmem` such that Linux's direct window (a power of
/// two spanning the end of hotpluggable memory, which QEMU puts above RAM at a 1 GiB boundary)
/// is that size: three quarters of it.
fn maxmem_gib(log2: u32) -> u64 {
    (3u64 << (log2 + TCE_SHIFT)) >> 2 >> 30
}

/// `kvm_tce_replay_bench nested`: for windows of 2^16, 2^18, 2^21 and 2^24 TCEs, KVM's tables
/// with QEMU's replay and the module's, one plug and a replug each; prints
/// `nested,MODE,LOG2,PLUG,what,value` lines (device_add in ns, L1's MemFree drop in KiB, the
/// module's pages, replayed TCEs and replay ns) and returns the exit code.
pub fn bench() -> i32 {
    let bdf = match need() {
        Ok(b) => b,
        Err(e) => {
            println!("nested: cannot run: {e:?}");
            return 1;
        }
    };
    match super::hcall_cost(20) {
        Ok([kvm, module]) => {
            println!("nested,kvm,-,-,h_put_tce_ns,{kvm}");
            println!("nested,module,-,-,h_put_tce_ns,{module}");
        }
        Err(e) => println!("nested: H_PUT_TCE cost: failed: {e:?}"),
    }
    let sizes: Vec<u32> = arg("nested_log2").map_or(vec![16, 18, 21, 24], |l| vec![l as u32]);
    for log2 in sizes {
        for replay in [false, true] {
            let mode = if replay { "module" } else { "kvm" };
            match run(replay, maxmem_gib(log2), &bdf, 2) {
                Ok(r) => {
                    let got = r.window_shift - TCE_SHIFT;
                    for (i, p) in r.plugs.iter().enumerate() {
                        let mut out = vec![
                            ("device_add_ns", p.device_add.as_nanos() as u64),
                            ("memfree_drop_kib", p.mem_kib.max(0) as u64),
                            ("guest_stall_us", p.stall_us),
                        ];
                        if let Some(&(entries, valid, ns)) = r.walks.get(i) {
                            out.extend([
                                ("qemu_walked", entries),
                                ("qemu_notified", valid),
                                ("qemu_walk_ns", ns),
                            ]);
                        }
                        if let Some((pages, walked, tces, ns)) = p.module {
                            out.extend([
                                ("module_pages", pages),
                                ("module_walked", walked),
                                ("module_tces", tces),
                                ("module_replay_ns", ns),
                            ]);
                        }
                        for (what, v) in out {
                            println!("nested,{mode},{got},{i},{what},{v}");
                        }
                    }
                    println!("nested,{mode},{got},-,ram_tces,{}", r.ram_tces);
                }
                Err(e) => println!("nested: {mode} 2^{log2}: failed: {e:?}"),
            }
        }
    }
    println!("nested: done");
    0
}

super::register! {
    device nested_hotplug,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's direct window is the power of two above the end of hotpluggable memory, which
    /// QEMU's pseries puts at a 1 GiB boundary above RAM and makes maxmem - RAM long (plus its
    /// slots' alignment): with 256 MiB of RAM, maxmem_gib(log2) must end memory in the upper
    /// half of a window of 2^log2 64 KiB TCEs.
    #[test]
    fn maxmem_puts_the_window_at_the_size_asked() {
        for log2 in [16, 18, 21, 24] {
            let end = (1u64 << 30) + (maxmem_gib(log2) << 30) - (L2_RAM_MIB << 20);
            let window = end.next_power_of_two();
            assert_eq!(window, 1 << (log2 + TCE_SHIFT), "2^{log2}");
        }
    }

    #[test]
    fn guest_lines_are_read_as_numbers() {
        let l = "ready liobn=0x80000001 base=0x800000000000000 page_shift=16 window_shift=32";
        assert_eq!(field(l, "liobn"), Some(0x8000_0001));
        assert_eq!(field(l, "window_shift"), Some(32));
        assert_eq!(field(l, "shift"), None);
        let t = "liobn 0x80000001: entries 65536 pages_allocated 1 groups 0 replays 2";
        assert_eq!(module_stat(t, "groups"), Some(0));
        assert_eq!(module_stat(t, "entries"), Some(65536));
    }
}
