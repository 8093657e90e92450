// `petal bench`: times training steps of one configuration and prints one
// record; `make bench` (bench/run.sh) sets it beside PyTorch's figure.
// The machine's FMA peak and a large GEMM on petal's engine are measured in
// the same process and threads.
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd/args.h"
#include "cmd/cmd.h"
#include "core/adamw.h"
#include "core/ast.h"
#include "core/backbone.h"
#include "core/gemm.h"
#include "core/threads.h"
#include "core/train.h"

static const char usage[] =
    "usage: petal bench [options]        (or: petal bench fbank ...)\n"
    "Times training steps (forward, backward, AdamW) on random features and prints\n"
    "  petal method=M frames=T batch=B dtype=D engine=E samples_per_s=X gflops=G exec_gflops=X\n"
    "        peak_gflops=P peak_isa=I bf16_peak_gflops=P16 bf16_peak_isa=I16 peak_frac=X/P\n"
    "        sgemm_gflops=S sgemm_frac=G/S rss_mib=R act_mib=A kept_mib=K shared_mib=M\n"
    "        bf16_mib=H cpu_util=U cpu_s_per_step=C\n"
    "gflops counts the model's FLOPs (each GEMM the step needs, once); exec_gflops adds\n"
    "the work redone to save memory (attention scores in the backward, rebuilt outputs).\n"
    "peak_gflops: the CPU's float32 FMA peak (register-only AVX-512 loop, AVX2 without it);\n"
    "bf16_peak_gflops: its bf16 dot-product peak (AMX tiles, else AVX512-BF16; 0 without);\n"
    "each thread's best of 12 windows timed by its own CPU clock, summed over threads.\n"
    "peak_frac: exec_gflops over the limit of the line's dtype (fp32: peak_gflops, bf16:\n"
    "bf16_peak_gflops). sgemm_gflops: a 2048^3 float32 GEMM on the engine (PETAL_GEMM).\n"
    "Peaks and sgemm are measured before and after the steps, the higher kept.\n"
    "bf16_mib: the bf16 copy of the frozen weights.\n"
    "cpu_util: CPU time of the steps over wall time x threads (below 1: the cores were\n"
    "shared with other work, or threads waited); cpu_s_per_step: that CPU time per step.\n"
    "act_mib: the activation arena; kept_mib: of which per-layer slabs kept for the backward;\n"
    "shared_mib: backbone mapped from the node-wide image (with --backbone).\n"
    MODEL_OPTS_HELP
    "  --backbone F             start from this backbone file (its sizes must match)\n"
    BACKBONE_CACHE_HELP
    "  --batch B  --threads N  --steps S (timed steps after one warm-up)\n"
    "  --dtype fp32|bf16        bf16: frozen backbone GEMM weights held in bf16 (model.dtype)\n"
    "  --profile  also print `profile family=seconds_per_step ...` by op family\n";

