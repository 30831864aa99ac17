/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * multimap: map several separately allocated pages into a process as one
 * contiguous virtual region, in every way a driver author would consider.
 *
 * Userspace API.  Each open file of /dev/multimap configures one buffer
 * (MULTIMAP_IOC_CONFIGURE), then mmaps it.  Version 2: ioctl magic 0xd7
 * (0xb6 belongs to linux/fpga-dfl.h in ioctl-number.rst), multimap_info.flags.
 *
 * PFNs (MULTIMAP_IOC_GET_PFNS, MULTIMAP_IOC_WALK) are real only for a file
 * opened with CAP_SYS_ADMIN, as /proc/PID/pagemap; otherwise they read 0
 * (MULTIMAP_INFO_PFNS_HIDDEN), and WALK still tells mapped (0) from not
 * mapped (MULTIMAP_WALK_NOT_MAPPED).
 */
#ifndef _UAPI_MULTIMAP_H
#define _UAPI_MULTIMAP_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define MULTIMAP_UAPI_VERSION	2

/* Where the pages come from. */
enum multimap_backing {
	MULTIMAP_BACKING_PAGES = 1,	/* N order-0 pages, alloc_page() one by one */
	MULTIMAP_BACKING_CONTIG = 2,	/* one contiguous DMA-API block: remap(_runs) only */
	MULTIMAP_BACKING_VMALLOC = 3,	/* vmalloc_user() */
};

/* How they reach user space. */
enum multimap_mapping {
	MULTIMAP_MAP_REMAP = 1,		/* remap_pfn_range() once per page */
	MULTIMAP_MAP_REMAP_RUNS = 2,	/* remap_pfn_range() once per contiguous run */
	MULTIMAP_MAP_INSERT = 3,	/* vm_insert_pages() in batches */
	MULTIMAP_MAP_FAULT = 4,		/* nothing at mmap time, pages on fault */
	MULTIMAP_MAP_VMALLOC_RANGE = 5,	/* remap_vmalloc_range() */
	MULTIMAP_MAP_INSERT_ONE = 6,	/* vm_insert_page() loop: benchmark baseline */
};

/* Which allocator actually served the buffer. */
enum multimap_source {
	MULTIMAP_SOURCE_PAGES = 1,	/* the page allocator, page by page */
	MULTIMAP_SOURCE_BUDDY = 2,	/* DMA API, fell back to one buddy block */
	MULTIMAP_SOURCE_CMA = 3,	/* DMA API, from the CMA area */
	MULTIMAP_SOURCE_VMALLOC = 4,
};

struct multimap_config {
	__u32 version;		/* MULTIMAP_UAPI_VERSION */
	__u32 backing;		/* enum multimap_backing */
	__u32 mapping;		/* enum multimap_mapping */
	__u32 flags;		/* must be 0 */
	__u64 pages;		/* 1 .. max_pages (module parameter) */
	__u64 reserved[4];	/* must be 0 */
};

/* multimap_info.flags */
#define MULTIMAP_INFO_PFNS_HIDDEN	_BITULL(0)	/* no CAP_SYS_ADMIN: PFNs read 0 */

struct multimap_info {
	__u32 version;
	__u32 backing;
	__u32 mapping;
	__u32 source;		/* enum multimap_source */
	__u64 pages;
	__u64 runs;		/* physically contiguous runs in the buffer */
	__u64 live_vmas;	/* VMAs currently mapping this buffer */
	__u64 flags;		/* MULTIMAP_INFO_* */
	__u64 reserved[2];
};

/* The buffer's PFNs, in buffer order: pfns[i] = PFN of page start + i. */
struct multimap_pfns {
	__u64 start;		/* first page index */
	__u64 count;		/* number of entries in pfns */
	__u64 pfns;		/* user pointer to __u64[count] */
};

/*
 * Walk the caller's page tables: pfns[i] = PFN mapped at addr + i pages, for
 * every kind of VMA (normal, VM_MIXEDMAP, VM_PFNMAP/VM_IO, THP, hugetlb).
 */
#define MULTIMAP_WALK_NOT_MAPPED	(~(__u64)0)
struct multimap_walk {
	__u64 addr;		/* page aligned user address (arm64: may be tagged) */
	__u64 count;		/* pages */
	__u64 pfns;		/* user pointer to __u64[count] */
};

/*
 * The same walk in another process's page tables (the lab's witness for any
 * driver's mapping).  Only for a caller with CAP_SYS_ADMIN and CAP_SYS_PTRACE
 * (one who could read that process's memory anyway); pid in the caller's PID
 * namespace; flags must be 0.
 */
struct multimap_walk_pid {
	__s32 pid;
	__u32 flags;
	__u64 addr;		/* page aligned user address in that process */
	__u64 count;		/* pages */
	__u64 pfns;		/* user pointer to __u64[count] */
};

/* The buffer's contents as the kernel sees them, per page. */
struct multimap_page_sum {
	__u64 head;		/* first 8 bytes of the page */
	__u32 crc32;		/* crc32_le(~0, page, PAGE_SIZE) */
	__u32 reserved;
};

struct multimap_readback {
	__u64 start;		/* first page index */
	__u64 count;
	__u64 sums;		/* user pointer to struct multimap_page_sum[count] */
};

#define MULTIMAP_IOC_MAGIC	0xd7
#define MULTIMAP_IOC_CONFIGURE	_IOW(MULTIMAP_IOC_MAGIC, 1, struct multimap_config)
#define MULTIMAP_IOC_INFO	_IOR(MULTIMAP_IOC_MAGIC, 2, struct multimap_info)
#define MULTIMAP_IOC_GET_PFNS	_IOW(MULTIMAP_IOC_MAGIC, 3, struct multimap_pfns)
#define MULTIMAP_IOC_WALK	_IOW(MULTIMAP_IOC_MAGIC, 4, struct multimap_walk)
#define MULTIMAP_IOC_READBACK	_IOW(MULTIMAP_IOC_MAGIC, 5, struct multimap_readback)
#define MULTIMAP_IOC_WALK_PID	_IOW(MULTIMAP_IOC_MAGIC, 6, struct multimap_walk_pid)

#endif /* _UAPI_MULTIMAP_H */
