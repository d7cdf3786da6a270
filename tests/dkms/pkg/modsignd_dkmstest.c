// SPDX-License-Identifier: GPL-2.0
/* A hello-world module that DKMS builds in modsignd's DKMS integration test. */
#include <linux/init.h>
#include <linux/module.h>

static int __init modsignd_dkmstest_init(void)
{
	pr_info("modsignd_dkmstest: loaded\n");
	return 0;
}

static void __exit modsignd_dkmstest_exit(void)
{
}

module_init(modsignd_dkmstest_init);
module_exit(modsignd_dkmstest_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modsignd DKMS integration test module");
MODULE_VERSION("1.0");
