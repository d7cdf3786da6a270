// SPDX-License-Identifier: GPL-2.0
/* Tiny module for the modsignd kernel acceptance test. */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init mst_hello_init(void)
{
	pr_info("mst_hello: loaded\n");
	return 0;
}

static void __exit mst_hello_exit(void)
{
	pr_info("mst_hello: unloaded\n");
}

module_init(mst_hello_init);
module_exit(mst_hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modsignd test module (tiny)");
