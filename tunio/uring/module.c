/* tunio._uring: the io_uring rings of the uring-* variants, as a Python type.
 *
 * Python keeps the control flow and the counters: a worker thread calls Ring.pump(), which
 * releases the GIL and forwards until `budget` frames are done, a timeout passes, the device
 * is gone or stop() is called, then returns; the worker turns Ring.stats() into its
 * counters. The split path (--gso split) instead takes a batch of frames with read_frames(),
 * has the offload engine split and coalesce them, and gives them to write_frames().
 *
 * A ring is used by the thread that created it (its setup may say so to the kernel:
 * DEFER_TASKRUN), so a worker creates its own.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ring.h"

#include <errno.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    fwd_t f;
    int ok;            /* fwd_init succeeded: f owns memory */
    int fake;          /* the fake backend */
    const char *setup; /* the ring's setup flags */
} RingObject;

static PyTypeObject RingType;

static PyObject *set_errno(int neg)
{
    errno = -neg;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static int check_sizes(long depth, long batch, long bufsize)
{
    if (depth < 1 || depth > MAX_DEPTH || batch < 1 || batch > MAX_BATCH || bufsize < 16 ||
        bufsize > (1L << 20)) {
        PyErr_Format(PyExc_ValueError,
                     "need 1 <= depth <= %d, 1 <= batch <= %d, 16 <= bufsize <= 1 MiB",
                     MAX_DEPTH, MAX_BATCH);
        return -1;
    }
    return 0;
}

static RingObject *ring_alloc(long depth, long batch, long bufsize, int vnet, int split,
                              int multishot)
{
    if (check_sizes(depth, batch, bufsize) < 0)
        return NULL;
    RingObject *self = PyObject_New(RingObject, &RingType);
    if (self == NULL)
        return NULL;
    self->ok = 0;
    self->fake = 0;
    self->setup = "";
    int ret = fwd_init(&self->f, (unsigned)depth, (unsigned)batch, (uint32_t)bufsize, vnet, split,
                       multishot);
    self->ok = 1; /* fwd_free copes with a half-done init */
    if (ret < 0) {
        Py_DECREF(self);
        return (RingObject *)set_errno(ret);
    }
    return self;
}

static PyObject *ring_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"src",   "dst",       "depth",    "batch", "bufsize", "vnet",
                         "split", "multishot", "register", NULL};
    int src, dst, vnet = 0, split = 0, multishot = 1, reg = 1;
    long depth, batch, bufsize;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iilll|pppp:Ring", kw, &src, &dst, &depth,
                                     &batch, &bufsize, &vnet, &split, &multishot, &reg))
        return NULL;
    if (depth > 65536 / 2) /* buffer ids are 16 bits */
        multishot = 0;
    RingObject *self = ring_alloc(depth, batch, bufsize, vnet, split, multishot);
    if (self == NULL)
        return NULL;
    int ret = backend_uring(&self->f, src, dst, reg, &self->setup);
    if (ret < 0) {
        Py_DECREF(self);
        return set_errno(ret);
    }
    return (PyObject *)self;
}

static void ring_dealloc(RingObject *self)
{
    if (self->ok)
        fwd_free(&self->f);
    PyObject_Free(self);
}

static PyObject *fake_ring(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"depth", "batch",      "bufsize", "vnet", "split",
                         "multishot", "sq_entries", NULL};
    int vnet = 0, split = 0, multishot = 0;
    long depth, batch, bufsize = 2048, sq_entries = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ll|lpppl:fake_ring", kw, &depth, &batch,
                                     &bufsize, &vnet, &split, &multishot, &sq_entries))
        return NULL;
    RingObject *self = ring_alloc(depth, batch, bufsize, vnet, split, multishot);
    if (self == NULL)
        return NULL;
    self->fake = 1;
    self->setup = "fake";
    int ret = backend_fake(&self->f, sq_entries > 0 ? (unsigned)sq_entries
                                                     : (unsigned)(depth + batch));
    if (ret < 0) {
        Py_DECREF(self);
        return set_errno(ret);
    }
    return (PyObject *)self;
}

