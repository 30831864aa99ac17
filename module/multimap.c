// SPDX-License-Identifier: GPL-2.0
/*
 * multimap - map several separately allocated pages into a process as one
 * contiguous virtual region, in every way a driver author would consider:
 * the classic remap_pfn_range() loop, one call per physically contiguous
 * run, vm_insert_pages(), map on fault and remap_vmalloc_range(), over
 * order-0 pages, a DMA-API (CMA or buddy) block or vmalloc memory.
 *
 * Each open file of /dev/multimap configures one buffer, then mmaps it.
 * The buffer lives until its last VMA and its file are gone.
 *
 * Bug modes (module parameter bug_mode, load time only, off by default)
 * deliberately reproduce classic mmap-driver bugs so the lab can prove it
 * catches them: uaf (pages freed when any VMA closes, though a split or
 * forked VMA still maps them), nozap (a
 * failing remap loop frees its pages without zapping what it mapped,
 * CVE-2024-53148), noexpand (VM_DONTEXPAND missing: mremap can grow the VMA),
 * split_refcount (vm_ops->open takes no reference: a split or fork
 * underflows the buffer's refcount) and reserved (PG_reserved set at
 * allocation and left set at free: Bad page state).
 *
 * CMA memory is mapped only with remap_pfn_range(), as dma_mmap_pages() does:
 * a CMA page mapped as a normal page can be pinned (vmsplice, FOLL_LONGTERM)
 * past the buffer's life, and long-term GUP would try to migrate it for ever.
 *
 * PFNs (GET_PFNS, WALK) are shown only to openers with CAP_SYS_ADMIN, as
 * /proc/PID/pagemap does; for anyone else they read 0.
 *
 * MAP_PRIVATE: read-only private mappings are supported for every mapping
 * method (VM_MAYWRITE is cleared, as /proc/vmcore does, so the mapping is
 * never COW and mprotect(PROT_WRITE) fails); writable MAP_PRIVATE is
 * refused with EINVAL: a COW copy of device memory is never what a driver
 * user wants, and remap_pfn_range() cannot map a COW VMA page by page.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/overflow.h>
#include <linux/platform_device.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>
#include <linux/vmalloc.h>

#include "multimap.h"

#define MULTIMAP_PAGES_LIMIT	BIT(22)		/* 16 GiB of 4K pages */
#define MULTIMAP_INSERT_BATCH	512UL
#define MULTIMAP_CHUNK		512UL	/* pages between resched/signal checks */

static unsigned long max_pages = 65536;
module_param(max_pages, ulong, 0444);
MODULE_PARM_DESC(max_pages, "Largest buffer in pages (default 65536)");

static ushort dev_mode = 0600;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "Permissions of /dev/multimap (default 0600)");

static char *bug_mode = "none";
module_param(bug_mode, charp, 0444);
MODULE_PARM_DESC(bug_mode, "Deliberate bug: none, uaf, nozap, noexpand, split_refcount, reserved");

static ulong fail_at;
module_param(fail_at, ulong, 0644);
MODULE_PARM_DESC(fail_at, "Make the remap loop fail at this page (1-based; 0: never)");

enum multimap_bug {
	MULTIMAP_BUG_NONE,
	MULTIMAP_BUG_UAF,
	MULTIMAP_BUG_NOZAP,
	MULTIMAP_BUG_NOEXPAND,
	MULTIMAP_BUG_SPLIT_REFCOUNT,
	MULTIMAP_BUG_RESERVED,
};

static const char * const multimap_bug_names[] = {
	[MULTIMAP_BUG_NONE] = "none",
	[MULTIMAP_BUG_UAF] = "uaf",
	[MULTIMAP_BUG_NOZAP] = "nozap",
	[MULTIMAP_BUG_NOEXPAND] = "noexpand",
	[MULTIMAP_BUG_SPLIT_REFCOUNT] = "split_refcount",
	[MULTIMAP_BUG_RESERVED] = "reserved",
};

static enum multimap_bug bug;

static struct {
	atomic_long_t buffers;		/* live buffers */
	atomic_long_t pages;		/* pages held by live buffers */
	atomic_long_t vmas;		/* live VMAs */
	atomic_long_t files;		/* open files */
	atomic_long_t mmaps;		/* successful mmap calls, total */
	atomic_long_t vma_opens;	/* vm_ops->open calls, total */
	atomic_long_t vma_closes;	/* vm_ops->close calls, total */
	atomic_long_t faults;		/* pages inserted by the fault handler */
	atomic_long_t refused;		/* configure/mmap requests refused */
	atomic_long_t map_errors;	/* mapping loops that failed and cleaned up */
} stats;

