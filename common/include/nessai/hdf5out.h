/*
 * hdf5out.h - a result tree written as HDF5 in nessai's result.hdf5 layout.
 *
 * nessai saves its result dictionary with one HDF5 object per key
 * (save_dict_to_hdf5 through h5py): dictionaries become groups, record
 * arrays (nested_samples, posterior_samples) one compound dataset each,
 * other arrays and scalars datasets, strings variable-length UTF-8
 * strings, booleans h5py's FALSE/TRUE enum and None the string "__none__".
 *
 * ns_hdf5_write_json applies the same rules to a cJSON tree. The numeric
 * types come from a schema given by the producer of the tree, never from
 * the values: a number or number array whose path ("history/iterations")
 * the schema lists is written with the listed type, every other number is
 * float64 (NaN and +-Infinity raw tokens included). A records entry names
 * the fields of a record array, given either as rows
 * ([[x0, x1, logP, logL, it], ...]) or as columns ({"x0": [...], ...}, the
 * schema's fields exactly), written as one compound dataset with those
 * fields and types in the schema's order, packed as numpy packs a
 * structured dtype. An array holding objects
 * or mixed kinds is stored as its JSON text. A '/' in a key (HDF5's path
 * separator) is written as '_'.
 */
#ifndef NESSAI_HDF5OUT_H
#define NESSAI_HDF5OUT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Numeric types of the schema; little-endian in the file, as numpy's f8, i8, i4. */
typedef enum { NS_H5_FLOAT64 = 0, NS_H5_INT64, NS_H5_INT32 } ns_h5_dtype_t;

typedef struct ns_h5_schema ns_h5_schema_t;

ns_h5_schema_t *ns_h5_schema_new(void);
void ns_h5_schema_destroy(ns_h5_schema_t **schema);

/* The number or number array at path has type dtype. NS_OK or NS_ERR_NOMEM. */
int ns_h5_schema_add(ns_h5_schema_t *schema, const char *path, ns_h5_dtype_t dtype);

/* The value at path (rows or columns) is a record array with n fields named
 * names[] of types dtypes[] (copied). NS_OK or NS_ERR_NOMEM. */
int ns_h5_schema_add_records(ns_h5_schema_t *schema, const char *path, const char *const *names,
                             const ns_h5_dtype_t *dtypes, size_t n);

/* Write doc (an object) to path atomically (path.temp, then rename), typed
 * by schema (NULL: every number float64, no record arrays). NS_OK, or
 * NS_ERR_IO / NS_ERR_NOMEM with a one-line reason in err; NS_ERR_INVAL when
 * a value does not fit its schema entry (a row of the wrong length, a
 * missing or extra field, a non-integral value in an integer field), with
 * the path in err. */
int ns_hdf5_write_json(const cJSON *doc, const ns_h5_schema_t *schema, const char *path, char *err,
                       size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