/* The fake holds the GIL (its scripts are plain C, but there is nothing to wait for). */
#define RUN(self, stmt)                                                                     \
    do {                                                                                    \
        if ((self)->fake) {                                                                 \
            stmt;                                                                           \
        } else {                                                                            \
            Py_BEGIN_ALLOW_THREADS stmt;                                                    \
            Py_END_ALLOW_THREADS                                                            \
        }                                                                                   \
    } while (0)

PyDoc_STRVAR(pump_doc,
             "pump(budget, timeout_ms) -> int\n\n"
             "Forward (GIL released) until `budget` frames are written or dropped, timeout_ms "
             "pass, the device is gone or stop() is called. Returns the errno that said the "
             "device is gone (EBADFD, ...), else 0. Raises OSError if the ring itself fails.");

static PyObject *ring_pump(RingObject *self, PyObject *args)
{
    unsigned long long budget;
    long timeout_ms;
    if (!PyArg_ParseTuple(args, "Kl:pump", &budget, &timeout_ms))
        return NULL;
    if (self->f.split) {
        PyErr_SetString(PyExc_ValueError, "a split ring forwards with read_frames/write_frames");
        return NULL;
    }
    int ret;
    RUN(self, ret = fwd_pump(&self->f, budget, (int64_t)timeout_ms * 1000000));
    if (ret < 0)
        return set_errno(ret);
    return PyLong_FromLong(self->f.gone);
}

PyDoc_STRVAR(read_frames_doc,
             "read_frames(limit, timeout_ms) -> list[bytes]\n\n"
             "Split path: wait up to timeout_ms for completed reads; copies of at most `limit` "
             "of them, oldest first (their buffers go back to reading). [] after a timeout or "
             "once the device is gone (see .gone).");

static PyObject *ring_read_frames(RingObject *self, PyObject *args)
{
    long limit, timeout_ms;
    if (!PyArg_ParseTuple(args, "ll:read_frames", &limit, &timeout_ms))
        return NULL;
    if (!self->f.split) {
        PyErr_SetString(PyExc_ValueError, "read_frames needs a ring made with split=True");
        return NULL;
    }
    int ret;
    RUN(self, ret = fwd_wait_ready(&self->f, (int64_t)timeout_ms * 1000000));
    if (ret < 0)
        return set_errno(ret);
    unsigned k = (unsigned)ret;
    if (limit >= 0 && (unsigned long)limit < k)
        k = (unsigned)limit;
    PyObject *out = PyList_New(k);
    if (out == NULL)
        return NULL;
    for (unsigned i = 0; i < k; i++) {
        unsigned idx = fwd_ready_index(&self->f, i);
        PyObject *b = PyBytes_FromStringAndSize(
            (const char *)self->f.bufs + idx * self->f.stride, self->f.buflen[idx]);
        if (b == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, b);
    }
    ret = fwd_release(&self->f, k);
    if (ret < 0) {
        Py_DECREF(out);
        return set_errno(ret);
    }
    return out;
}

PyDoc_STRVAR(write_frames_doc,
             "write_frames(frames) -> None\n\n"
             "Split path: write every frame (batch per submit, GIL released) and wait until "
             "each write has completed; failed writes are counted, see stats().");

static PyObject *ring_write_frames(RingObject *self, PyObject *frames)
{
    PyObject *seq = PySequence_Fast(frames, "write_frames takes a sequence of frames");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        Py_DECREF(seq);
        Py_RETURN_NONE;
    }
    PyObject *result = NULL;
    Py_buffer *views = PyMem_Calloc((size_t)n, sizeof *views);
    const uint8_t **data = PyMem_Calloc((size_t)n, sizeof *data);
    uint32_t *lens = PyMem_Calloc((size_t)n, sizeof *lens);
    Py_ssize_t got = 0;
    if (views == NULL || data == NULL || lens == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_SIMPLE))
            goto done;
        if (views[got].len > UINT32_MAX) {
            got++;
            PyErr_SetString(PyExc_ValueError, "frame too large");
            goto done;
        }
        data[got] = views[got].buf;
        lens[got] = (uint32_t)views[got].len;
    }
    int ret = fwd_grow_slots(&self->f, (unsigned)n);
    if (ret == 0)
        RUN(self, ret = fwd_write(&self->f, data, lens, (unsigned)n));
    if (ret < 0) {
        set_errno(ret);
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(data);
    PyMem_Free(lens);
    Py_DECREF(seq);
    return result;
}

