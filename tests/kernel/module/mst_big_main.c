// SPDX-License-Identifier: GPL-2.0
/*
 * Big module for the modsignd kernel acceptance test: about 5 MiB of
 * incompressible const data (mst_big_data.S), so that xz with 3 MiB blocks
 * makes a multi-block .ko.xz.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

extern const unsigned char mst_big_data[];
extern const unsigned char mst_big_data_end[];

static int __init mst_big_init(void)
{
	unsigned long n = mst_big_data_end - mst_big_data;
	unsigned long i;
	unsigned int x = 0;

	for (i = 0; i < n; i += 4096)
		x ^= mst_big_data[i];
	pr_info("mst_big: loaded, %lu bytes of data, xor %02x\n", n, x);
	return 0;
}

static void __exit mst_big_exit(void)
{
	pr_info("mst_big: unloaded\n");
}

module_init(mst_big_init);
module_exit(mst_big_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modsignd test module (5 MiB of random data)");
