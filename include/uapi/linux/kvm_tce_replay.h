/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvm-tce-replay: sPAPR TCE tables whose IOMMU group attach replays the valid TCEs.
 *
 * /dev/kvm-tce-replay answers KVM's KVM_CHECK_EXTENSION, KVM_ENABLE_CAP,
 * KVM_CREATE_SPAPR_TCE_64 and KVM_SET_USER_MEMORY_REGION (same numbers and structs as
 * <linux/kvm.h>); what KVM lacks uses the ioctl type KTR_IO. Documentation/api.rst describes
 * every ioctl and its errors. The test-only ABI (mock IOMMU groups, benchmark walks) is in the
 * module's rust/kvm_tce_replay_test.h.
 */
#ifndef _UAPI_LINUX_KVM_TCE_REPLAY_H
#define _UAPI_LINUX_KVM_TCE_REPLAY_H

#include <linux/ioctl.h>
#include <linux/kvm.h>
#include <linux/types.h>

#define KTR_IO 0xB9

/* Attaching an IOMMU group replays the table's valid TCEs into it. */
#define KVM_CAP_SPAPR_TCE_REPLAY 0x7443

#ifndef __powerpc__
/* Only powerpc's <asm/kvm.h> has KVM_CREATE_SPAPR_TCE_64's argument; the same layout elsewhere. */
struct kvm_create_spapr_tce_64 {
	__u64 liobn;
	__u32 page_shift;
	__u32 flags;
	__u64 offset;	/* in pages */
	__u64 size;	/* in pages */
};
#endif

/* The most TCEs one KTR_PUT_TCE_INDIRECT takes, as H_PUT_TCE_INDIRECT's 4 KiB list holds. */
#define KTR_INDIRECT_MAX 512

/**
 * struct ktr_put_tce - KTR_PUT_TCE: H_PUT_TCE
 * @ioba: I/O bus address of the entry, aligned to the table's IOMMU page size
 * @tce: the new TCE: a guest physical address with its permission bits, or a poison value
 *
 * Checked and stored as KVM's kvmppc_h_put_tce() does, then written into every attached group.
 */
struct ktr_put_tce {
	__u64 ioba;
	__u64 tce;
};

/**
 * struct ktr_put_tce_indirect - KTR_PUT_TCE_INDIRECT: H_PUT_TCE_INDIRECT
 * @ioba: I/O bus address of the first entry
 * @tces: user pointer to @npages __u64 TCEs, 4 KiB aligned like the hcall's list
 * @npages: number of TCEs, at most KTR_INDIRECT_MAX
 *
 * Every TCE is checked, against every attached group too, before any is stored; on a later
 * failure the ones before it stay stored, as in KVM.
 */
struct ktr_put_tce_indirect {
	__u64 ioba;
	__u64 tces;
	__u64 npages;
};

/**
 * struct ktr_stuff_tce - KTR_STUFF_TCE: H_STUFF_TCE
 * @ioba: I/O bus address of the first entry
 * @tce_value: the value stored in each: 0 or a poison value (no permission bit)
 * @npages: number of entries
 */
struct ktr_stuff_tce {
	__u64 ioba;
	__u64 tce_value;
	__u64 npages;
};

/**
 * struct ktr_get_tce - KTR_GET_TCE: H_GET_TCE
 * @ioba: in: I/O bus address of the entry
 * @tce: out: the entry
 */
struct ktr_get_tce {
	__u64 ioba;
	__u64 tce;
};

/**
 * struct ktr_populated - KTR_GET_POPULATED: which TCE pages of a range are allocated
 * @first_page: in: first TCE page (TCE page p holds entries p * entries_per_page onwards)
 * @npages: in: number of TCE pages
 * @bitmap: in: user pointer to ceil(@npages / 64) __u64 words; bit i % 64 of word i / 64 is
 *          set when page @first_page + i is allocated
 * @entries_per_page: out: TCEs per TCE page (the kernel's PAGE_SIZE / 8)
 */
struct ktr_populated {
	__u64 first_page;
	__u64 npages;
	__u64 bitmap;
	__u64 entries_per_page;
};

