# Spack recipe for petal. Use it from a Spack repository of your own:
#   spack repo create ~/spack-petal && mkdir -p ~/spack-petal/packages/petal
#   cp packaging/spack/package.py ~/spack-petal/packages/petal/ && spack repo add ~/spack-petal
#   spack dev-build petal@main          # from a clone, in its folder
#   spack install petal@main            # from the repository in `git` below
# The dependencies are the libraries of the Makefile's PKGS and LDLIBS (by their
# Spack names; tests/test_install.sh checks that the two lists agree).
from spack.package import *


class Petal(MakefilePackage):
    """Parameter-efficient transfer learning (PETL) studies of Audio Spectrogram
    Transformers in C: training core, PETL methods, Kaldi fbank front end, YAML
    sweeps over MPI ranks or SLURM jobs, HDF5 results stores."""

    homepage = "https://arxiv.org/abs/2312.03694"
    # The project's repository: set `git` to where your copy lives (a site
    # mirror, or file:///path/to/petal for a local clone).
    git = "file:///opt/src/petal"


    version("main", branch="main")

    depends_on("gmake", type="build")
    depends_on("pkgconfig", type="build")

    # Makefile PKGS (pkg-config names) -> Spack packages
    depends_on("hdf5")                       # hdf5
    depends_on("fftw precision=float")       # fftw3f
    depends_on("libyaml")                    # yaml-0.1
    depends_on("libsndfile")                 # sndfile
    depends_on("libsamplerate")              # samplerate
    depends_on("openmpi")                    # ompi-c (pkg-config of Open MPI's C bindings)
    depends_on("xxhash")                     # libxxhash
    # Makefile LDLIBS
    depends_on("gsl")                        # -lgsl (Sobol sequences)
    depends_on("openblas threads=openmp")    # OpenBLAS's OpenMP build: one thread pool with petal's loops

    def _make_args(self):
        # pkg-config finds every dependency through Spack's PKG_CONFIG_PATH
        # (the Makefile's default BLAS_PC looks in Debian's openblas-openmp folder)
        return ["BLAS_PC=pkg-config", "BLASDIR={0}".format(self.spec["openblas"].prefix.lib)]

    def edit(self, spec, prefix):
        pass

    def build(self, spec, prefix):
        make("petal", *self._make_args())

    def install(self, spec, prefix):
        make("install", "PREFIX={0}".format(prefix), *self._make_args())
