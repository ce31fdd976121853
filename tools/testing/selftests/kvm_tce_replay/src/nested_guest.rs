// SPDX-License-Identifier: GPL-2.0

//! The nested run's L2 guest: the /init of a pseries guest under QEMU on KVM-HV, which reports
//! its 64-bit DMA window, takes QEMU's hot-plugged edu device in as drmgr would (RTAS
//! set-indicator, /sys/kernel/dlpar's "dt add", rpaphp's slot power) and has it copy memory
//! through the TCEs the guest mapped before the device existed; commands come on the console.

use crate::vfio::{pattern, Edu, Memory};
use rustix::mount::{mount, MountFlags};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// RTAS's sensor and indicator numbers for dynamic reconfiguration (PAPR, LoPAR 13.5.3).
const DR_ENTITY_SENSE: u32 = 9003;
const ISOLATION_STATE: u32 = 9001;
const PRESENT: u32 = 1;
const UNISOLATE: u32 = 1;
const ISOLATE: u32 = 0;
/// The pages each DMA check moves data through.
const DMA_PAGES: usize = 16;

type Res<T> = std::result::Result<T, String>;

/// The device tree as /proc shows it.
const DT: &str = "/proc/device-tree";

fn be32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn read(path: impl AsRef<Path>) -> Res<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: impl AsRef<Path>, what: &str) -> Res<()> {
    let path = path.as_ref();
    std::fs::write(path, what).map_err(|e| format!("{} <- {what:?}: {e}", path.display()))
}

/// The RTAS token of `name`, from the device tree.
fn token(name: &str) -> Res<u32> {
    Ok(be32s(&read(Path::new(DT).join("rtas").join(name))?)[0])
}

/// One RTAS call through the rtas syscall: `name`'s token, `args` in, the status and
/// `nret - 1` outputs back.
fn rtas(name: &str, args: &[u32], nret: usize) -> Res<Vec<u32>> {
    rtas_call(name, token(name)?, args, nret)
}

fn rtas_call(name: &str, token: u32, args: &[u32], nret: usize) -> Res<Vec<u32>> {
    // struct rtas_args: token, nargs, nret, then args and rets, all big-endian.
    let mut buf = [0u32; 3 + 16];
    buf[0] = token.to_be();
    buf[1] = (args.len() as u32).to_be();
    buf[2] = (nret as u32).to_be();
    for (b, a) in buf[3..].iter_mut().zip(args) {
        *b = a.to_be();
    }
    syscall_rtas(&mut buf).map_err(|e| format!("rtas {name}: {e}"))?;
    let rets: Vec<u32> = buf[3 + args.len()..3 + args.len() + nret]
        .iter()
        .map(|r| u32::from_be(*r))
        .collect();
    match rets[0] as i32 {
        0 => Ok(rets),
        status => Err(format!("rtas {name}{args:x?}: status {status}")),
    }
}

#[cfg(target_arch = "powerpc64")]
fn syscall_rtas(buf: &mut [u32; 19]) -> std::io::Result<()> {
    // SAFETY: sys_rtas reads the header and nargs arguments from `buf` and writes nret results
    // after them, all inside the 19 words of the exclusively borrowed buffer.
    match unsafe { libc::syscall(libc::SYS_rtas, buf.as_mut_ptr()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_arch = "powerpc64"))]
fn syscall_rtas(_: &mut [u32; 19]) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

/// The guest's PCI host bridge: its device-tree node.
fn phb() -> Res<PathBuf> {
    std::fs::read_dir(DT)
        .map_err(|e| format!("{DT}: {e}"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pci@"))
        })
        .ok_or_else(|| "no pci@ node in the device tree".into())
}

/// The DMA window Linux created and mapped all RAM into (`linux,direct64-ddr-window-info`).
struct Window {
    liobn: u32,
    base: u64,
    page_shift: u32,
    shift: u32,
}

fn window() -> Res<Window> {
    let raw = read(phb()?.join("linux,direct64-ddr-window-info"))
        .map_err(|e| format!("no direct-mapped 64-bit window: {e}"))?;
    Window::parse(&raw)
}

impl Window {
    fn parse(raw: &[u8]) -> Res<Self> {
        // struct dynamic_dma_window_prop (arch/powerpc/platforms/pseries/iommu.c), not packed:
        // the 64-bit address is aligned, after a word of padding.
        let w = be32s(raw);
        if w.len() != 6 {
            return Err(format!(
                "linux,direct64-ddr-window-info: {} bytes",
                raw.len()
            ));
        }
        Ok(Window {
            liobn: w[0],
            base: (w[2] as u64) << 32 | w[3] as u64,
            page_shift: w[4],
            shift: w[5],
        })
    }
}

