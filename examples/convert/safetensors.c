/*
 * safetensors.c -- reading Hugging Face *.safetensors checkpoints, strictly.
 *
 * A safetensors file is: u64 little-endian header length N, N bytes of JSON
 * {"<name>": {"dtype": "BF16", "shape": [out, in], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data section; offsets are relative to byte 8 + N.
 * Like the GGUF reader, nothing from the header is trusted before it is checked: N
 * against the file size, every dtype known, every dimension non-negative with an
 * overflow-free product, end - begin == elements * element size, every range inside
 * the data section, and no two ranges overlapping.  Sharded checkpoints list their
 * files in model.safetensors.index.json ("weight_map": {tensor: file}); each shard
 * is validated the same way and a tensor name may appear only once in the set.
 *
 * Data is read with pread on demand (one tensor, or a row range of one, at a time),
 * so converting never holds more than the tensor being converted.
 */
#include "convert.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CV_ST_MAX_HEADER ((uint64_t)16 << 20) /* headers of real models are < 1 MiB */

static const struct { const char *name; cv_dtype d; unsigned size; } cv_dtypes[] = {
    {"F32", CV_F32, 4}, {"F16", CV_F16, 2}, {"BF16", CV_BF16, 2},
    {"F64", CV_F64, 8}, {"U8", CV_U8, 1},   {"I8", CV_I8, 1},
};

static unsigned cv_dtype_size(cv_dtype d) {
    for (size_t i = 0; i < sizeof cv_dtypes / sizeof cv_dtypes[0]; i++)
        if (cv_dtypes[i].d == d) return cv_dtypes[i].size;
    return 0;
}

const char *cv_dtype_name(cv_dtype d) {
    for (size_t i = 0; i < sizeof cv_dtypes / sizeof cv_dtypes[0]; i++)
        if (cv_dtypes[i].d == d) return cv_dtypes[i].name;
    return "?";
}

float cv_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 1024)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 1023) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float cv_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int cv_tensor_cmp(const void *a, const void *b) {
    const cv_tensor *x = a, *y = b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Parse one header entry into t; `file` names the file in messages. */
static int cv_st_entry(const char *file, const char *name, json_object *v, uint64_t data_len, cv_tensor *t) {
    json_object *dt, *sh, *off;
    if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, "dtype", &dt) ||
        !json_object_object_get_ex(v, "shape", &sh) || !json_object_object_get_ex(v, "data_offsets", &off))
        return cv_fail("%s: tensor '%s': header entry needs dtype, shape and data_offsets", file, name);
    if (!json_object_is_type(dt, json_type_string))
        return cv_fail("%s: tensor '%s': dtype is not a string", file, name);
    const char *ds = json_object_get_string(dt);
    size_t k = 0;
    while (k < sizeof cv_dtypes / sizeof cv_dtypes[0] && strcmp(cv_dtypes[k].name, ds) != 0) k++;
    if (k == sizeof cv_dtypes / sizeof cv_dtypes[0])
        return cv_fail("%s: tensor '%s': unsupported dtype '%s' (F32, F16, BF16, F64, U8, I8 are supported)", file,
                       name, ds);
    t->dtype = cv_dtypes[k].d;
    if (!json_object_is_type(sh, json_type_array) || json_object_array_length(sh) > 4)
        return cv_fail("%s: tensor '%s': shape must be an array of at most 4 dimensions", file, name);
    t->n_dims = (int)json_object_array_length(sh);
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        json_object *e = json_object_array_get_idx(sh, (size_t)d);
        if (!json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0 ||
            json_object_get_int64(e) > ((int64_t)1 << 40))
            return cv_fail("%s: tensor '%s': shape[%d] is not a dimension in 0..2^40", file, name, d);
        t->shape[d] = json_object_get_int64(e);
        if (t->shape[d] != 0 && n > (UINT64_MAX / 8) / (uint64_t)t->shape[d])
            return cv_fail("%s: tensor '%s': element count overflows", file, name);
        n *= (uint64_t)t->shape[d];
    }
    t->n_elem = (int64_t)n;
    if (!json_object_is_type(off, json_type_array) || json_object_array_length(off) != 2)
        return cv_fail("%s: tensor '%s': data_offsets must be [begin, end]", file, name);
    json_object *b = json_object_array_get_idx(off, 0), *e = json_object_array_get_idx(off, 1);
    if (!json_object_is_type(b, json_type_int) || !json_object_is_type(e, json_type_int) ||
        json_object_get_int64(b) < 0 || json_object_get_int64(e) < json_object_get_int64(b))
        return cv_fail("%s: tensor '%s': data_offsets are not 0 <= begin <= end", file, name);
    uint64_t ob = (uint64_t)json_object_get_int64(b), oe = (uint64_t)json_object_get_int64(e);
    if (oe > data_len)
        return cv_fail("%s: tensor '%s': data range [%llu, %llu) ends past the data section (%llu bytes)", file,
                       name, (unsigned long long)ob, (unsigned long long)oe, (unsigned long long)data_len);
    if (oe - ob != n * cv_dtype_size(t->dtype))
        return cv_fail("%s: tensor '%s': data range holds %llu bytes but %llu elements of %s need %llu", file, name,
                       (unsigned long long)(oe - ob), (unsigned long long)n, ds,
                       (unsigned long long)(n * cv_dtype_size(t->dtype)));
    t->offset = ob;
    t->size = oe - ob;
    return 0;
}

