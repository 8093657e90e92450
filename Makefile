# petal: `make demo` and `make test` are the two commands (see README.md).
# Every target that builds first runs tools/deps.sh, which installs missing
# Debian packages (only what pkg-config / command -v cannot find).

CC      := gcc
PKGS    := hdf5 fftw3f yaml-0.1 sndfile samplerate ompi-c libxxhash
# GSL (Sobol sequences) without its own cblas: OpenBLAS provides those symbols,
# and two cblas libraries in one process would be one too many.
# OpenBLAS's OpenMP build: GEMMs and petal's own loops share one OpenMP thread
# pool. With the pthread build, two pools spin against each other (each
# waiting thread burns a core the other pool needs). oneDNN (libdnnl-dev, no
# pkg-config file in Debian) is the default GEMM engine; Debian builds it on
# the OpenMP runtime, so it shares that pool too (core/gemm.h).
BLASDIR := /usr/lib/$(shell gcc -print-multiarch)/openblas-openmp
BLAS_PC := PKG_CONFIG_LIBDIR=$(BLASDIR)/pkgconfig pkg-config
CFLAGS  ?= -O3 -march=native
# `override`: flags given on the command line (make test CFLAGS=...) extend
# these instead of replacing them.
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fopenmp -g -I. \
           $(shell $(BLAS_PC) --cflags openblas 2>/dev/null) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Objects, libraries and test binaries go to $(B): build/ for the plain build,
# build/san/ for SAN=1, so switching between the two relinks ./petal instead
# of recompiling everything (tests/run.sh reads PETAL_BUILD=$(B)).
B := build
# make test SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer on everything
# (any report fails the test that triggered it; see README "Reliability").
ifeq ($(SAN),1)
B := build/san
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
                   -fno-sanitize-recover=undefined -Wno-error=format-truncation
# (-fsanitize changes GCC's value ranges: format-truncation then warns where the
# plain build, which keeps it an error, does not; here it stays a warning.)
endif
# The flags every object of $(B) was built with: changing them (CFLAGS=...)
# rebuilds $(B) instead of linking objects of two builds together. ./petal
# remembers which build it was linked from (build/.petal-from) and is relinked
# when that changes.
FLAGSTAMP := $(B)/.flags
$(shell mkdir -p $(B); echo '$(CC) $(CFLAGS)' | cmp -s - $(FLAGSTAMP) || echo '$(CC) $(CFLAGS)' >$(FLAGSTAMP))
$(shell echo '$(B)' | cmp -s - build/.petal-from || echo '$(B)' >build/.petal-from)
LDLIBS  := -lgsl $(shell $(BLAS_PC) --libs openblas 2>/dev/null) -Wl,-rpath,$(BLASDIR) \
           $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldnnl -lm
PYTHON  := /usr/bin/python3

LIBSRC  := $(wildcard core/*.c worker/*.c coordinator/*.c sweeps/*.c results/*.c) \
           $(filter-out cmd/main.c,$(wildcard cmd/*.c))
LIBOBJ  := $(LIBSRC:%.c=$(B)/%.o)
TESTSRC := $(wildcard tests/test_*.c)
TESTBIN := $(TESTSRC:tests/%.c=$(B)/tests/%)
# The canary: the same core built with one backward deliberately broken; the
# gradient check must fail on it (proves the check can fail).
CANARYOBJ := $(LIBOBJ:$(B)/%=$(B)/canary/%)
CANARYBIN := $(B)/canary/test_gradcheck $(B)/canary/test_fixtures

.PHONY: all deps test demo bench bench-asha fixtures clean chaos install fuzz valgrind
all: deps petal

deps:
	@bash tools/deps.sh

petal: $(B)/cmd/main.o $(B)/libpetal.a build/.petal-from
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $(B)/cmd/main.o $(B)/libpetal.a $(LDLIBS)

$(B)/libpetal.a: $(LIBOBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/canary/libpetal.a: $(CANARYOBJ)
	@rm -f $@
	@ar rcs $@ $^

# The commit petal is built from (core/version.c): the stamp changes only when
# the commit does, so only version.o rebuilds.
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
build/git-commit: FORCE
	@mkdir -p build
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
$(B)/core/version.o: build/git-commit
$(B)/core/version.o: override CFLAGS += -DPETAL_GIT='"$(GIT_COMMIT)"'
.PHONY: FORCE
FORCE:

$(B)/%.o: %.c $(wildcard core/*.h */*.h) $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(B)/canary/%.o: %.c $(wildcard core/*.h */*.h) $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) -DPETAL_CANARY -c -o $@ $<

