// SPDX-License-Identifier: GPL-2.0
/*
 * Inline kernel functions the module needs and Rust's bindings lack: the reschedule point and
 * the fatal-signal test of long loops, access_ok() of a memory slot's user range, the
 * RLIMIT_MEMLOCK charge of TCE pages, the page lock a ->page_mkwrite() handler returns, the
 * reservations and the batched walk of the XArray, and the rate limit of warnings.
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/mm_types.h>
#include <linux/pagemap.h>
#include <linux/prefetch.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include "ktr_helpers.h"

/*
 * cond_resched() on behalf of the Rust caller at @file:@line: __might_resched() first, so that
 * CONFIG_DEBUG_ATOMIC_SLEEP reports a caller in atomic context, then the reschedule point of the
 * kernel's preemption model (a static call with dynamic preemption, nothing with full or lazy
 * preemption).
 */
void ktr_cond_resched(const char *file, int line)
{
	__might_resched(file, line, 0);
	_cond_resched();
}

bool ktr_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

bool ktr_access_ok(u64 ua, u64 size)
{
	return ua == untagged_addr(ua) &&
	       access_ok((void __user *)(unsigned long)ua, (unsigned long)size);
}

/*
 * Charges @pages pages to @mm's pinned_vm against the caller's RLIMIT_MEMLOCK, as RDMA's
 * ib_umem_get() and iommufd do: atomically, without mmap_lock, so that it can be called under
 * the table lock and from the fault handler (account_locked_vm() takes mmap_lock for writing,
 * which the fault path holds for reading). CAP_IPC_LOCK bypasses the limit, as for mlock().
 */
int ktr_charge_memlock(struct mm_struct *mm, unsigned long pages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;

	if (atomic64_add_return(pages, &mm->pinned_vm) > limit && !capable(CAP_IPC_LOCK)) {
		atomic64_sub(pages, &mm->pinned_vm);
		return -ENOMEM;
	}
	return 0;
}

void ktr_uncharge_memlock(struct mm_struct *mm, unsigned long pages)
{
	atomic64_sub(pages, &mm->pinned_vm);
}

/* Locks the page of a write fault, as ->page_mkwrite() returns it for a page not in a file. */
unsigned int ktr_lock_fault_page(struct vm_fault *vmf)
{
	lock_page(vmf->page);
	return VM_FAULT_LOCKED;
}

/* A rate limit of the kernel's defaults (DEFINE_RATELIMIT_STATE's), initialised on first use. */
void ktr_ratelimit_init(struct ratelimit_state *rs)
{
	ratelimit_default_init(rs);
}

/* Reserves @index of @xa (its nodes allocated, charged to the memory cgroup); see xa_reserve(). */
int ktr_xa_reserve(struct xarray *xa, unsigned long index)
{
	return xa_reserve(xa, index, GFP_KERNEL_ACCOUNT);
}

/* Gives back a reservation that was not filled; see xa_release(). */
void ktr_xa_release(struct xarray *xa, unsigned long index)
{
	xa_release(xa, index);
}

/*
 * Marks the entry just stored at @index of @xa with XA_MARK_0, which every entry of a
 * SparseMap carries: the batch walk below then finds entries through the nodes' mark bitmaps
 * instead of reading every slot. Called with the xa_lock held, as __xa_set_mark() needs.
 */
void ktr_xa_mark_locked(struct xarray *xa, unsigned long index)
{
	__xa_set_mark(xa, index, XA_MARK_0);
}

/*
 * Copies up to @n entries of @xa in [@index, @last] into @entries and their indices into
 * @indices, in index order, and returns how many (fewer than @n: the range has no more). One
 * xas_for_each_marked() walk under the RCU read lock, which steps from node to node where
 * xa_find() descends from the root for every entry, and inside a node finds the next entry in
 * its XA_MARK_0 bitmap (one word) where xas_for_each() reads each of its 64 slots: at one entry
 * in a node, that is one cache line instead of eight. An entry is marked under the xa_lock right
 * after it is stored, so the walk may miss one being stored meanwhile, as an xa_find() just
 * before the store would; reserved (zero) entries are never marked, retries are skipped. The
 * @size bytes at each entry found are prefetched.
 */
unsigned int ktr_xa_find_batch(struct xarray *xa, unsigned long index, unsigned long last,
			       void **entries, unsigned long *indices, unsigned int n, size_t size)
{
	XA_STATE(xas, xa, index);
	unsigned int found = 0;
	void *entry;

	if (!n)
		return 0;
	rcu_read_lock();
	xas_for_each_marked(&xas, entry, last, XA_MARK_0) {
		if (xas_retry(&xas, entry))
			continue;
		entries[found] = entry;
		indices[found] = xas.xa_index;
		if (++found == n)
			break;
	}
	rcu_read_unlock();
	/* The entries themselves are what the caller reads next: their misses overlap here. */
	for (n = 0; n < found; n++)
		prefetch_range(entries[n], size);
	return found;
}