struct multimap_buffer {
	struct kref ref;
	u32 backing;
	u32 mapping;
	u32 source;
	unsigned long npages;
	unsigned long runs;
	struct page **pages;	/* every backing fills this, in buffer order */
	void *vaddr;		/* vmalloc backing */
	struct page *block;	/* contig backing */
	dma_addr_t dma;
	size_t dma_size;
	atomic_long_t live_vmas;
	bool freed;		/* bug modes: pages already freed behind the mappings */
};

struct multimap_file {
	struct mutex lock;	/* protects buf */
	struct multimap_buffer *buf;
	bool pfns_visible;	/* opener had CAP_SYS_ADMIN, as pagemap_open() */
};

static struct platform_device *multimap_pdev;
static struct dentry *multimap_dir;

static void multimap_free_pages(struct multimap_buffer *buf)
{
	unsigned long i;

	if (buf->freed)
		return;
	buf->freed = true;
	switch (buf->backing) {
	case MULTIMAP_BACKING_PAGES:
		for (i = 0; i < buf->npages; i++)
			if (buf->pages[i])
				__free_page(buf->pages[i]);
		break;
	case MULTIMAP_BACKING_CONTIG:
		if (buf->block)
			dma_free_pages(&multimap_pdev->dev, buf->dma_size,
				       buf->block, buf->dma, DMA_BIDIRECTIONAL);
		break;
	case MULTIMAP_BACKING_VMALLOC:
		vfree(buf->vaddr);
		break;
	}
}

static void multimap_buffer_release(struct kref *ref)
{
	struct multimap_buffer *buf =
		container_of(ref, struct multimap_buffer, ref);

	multimap_free_pages(buf);
	kvfree(buf->pages);
	atomic_long_sub(buf->npages, &stats.pages);
	atomic_long_dec(&stats.buffers);
	kfree(buf);
}

static void multimap_buffer_put(struct multimap_buffer *buf)
{
	kref_put(&buf->ref, multimap_buffer_release);
}

static int multimap_alloc_pages(struct multimap_buffer *buf)
{
	unsigned long i;

	for (i = 0; i < buf->npages; i++) {
		buf->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
					   __GFP_NOWARN);
		if (!buf->pages[i])
			return -ENOMEM;
		if (bug == MULTIMAP_BUG_RESERVED)	/* and never cleared */
			SetPageReserved(buf->pages[i]);
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	buf->source = MULTIMAP_SOURCE_PAGES;
	return 0;
}

static int multimap_alloc_contig(struct multimap_buffer *buf)
{
	unsigned long i;

	/*
	 * dma_alloc_pages() hands back zeroed memory.  __GFP_ACCOUNT charges
	 * a buddy fallback to the caller's memory cgroup; cma_alloc() charges
	 * nobody (the CMA area is reserved at boot).
	 */
	buf->dma_size = buf->npages << PAGE_SHIFT;
	buf->block = dma_alloc_pages(&multimap_pdev->dev, buf->dma_size,
				     &buf->dma, DMA_BIDIRECTIONAL,
				     GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!buf->block)
		return -ENOMEM;
	for (i = 0; i < buf->npages; i++)
		buf->pages[i] = buf->block + i;
	/*
	 * dma_alloc_contiguous() never serves a single page from the default
	 * CMA area.  A CMA block is a run of individually refcounted pages
	 * (alloc_contig_range), a buddy fallback is one non-compound
	 * high-order page whose tail pages have no reference of their own.
	 */
	if (buf->npages > 1 && page_count(buf->block + 1) > 0)
		buf->source = MULTIMAP_SOURCE_CMA;
	else
		buf->source = MULTIMAP_SOURCE_BUDDY;
	return 0;
}

static int multimap_alloc_vmalloc(struct multimap_buffer *buf)
{
	unsigned long i;

	/*
	 * Not charged to the memory cgroup: 6.1 exports no vmalloc_user()
	 * that takes gfp flags (__vmalloc_node_range is not exported), and
	 * remap_vmalloc_range() needs the VM_USERMAP area only it makes.
	 */
	buf->vaddr = vmalloc_user(buf->npages << PAGE_SHIFT);
	if (!buf->vaddr)
		return -ENOMEM;
	for (i = 0; i < buf->npages; i++) {
		buf->pages[i] = vmalloc_to_page(buf->vaddr + (i << PAGE_SHIFT));
		if (!(i % MULTIMAP_CHUNK))
			cond_resched();
	}
	buf->source = MULTIMAP_SOURCE_VMALLOC;
	return 0;
}

