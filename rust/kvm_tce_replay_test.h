/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvm-tce-replay's test-only ABI, built only with CONFIG_KVM_TCE_REPLAY_MOCK (and usable only
 * with the module parameter mock=1), as iommufd keeps its mock domain in
 * drivers/iommu/iommufd/iommufd_test.h: mock IOMMU groups with up to two hardware tables, and
 * the replay strategies of the benchmarks. Not a stable ABI.
 */
#ifndef _KVM_TCE_REPLAY_TEST_H
#define _KVM_TCE_REPLAY_TEST_H

#include <linux/kvm_tce_replay.h>

#define KTR_MOCK_READ_MAX (1 << 16)
#define KTR_MOCK_WRITE_MAX 4096

/*
 * struct ktr_mock_group's flags: a detach clears the entries but keeps the levels of the
 * hardware table, as powernv keeps a table's levels (the benchmarks' replays with the
 * levels already present); by default a detach frees them.
 */
#define KTR_MOCK_KEEP_LEVELS (1ULL << 0)

/* Replay strategies of KTR_ATTACH (benchmarks only). */
#define KTR_ATTACH_WALK_POPULATED 0
#define KTR_ATTACH_WALK_ENTRIES 1
#define KTR_ATTACH_WALK_SLOTS 2

struct ktr_mock_group {
	__u32 it_page_shift;
	__u32 levels;
	__u64 it_offset;
	__u64 it_size;
	__u64 flags;
};

struct ktr_mock_read {
	__u64 first;
	__u64 count;		/* <= KTR_MOCK_READ_MAX */
	__u64 entries;		/* user pointer to count __u64s */
	__u64 table;		/* hardware table of the group: 0, or 1 once added */
};

/* Hardware entries written outside any TCE table, as VFIO_IOMMU_MAP_DMA writes them. */
struct ktr_mock_write {
	__u64 first;
	__u64 count;		/* <= KTR_MOCK_WRITE_MAX */
	__u64 entries;		/* user pointer to count __u64s, the new values */
	__u64 table;		/* hardware table of the group: 0, or 1 once added */
};

struct ktr_mock_stats {
	__u64 entries_written;
	__u64 exchanges;
	__u64 entries_valid;
	__u64 pages_allocated;
	__u64 attached;
	__u64 table;		/* in: hardware table of the group */
};

/* Device fd: a mock IOMMU group with one hardware table, returns its fd. */
#define KTR_CREATE_MOCK_GROUP	_IOW(KTR_IO, 0x01, struct ktr_mock_group)

/* Mock IOMMU group fd (returned by KTR_CREATE_MOCK_GROUP). */
#define KTR_MOCK_READ		_IOW(KTR_IO, 0x20, struct ktr_mock_read)
#define KTR_MOCK_STATS		_IOWR(KTR_IO, 0x21, struct ktr_mock_stats)
#define KTR_MOCK_FAIL_ALLOC	_IOW(KTR_IO, 0x22, __u64)
#define KTR_MOCK_ADD_TABLE	_IOW(KTR_IO, 0x23, struct ktr_mock_group)
#define KTR_MOCK_WRITE		_IOW(KTR_IO, 0x24, struct ktr_mock_write)

#endif /* _KVM_TCE_REPLAY_TEST_H */
