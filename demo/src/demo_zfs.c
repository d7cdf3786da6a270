/* A stand-in for an out-of-tree module: a real ELF relocatable object with the .modinfo
 * fields modpost writes (name, vermagic, license). It is not loadable (no struct module), but
 * it is exactly what the signer reads, signs and checks. */
static const char modinfo[] __attribute__((section(".modinfo"), used, aligned(1))) =
        "license=GPL\0"
        "description=modsignd demo module demo_zfs\0"
        "name=demo_zfs\0"
        "vermagic=6.1.0-demo SMP preempt mod_unload modversions ";

int demo_zfs_init(void);
int demo_zfs_init(void) {
        return 0;
}