static unsigned long multimap_count_runs(struct page **pages, unsigned long n)
{
	unsigned long i, runs = n ? 1 : 0;

	for (i = 1; i < n; i++)
		if (page_to_pfn(pages[i]) != page_to_pfn(pages[i - 1]) + 1)
			runs++;
	return runs;
}

static const char *multimap_refusal(const struct multimap_buffer *buf)
{
	switch (buf->mapping) {
	case MULTIMAP_MAP_VMALLOC_RANGE:
		if (buf->backing != MULTIMAP_BACKING_VMALLOC)
			return "vmalloc_range maps only vmalloc backing";
		break;
	case MULTIMAP_MAP_INSERT:
	case MULTIMAP_MAP_INSERT_ONE:
	case MULTIMAP_MAP_FAULT:
		if (buf->backing != MULTIMAP_BACKING_CONTIG)
			break;
		/*
		 * As normal pages, a CMA block could be pinned (vmsplice,
		 * FOLL_LONGTERM GUP) beyond dma_free_pages(), and long-term
		 * GUP would try to migrate its never-LRU pages for ever.  Map
		 * it VM_PFNMAP, as dma_mmap_pages() does.
		 */
		if (buf->source == MULTIMAP_SOURCE_CMA)
			return "CMA contig maps only with remap(_runs), as dma_mmap_pages()";
		return "buddy contig tail pages lack a refcount: use remap(_runs)";
	}
	return NULL;
}

static int multimap_validate_config(const struct multimap_config *cfg)
{
	if (cfg->version != MULTIMAP_UAPI_VERSION) {
		pr_info_ratelimited("configure: UAPI version %u, expected %u\n",
				    cfg->version, MULTIMAP_UAPI_VERSION);
		return -EINVAL;
	}
	if (cfg->flags || memchr_inv(cfg->reserved, 0, sizeof(cfg->reserved)))
		return -EINVAL;
	if (cfg->backing < MULTIMAP_BACKING_PAGES ||
	    cfg->backing > MULTIMAP_BACKING_VMALLOC)
		return -EINVAL;
	if (cfg->mapping < MULTIMAP_MAP_REMAP ||
	    cfg->mapping > MULTIMAP_MAP_INSERT_ONE)
		return -EINVAL;
	if (!cfg->pages)
		return -EINVAL;
	if (cfg->pages > max_pages) {
		pr_info_ratelimited("configure: %llu pages exceed max_pages=%lu\n",
				    cfg->pages, max_pages);
		return -E2BIG;
	}
	return 0;
}

static int multimap_configure(struct multimap_file *mf,
			      struct multimap_config __user *uarg)
{
	struct multimap_buffer *buf;
	struct multimap_config cfg;
	const char *why;
	int ret;

	if (copy_from_user(&cfg, uarg, sizeof(cfg)))
		return -EFAULT;
	ret = multimap_validate_config(&cfg);
	if (ret)
		goto refused;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	kref_init(&buf->ref);
	buf->backing = cfg.backing;
	buf->mapping = cfg.mapping;
	buf->npages = cfg.pages;
	buf->pages = kvcalloc(buf->npages, sizeof(*buf->pages),
			      GFP_KERNEL_ACCOUNT);
	if (!buf->pages) {
		kfree(buf);
		return -ENOMEM;
	}
	/* From here on the release function undoes whatever was allocated. */
	atomic_long_inc(&stats.buffers);
	atomic_long_add(buf->npages, &stats.pages);

	switch (buf->backing) {
	case MULTIMAP_BACKING_PAGES:
		ret = multimap_alloc_pages(buf);
		break;
	case MULTIMAP_BACKING_CONTIG:
		ret = multimap_alloc_contig(buf);
		break;
	default:
		ret = multimap_alloc_vmalloc(buf);
		break;
	}
	if (ret)
		goto put;
	buf->runs = multimap_count_runs(buf->pages, buf->npages);

	why = multimap_refusal(buf);
	if (why) {
		pr_info_ratelimited("configure refused: %s\n", why);
		ret = -EINVAL;
		atomic_long_inc(&stats.refused);
		goto put;
	}

	mutex_lock(&mf->lock);
	if (mf->buf) {
		mutex_unlock(&mf->lock);
		ret = -EBUSY;
		goto put;
	}
	mf->buf = buf;
	mutex_unlock(&mf->lock);
	return 0;

put:
	multimap_buffer_put(buf);
	return ret;
refused:
	atomic_long_inc(&stats.refused);
	return ret;
}

static struct multimap_buffer *multimap_get_buffer(struct multimap_file *mf)
{
	struct multimap_buffer *buf;

	mutex_lock(&mf->lock);
	buf = mf->buf;
	if (buf)
		kref_get(&buf->ref);
	mutex_unlock(&mf->lock);
	return buf;
}

