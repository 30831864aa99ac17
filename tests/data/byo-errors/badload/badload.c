// SPDX-License-Identifier: GPL-2.0
/* Builds, but refuses to load: the lab must quote insmod and the kernel log. */
#include <linux/module.h>

static int __init badload_init(void)
{
	pr_err("badload: no such hardware here\n");
	return -ENODEV;
}
module_init(badload_init);
MODULE_LICENSE("GPL");
