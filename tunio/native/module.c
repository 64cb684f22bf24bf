/* tunio._native: the per-byte work of the --gso split path in C.
 *
 * The same contract as the pure-Python engine (tunio.gsosplit.gso_split and
 * tunio.grocoalesce.gro_coalesce): same arguments, same outputs, same counters, and the same
 * OffloadError (class and message) for malformed input, checked in the same order. Python
 * keeps the control flow (when to read, split, coalesce, write); this module only does the
 * parsing, header rewriting, copying and checksums.
 *
 * Safety rules, because its input comes straight off a TUN device:
 * - every offset is checked against the buffer length before it is read (all arithmetic in
 *   Py_ssize_t / 64 bits, header fields range-checked to their wire width first);
 * - outputs are fresh bytes objects this module allocates with the exact size it writes;
 * - the GIL is released only around work on buffers it owns or holds a reference to (input
 *   bytes objects, a Py_buffer view of the input frame, output bytes not yet visible to
 *   Python), and only when the work is big enough to be worth the hand-over.
 *
 * Checksums: one's-complement sums are byte-order independent (RFC 1071 §2(B)), so the
 * bytes are summed as native 16-bit words into 32-bit lanes the compiler vectorizes (AVX2
 * when the CPU has it, chosen at load time), folded with end-around carry and byte-swapped
 * once at the end on little-endian hosts.
 */

#include "native.h"

/* Where OffloadError and VirtioNetHdr live. */
#define OFFLOAD_MODULE "tunio.vnethdr"

PyObject *OffloadError, *VirtioNetHdr, *ZeroHdr;
PyObject *s_packets_in, *s_frames_out, *s_merged, *s_super_frames, *s_bad_csum;
PyObject *s_csum_verified, *s_csum_trusted;
static PyObject *s_flags, *s_gso_type, *s_hdr_len, *s_gso_size, *s_csum_start, *s_csum_offset;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CPU_CLONES
#endif

CPU_CLONES uint64_t sum_words(const uint8_t *p, Py_ssize_t n)
{
    uint64_t total = 0;
    Py_ssize_t words = n / 2;
    while (words > 0) {
        /* 65536 words of at most 0xFFFF fit a 32-bit lane sum: blocks of that size. */
        Py_ssize_t blk = words < 65536 ? words : 65536;
        uint32_t s = 0;
        for (Py_ssize_t k = 0; k < blk; k++) {
            uint16_t w;
            memcpy(&w, p + 2 * k, 2);
            s += w;
        }
        total += s;
        p += 2 * blk;
        words -= blk;
    }
    return total;
}

PyObject *offload_error(const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (msg != NULL) {
        PyErr_SetObject(OffloadError, msg);
        Py_DECREF(msg);
    }
    return NULL;
}

static int hdr_field(PyObject *obj, PyObject *name, long max, long *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow || x < 0 || x > max) {
        /* VirtioNetHdr.unpack never yields such values; refuse them rather than guess. */
        offload_error("virtio_net_hdr field %U out of range", name);
        return -1;
    }
    *out = (long)x;
    return 0;
}

int hdr_from_object(PyObject *obj, vhdr_t *h)
{
    if (hdr_field(obj, s_flags, 0xFF, &h->flags) ||
        hdr_field(obj, s_gso_type, 0xFF, &h->gso_type) ||
        hdr_field(obj, s_hdr_len, 0xFFFF, &h->hdr_len) ||
        hdr_field(obj, s_gso_size, 0xFFFF, &h->gso_size) ||
        hdr_field(obj, s_csum_start, 0xFFFF, &h->csum_start) ||
        hdr_field(obj, s_csum_offset, 0xFFFF, &h->csum_offset))
        return -1;
    return 0;
}

PyDoc_STRVAR(sum16_doc,
             "sum16(data, initial=0) -> int\n\n"
             "Folded one's-complement sum of big-endian 16-bit words plus initial (< 2**64).");

