/*
 * QEMU TCG plugin: counts the guest instructions a process executes.
 *
 * Each translated block gets one inline 64-bit add of its instruction count, so the cost is
 * one add per block executed (no callback per instruction). At exit the total is written to
 * the file named by the `out=PATH` argument, or printed through QEMU's log when none is given:
 *
 *   qemu-aarch64 -plugin ./libinsn_count.so,out=/tmp/n.txt -L ROOTFS ROOTFS/usr/bin/python3 ...
 *
 * The counter is shared by all vCPUs (guest threads) and the inline add is not atomic: run the
 * guest single-threaded (LiteRT num_threads=1, OPENBLAS_NUM_THREADS=1) for exact counts.
 * Built against the plugin API of QEMU 7.2 (QEMU_PLUGIN_VERSION 1) by benchmarks/arm_setup.sh.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t executed_insns;
static char out_path[4096];

static void on_tb_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed_insns,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_exit(qemu_plugin_id_t id, void *userdata)
{
    char line[64];
    snprintf(line, sizeof(line), "%" PRIu64 "\n", executed_insns);
    if (out_path[0]) {
        FILE *f = fopen(out_path, "w");
        if (f) {
            fputs(line, f);
            fclose(f);
            return;
        }
    }
    qemu_plugin_outs("insns: ");
    qemu_plugin_outs(line);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof(out_path), "%s", argv[i] + 4);
        } else {
            fprintf(stderr, "insn_count: unknown argument %s (expected out=PATH)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