/* Validate [start, start + count) against the buffer and the caller's array. */
static int multimap_check_range(const struct multimap_buffer *buf, u64 start,
				u64 count)
{
	u64 end;

	if (!count || count > max_pages)
		return -EINVAL;
	if (check_add_overflow(start, count, &end) || end > buf->npages)
		return -EINVAL;
	return 0;
}

static long multimap_info(struct multimap_file *mf, void __user *uarg)
{
	struct multimap_buffer *buf = multimap_get_buffer(mf);
	struct multimap_info info = { .version = MULTIMAP_UAPI_VERSION };

	if (!buf)
		return -ENODATA;
	info.backing = buf->backing;
	info.mapping = buf->mapping;
	info.source = buf->source;
	info.pages = buf->npages;
	info.runs = buf->runs;
	info.live_vmas = atomic_long_read(&buf->live_vmas);
	if (!mf->pfns_visible)
		info.flags |= MULTIMAP_INFO_PFNS_HIDDEN;
	multimap_buffer_put(buf);
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* Between chunks of a long loop: give the CPU away, stop on SIGKILL. */
static int multimap_chunk_done(u64 i)
{
	if ((i + 1) % MULTIMAP_CHUNK)
		return 0;
	if (fatal_signal_pending(current))
		return -EINTR;
	cond_resched();
	return 0;
}

static long multimap_get_pfns(struct multimap_file *mf, void __user *uarg)
{
	struct multimap_buffer *buf;
	struct multimap_pfns req;
	u64 __user *out;
	u64 i;
	long ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	buf = multimap_get_buffer(mf);
	if (!buf)
		return -ENODATA;
	ret = multimap_check_range(buf, req.start, req.count);
	out = u64_to_user_ptr(req.pfns);
	for (i = 0; !ret && i < req.count; i++) {
		unsigned long idx = array_index_nospec(req.start + i,
						       buf->npages);
		u64 pfn = 0;

		/* Zero without CAP_SYS_ADMIN, as pagemap does (Rowhammer). */
		if (mf->pfns_visible)
			pfn = page_to_pfn(buf->pages[idx]);
		if (put_user(pfn, out + i))
			ret = -EFAULT;
		else
			ret = multimap_chunk_done(i);
	}
	multimap_buffer_put(buf);
	return ret;
}

/*
 * The PFN mapped at @addr in @mm, or MULTIMAP_WALK_NOT_MAPPED.  A lockless
 * walk with interrupts off, as GUP-fast does (mm/gup.c, gup_pgd_range()):
 * page tables are freed only after an IPI or an RCU grace period, so none
 * read here goes away under us, and each level is decided on one snapshot
 * of its entry (the *_offset_lockless() helpers step from the snapshot,
 * not from a second read that a THP split or a hugetlb PMD unshare could
 * change).  Leaf entries at PUD and PMD level (THP, hugetlb, huge device
 * mappings) and PTEs of every kind (normal, VM_MIXEDMAP, the special PTEs
 * of VM_PFNMAP/VM_IO) are read alike.  Not follow_pte(): it is for
 * VM_IO/VM_PFNMAP only and BUGs on a huge PMD; walk_page_range() is not
 * exported in 6.1.  No lock is taken: the answer is a snapshot anyway.
 */
static u64 multimap_walk_one(struct mm_struct *mm, unsigned long addr)
{
	u64 pfn = MULTIMAP_WALK_NOT_MAPPED;
	unsigned long flags;
	pgd_t *pgdp, pgd;
	p4d_t *p4dp, p4d;
	pud_t *pudp, pud;
	pmd_t *pmdp, pmd;
	pte_t *ptep, pte;

	local_irq_save(flags);
	pgdp = pgd_offset(mm, addr);
	pgd = READ_ONCE(*pgdp);
	if (pgd_none(pgd) || pgd_bad(pgd))
		goto out;
	p4dp = p4d_offset_lockless(pgdp, pgd, addr);
	p4d = READ_ONCE(*p4dp);
	if (p4d_none(p4d) || p4d_bad(p4d))
		goto out;
	pudp = pud_offset_lockless(p4dp, p4d, addr);
	pud = READ_ONCE(*pudp);
	if (pud_none(pud))
		goto out;
	if (pud_leaf(pud)) {
		pfn = pud_pfn(pud) + ((addr & ~PUD_MASK) >> PAGE_SHIFT);
		goto out;
	}
	if (pud_bad(pud))
		goto out;
	pmdp = pmd_offset_lockless(pudp, pud, addr);
	pmd = READ_ONCE(*pmdp);
	if (pmd_none(pmd) || !pmd_present(pmd))	/* hole, migration, swap */
		goto out;
	if (pmd_leaf(pmd)) {
		pfn = pmd_pfn(pmd) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
		goto out;
	}
	if (pmd_bad(pmd))
		goto out;
	ptep = pte_offset_map(&pmd, addr);
	pte = ptep_get_lockless(ptep);
	if (pte_present(pte))
		pfn = pte_pfn(pte);
	pte_unmap(ptep);
out:
	local_irq_restore(flags);
	return pfn;
}

/* Walk [start, start + count pages) of @mm into @upfns (a user array). */
static long multimap_walk_mm(struct multimap_file *mf, struct mm_struct *mm,
			     unsigned long start, u64 count, u64 upfns)
{
	u64 *pfns, i, len, end;
	long ret = 0;

	if (!count || count > max_pages || !PAGE_ALIGNED(start))
		return -EINVAL;
	if (check_shl_overflow(count, PAGE_SHIFT, &len) ||
	    check_add_overflow((u64)start, len, &end) || end > TASK_SIZE)
		return -EINVAL;
	pfns = kvmalloc_array(count, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;

	/* In chunks, dropping mmap_lock between them, as pagemap_read() does. */
	for (i = 0; !ret && i < count; ) {
		u64 stop = min_t(u64, count, i + MULTIMAP_CHUNK);

		if (mmap_read_lock_killable(mm)) {
			ret = -EINTR;
			break;
		}
		for (; i < stop; i++) {
			unsigned long addr = start + (i << PAGE_SHIFT);
			u64 pfn = MULTIMAP_WALK_NOT_MAPPED;

			if (vma_lookup(mm, addr))
				pfn = multimap_walk_one(mm, addr);
			/* Mapped, PFN hidden: 0, as pagemap without the cap. */
			if (pfn != MULTIMAP_WALK_NOT_MAPPED && !mf->pfns_visible)
				pfn = 0;
			pfns[i] = pfn;
		}
		mmap_read_unlock(mm);
		if (fatal_signal_pending(current))
			ret = -EINTR;
		cond_resched();
	}

	if (!ret && copy_to_user(u64_to_user_ptr(upfns), pfns,
				 count * sizeof(*pfns)))
		ret = -EFAULT;
	kvfree(pfns);
	return ret;
}

static long multimap_walk(struct multimap_file *mf, void __user *uarg)
{
	struct multimap_walk req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!current->mm)
		return -EINVAL;
	/* An arm64 caller may pass a tagged pointer (tagged address ABI). */
	return multimap_walk_mm(mf, current->mm,
				untagged_addr((unsigned long)req.addr),
				req.count, req.pfns);
}

static long multimap_walk_pid(struct multimap_file *mf, void __user *uarg)
{
	struct multimap_walk_pid req;
	struct task_struct *task;
	struct mm_struct *mm;
	struct pid *pid;
	long ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.pid <= 0)
		return -EINVAL;
	/* Another process's physical layout: only for who may read its memory. */
	if (!mf->pfns_visible || !capable(CAP_SYS_PTRACE))
		return -EPERM;
	pid = find_get_pid(req.pid);
	task = get_pid_task(pid, PIDTYPE_PID);
	put_pid(pid);
	if (!task)
		return -ESRCH;
	mm = get_task_mm(task);
	put_task_struct(task);
	if (!mm)
		return -ESRCH;	/* a kernel thread or an exiting process */
	ret = multimap_walk_mm(mf, mm, (unsigned long)req.addr, req.count,
			       req.pfns);
	mmput(mm);
	return ret;
}

