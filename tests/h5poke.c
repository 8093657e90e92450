// h5poke: damages HDF5 files the way a bad disk or a hostile user would, for
// the bad-input corpus (tests/bad-inputs/). Not a test itself.
//   h5poke FILE attr NAME VALUE      replace an attribute (int64, or a string
//                                    when VALUE is quoted as s:TEXT)
//   h5poke FILE set DSET INDEX VALUE  set one element (converted to its type)
//   h5poke FILE retype DSET          replace a dataset by int32 of its shape
//   h5poke FILE resize DSET N        replace a dataset by N float32 zeros
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "h5poke: %s failed\n", what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[2], "retype") && argc < 5)) {
        fprintf(stderr, "usage: h5poke FILE attr|set|retype|resize ...\n");
        return 2;
    }
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return fail("open");
    const char *op = argv[2], *name = argv[3];
    int rc = 0;
    if (!strcmp(op, "attr")) {
        const char *v = argv[4];
        if (H5Aexists(f, name) > 0) H5Adelete(f, name);
        hid_t s = H5Screate(H5S_SCALAR), t, a;
        if (!strncmp(v, "s:", 2)) {
            t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, strlen(v + 2) + 1);
            a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
            rc = a < 0 || H5Awrite(a, t, v + 2) < 0;
        } else {
            long long x = strtoll(v, NULL, 10);
            t = H5Tcopy(H5T_STD_I64LE);
            a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
            rc = a < 0 || H5Awrite(a, H5T_NATIVE_LLONG, &x) < 0;
        }
        if (a >= 0) H5Aclose(a);
        H5Tclose(t);
        H5Sclose(s);
    } else {
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        if (d < 0) return fail("dataset open");
        hid_t s = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(s);
        if (!strcmp(op, "set") && argc >= 6) {
            double *buf = malloc(sizeof(double) * (size_t)(n ? n : 1));
            rc = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0;
            long i = atol(argv[4]);
            if (!rc && i >= 0 && i < n) buf[i] = strtod(argv[5], NULL);
            rc = rc || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0;
            free(buf);
            H5Sclose(s);
            H5Dclose(d);
        } else if (!strcmp(op, "retype") || !strcmp(op, "resize")) {
            int retype = !strcmp(op, "retype");
            hsize_t m = retype ? (hsize_t)n : (hsize_t)atoll(argv[4]);
            hid_t ns = retype ? H5Scopy(s) : H5Screate_simple(1, &m, NULL);
            H5Sclose(s);
            H5Dclose(d);
            H5Ldelete(f, name, H5P_DEFAULT);
            hid_t nd = H5Dcreate2(f, name, retype ? H5T_STD_I32LE : H5T_IEEE_F32LE, ns, H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT);
            float *z = calloc((size_t)(m ? m : 1), sizeof(float));
            rc = nd < 0 || H5Dwrite(nd, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z) < 0;
            free(z);
            if (nd >= 0) H5Dclose(nd);
            H5Sclose(ns);
        } else {
            return fail("unknown operation");
        }
    }
    if (H5Fclose(f) < 0) rc = 1;
    return rc ? fail(op) : 0;
}