$(B)/tests/%: tests/%.c tests/check.h $(B)/libpetal.a $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $< $(B)/libpetal.a $(LDLIBS)

$(B)/canary/test_%: tests/test_%.c tests/check.h $(B)/canary/libpetal.a $(FLAGSTAMP)
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) -DPETAL_CANARY -o $@ $< $(B)/canary/libpetal.a $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory petal $(TESTBIN) $(CANARYBIN) $(B)/tests/h5poke
	@PETAL_BUILD=$(B) bash tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory petal
	@bash tools/demo.sh

# Kill-anywhere drill: KILLS (default 20) SIGKILLs of sweeps in one process and
# over MPI, then resume; the stores must equal an uninterrupted run's.
chaos: deps
	@$(MAKE) --no-print-directory petal
	@bash tools/chaos.sh

# Search strategies against the full grid (issue 16): grid, random search, ASHA, median.
bench-asha: deps
	@$(MAKE) --no-print-directory petal
	@bash bench/asha.sh

bench: deps
	@bash tools/deps.sh --torch
	@$(MAKE) --no-print-directory petal
	@bash bench/run.sh

fixtures: deps
	@bash tools/deps.sh --torch
	$(PYTHON) tests/torch_ref.py tests/fixtures
	$(PYTHON) tests/torchaudio_ref.py tests/fixtures
	$(PYTHON) tests/hf_ref.py tests/fixtures

# `make install PREFIX=...`: the binary, the man page petal(1), the ready-made
# sweep specs and the docs under share/petal. DESTDIR stages a package.
PREFIX  ?= /usr/local
DESTDIR ?=
install: petal
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/petal/sweeps $(DESTDIR)$(PREFIX)/share/petal/docs
	install -m 755 petal $(DESTDIR)$(PREFIX)/bin/petal
	install -m 644 docs/petal.1 $(DESTDIR)$(PREFIX)/share/man/man1/petal.1
	install -m 644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/petal/docs/
	$(if $(wildcard sweeps/*.yaml),install -m 644 $(wildcard sweeps/*.yaml) $(DESTDIR)$(PREFIX)/share/petal/sweeps/)

# libFuzzer targets (tests/fuzz/): the core and the spec parser built with clang, coverage, ASan
# and UBSan into build/fuzz; `make fuzz FUZZ_SECONDS=N` runs each for N seconds.
FUZZ_SECONDS ?= 60
FUZZCC    := clang
FUZZFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -I. -Wall -Wno-unknown-pragmas \
             -fsanitize=address,undefined -fno-sanitize-recover=undefined \
             $(shell $(BLAS_PC) --cflags openblas 2>/dev/null) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZOBJ   := $(wildcard core/*.c) sweeps/spec.c results/record.c
FUZZOBJ   := $(FUZZOBJ:%.c=build/fuzz/%.o)
FUZZBIN   := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

build/fuzz/%.o: %.c $(wildcard core/*.h sweeps/*.h results/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $<"
	@$(FUZZCC) $(FUZZFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/libpetal.a: $(FUZZOBJ)
	@rm -f $@
	@ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libpetal.a
	@echo "  FUZZLD $@"
	@$(FUZZCC) $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libpetal.a $(LDLIBS) -lgomp

fuzz: deps
	@command -v $(FUZZCC) >/dev/null && [ -n "$$($(FUZZCC) -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep /)" ] || \
	  bash tools/deps.sh --fuzz
	@$(MAKE) --no-print-directory $(FUZZBIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

# valgrind memcheck on the core unit tests. valgrind 3.19 cannot run AVX-512,
# so this builds without -march=native, in build/valgrind (the plain build stays).
VALGRIND_TESTS ?= test_settings test_audio test_fbank test_featcache test_dataset test_import
valgrind: deps
	@command -v valgrind >/dev/null || bash tools/deps.sh --valgrind
	@$(MAKE) --no-print-directory CFLAGS="-O1" B=build/valgrind $(VALGRIND_TESTS:%=build/valgrind/tests/%)
	@PETAL_BUILD=build/valgrind bash tests/valgrind.sh $(VALGRIND_TESTS)

clean:
	rm -rf build petal