static long multimap_readback(struct multimap_file *mf, void __user *uarg)
{
	struct multimap_page_sum __user *out;
	struct multimap_buffer *buf;
	struct multimap_readback req;
	u64 i;
	long ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	buf = multimap_get_buffer(mf);
	if (!buf)
		return -ENODATA;
	ret = multimap_check_range(buf, req.start, req.count);
	out = u64_to_user_ptr(req.sums);
	for (i = 0; !ret && i < req.count; i++) {
		unsigned long idx = array_index_nospec(req.start + i,
						       buf->npages);
		struct multimap_page_sum sum = {};
		void *kaddr = kmap_local_page(buf->pages[idx]);

		sum.head = *(u64 *)kaddr;
		sum.crc32 = crc32_le(~0U, kaddr, PAGE_SIZE) ^ ~0U;
		kunmap_local(kaddr);
		if (copy_to_user(out + i, &sum, sizeof(sum)))
			ret = -EFAULT;
		else if (fatal_signal_pending(current))
			ret = -EINTR;
		cond_resched();
	}
	multimap_buffer_put(buf);
	return ret;
}

static long multimap_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct multimap_file *mf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case MULTIMAP_IOC_CONFIGURE:
		return multimap_configure(mf, uarg);
	case MULTIMAP_IOC_INFO:
		return multimap_info(mf, uarg);
	case MULTIMAP_IOC_GET_PFNS:
		return multimap_get_pfns(mf, uarg);
	case MULTIMAP_IOC_WALK:
		return multimap_walk(mf, uarg);
	case MULTIMAP_IOC_WALK_PID:
		return multimap_walk_pid(mf, uarg);
	case MULTIMAP_IOC_READBACK:
		return multimap_readback(mf, uarg);
	}
	return -ENOTTY;
}

