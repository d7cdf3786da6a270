/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmtest-module.c: the smallest file modsignd takes for a kernel module.
 *
 * run-vm-test.sh compiles it with `gcc -c` into an ELF relocatable object whose .modinfo names
 * the guest's kernel release. modsignd checks ELF, .modinfo and that /lib/modules/RELEASE
 * exists; it never loads a module, so nothing else is needed. */

#ifndef VMTEST_NAME
#define VMTEST_NAME "vmtest"
#endif
#ifndef VMTEST_RELEASE
#error "build with -DVMTEST_RELEASE='\"<kernel release>\"'"
#endif

__attribute__((section(".modinfo"), used, aligned(1)))
static const char vmtest_modinfo[] = "name=" VMTEST_NAME "\0vermagic=" VMTEST_RELEASE " SMP mod_unload \0";

int vmtest_init(void);
int vmtest_init(void) {
        return 0;
}
