// SPDX-License-Identifier: GPL-2.0
/*
 * vmap_drv: a misc device whose mmap maps a vmalloc_user() buffer with
 * remap_vmalloc_range(), so the pages are virtually but not physically
 * contiguous.  bug=1 makes mmap WARN (a kernel report the lab must see).
 */
#include <linux/bug.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/vmalloc.h>

static unsigned int npages = 8;
module_param(npages, uint, 0444);
MODULE_PARM_DESC(npages, "Buffer size in pages (1..4096, default 8)");

static bool bug;
module_param(bug, bool, 0444);
MODULE_PARM_DESC(bug, "WARN in mmap (a deliberate kernel report)");

static void *vmap_buf;

static int vmap_drv_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;

	WARN_ON_ONCE(bug);
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff + (len >> PAGE_SHIFT) > npages)
		return -EINVAL;
	return remap_vmalloc_range(vma, vmap_buf, vma->vm_pgoff);
}

static const struct file_operations vmap_drv_fops = {
	.owner = THIS_MODULE,
	.mmap = vmap_drv_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice vmap_drv_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vmap_drv",
	.fops = &vmap_drv_fops,
	.mode = 0666,
};

static int __init vmap_drv_init(void)
{
	int ret;

	if (npages < 1 || npages > 4096)
		return -EINVAL;
	vmap_buf = vmalloc_user((unsigned long)npages << PAGE_SHIFT);
	if (!vmap_buf)
		return -ENOMEM;
	ret = misc_register(&vmap_drv_dev);
	if (ret)
		vfree(vmap_buf);
	return ret;
}

static void __exit vmap_drv_exit(void)
{
	misc_deregister(&vmap_drv_dev);
	vfree(vmap_buf);
}

module_init(vmap_drv_init);
module_exit(vmap_drv_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmalloc_user buffer mapped with remap_vmalloc_range");