static void multimap_vm_open(struct vm_area_struct *vma)
{
	struct multimap_buffer *buf = vma->vm_private_data;

	if (bug != MULTIMAP_BUG_SPLIT_REFCOUNT)
		kref_get(&buf->ref);
	atomic_long_inc(&buf->live_vmas);
	atomic_long_inc(&stats.vmas);
	atomic_long_inc(&stats.vma_opens);
}

static void multimap_vm_close(struct vm_area_struct *vma)
{
	struct multimap_buffer *buf = vma->vm_private_data;

	atomic_long_dec(&buf->live_vmas);
	atomic_long_dec(&stats.vmas);
	atomic_long_inc(&stats.vma_closes);
	/* The use-after-free bug: the buffer dies with the first VMA to go. */
	if (bug == MULTIMAP_BUG_UAF && buf->backing == MULTIMAP_BACKING_PAGES)
		multimap_free_pages(buf);
	multimap_buffer_put(buf);
}

/*
 * Serves every mapping of refcounted pages, not only the fault mapping:
 * MADV_DONTNEED (and any other zap that is not an unmap) empties the page
 * tables of an insert, insert_one or vmalloc_range VMA too, and the next
 * access lands here.  The pages still belong to the buffer, so the same
 * page, with its data, is mapped again.  VM_PFNMAP VMAs (remap, remap_runs)
 * never get here: madvise() refuses them.
 */
static vm_fault_t multimap_vm_fault(struct vm_fault *vmf)
{
	struct multimap_buffer *buf = vmf->vma->vm_private_data;
	unsigned long idx;

	if ((vmf->vma->vm_flags & VM_PFNMAP) || vmf->pgoff >= buf->npages)
		return VM_FAULT_SIGBUS;
	idx = array_index_nospec(vmf->pgoff, buf->npages);
	vmf->page = buf->pages[idx];
	get_page(vmf->page);
	atomic_long_inc(&stats.faults);
	return 0;
}

static const struct vm_operations_struct multimap_vm_ops = {
	.open = multimap_vm_open,
	.close = multimap_vm_close,
	.fault = multimap_vm_fault,
};

/* The classic loop: one remap_pfn_range() per page, moving the address. */
static int multimap_map_remap(struct vm_area_struct *vma,
			      struct multimap_buffer *buf, unsigned long off)
{
	unsigned long i, addr = vma->vm_start, n = vma_pages(vma);
	unsigned long fail = READ_ONCE(fail_at);	/* writable at run time */
	int ret;

	for (i = 0; i < n; i++, addr += PAGE_SIZE) {
		if (fail && i + 1 == fail)
			ret = -ENOMEM;	/* injected, to exercise the error path */
		else
			ret = remap_pfn_range(vma, addr,
					      page_to_pfn(buf->pages[off + i]),
					      PAGE_SIZE, vma->vm_page_prot);
		if (ret) {
			if (bug == MULTIMAP_BUG_NOZAP) {
				/*
				 * The comedi bug: drop the pages while the
				 * earlier PTEs still point at them; the window
				 * lasts until mmap_region() unmaps the VMA.
				 */
				multimap_free_pages(buf);
				atomic_long_inc(&stats.map_errors);
				msleep(200);
				return ret;
			}
			/* Never leave earlier PTEs behind (CVE-2024-53148). */
			if (i)
				zap_vma_ptes(vma, vma->vm_start,
					     addr - vma->vm_start);
			atomic_long_inc(&stats.map_errors);
			return ret;
		}
		if (!(i % 1024))
			cond_resched();
	}
	return 0;
}

/* One remap_pfn_range() per physically contiguous run. */
static int multimap_map_remap_runs(struct vm_area_struct *vma,
				   struct multimap_buffer *buf,
				   unsigned long off)
{
	unsigned long i = 0, n = vma_pages(vma);
	int ret;

	while (i < n) {
		unsigned long pfn = page_to_pfn(buf->pages[off + i]);
		unsigned long len = 1;

		while (i + len < n &&
		       page_to_pfn(buf->pages[off + i + len]) == pfn + len)
			len++;
		ret = remap_pfn_range(vma, vma->vm_start + (i << PAGE_SHIFT),
				      pfn, len << PAGE_SHIFT, vma->vm_page_prot);
		if (ret) {
			if (i)
				zap_vma_ptes(vma, vma->vm_start, i << PAGE_SHIFT);
			atomic_long_inc(&stats.map_errors);
			return ret;
		}
		i += len;
		cond_resched();
	}
	return 0;
}

