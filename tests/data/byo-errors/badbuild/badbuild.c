// SPDX-License-Identifier: GPL-2.0
/* Does not build: an undeclared identifier (the lab must quote the compiler). */
#include <linux/module.h>

static int __init badbuild_init(void)
{
	return undeclared_thing;
}
module_init(badbuild_init);
MODULE_LICENSE("GPL");