/// The PHB's connectors: (DRC index, name), from ibm,drc-indexes and ibm,drc-names.
fn connectors() -> Res<Vec<(u32, String)>> {
    let phb = phb()?;
    pair_connectors(
        &read(phb.join("ibm,drc-indexes"))?,
        &read(phb.join("ibm,drc-names"))?,
    )
}

/// PAPR's encodings: a count, then that many big-endian indexes, or NUL-terminated names.
fn pair_connectors(indexes: &[u8], names: &[u8]) -> Res<Vec<(u32, String)>> {
    let indexes = be32s(indexes);
    let n = *indexes.first().ok_or("empty ibm,drc-indexes")? as usize;
    let names: Vec<String> = names
        .get(4..)
        .ok_or("empty ibm,drc-names")?
        .split(|&b| b == 0)
        .take(n)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    if indexes.len() != n + 1 || names.len() != n || names.iter().any(String::is_empty) {
        return Err(format!(
            "{n} connectors, {} indexes, {} names",
            indexes.len() - 1,
            names.len()
        ));
    }
    Ok(indexes[1..].iter().copied().zip(names).collect())
}

fn present(drc: u32) -> bool {
    matches!(rtas("get-sensor-state", &[DR_ENTITY_SENSE, drc], 2), Ok(r) if r[1] == PRESENT)
}