/*
 * Undo the first @size bytes a failing vm_insert_page(s) loop mapped into
 * this VMA.  zap_page_range_single() is the call for one VMA, but 6.1 does
 * not export it (Module.symvers, x86_64 and arm64), and zap_vma_ptes(),
 * which is that call, refuses anything but VM_PFNMAP.  zap_page_range() is
 * the exported one: during ->mmap the VMA is not in the mm's tree yet, so
 * its walk over the following VMAs finds none and it zaps only this range.
 * The pages stay owned by the buffer (the file holds it) until then.
 */
static void multimap_zap_inserted(struct vm_area_struct *vma,
				  unsigned long size)
{
	if (size)
		zap_page_range(vma, vma->vm_start, size);
}

static int multimap_map_insert(struct vm_area_struct *vma,
			       struct multimap_buffer *buf, unsigned long off)
{
	unsigned long i = 0, n = vma_pages(vma);
	int ret;

	while (i < n) {
		unsigned long batch = min(n - i, MULTIMAP_INSERT_BATCH);
		unsigned long left = batch;

		ret = vm_insert_pages(vma, vma->vm_start + (i << PAGE_SHIFT),
				      &buf->pages[off + i], &left);
		i += batch - left;
		if (ret) {
			multimap_zap_inserted(vma, i << PAGE_SHIFT);
			atomic_long_inc(&stats.map_errors);
			return ret;
		}
		cond_resched();
	}
	return 0;
}

static int multimap_map_insert_one(struct vm_area_struct *vma,
				   struct multimap_buffer *buf,
				   unsigned long off)
{
	unsigned long i, n = vma_pages(vma);
	int ret;

	for (i = 0; i < n; i++) {
		ret = vm_insert_page(vma, vma->vm_start + (i << PAGE_SHIFT),
				     buf->pages[off + i]);
		if (ret) {
			multimap_zap_inserted(vma, i << PAGE_SHIFT);
			atomic_long_inc(&stats.map_errors);
			return ret;
		}
		if (!((i + 1) % MULTIMAP_CHUNK))
			cond_resched();
	}
	return 0;
}

static int multimap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct multimap_buffer *buf = multimap_get_buffer(file->private_data);
	unsigned long off = vma->vm_pgoff, n = vma_pages(vma);
	int ret;

	if (!buf)
		return -ENODATA;
	if (off >= buf->npages || n > buf->npages - off) {
		ret = -EINVAL;
		goto refused;
	}
	off = array_index_nospec(off, buf->npages);
	if (!(vma->vm_flags & VM_SHARED)) {
		if (vma->vm_flags & VM_WRITE) {
			pr_info_ratelimited("writable MAP_PRIVATE refused: use MAP_SHARED, or PROT_READ\n");
			ret = -EINVAL;
			goto refused;
		}
		vma->vm_flags &= ~VM_MAYWRITE;
	}
	vma->vm_flags |= VM_DONTDUMP;
	if (bug != MULTIMAP_BUG_NOEXPAND)
		vma->vm_flags |= VM_DONTEXPAND;
	vma->vm_private_data = buf;
	vma->vm_ops = &multimap_vm_ops;

	switch (buf->mapping) {
	case MULTIMAP_MAP_REMAP:
		ret = multimap_map_remap(vma, buf, off);
		break;
	case MULTIMAP_MAP_REMAP_RUNS:
		ret = multimap_map_remap_runs(vma, buf, off);
		break;
	case MULTIMAP_MAP_INSERT:
		ret = multimap_map_insert(vma, buf, off);
		break;
	case MULTIMAP_MAP_INSERT_ONE:
		ret = multimap_map_insert_one(vma, buf, off);
		break;
	case MULTIMAP_MAP_VMALLOC_RANGE:
		ret = remap_vmalloc_range(vma, buf->vaddr, off);
		break;
	default:	/* MULTIMAP_MAP_FAULT: pages arrive on fault */
		ret = 0;
		break;
	}
	if (ret) {
		multimap_buffer_put(buf);
		return ret;
	}
	/* The VMA owns the reference now; vm_ops->close drops it. */
	atomic_long_inc(&buf->live_vmas);
	atomic_long_inc(&stats.vmas);
	atomic_long_inc(&stats.mmaps);
	return 0;

