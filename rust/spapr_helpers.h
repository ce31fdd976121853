/* SPDX-License-Identifier: GPL-2.0 */
/* Accessors of the real IOMMU backend, called from rust/shim/spapr.rs. */
#ifndef KTR_SPAPR_HELPERS_H
#define KTR_SPAPR_HELPERS_H

#include <linux/types.h>

struct iommu_group;
struct iommu_table;

void ktr_iommu_table_geometry(struct iommu_table *tbl, u32 *page_shift, u64 *offset, u64 *size);
struct iommu_table *ktr_iommu_group_table(struct iommu_group *grp, unsigned int i);
__be64 *ktr_iommu_table_useraddr(struct iommu_table *tbl, unsigned long entry, bool alloc);

#endif
