/* SPDX-License-Identifier: GPL-2.0 */
/* mst_big.bin is generated at build time (see Kbuild), never committed. */
	.section .rodata, "a"
	.balign 64
	.globl mst_big_data
	.type mst_big_data, @object
mst_big_data:
	.incbin "mst_big.bin"
	.size mst_big_data, . - mst_big_data
	.globl mst_big_data_end
mst_big_data_end:
	.section .note.GNU-stack, "", @progbits
