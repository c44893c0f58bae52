/*
 * hdf5out.h - a result tree written as HDF5 in nessai's result.hdf5 layout.
 *
 * nessai saves its result dictionary with one HDF5 object per key:
 * dictionaries become groups (a record array such as nested_samples becomes
 * a group with one dataset per field), arrays and scalars become datasets,
 * strings variable-length UTF-8 strings, booleans h5py's FALSE/TRUE enum
 * and None the string "__none__". ns_hdf5_write_json applies the same rules
 * to a cJSON tree: number arrays whose every value is an integer below 2^53
 * are int64, other numbers float64 (NaN and +-Infinity raw tokens included);
 * an array holding objects or mixed kinds is stored as its JSON text. A '/'
 * in a key (HDF5's path separator) is written as '_'.
 */
#ifndef NESSAI_HDF5OUT_H
#define NESSAI_HDF5OUT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write doc (an object) to path atomically (path.temp, then rename).
 * NS_OK, or NS_ERR_IO / NS_ERR_NOMEM with a one-line reason in err. */
int ns_hdf5_write_json(const cJSON *doc, const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
