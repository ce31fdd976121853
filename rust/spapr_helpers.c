// SPDX-License-Identifier: GPL-2.0
/*
 * Accessors of the real IOMMU backend (rust/shim/spapr.rs): struct iommu_table and struct
 * iommu_table_group are opaque to the kernel's Rust bindings, and the userspace view of a table
 * is reached through a macro. Nothing here keeps state or takes locks.
 */
#include <linux/iommu.h>
#include <asm/iommu.h>

#include "spapr_helpers.h"

/* The geometry of @tbl: log2 of its page size, its bus offset and its size, in its pages. */
void ktr_iommu_table_geometry(struct iommu_table *tbl, u32 *page_shift, u64 *offset, u64 *size)
{
	*page_shift = tbl->it_page_shift;
	*offset = tbl->it_offset;
	*size = tbl->it_size;
}

/*
 * Table @i of the IOMMU table group of @grp, or NULL (no table group, no such table). VFIO sets
 * and clears tables[] under its container lock, which callers cannot take: read it once.
 */
struct iommu_table *ktr_iommu_group_table(struct iommu_group *grp, unsigned int i)
{
	struct iommu_table_group *table_group = iommu_group_get_iommudata(grp);

	if (!table_group || i >= IOMMU_TABLE_GROUP_MAX_TABLES)
		return NULL;
	return READ_ONCE(table_group->tables[i]);
}

/*
 * The slot of absolute entry @entry in the userspace view of @tbl (IOMMU_TABLE_USERSPACE_ENTRY,
 * _RO without @alloc), or NULL if the table has no view (VFIO's tables have one; the kernel's
 * own DMA tables do not, and powernv's accessor warns if asked for one of those).
 */
__be64 *ktr_iommu_table_useraddr(struct iommu_table *tbl, unsigned long entry, bool alloc)
{
	if (!tbl->it_ops->useraddrptr || !tbl->it_userspace)
		return NULL;
	return tbl->it_ops->useraddrptr(tbl, entry, alloc);
}
