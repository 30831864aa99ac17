// SPDX-License-Identifier: GPL-2.0
/* faultmap: npages separately allocated pages, mapped on fault (vm_ops->fault sets vmf->page). */
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

static unsigned int npages = 8;
module_param(npages, uint, 0444);
static struct page **pages;

static vm_fault_t faultmap_fault(struct vm_fault *vmf)
{
	if (vmf->pgoff >= npages)
		return VM_FAULT_SIGBUS;
	vmf->page = pages[vmf->pgoff];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct faultmap_vm_ops = {
	.fault = faultmap_fault,
};

static int faultmap_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vma->vm_ops = &faultmap_vm_ops;
	return 0;
}

static const struct file_operations faultmap_fops = {
	.owner = THIS_MODULE,
	.mmap = faultmap_mmap,
};

static struct miscdevice faultmap_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "faultmap",
	.fops = &faultmap_fops,
	.mode = 0600,
};

static int __init faultmap_init(void)
{
	unsigned int i;
	int ret;

	pages = kcalloc(npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < npages; i++) {
		pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!pages[i])
			goto nomem;
	}
	ret = misc_register(&faultmap_dev);
	if (!ret)
		return 0;
nomem:
	while (i--)
		__free_page(pages[i]);
	kfree(pages);
	return -ENOMEM;
}

static void __exit faultmap_exit(void)
{
	unsigned int i;

	misc_deregister(&faultmap_dev);
	for (i = 0; i < npages; i++)
		__free_page(pages[i]);
	kfree(pages);
}

module_init(faultmap_init);
module_exit(faultmap_exit);
MODULE_LICENSE("GPL");