refused:
	atomic_long_inc(&stats.refused);
	multimap_buffer_put(buf);
	return ret;
}

static int multimap_open(struct inode *inode, struct file *file)
{
	struct multimap_file *mf = kzalloc(sizeof(*mf), GFP_KERNEL_ACCOUNT);

	if (!mf)
		return -ENOMEM;
	mutex_init(&mf->lock);
	/* Decided once, by the opener's credentials, as pagemap_open() does. */
	mf->pfns_visible = file_ns_capable(file, &init_user_ns, CAP_SYS_ADMIN);
	file->private_data = mf;
	atomic_long_inc(&stats.files);
	return 0;
}

static int multimap_release(struct inode *inode, struct file *file)
{
	struct multimap_file *mf = file->private_data;

	if (mf->buf)
		multimap_buffer_put(mf->buf);
	mutex_destroy(&mf->lock);
	kfree(mf);
	atomic_long_dec(&stats.files);
	return 0;
}

static const struct file_operations multimap_fops = {
	.owner = THIS_MODULE,
	.open = multimap_open,
	.release = multimap_release,
	.unlocked_ioctl = multimap_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = multimap_mmap,
};

static struct miscdevice multimap_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "multimap",
	.fops = &multimap_fops,
};

static int multimap_stats_show(struct seq_file *m, void *v)
{
	seq_printf(m, "buffers %ld\n", atomic_long_read(&stats.buffers));
	seq_printf(m, "pages %ld\n", atomic_long_read(&stats.pages));
	seq_printf(m, "vmas %ld\n", atomic_long_read(&stats.vmas));
	seq_printf(m, "files %ld\n", atomic_long_read(&stats.files));
	seq_printf(m, "mmaps %ld\n", atomic_long_read(&stats.mmaps));
	seq_printf(m, "vma_opens %ld\n", atomic_long_read(&stats.vma_opens));
	seq_printf(m, "vma_closes %ld\n", atomic_long_read(&stats.vma_closes));
	seq_printf(m, "faults %ld\n", atomic_long_read(&stats.faults));
	seq_printf(m, "refused %ld\n", atomic_long_read(&stats.refused));
	seq_printf(m, "map_errors %ld\n", atomic_long_read(&stats.map_errors));
	seq_printf(m, "max_pages %lu\n", max_pages);
	seq_printf(m, "bug_mode %s\n", multimap_bug_names[bug]);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(multimap_stats);

static int __init multimap_init(void)
{
	int ret;

	if (!max_pages || max_pages > MULTIMAP_PAGES_LIMIT) {
		pr_err("max_pages must be 1..%lu\n", (unsigned long)MULTIMAP_PAGES_LIMIT);
		return -EINVAL;
	}
	ret = match_string(multimap_bug_names, ARRAY_SIZE(multimap_bug_names),
			   bug_mode);
	if (ret < 0) {
		pr_err("unknown bug_mode '%s'\n", bug_mode);
		return -EINVAL;
	}
	bug = ret;
	if (bug != MULTIMAP_BUG_NONE)
		pr_warn("bug_mode=%s: this module is now deliberately broken\n",
			bug_mode);
	if (dev_mode & ~0666) {
		pr_err("dev_mode %o: only rw bits are allowed\n", dev_mode);
		return -EINVAL;
	}
	multimap_pdev = platform_device_register_simple("multimap-dma", -1,
							NULL, 0);
	if (IS_ERR(multimap_pdev))
		return PTR_ERR(multimap_pdev);
	ret = dma_coerce_mask_and_coherent(&multimap_pdev->dev,
					   DMA_BIT_MASK(64));
	if (ret)
		goto unregister_pdev;

	multimap_misc.mode = dev_mode;
	ret = misc_register(&multimap_misc);
	if (ret)
		goto unregister_pdev;

	multimap_dir = debugfs_create_dir("multimap", NULL);
	debugfs_create_file("stats", 0400, multimap_dir, NULL,
			    &multimap_stats_fops);
	pr_info("ready: max_pages=%lu, /dev/multimap mode %o\n", max_pages,
		dev_mode);
	return 0;

unregister_pdev:
	platform_device_unregister(multimap_pdev);
	return ret;
}

static void __exit multimap_exit(void)
{
	debugfs_remove_recursive(multimap_dir);
	misc_deregister(&multimap_misc);
	platform_device_unregister(multimap_pdev);
}

module_init(multimap_init);
module_exit(multimap_exit);

MODULE_DESCRIPTION("Map separately allocated pages as one contiguous user region");
MODULE_AUTHOR("remaplab");
MODULE_LICENSE("GPL");