/// A slot QEMU has just filled: present now, absent when the guest booted.
fn new_slot(at_boot: &[u32]) -> Res<(u32, String)> {
    let start = Instant::now();
    loop {
        if let Some(c) = connectors()?
            .into_iter()
            .find(|(drc, _)| !at_boot.contains(drc) && present(*drc))
        {
            return Ok(c);
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err("no slot became present in 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// edu's PCI address, once the guest has it.
fn edu() -> Option<String> {
    std::fs::read_dir("/sys/bus/pci/devices")
        .ok()?
        .flatten()
        .find(|d| {
            let id = |f| std::fs::read_to_string(d.path().join(f)).unwrap_or_default();
            id("vendor").trim() == "0x1234" && id("device").trim() == "0x11e8"
        })
        .map(|d| d.file_name().to_string_lossy().into_owned())
}

/// The physical address of the byte at `addr` of this process (its page present and locked).
fn physical(addr: u64) -> Res<u64> {
    let page = rustix::param::page_size() as u64;
    let f = std::fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
    let mut entry = [0u8; 8];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut entry, addr / page * 8)
        .map_err(|e| format!("pagemap: {e}"))?;
    let entry = u64::from_le_bytes(entry);
    if entry >> 63 == 0 {
        return Err(format!("{addr:#x} not present"));
    }
    Ok((entry & ((1 << 55) - 1)) * page + addr % page)
}

/// edu copies 4 KiB from the start of each of `DMA_PAGES` pages to its middle, through the
/// window's TCEs (bus address: the window's base plus the physical address): the result says
/// how many copies arrived intact.
fn dma(edu: &Edu, w: &Window) -> Res<String> {
    let page = rustix::param::page_size();
    let mem = Memory::new(DMA_PAGES * page, false).map_err(|e| format!("memory: {e}"))?;
    rustix::mm::mlockall(rustix::mm::MlockAllFlags::CURRENT)
        .map_err(|e| format!("mlockall: {e}"))?;
    let mut intact = 0;
    for i in 0..DMA_PAGES {
        let at = i * page;
        let data = pattern(i as u64 + 1);
        mem.write(at, &data);
        let phys = physical(mem.addr() + at as u64)?;
        if phys + page as u64 > 1 << w.shift {
            return Err(format!("{phys:#x} outside the window"));
        }
        let iova = w.base + phys;
        edu.copy(iova, iova + page as u64 / 2)
            .map_err(|e| format!("edu: {e}"))?;
        intact += usize::from(mem.read(at + page / 2, data.len()) == data);
    }
    Ok(format!("{intact}/{DMA_PAGES} copies intact"))
}

fn plug(at_boot: &[u32]) -> Res<(u32, String, Edu)> {
    let (drc, name) = new_slot(at_boot)?;
    rtas("set-indicator", &[ISOLATION_STATE, drc, UNISOLATE], 1)?;
    write("/sys/kernel/dlpar", &format!("dt add index {drc:#x}"))?;
    write(format!("/sys/bus/pci/slots/{name}/power"), "1")?;
    let bdf = edu().ok_or("no edu device after the slot was powered")?;
    write(format!("/sys/bus/pci/devices/{bdf}/enable"), "1")?;
    let edu = Edu::mapped(&bdf).map_err(|e| format!("edu {bdf}: {e}"))?;
    Ok((drc, format!("slot {name} drc {drc:#x} device {bdf}"), edu))
}

fn unplug(drc: u32, edu: Edu) -> Res<()> {
    drop(edu);
    let name = connectors()?
        .into_iter()
        .find(|c| c.0 == drc)
        .ok_or("slot gone")?
        .1;
    write(format!("/sys/bus/pci/slots/{name}/power"), "0")?;
    write("/sys/kernel/dlpar", &format!("dt remove index {drc:#x}"))?;
    rtas("set-indicator", &[ISOLATION_STATE, drc, ISOLATE], 1)?;
    Ok(())
}

/// The guest's /init: prints `GUEST:` lines and obeys `plug`, `dma`, `unplug`, `stall` (the
/// longest RTAS call since the last `stall`) and `poweroff` read from the console.
pub fn main() -> ! {
    for (src, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ] {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(src, target, fstype, MountFlags::empty(), None) {
            println!("GUEST: error: mount {target}: {e}");
        }
    }
    let at_boot: Vec<u32> = connectors()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.0)
        .filter(|&drc| present(drc))
        .collect();
    let w = match window() {
        Ok(w) => w,
        Err(e) => {
            println!("GUEST: error: {e}");
            poweroff()
        }
    };
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_default();
    println!(
        "GUEST: ready liobn={:#x} base={:#x} page_shift={} window_shift={} memtotal_kib={ram}",
        w.liobn, w.base, w.page_shift, w.shift
    );
    if let Err(e) = watch_stalls() {
        println!("GUEST: error: {e}");
    }
    let mut plugged: Option<(u32, Edu)> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match (line.trim(), plugged.take()) {
            ("plug", None) => plug(&at_boot).map(|(drc, what, edu)| {
                plugged = Some((drc, edu));
                format!("plugged {what}")
            }),
            ("dma", Some((drc, edu))) => {
                let r = dma(&edu, &w).map(|r| format!("dma {r}"));
                plugged = Some((drc, edu));
                r
            }
            ("unplug", Some((drc, edu))) => unplug(drc, edu).map(|()| "unplugged".into()),
            ("poweroff", _) => poweroff(),
            ("stall", p) => {
                plugged = p;
                // A call that QEMU held returns when it lets go, as this command arrives: let
                // it finish first.
                std::thread::sleep(Duration::from_millis(100));
                let max = STALL_MAX_NS.swap(0, Ordering::Relaxed);
                let calls = STALL_CALLS.swap(0, Ordering::Relaxed);
                Ok(format!("stall max_us={} calls={calls}", max / 1000))
            }
            ("", p) => {
                plugged = p;
                continue;
            }
            (cmd, p) => {
                let state = if p.is_some() {
                    "plugged"
                } else {
                    "not plugged"
                };
                plugged = p;
                Err(format!("{cmd:?}: not now ({state})"))
            }
        };
        match reply {
            Ok(r) => println!("GUEST: {r}"),
            Err(e) => println!("GUEST: error: {e}"),
        }
    }
    poweroff()
}

/// The longest RTAS call (in ns) and the calls since the last `stall` command.
static STALL_MAX_NS: AtomicU64 = AtomicU64::new(0);
static STALL_CALLS: AtomicU64 = AtomicU64::new(0);

/// What the guest feels of QEMU holding its big lock (a device_add, a replay): an RTAS call
/// (get-time-of-day, which QEMU answers under that lock) every millisecond, the longest kept.
fn watch_stalls() -> Res<()> {
    let tod = token("get-time-of-day")?;
    std::thread::spawn(move || loop {
        let start = Instant::now();
        let _ = rtas_call("get-time-of-day", tod, &[], 8);
        let ns = start.elapsed().as_nanos() as u64;
        STALL_MAX_NS.fetch_max(ns, Ordering::Relaxed);
        STALL_CALLS.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
    });
    Ok(())
}

fn poweroff() -> ! {
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The property as the kernel's struct dynamic_dma_window_prop lays it out in memory
    /// (natural alignment: a word of padding before the 64-bit address), big-endian.
    #[test]
    fn window_property_is_read_with_its_padding() {
        let mut raw = Vec::new();
        for w in [0x8000_0001u32, 0, 0x0800_0000, 0, 16, 34] {
            raw.extend(w.to_be_bytes());
        }
        let w = Window::parse(&raw).unwrap();
        assert_eq!(
            (w.liobn, w.base, w.page_shift, w.shift),
            (0x8000_0001, 1 << 59, 16, 34)
        );
        assert!(Window::parse(&raw[..20]).is_err());
    }

    #[test]
    fn connectors_pair_indexes_with_names() {
        let mut idx = 2u32.to_be_bytes().to_vec();
        idx.extend(0x4000_0000u32.to_be_bytes());
        idx.extend(0x4000_0008u32.to_be_bytes());
        let mut names = 2u32.to_be_bytes().to_vec();
        names.extend(b"C0\0C8\0");
        assert_eq!(
            pair_connectors(&idx, &names).unwrap(),
            vec![
                (0x4000_0000, "C0".to_string()),
                (0x4000_0008, "C8".to_string())
            ]
        );
        assert!(pair_connectors(&idx, &names[..7]).is_err());
    }
}