// CPU seconds (user + system) of this process so far.
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Best GFLOP/s of a large square float32 GEMM on the engine in use.
static double sgemm_ceiling(void) {
    int n = 2048;
    float *a = petal_falloc((size_t)n * n), *b = petal_falloc((size_t)n * n),
          *c = petal_falloc((size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 0.0;
    for (int r = 0; r < 4; r++) {
        double t0 = petal_now();
        gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, NULL);
        double g = 2.0 * n * n * n / (petal_now() - t0) * 1e-9;
        if (r > 0 && g > best) best = g;  // first run warms the threads and caches
    }
    free(a), free(b), free(c);
    return best;
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fbank")) return cmd_bench_fbank(argc - 1, argv + 1);
    model_opts mo = {.size = "base", .method = "full", .pool = "all", .frames = 100, .classes = 35};
    int batch = 8, threads = 0, steps = 5, profile = 0;
    const char *backbone = NULL, *cache = NULL, *dtype = "fp32";
    args a = {argc, argv, 1, 0};
    for (; a.i < argc && !a.bad; a.i++) {
        if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (args_model(&a, &mo) || args_int(&a, "--batch", &batch, 1, 65536) ||
            args_int(&a, "--threads", &threads, 1, 4096) ||
            args_int(&a, "--steps", &steps, 1, 100000) || args_switch(&a, "--profile", &profile) ||
            args_flag(&a, "--backbone", &backbone) || args_flag(&a, "--backbone-cache", &cache) ||
            args_flag(&a, "--dtype", &dtype))
            continue;
        args_unknown(&a, "bench");
    }
    if (a.bad) return 2;
    if (strcmp(dtype, "fp32") && strcmp(dtype, "bf16")) {
        fprintf(stderr, "petal bench: --dtype expects fp32 or bf16, got '%s'\n", dtype);
        return 2;
    }
    petal_err err;
    ast_config cfg;
    ast_method meth;
    if (model_opts_resolve(&cfg, &meth, &mo, &err)) {
        fprintf(stderr, "petal bench: %s\n", err.msg);
        return 2;
    }
    petal_set_threads(threads);
    // Measured before and after the timed steps, the higher one kept: on a
    // shared machine a ceiling taken while another job runs would flatter sgemm_frac.
    double ceiling = sgemm_ceiling();
    const char *isa, *isa16;
    double peak = gemm_fma_peak(&isa), peak16 = gemm_bf16_peak(&isa16);

    ast_model m;
    if (ast_model_init_layerwise(&m, &cfg, &meth, batch, &err)) {
        fprintf(stderr, "petal bench: %s\n", err.msg);
        return 2;
    }
    ast_init_weights(&m, 1, backbone != NULL);
    petal_err warn;
    if (backbone && backbone_load(&m, backbone, 0, args_backbone_cache(cache), &warn, &err)) {
        fprintf(stderr, "petal bench: %s\n", err.msg);
        ast_model_free(&m);
        return 2;
    }
    if (backbone) args_warn(&warn);
    const char *share = args_backbone_cache(cache);
    if (!strcmp(dtype, "bf16")) {
        char bwarn[1200];
        if (ast_model_use_bf16(&m, backbone ? share : NULL, bwarn, sizeof bwarn, &err)) {
            fprintf(stderr, "petal bench: %s\n", err.msg);
            ast_model_free(&m);
            return 2;
        }
        if (bwarn[0]) fprintf(stderr, "petal bench: %s\n", bwarn);
    }
    double shared_mib = m.params.nshared / 1048576.0, bf16_mib = m.n16 * 2.0 / 1048576.0;
    float *x = petal_falloc((size_t)batch * cfg.frames * cfg.F);
    int *y = petal_malloc(sizeof(int) * (size_t)batch);
    synthetic_features(x, y, batch, cfg.frames, cfg.F, cfg.K, 2);
    adamw_config oc = adamw_defaults(ast_method_default_lr(&meth));
    adamw_state opt;
    adamw_init(&opt, &oc, &m.params);
    double t0 = 0.0, cpu0 = 0.0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) {  // step 0 is the warm-up
            t0 = petal_now();
            cpu0 = cpu_seconds();
            petal_gemm_flops = petal_recompute_flops = 0.0;
            petal_profile = profile;
            memset(petal_profile_s, 0, sizeof petal_profile_s);
        }
        ast_forward(&m, x, y, batch, NULL);
        train_backward_step(&m, &opt, oc.lr, y, batch);
    }
    double secs = petal_now() - t0, cpu = cpu_seconds() - cpu0;
    petal_profile = 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);  // peak RSS of the training steps, before the second ceiling
    double act_mib = m.arena_floats * 4.0 / 1048576.0, kept_mib = m.kept_floats * 4.0 / 1048576.0;
    adamw_free(&opt);
    free(x), free(y);
    ast_model_free(&m);
    double after = sgemm_ceiling();
    ceiling = after > ceiling ? after : ceiling;
    after = gemm_fma_peak(NULL);
    peak = after > peak ? after : peak;
    after = gemm_bf16_peak(NULL);
    peak16 = after > peak16 ? after : peak16;
    double limit = strcmp(dtype, "bf16") ? peak : peak16;  // the physical limit of this line's GEMMs
    double gflops = petal_gemm_flops / secs * 1e-9;
    double exec = (petal_gemm_flops + petal_recompute_flops) / secs * 1e-9;
    printf("petal method=%s frames=%d batch=%d dtype=%s engine=%s samples_per_s=%.3f gflops=%.1f "
           "exec_gflops=%.1f peak_gflops=%.1f peak_isa=%s bf16_peak_gflops=%.1f bf16_peak_isa=%s "
           "peak_frac=%.3f sgemm_gflops=%.1f sgemm_frac=%.3f rss_mib=%.1f act_mib=%.1f "
           "kept_mib=%.1f shared_mib=%.1f bf16_mib=%.1f cpu_util=%.2f cpu_s_per_step=%.4f\n",
           ast_method_name(&meth), cfg.frames, batch, dtype, gemm_engine_name(),
           steps * batch / secs, gflops, exec, peak, isa, peak16, isa16,
           limit > 0 ? exec / limit : 0.0, ceiling, gflops / ceiling, ru.ru_maxrss / 1024.0,
           act_mib, kept_mib, shared_mib, bf16_mib, cpu / (secs * omp_get_max_threads()),
           cpu / steps);
    if (profile) {
        // Seconds per step by op family; `other` is the step time no probe covered.
        double covered = 0.0;
        printf("profile step=%.4f", secs / steps);
        for (int f = 0; f < PROF_NFAM; f++) {
            printf(" %s=%.4f", petal_profile_names[f], petal_profile_s[f] / steps);
            covered += petal_profile_s[f];
        }
        printf(" other=%.4f\n", (secs - covered) / steps);
    }
    return 0;
}