int cv_st_add_file(cv_st *st, const char *path) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return cv_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    uint8_t lenb[8];
    char *hdr = NULL;
    json_tokener *tok = NULL;
    json_object *root = NULL;
    int rc = -1;
    if (fstat(fd, &sb) != 0) {
        cv_fail("%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        cv_fail("%s: not a regular file", path);
        goto out;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    if (fsize < 8 || pread(fd, lenb, 8, 0) != 8) {
        cv_fail("%s: not a safetensors file (shorter than the 8-byte header length)", path);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen < 2 || hlen > fsize - 8 || hlen > CV_ST_MAX_HEADER) {
        cv_fail("%s: corrupt safetensors header: header length %llu does not fit the file (%llu bytes)", path,
                (unsigned long long)hlen, (unsigned long long)fsize);
        goto out;
    }
    hdr = malloc((size_t)hlen + 1);
    if (!hdr) {
        cv_fail("%s: out of memory for the header", path);
        goto out;
    }
    if (pread(fd, hdr, (size_t)hlen, 8) != (ssize_t)hlen) {
        cv_fail("%s: cannot read the header", path);
        goto out;
    }
    hdr[hlen] = 0;
    tok = json_tokener_new_ex(64);
    if (!tok) goto out;
    root = json_tokener_parse_ex(tok, hdr, (int)hlen);
    if (!root || json_tokener_get_error(tok) != json_tokener_success) {
        cv_fail("%s: corrupt safetensors header: invalid JSON (%s)", path,
                json_tokener_error_desc(json_tokener_get_error(tok)));
        goto out;
    }
    /* trailing bytes may only be spaces (the format pads the header with them) */
    for (size_t i = json_tokener_get_parse_end(tok); i < hlen; i++)
        if (hdr[i] != ' ') {
            cv_fail("%s: corrupt safetensors header: bytes after the JSON object", path);
            goto out;
        }
    if (!json_object_is_type(root, json_type_object)) {
        cv_fail("%s: corrupt safetensors header: not a JSON object", path);
        goto out;
    }
    uint64_t data_len = fsize - 8 - hlen;
    char **nf = realloc(st->files, (st->n_files + 1) * sizeof *nf);
    if (nf) st->files = nf;
    int *nfd = realloc(st->fds, (st->n_files + 1) * sizeof *nfd);
    if (nfd) st->fds = nfd;
    if (!nf || !nfd) goto out;
    int file = (int)st->n_files;
    size_t first = st->n;
    json_object_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        if (strlen(key) == 0 || strlen(key) > 1000) {
            cv_fail("%s: tensor name of %zu bytes", path, strlen(key));
            goto out;
        }
        if (cv_st_find(st, key)) {
            cv_fail("%s: tensor '%s' appears twice in the checkpoint", path, key);
            goto out;
        }
        if (st->n == st->cap) {
            size_t nc = st->cap ? st->cap * 2 : 64;
            cv_tensor *nt = realloc(st->t, nc * sizeof *nt);
            if (!nt) goto out;
            st->t = nt;
            st->cap = nc;
        }
        cv_tensor *t = &st->t[st->n];
        memset(t, 0, sizeof *t);
        if (cv_st_entry(path, key, val, data_len, t) != 0) goto out;
        t->name = strdup(key);
        if (!t->name) goto out;
        t->file = file;
        t->offset += 8 + hlen;
        st->n++;
    }
    /* no two data ranges of this file may overlap */
    qsort(st->t + first, st->n - first, sizeof *st->t, cv_tensor_cmp);
    /* the name index, in the sorted order (the names themselves do not move) */
    for (size_t i = first; i < st->n; i++)
        if (cv_smap_put(&st->names, st->t[i].name, (int64_t)i) < 0) {
            cv_fail("out of memory");
            goto out;
        }
    for (size_t i = first + 1; i < st->n; i++)
        if (st->t[i].offset < st->t[i - 1].offset + st->t[i - 1].size) {
            cv_fail("%s: corrupt safetensors header: tensors '%s' and '%s' overlap", path, st->t[i - 1].name,
                    st->t[i].name);
            goto out;
        }
    st->files[file] = strdup(path);
    st->fds[file] = fd;
    st->n_files++;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0) close(fd);
    if (root) json_object_put(root);
    if (tok) json_tokener_free(tok);
    free(hdr);
    return rc;
}