static int put(PyObject *d, const char *key, PyObject *v)
{
    if (v == NULL)
        return -1;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r;
}

PyDoc_STRVAR(stats_doc, "stats() -> dict\n\nThe ring's counters since it was made.");

static PyObject *ring_stats(RingObject *self, PyObject *unused)
{
    const counters_t *c = &self->f.c;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
#define U64(name)                                                                           \
    if (put(d, #name, PyLong_FromUnsignedLongLong(c->name)) < 0)                            \
        goto fail;
    U64(packets)
    U64(bytes)
    U64(drops)
    U64(read_errors)
    U64(frames_read)
    U64(bytes_read)
    U64(enters)
    U64(submits)
    U64(waits)
    U64(timeouts)
    U64(sqes)
    U64(cqes)
#undef U64
    PyObject *errs = PyDict_New();
    if (put(d, "write_errors", errs) < 0)
        goto fail;
    for (int e = 0; e < ERRNO_SLOTS; e++) {
        if (!c->write_errors[e])
            continue;
        PyObject *k = PyLong_FromLong(e), *v = PyLong_FromUnsignedLongLong(c->write_errors[e]);
        int r = (k && v) ? PyDict_SetItem(errs, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (r < 0)
            goto fail;
    }
    PyObject *hist = PyList_New(GSO_BUCKETS);
    if (put(d, "gso_hist", hist) < 0)
        goto fail;
    for (int i = 0; i < GSO_BUCKETS; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(c->gso_hist[i]);
        if (v == NULL)
            goto fail;
        PyList_SET_ITEM(hist, i, v);
    }
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *ring_stop(RingObject *self, PyObject *unused)
{
    fwd_stop(&self->f);
    Py_RETURN_NONE;
}

static int need_fake(RingObject *self)
{
    if (!self->fake)
        PyErr_SetString(PyExc_TypeError, "only a fake_ring() has scripted devices");
    return self->fake;
}

PyDoc_STRVAR(feed_doc,
             "feed(frames) -> None\n\n"
             "Fake only: frames the source device will return, in order; an int in the list "
             "is an errno the read fails with instead.");

static PyObject *ring_feed(RingObject *self, PyObject *frames)
{
    if (!need_fake(self))
        return NULL;
    PyObject *seq = PySequence_Fast(frames, "feed takes a sequence");
    if (seq == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        int ret;
        if (PyLong_Check(item)) {
            long err = PyLong_AsLong(item);
            if (err <= 0 || err > 4095) {
                Py_DECREF(seq);
                PyErr_SetString(PyExc_ValueError, "an errno is 1..4095");
                return NULL;
            }
            ret = fake_feed(&self->f, NULL, 0, (int)err);
        } else {
            Py_buffer v;
            if (PyObject_GetBuffer(item, &v, PyBUF_SIMPLE)) {
                Py_DECREF(seq);
                return NULL;
            }
            ret = fake_feed(&self->f, v.buf, (uint32_t)v.len, 0);
            PyBuffer_Release(&v);
        }
        if (ret < 0) {
            Py_DECREF(seq);
            return set_errno(ret);
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static PyObject *ring_written(RingObject *self, PyObject *unused)
{
    if (!need_fake(self))
        return NULL;
    const uint8_t *data;
    const uint32_t *lens;
    size_t bytes, n = fake_written(&self->f, &data, &lens, &bytes);
    PyObject *out = PyList_New((Py_ssize_t)n);
    if (out == NULL)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)data + off, lens[i]);
        if (b == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        off += lens[i];
        PyList_SET_ITEM(out, (Py_ssize_t)i, b);
    }
    return out;
}

static PyObject *ring_submit_sizes(RingObject *self, PyObject *unused)
{
    if (!need_fake(self))
        return NULL;
    const unsigned *sizes;
    size_t n = fake_submits(&self->f, &sizes);
    PyObject *out = PyList_New((Py_ssize_t)n);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLong(sizes[i]);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    return out;
}

static PyObject *ring_max_inflight(RingObject *self, PyObject *unused)
{
    if (!need_fake(self))
        return NULL;
    return PyLong_FromUnsignedLong(fake_max_inflight(&self->f));
}

static PyObject *get_gone(RingObject *self, void *c) { return PyLong_FromLong(self->f.gone); }
static PyObject *get_setup(RingObject *self, void *c) { return PyUnicode_FromString(self->setup); }
static PyObject *get_registered(RingObject *self, void *c) { return PyBool_FromLong(self->f.fixed); }
static PyObject *get_multishot(RingObject *self, void *c)
{
    return PyBool_FromLong(self->f.multishot);
}
static PyObject *get_depth(RingObject *self, void *c) { return PyLong_FromUnsignedLong(self->f.depth); }
static PyObject *get_batch(RingObject *self, void *c) { return PyLong_FromUnsignedLong(self->f.batch); }

static PyGetSetDef ring_getset[] = {
    {"gone", (getter)get_gone, NULL, "errno that said the device is gone, 0 while it lives",
     NULL},
    {"setup", (getter)get_setup, NULL, "the setup flags the kernel took", NULL},
    {"registered", (getter)get_registered, NULL, "the buffers are registered", NULL},
    {"multishot", (getter)get_multishot, NULL,
     "one multishot read into provided buffers (else depth single reads)", NULL},
    {"depth", (getter)get_depth, NULL, "buffers, each with one operation in flight", NULL},
    {"batch", (getter)get_batch, NULL, "completions handled per submit", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef ring_methods[] = {
    {"pump", (PyCFunction)ring_pump, METH_VARARGS, pump_doc},
    {"read_frames", (PyCFunction)ring_read_frames, METH_VARARGS, read_frames_doc},
    {"write_frames", (PyCFunction)ring_write_frames, METH_O, write_frames_doc},
    {"stats", (PyCFunction)ring_stats, METH_NOARGS, stats_doc},
    {"stop", (PyCFunction)ring_stop, METH_NOARGS, "stop() -> None\n\nMake pump return soon."},
    {"feed", (PyCFunction)ring_feed, METH_O, feed_doc},
    {"written", (PyCFunction)ring_written, METH_NOARGS, "Fake only: the frames written."},
    {"submit_sizes", (PyCFunction)ring_submit_sizes, METH_NOARGS,
     "Fake only: operations per submit, in order."},
    {"max_inflight", (PyCFunction)ring_max_inflight, METH_NOARGS,
     "Fake only: the most operations submitted and not yet reaped at once."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tunio._uring.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_dealloc = (destructor)ring_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ring(src, dst, depth, batch, bufsize, vnet=False, split=False, multishot=True, "
              "register=True): "
              "one direction's io_uring (created in, and used by, one thread); multishot falls "
              "back to single reads where the kernel lacks them (see .multishot).",
    .tp_methods = ring_methods,
    .tp_getset = ring_getset,
    .tp_new = ring_new,
};

PyDoc_STRVAR(probe_doc,
             "probe() -> str\n\n"
             "Set up (and close) a small ring: the setup flags the kernel takes; OSError when "
             "io_uring_setup fails (kernel.io_uring_disabled, seccomp, no io_uring).");

static PyObject *py_probe(PyObject *mod, PyObject *unused)
{
    const char *setup = "";
    int ret = uring_probe(&setup);
    if (ret < 0)
        return set_errno(ret);
    return PyUnicode_FromString(setup);
}

static PyMethodDef methods[] = {
    {"probe", py_probe, METH_NOARGS, probe_doc},
    {"fake_ring", (PyCFunction)(void (*)(void))fake_ring, METH_VARARGS | METH_KEYWORDS,
     "fake_ring(depth, batch, bufsize=2048, vnet=False, split=False, multishot=False, "
     "sq_entries=0) -> Ring\n\n"
     "A ring on scripted devices for tests (see backends.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tunio._uring",
    "io_uring rings of the uring-* variants (liburing).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__uring(void)
{
    if (PyType_Ready(&RingType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RingType);
    if (PyModule_AddObject(m, "Ring", (PyObject *)&RingType) < 0 ||
        PyModule_AddIntConstant(m, "GSO_BUCKETS", GSO_BUCKETS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0 ||
        PyModule_AddIntConstant(m, "MAX_BATCH", MAX_BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
