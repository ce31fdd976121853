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

#define KTR_INDIRECT_MAX 512

struct ktr_put_tce {
	__u64 ioba;
	__u64 tce;
};

struct ktr_put_tce_indirect {
	__u64 ioba;
	__u64 tces;		/* user pointer to npages __u64 TCEs, 4 KiB aligned */
	__u64 npages;		/* <= KTR_INDIRECT_MAX */
};

struct ktr_stuff_tce {
	__u64 ioba;
	__u64 tce_value;
	__u64 npages;
};

struct ktr_get_tce {
	__u64 ioba;		/* in */
	__u64 tce;		/* out */
};

struct ktr_populated {
	__u64 first_page;	/* in: first TCE page */
	__u64 npages;		/* in: TCE pages */
	__u64 bitmap;		/* in: user pointer to ceil(npages / 64) __u64 words */
	__u64 entries_per_page;	/* out: TCEs per TCE page */
};

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
	__u64 last_entries_visited;	/* TCE slots looked at in the walked pages */
	__u64 last_tces_skipped;	/* entries failing the H_PUT_TCE checks, not replayed */
	__u64 faults_refused;		/* mmap faults answered SIGBUS (past the end, no memory) */
};

struct ktr_attach {
	__s32 groupfd;
	__s32 tablefd;
	__u32 flags;		/* 0 */
	__u32 pad;
};

struct ktr_mem_stats {
	__u64 table_bytes;
	__u64 mock_bytes;
};

/* Device fd (a context, like a KVM VM fd); also KVM_CHECK_EXTENSION, KVM_ENABLE_CAP,
 * KVM_CREATE_SPAPR_TCE_64 and KVM_SET_USER_MEMORY_REGION from <linux/kvm.h>. 0x01 is the test
 * header's KTR_CREATE_MOCK_GROUP. */
#define KTR_ATTACH		_IOW(KTR_IO, 0x02, struct ktr_attach)
#define KTR_DETACH		_IOW(KTR_IO, 0x03, struct ktr_attach)
#define KTR_MEM_STATS		_IOR(KTR_IO, 0x04, struct ktr_mem_stats)

/* TCE table fd (returned by KVM_CREATE_SPAPR_TCE_64): the guest's hcalls and statistics. */
#define KTR_PUT_TCE		_IOW(KTR_IO, 0x10, struct ktr_put_tce)
#define KTR_PUT_TCE_INDIRECT	_IOW(KTR_IO, 0x11, struct ktr_put_tce_indirect)
#define KTR_STUFF_TCE		_IOW(KTR_IO, 0x12, struct ktr_stuff_tce)
#define KTR_GET_TCE		_IOWR(KTR_IO, 0x13, struct ktr_get_tce)
#define KTR_GET_POPULATED	_IOWR(KTR_IO, 0x14, struct ktr_populated)
#define KTR_TABLE_STATS		_IOR(KTR_IO, 0x15, struct ktr_table_stats)

#endif /* _UAPI_LINUX_KVM_TCE_REPLAY_H */