int cv_st_open_dir(cv_st *st, const char *dir) {
    memset(st, 0, sizeof *st);
    char path[4096];
    if (cv_path(path, sizeof path, dir, "model.safetensors.index.json") != 0) return cv_fail("%s: path too long", dir);
    if (cv_file_exists(path)) {
        json_object *idx = cv_json_load(path, 1), *wm;
        if (!idx) return -1;
        if (!json_object_object_get_ex(idx, "weight_map", &wm) || !json_object_is_type(wm, json_type_object)) {
            json_object_put(idx);
            return cv_fail("%s: no \"weight_map\" object", path);
        }
        /* open each distinct shard once, in order of first mention */
        cv_smap seen = {0}; /* shard names already opened (borrowed from idx) */
        int rc = 0;
        json_object_object_foreach(wm, tname, fname) {
            if (!json_object_is_type(fname, json_type_string)) {
                rc = cv_fail("%s: weight_map entry '%s' is not a file name", path, tname);
                break;
            }
            const char *f = json_object_get_string(fname);
            if (strchr(f, '/') || strcmp(f, "..") == 0 || f[0] == 0) {
                rc = cv_fail("%s: weight_map entry '%s' names '%s', not a file in the model directory", path, tname,
                             f);
                break;
            }
            int fresh = cv_smap_put(&seen, f, 0);
            if (fresh < 0) {
                rc = cv_fail("out of memory");
                break;
            }
            if (!fresh) continue;
            char sp[4096];
            if (cv_path(sp, sizeof sp, dir, f) != 0 || cv_st_add_file(st, sp) != 0) {
                rc = -1;
                break;
            }
        }
        /* every tensor the index names must exist in the file it names */
        if (rc == 0) {
            json_object_object_foreach(wm, tn, fn) {
                cv_tensor *t = cv_st_find(st, tn);
                if (!t) {
                    rc = cv_fail("%s: tensor '%s' is listed but not found in '%s'", path, tn,
                                 json_object_get_string(fn));
                    break;
                }
            }
        }
        cv_smap_free(&seen);
        json_object_put(idx);
        if (rc == 0 && st->n_files == 0) rc = cv_fail("%s: the weight_map is empty", path);
        return rc;
    }
    if (cv_path(path, sizeof path, dir, "model.safetensors") != 0) return cv_fail("%s: path too long", dir);
    if (!cv_file_exists(path))
        return cv_fail("%s: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are "
                       "supported; convert pytorch_model.bin files with the safetensors tools first)", dir);
    return cv_st_add_file(st, path);
}

void cv_st_close(cv_st *st) {
    for (size_t i = 0; i < st->n; i++) free(st->t[i].name);
    for (size_t i = 0; i < st->n_files; i++) {
        close(st->fds[i]);
        free(st->files[i]);
    }
    free(st->t);
    free(st->fds);
    free(st->files);
    cv_smap_free(&st->names);
    memset(st, 0, sizeof *st);
}

cv_tensor *cv_st_find(cv_st *st, const char *name) {
    int64_t i = cv_smap_get(&st->names, name);
    return i >= 0 ? &st->t[i] : NULL;
}

int cv_st_read_raw(const cv_st *st, const cv_tensor *t, uint64_t off, size_t n, void *dst) {
    if (off > t->size || n > t->size - off) return cv_fail("tensor '%s': read past its data", t->name);
    uint8_t *p = dst;
    uint64_t pos = t->offset + off;
    while (n > 0) {
        ssize_t r = pread(st->fds[t->file], p, n, (off_t)pos);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return cv_fail("%s: tensor '%s': read failed: %s", st->files[t->file], t->name,
                           r < 0 ? strerror(errno) : "file shrank");
        p += r;
        pos += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

int cv_st_read_f32(const cv_st *st, const cv_tensor *t, int64_t first, int64_t n, float *dst) {
    unsigned es = cv_dtype_size(t->dtype);
    if (t->dtype == CV_U8 || t->dtype == CV_I8)
        return cv_fail("tensor '%s': dtype %s where floating-point weights are expected", t->name,
                       cv_dtype_name(t->dtype));
    if (first < 0 || n < 0 || first + n > t->n_elem) return cv_fail("tensor '%s': element range out of bounds", t->name);
    /* read into the tail of dst (same or smaller element size than float), convert
     * forwards; F64 goes through a bounce buffer */
    if (t->dtype == CV_F64) {
        double buf[1024];
        for (int64_t i = 0; i < n; i += 1024) {
            int64_t k = n - i < 1024 ? n - i : 1024;
            if (cv_st_read_raw(st, t, (uint64_t)(first + i) * 8, (size_t)k * 8, buf) != 0) return -1;
            for (int64_t j = 0; j < k; j++) dst[i + j] = (float)buf[j];
        }
        return 0;
    }
    uint8_t *raw = (uint8_t *)dst + (size_t)n * (4 - es);
    if (cv_st_read_raw(st, t, (uint64_t)first * es, (size_t)n * es, raw) != 0) return -1;
    if (t->dtype == CV_F32) return 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
        dst[i] = t->dtype == CV_F16 ? cv_f16_to_f32(h) : cv_bf16_to_f32(h);
    }
    return 0;
}
