// SPDX-License-Identifier: GPL-2.0
/*
 * A tiny out-of-tree kernel module for the modsignd integration tests.
 * It is only built (against the installed Debian headers), never loaded here.
 */
#include <linux/init.h>
#include <linux/module.h>

static int __init hello_init(void)
{
	pr_info("modsignd test module loaded\n");
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("modsignd test module unloaded\n");
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modsignd integration test module");
MODULE_AUTHOR("modsignd test suite");