static PyObject *py_sum16(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *initial_obj = NULL;
    if (!PyArg_ParseTuple(args, "y*|O!:sum16", &view, &PyLong_Type, &initial_obj))
        return NULL;
    unsigned long long initial = 0;
    if (initial_obj != NULL) {
        initial = PyLong_AsUnsignedLongLong(initial_obj);
        if (initial == (unsigned long long)-1 && PyErr_Occurred()) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    uint32_t s = sum_be((const uint8_t *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(fold((uint64_t)s + fold(initial)));
}

PyDoc_STRVAR(spin_doc,
             "spin(ns, /) -> int\n\n"
             "Busy-wait ns nanoseconds on CLOCK_MONOTONIC, holding the GIL; the ns that passed.\n"
             "The positive control's known extra cost per packet (forwarders.counters): in C\n"
             "it overshoots by one clock read (~25 ns), where a Python loop overshoots and\n"
             "adds its own interpreter time.");

static PyObject *py_spin(PyObject *self, PyObject *arg)
{
    long long ns = PyLong_AsLongLong(arg);
    if (ns == -1 && PyErr_Occurred())
        return NULL;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long passed = 0;
    /* The GIL stays held: released, the same +1 us per frame cost a TCP forwarder more
     * (-46 % of Gbit/s per core instead of -43 %), the other thread taking it mid-spin. */
    while (passed < ns) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        passed = (long long)(t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec);
    }
    return PyLong_FromLongLong(passed);
}

static PyMethodDef methods[] = {
    {"spin", py_spin, METH_O, spin_doc},
    {"gso_split", (PyCFunction)(void (*)(void))py_gso_split, METH_VARARGS | METH_KEYWORDS,
     gso_split_doc},
    {"split_frame", (PyCFunction)(void (*)(void))py_split_frame, METH_FASTCALL, split_frame_doc},
    {"gro_coalesce", (PyCFunction)(void (*)(void))py_gro_coalesce, METH_VARARGS | METH_KEYWORDS,
     gro_coalesce_doc},
    {"coalesce_frames", (PyCFunction)(void (*)(void))py_coalesce_frames,
     METH_VARARGS | METH_KEYWORDS, coalesce_frames_doc},
    {"sum16", py_sum16, METH_VARARGS, sum16_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "tunio._native",
    "Native GSO split / GRO coalesce engine (same contract as the pure-Python one).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__native(void)
{
#define INTERN(var, text)                                                                   \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                   \
        return NULL;
    INTERN(s_flags, "flags")
    INTERN(s_gso_type, "gso_type")
    INTERN(s_hdr_len, "hdr_len")
    INTERN(s_gso_size, "gso_size")
    INTERN(s_csum_start, "csum_start")
    INTERN(s_csum_offset, "csum_offset")
    INTERN(s_packets_in, "packets_in")
    INTERN(s_frames_out, "frames_out")
    INTERN(s_merged, "merged")
    INTERN(s_super_frames, "super_frames")
    INTERN(s_bad_csum, "bad_csum")
    INTERN(s_csum_verified, "csum_verified")
    INTERN(s_csum_trusted, "csum_trusted")
#undef INTERN
    PyObject *offload = PyImport_ImportModule(OFFLOAD_MODULE);
    if (offload == NULL)
        return NULL;
    OffloadError = PyObject_GetAttrString(offload, "OffloadError");
    VirtioNetHdr = PyObject_GetAttrString(offload, "VirtioNetHdr");
    Py_DECREF(offload);
    if (OffloadError == NULL || VirtioNetHdr == NULL)
        return NULL;
    ZeroHdr = PyObject_CallNoArgs(VirtioNetHdr);
    if (ZeroHdr == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "MAX_SEGMENTS", MAX_SEGMENTS) < 0 ||
        PyModule_AddIntConstant(m, "GIL_FREE_BYTES", GIL_FREE_BYTES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
