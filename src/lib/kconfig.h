/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hash a kernel expects module signatures to use: its CONFIG_MODULE_SIG_HASH. */

/* Looks for CONFIG_MODULE_SIG_HASH of kernel 'release' under 'sysroot' ("/" for this system)
 * in lib/modules/RELEASE/build/include/config/auto.conf, lib/modules/RELEASE/build/.config and
 * boot/config-RELEASE, in that order. Paths are resolved inside sysroot (symlinks such as
 * build -> /usr/src/... stay in it). *ret_hash gets e.g. "sha512"; *ret_source (optional) the
 * file it came from, relative to sysroot. -ENOENT when no configuration was found, -ENODATA
 * when one was found but does not set the option (a kernel without module signing). */
int kernel_module_sig_hash(const char *sysroot, const char *release, char **ret_hash, char **ret_source);

/* Extracts CONFIG_MODULE_SIG_HASH from the text of a kernel configuration; -ENODATA if absent. */
int kconfig_find_sig_hash(const char *text, char **ret_hash);
