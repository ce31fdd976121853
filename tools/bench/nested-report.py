#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the `nested,` lines of `kvm_tce_replay_bench nested` (the powernv VM's console log)
into OUTDIR/bench.csv and OUTDIR/bench.md: per window, KVM's tables with QEMU's replay beside
the module's, the per-hcall cost, and QEMU's per-entry slope extrapolated to 2^31 TCEs.
Usage: nested-report.py LOG OUTDIR"""
import sys
from pathlib import Path

log, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
rows = [l.strip().split(",")[1:] for l in open(log, errors="replace") if l.startswith("nested,")]
rows = [["kvm+qemu" if r[0] == "kvm" else r[0]] + r[1:] for r in rows if len(r) == 5]
with open(out / "bench.csv", "w") as f:
    f.write("tables,window_log2,plug,what,value\n")
    for r in rows:
        f.write(",".join(r) + "\n")
v = {(t, w, p, what): int(val) for t, w, p, what, val in rows if w != "-" and p != "-"}
hcall = {t: int(val) for t, w, p, what, val in rows if what == "h_put_tce_ns"}
windows = sorted({int(w) for (_, w, _, _) in v})
K, M = "kvm+qemu", "module"
g = lambda t, w, p, what: v.get((t, str(w), str(p), what))
md = ["| window (TCEs) | tables | hot-plug device_add (s) | replay (ms) | looked at | TCEs replayed"
      " | guest stall (s) | L1 MemFree fell (MiB) | replug device_add (s) |",
      "|---|---|---|---|---|---|---|---|---|"]
stall = lambda t, w: "-" if g(t, w, 0, "guest_stall_us") is None else f"{g(t, w, 0, 'guest_stall_us') / 1e6:.2f}"
for w in windows:
    if g(K, w, 0, "device_add_ns") is not None:
        md.append(f"| 2^{w} | KVM's, QEMU replays | {g(K, w, 0, 'device_add_ns') / 1e9:.2f}"
                  f" | {g(K, w, 0, 'qemu_walk_ns') / 1e6:.1f} | {g(K, w, 0, 'qemu_walked')} entries"
                  f" | {g(K, w, 0, 'qemu_notified')} | {stall(K, w)} | {g(K, w, 0, 'memfree_drop_kib') / 1024:.1f}"
                  f" | {g(K, w, 1, 'device_add_ns') / 1e9:.2f} |")
    if g(M, w, 0, "device_add_ns") is not None:
        md.append(f"| 2^{w} | the module's, KTR_ATTACH replays | {g(M, w, 0, 'device_add_ns') / 1e9:.2f}"
                  f" | {g(M, w, 0, 'module_replay_ns') / 1e6:.1f} | {g(M, w, 0, 'module_walked')} TCE page(s)"
                  f" | {g(M, w, 0, 'module_tces')} | {stall(M, w)} | {g(M, w, 0, 'memfree_drop_kib') / 1024:.1f}"
                  f" | {g(M, w, 1, 'device_add_ns') / 1e9:.2f} |")
md.append("")
md.append("Measured in the powernv VM (QEMU 10.0 TCG powernv9, 2 cores) on KVM-HV: L2 has 256 MiB "
          "of RAM, mapped as 4096 64 KiB TCEs into its direct window; device_add is the monitor "
          "command's time (VFIO's container, windows, edu's resets, the attach and the replay); "
          "replay is QEMU's spapr_tce_replay_walk trace event, or the module's last_replay_ns; "
          "the guest's stall is its longest RTAS call (get-time-of-day, one a millisecond, which "
          "QEMU answers under its big lock) during device_add: VFIO's realize holds the lock "
          "throughout, the replay included. "
          "In two of three runs some replugs took about 4 s more, with either kind of table and "
          "not in the replay; where it goes is not known yet.")
md.append("")
walked = [w for w in windows if g(K, w, 0, "qemu_walk_ns") is not None]
if len(walked) >= 2:
    lo, hi = walked[0], walked[-1]
    slope = (g(K, hi, 0, "qemu_walk_ns") - g(K, lo, 0, "qemu_walk_ns")) / (2**hi - 2**lo)
    md.append(f"QEMU's walk costs {slope:.0f} ns per entry (fitted between 2^{lo} and 2^{hi}): a "
              f"window of 2^31 TCEs would take {slope * 2**31 / 1e9:.0f} s, and reading it through "
              f"KVM's mmap allocates KVM's whole table, {2**31 * 8 >> 20} MiB.")
mod = [w for w in windows if g(M, w, 0, "module_replay_ns") is not None]
if mod:
    w = mod[-1]
    md.append(f"The module replays the {g(M, w, 0, 'module_tces')} TCEs of the guest's RAM in "
              f"{g(M, w, 0, 'module_replay_ns') / 1e6:.1f} ms at 2^{w}, walking the "
              f"{g(M, w, 0, 'module_walked')} TCE page(s) it allocated: the window's size does not "
              f"enter, so 2^31 costs the same.")
for w in windows:
    k, m = g(K, w, 0, "memfree_drop_kib"), g(M, w, 0, "memfree_drop_kib")
    if k is not None and m is not None:
        md.append(f"At 2^{w} L1's free memory fell {(k - m) / 1024:.1f} MiB more with KVM's tables "
                  f"(KVM's whole table is {(2**w * 8) / 2**20:.1f} MiB: QEMU's walk reads it through "
                  f"KVM's mmap, whose faults allocate every TCE page; the module's table has 1 page; "
                  f"MemFree moves by a few MiB between runs by itself).")
if K in hcall and M in hcall:
    md.append(f"One H_PUT_TCE costs the guest {hcall[K] / 1e3:.1f} us into KVM's table (KVM "
              f"answers it in the kernel) and {hcall[M] / 1e3:.1f} us into the module's (an "
              f"exit to the VMM and a KTR_PUT_TCE ioctl): the price of a loadable module.")
(out / "bench.md").write_text("\n".join(md) + "\n")