/**
 * struct ktr_table_stats - KTR_TABLE_STATS: a table's counters
 * @window_entries: entries in the window
 * @entries_per_page: TCEs per TCE page
 * @pages_allocated: TCE pages allocated
 * @groups_attached: IOMMU groups attached
 * @replays: replays done (one per attach)
 * @last_pages_walked: last replay: TCE pages (or page slots, or entries) visited
 * @last_tces_replayed: last replay: valid TCEs written into the group
 * @last_hw_entries_written: last replay: hardware entries written
 * @last_replay_ns: last replay: duration in nanoseconds
 * @last_entries_visited: last replay: TCE slots looked at in the walked pages
 * @last_tces_skipped: last replay: entries failing the H_PUT_TCE checks (written through the
 *                     mmap), not replayed
 * @faults_refused: faults on the table's mappings answered with SIGBUS: a page past the
 *                  table's end, or a write to a page that could not be allocated or charged
 *
 * The size is encoded in KTR_TABLE_STATS: a field appended changes the number.
 */
struct ktr_table_stats {
	__u64 window_entries;
	__u64 entries_per_page;
	__u64 pages_allocated;
	__u64 groups_attached;
	__u64 replays;
	__u64 last_pages_walked;
	__u64 last_tces_replayed;
	__u64 last_hw_entries_written;
	__u64 last_replay_ns;
	__u64 last_entries_visited;
	__u64 last_tces_skipped;
	__u64 faults_refused;
};

/**
 * struct ktr_attach - KTR_ATTACH, KTR_DETACH: an IOMMU group and a TCE table
 * @groupfd: a VFIO group fd (/dev/vfio/N) or a mock group fd
 * @tablefd: a table fd of this context (from KVM_CREATE_SPAPR_TCE_64)
 * @flags: 0 (the test ABI's KTR_ATTACH_WALK_* select a benchmark walk)
 * @pad: 0
 *
 * KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE's struct kvm_vfio_spapr_tce, plus flags. KTR_ATTACH replays
 * the table's valid TCEs into the group's hardware table before it returns.
 */
struct ktr_attach {
	__s32 groupfd;
	__s32 tablefd;
	__u32 flags;
	__u32 pad;
};

/**
 * struct ktr_mem_stats - KTR_MEM_STATS: the module's own memory
 * @table_bytes: bytes of every table's bookkeeping and TCE pages
 * @mock_bytes: bytes of the mock groups' hardware tables
 */
struct ktr_mem_stats {
	__u64 table_bytes;
	__u64 mock_bytes;
};

/*
 * Device fd (a context, like a KVM VM fd); also KVM_CHECK_EXTENSION, KVM_ENABLE_CAP,
 * KVM_CREATE_SPAPR_TCE_64 and KVM_SET_USER_MEMORY_REGION from <linux/kvm.h>. 0x01 is the test
 * header's KTR_CREATE_MOCK_GROUP.
 *
 * KTR_ATTACH: attach a group to a table, replaying the table into it (struct ktr_attach).
 * KTR_DETACH: detach it; its entries under the table are cleared.
 * KTR_MEM_STATS: the module's memory (struct ktr_mem_stats).
 */
#define KTR_ATTACH		_IOW(KTR_IO, 0x02, struct ktr_attach)
#define KTR_DETACH		_IOW(KTR_IO, 0x03, struct ktr_attach)
#define KTR_MEM_STATS		_IOR(KTR_IO, 0x04, struct ktr_mem_stats)

/*
 * TCE table fd (returned by KVM_CREATE_SPAPR_TCE_64): the guest's hcalls, as KVM handles them
 * in kvmppc_h_put_tce(), kvmppc_h_put_tce_indirect(), kvmppc_h_stuff_tce() and
 * kvmppc_h_get_tce(); which TCE pages exist; and statistics. The fd can also be mapped
 * MAP_SHARED (the TCE array, as KVM's).
 */
#define KTR_PUT_TCE		_IOW(KTR_IO, 0x10, struct ktr_put_tce)
#define KTR_PUT_TCE_INDIRECT	_IOW(KTR_IO, 0x11, struct ktr_put_tce_indirect)
#define KTR_STUFF_TCE		_IOW(KTR_IO, 0x12, struct ktr_stuff_tce)
#define KTR_GET_TCE		_IOWR(KTR_IO, 0x13, struct ktr_get_tce)
#define KTR_GET_POPULATED	_IOWR(KTR_IO, 0x14, struct ktr_populated)
#define KTR_TABLE_STATS		_IOR(KTR_IO, 0x15, struct ktr_table_stats)

#endif /* _UAPI_LINUX_KVM_TCE_REPLAY_H */
