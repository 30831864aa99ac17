// SPDX-License-Identifier: GPL-2.0
/*
 * exmap: the smallest driver that maps several separately allocated pages
 * into a process as one contiguous region, with the classic per-page
 * remap_pfn_range() loop.  An example for remaplab: its scenario checks the
 * mapping with every witness (examples/scenarios/exmap.yaml).
 *
 * Each open file owns npages pages, allocated one by one; mmap of the whole
 * buffer (shared only) maps page i at vm_start + i * PAGE_SIZE.  The pages
 * live until the file and every VMA that maps them (fork children, the
 * pieces of a partial munmap) are gone: remap_pfn_range() takes no page
 * reference of its own.
 *
 * bug=1 switches on the mistake this loop is famous for: page 0 mapped at
 * every index (the [i] forgotten).  Nothing crashes; the witnesses see it.
 */
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>

static unsigned int npages = 16;
module_param(npages, uint, 0444);
MODULE_PARM_DESC(npages, "Pages per open file (1..4096, default 16)");

static bool bug;
module_param(bug, bool, 0444);
MODULE_PARM_DESC(bug, "Map page 0 at every index (the classic loop bug)");

struct exmap_buf {
	struct kref ref;	/* the file and each VMA */
	unsigned int n;
	struct page *pages[];
};

static void exmap_free(struct kref *ref)
{
	struct exmap_buf *buf = container_of(ref, struct exmap_buf, ref);
	unsigned int i;

	for (i = 0; i < buf->n; i++)
		__free_page(buf->pages[i]);
	kfree(buf);
}

static void exmap_vm_open(struct vm_area_struct *vma)
{
	struct exmap_buf *buf = vma->vm_private_data;

	kref_get(&buf->ref);
}

static void exmap_vm_close(struct vm_area_struct *vma)
{
	struct exmap_buf *buf = vma->vm_private_data;

	kref_put(&buf->ref, exmap_free);
}

static const struct vm_operations_struct exmap_vm_ops = {
	.open = exmap_vm_open,
	.close = exmap_vm_close,
};

static int exmap_open(struct inode *inode, struct file *file)
{
	struct exmap_buf *buf;
	unsigned int i;

	if (!npages || npages > 4096)
		return -EINVAL;
	buf = kzalloc(struct_size(buf, pages, npages), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	kref_init(&buf->ref);
	for (i = 0; i < npages; i++) {
		buf->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!buf->pages[i]) {
			kref_put(&buf->ref, exmap_free);
			return -ENOMEM;
		}
		buf->n = i + 1;
	}
	file->private_data = buf;
	return 0;
}

static int exmap_release(struct inode *inode, struct file *file)
{
	struct exmap_buf *buf = file->private_data;

	kref_put(&buf->ref, exmap_free);
	return 0;
}

static int exmap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct exmap_buf *buf = file->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long i;
	int ret;

	if (!(vma->vm_flags & VM_SHARED))	/* COW: one call for the whole VMA */
		return -EINVAL;
	if (vma->vm_pgoff || len != (unsigned long)buf->n << PAGE_SHIFT)
		return -EINVAL;
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	for (i = 0; i < buf->n; i++) {
		struct page *page = buf->pages[bug ? 0 : i];

		ret = remap_pfn_range(vma, vma->vm_start + (i << PAGE_SHIFT),
				      page_to_pfn(page), PAGE_SIZE,
				      vma->vm_page_prot);
		if (ret) {
			zap_vma_ptes(vma, vma->vm_start, i << PAGE_SHIFT);
			return ret;
		}
	}
	vma->vm_private_data = buf;
	vma->vm_ops = &exmap_vm_ops;
	exmap_vm_open(vma);
	return 0;
}

static const struct file_operations exmap_fops = {
	.owner = THIS_MODULE,
	.open = exmap_open,
	.release = exmap_release,
	.mmap = exmap_mmap,
};

static struct miscdevice exmap_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "exmap",
	.fops = &exmap_fops,
	.mode = 0600,
};

module_misc_device(exmap_dev);

MODULE_DESCRIPTION("Per-page remap_pfn_range example for remaplab");
MODULE_LICENSE("GPL");
