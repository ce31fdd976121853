/* SPDX-License-Identifier: GPL-2.0 */
/* Inline kernel functions the module needs and Rust's bindings lack, called from rust/shim.rs. */
#ifndef KTR_HELPERS_H
#define KTR_HELPERS_H

#include <linux/types.h>

struct mm_struct;
struct ratelimit_state;
struct vm_fault;
struct xarray;

void ktr_cond_resched(const char *file, int line);
bool ktr_fatal_signal_pending(void);
bool ktr_access_ok(u64 ua, u64 size);
int ktr_charge_memlock(struct mm_struct *mm, unsigned long pages);
void ktr_uncharge_memlock(struct mm_struct *mm, unsigned long pages);
unsigned int ktr_lock_fault_page(struct vm_fault *vmf);
void ktr_ratelimit_init(struct ratelimit_state *rs);
int ktr_xa_reserve(struct xarray *xa, unsigned long index);
void ktr_xa_release(struct xarray *xa, unsigned long index);
void ktr_xa_mark_locked(struct xarray *xa, unsigned long index);
unsigned int ktr_xa_find_batch(struct xarray *xa, unsigned long index, unsigned long last,
			       void **entries, unsigned long *indices, unsigned int n, size_t size);

#endif
