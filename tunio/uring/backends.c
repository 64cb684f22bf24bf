/* The two backends of the forwarding loop (ring.h): a real io_uring through liburing, and a
 * fake with scripted devices that the unit tests drive (no root, no TUN, deterministic). */

#include "ring.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

/* ------------------------------------------------------------------------ liburing */

/* Not in liburing 2.3's headers (Debian 12); the kernel ABI value (Linux 6.7). */
#define OP_READ_MULTISHOT 49

typedef struct {
    struct io_uring ring;
    struct io_uring_buf_ring *br; /* the provided buffers of the multishot read */
    size_t br_size;
    unsigned br_entries;
} uring_t;

/* Setup flags, best first: completions run only when this thread enters the kernel
 * (DEFER_TASKRUN, Linux 6.1; the ring must then have one submitter), else without
 * interrupting it for task work (COOP_TASKRUN, 5.19), else the plain ring. */
static const struct {
    unsigned flags;
    const char *name;
} SETUPS[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer_taskrun"},
    {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
    {0, "plain"},
};

static int setup_ring(struct io_uring *ring, unsigned entries, const char **setup)
{
    int ret = -ENOSYS;
    for (size_t i = 0; i < sizeof SETUPS / sizeof SETUPS[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = SETUPS[i].flags;
        ret = io_uring_queue_init_params(entries, ring, &p);
        if (ret == 0) {
            *setup = SETUPS[i].name;
            return 0;
        }
        if (ret != -EINVAL) /* EPERM (sysctl, seccomp), ENOSYS, ENOMEM: no flag helps */
            return ret;
    }
    return ret;
}

int uring_probe(const char **setup)
{
    struct io_uring ring;
    int ret = setup_ring(&ring, 4, setup);
    if (ret == 0)
        io_uring_queue_exit(&ring);
    return ret;
}

static int ur_read(fwd_t *f, unsigned idx)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&((uring_t *)f->impl)->ring);
    if (sqe == NULL)
        return -EBUSY;
    uint8_t *buf = f->bufs + idx * f->stride;
    if (f->fixed)
        io_uring_prep_read_fixed(sqe, f->src, buf, f->bufsize, 0, (int)idx);
    else
        io_uring_prep_read(sqe, f->src, buf, f->bufsize, 0);
    sqe->user_data = idx;
    return 0;
}

static int ur_write(fwd_t *f, const uint8_t *data, uint32_t len, uint64_t ud, int fixed_idx)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&((uring_t *)f->impl)->ring);
    if (sqe == NULL)
        return -EBUSY;
    if (fixed_idx >= 0 && f->fixed)
        io_uring_prep_write_fixed(sqe, f->dst, data, len, 0, fixed_idx);
    else
        io_uring_prep_write(sqe, f->dst, data, len, 0);
    sqe->user_data = ud;
    return 0;
}

static int ur_read_multishot(fwd_t *f)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&((uring_t *)f->impl)->ring);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_rw(OP_READ_MULTISHOT, sqe, f->src, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    sqe->user_data = MSHOT_TAG;
    return 0;
}

static void ur_provide(fwd_t *f, unsigned idx)
{
    uring_t *u = f->impl;
    io_uring_buf_ring_add(u->br, f->bufs + idx * f->stride, f->bufsize, (unsigned short)idx,
                          io_uring_buf_ring_mask(u->br_entries), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

static int ur_enter(fwd_t *f, int wait, int64_t timeout_ns)
{
    struct io_uring *ring = &((uring_t *)f->impl)->ring;
    int ret;
    if (!wait) {
        ret = io_uring_submit(ring);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                       .tv_nsec = timeout_ns % 1000000000};
        struct io_uring_cqe *cqe = NULL;
        ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
    }
    return ret < 0 ? ret : 0;
}

static unsigned ur_reap(fwd_t *f, completion_t *out, unsigned max)
{
    struct io_uring *ring = &((uring_t *)f->impl)->ring;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(ring, head, cqe)
    {
        if (n == max)
            break;
        out[n].user_data = cqe->user_data;
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        n++;
    }
    io_uring_cq_advance(ring, n);
    return n;
}

static void ur_destroy(fwd_t *f)
{
    uring_t *u = f->impl;
    if (u != NULL) {
        io_uring_queue_exit(&u->ring); /* cancels what is in flight */
        if (u->br != NULL)
            munmap(u->br, u->br_size);
        free(u);
    }
    f->impl = NULL;
}

static const backend_t URING = {ur_read,  ur_write, ur_read_multishot, ur_provide,
                                ur_enter, ur_reap,  ur_destroy};

/* The provided-buffer ring of the multishot read, if this kernel has that read. */
static int setup_multishot(fwd_t *f, uring_t *u)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    int ok = probe != NULL && io_uring_opcode_supported(probe, OP_READ_MULTISHOT);
    if (probe != NULL)
        io_uring_free_probe(probe);
    if (!ok)
        return 0;
    unsigned entries = 1;
    while (entries < f->depth)
        entries <<= 1;
    size_t size = (entries * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 0;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)(uintptr_t)mem;
    reg.ring_entries = entries;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&u->ring, &reg, 0) != 0) {
        munmap(mem, size);
        return 0;
    }
    u->br = mem;
    u->br_size = size;
    u->br_entries = entries;
    io_uring_buf_ring_init(u->br);
    return 1;
}

int backend_uring(fwd_t *f, int src, int dst, int register_buffers, const char **setup)
{
    uring_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    /* room for every buffer's operation plus a batch of the split path's writes */
    int ret = setup_ring(&u->ring, f->depth + f->batch, setup);
    if (ret < 0) {
        free(u);
        return ret;
    }
    f->impl = u;
    f->be = &URING;
    f->src = src;
    f->dst = dst;
    if (register_buffers) {
        struct iovec *iov = calloc(f->depth, sizeof *iov);
        if (iov == NULL)
            return -ENOMEM;
        for (unsigned i = 0; i < f->depth; i++) {
            iov[i].iov_base = f->bufs + i * f->stride;
            iov[i].iov_len = f->stride;
        }
        /* Registered once, the buffers are not pinned and mapped again by every operation;
         * if the kernel refuses (memlock limit), plain reads and writes work the same. */
        f->fixed = io_uring_register_buffers(&u->ring, iov, f->depth) == 0;
        free(iov);
    }
    if (f->multishot)
        f->multishot = setup_multishot(f, u);
    return 0;
}

/* ------------------------------------------------------------------------ fake */

/* Reads complete from a FIFO of frames that fake_feed fills (a frame may be an error
 * instead: the read completes with it); a write completes at once with the length, or
 * with -EINVAL, -EIO or -EBADFD when the frame's first byte is 0xEE, 0xE1 or 0xBD. The
 * fake's time stands still: a wait with no completion ready returns -ETIME at once. */

typedef struct {
    uint8_t *data;
    uint32_t len;
    int err;
} frame_t;

enum { OP_READ, OP_WRITE, OP_MSHOT };

typedef struct {
    int op;
    unsigned idx;
    const uint8_t *data;
    uint32_t len;
    uint64_t ud;
} op_t;

#define FIFO(type)                                                                         \
    struct {                                                                                \
        type *v;                                                                            \
        size_t head, len, cap;                                                              \
    }

typedef struct {
    FIFO(frame_t) src;
    FIFO(unsigned) reads; /* submitted reads waiting for a frame */
    FIFO(completion_t) cq;
    FIFO(unsigned) bufs; /* provided buffers */
    int mshot;           /* the multishot read is armed */
    op_t *sq;
    unsigned sq_len, sq_cap;
    uint8_t *log; /* the frames written, back to back */
    size_t log_len, log_cap;
    uint32_t *lens;
    size_t nwritten, lens_cap;
    unsigned *submits; /* operations per submit */
    size_t nsubmits, submits_cap;
    unsigned inflight, max_inflight;
} fake_t;

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need)
        cap2 *= 2;
    void *p = realloc(*v, cap2 * size);
    if (p == NULL)
        return -ENOMEM;
    *v = p;
    *cap = cap2;
    return 0;
}

/* Push onto a FIFO kept as a sliding window of a growing array. */
#define PUSH(q, item)                                                                       \
    do {                                                                                    \
        if ((q).head > 0 && (q).head == (q).len) {                                          \
            (q).head = (q).len = 0;                                                         \
        }                                                                                   \
        if (grow((void **)&(q).v, &(q).cap, (q).len + 1, sizeof *(q).v) < 0)                \
            return -ENOMEM;                                                                 \
        (q).v[(q).len++] = (item);                                                          \
    } while (0)

static int fake_match(fwd_t *f)
{
    fake_t *k = f->impl;
    while (k->mshot && k->src.head < k->src.len) {
        frame_t fr = k->src.v[k->src.head];
        completion_t c = {MSHOT_TAG, 0, CQE_F_MORE};
        if (fr.err) {
            c.res = -fr.err; /* an error ends a multishot read */
            c.flags = 0;
        } else if (k->bufs.head == k->bufs.len) {
            c.res = -ENOBUFS; /* so does running out of buffers; the frame stays */
            c.flags = 0;
            k->mshot = 0;
            PUSH(k->cq, c);
            break;
        } else {
            unsigned idx = k->bufs.v[k->bufs.head++];
            uint32_t n = fr.len < f->bufsize ? fr.len : f->bufsize;
            memcpy(f->bufs + idx * f->stride, fr.data, n);
            c.res = (int32_t)n;
            c.flags |= CQE_F_BUFFER | idx << CQE_BUFFER_SHIFT;
        }
        k->src.head++;
        free(fr.data);
        if (!(c.flags & CQE_F_MORE))
            k->mshot = 0;
        PUSH(k->cq, c);
    }
    while (k->reads.head < k->reads.len && k->src.head < k->src.len) {
        unsigned idx = k->reads.v[k->reads.head++];
        frame_t fr = k->src.v[k->src.head++];
        completion_t c = {idx, 0, 0};
        if (fr.err) {
            c.res = -fr.err;
        } else {
            uint32_t n = fr.len < f->bufsize ? fr.len : f->bufsize; /* TUN truncates */
            memcpy(f->bufs + idx * f->stride, fr.data, n);
            c.res = (int32_t)n;
        }
        free(fr.data);
        PUSH(k->cq, c);
    }
    return 0;
}

static int fake_read(fwd_t *f, unsigned idx)
{
    fake_t *k = f->impl;
    if (k->sq_len == k->sq_cap)
        return -EBUSY;
    k->sq[k->sq_len++] = (op_t){OP_READ, idx, NULL, 0, idx};
    return 0;
}

static int fake_read_multishot(fwd_t *f)
{
    fake_t *k = f->impl;
    if (k->sq_len == k->sq_cap)
        return -EBUSY;
    k->sq[k->sq_len++] = (op_t){OP_MSHOT, 0, NULL, 0, MSHOT_TAG};
    return 0;
}

static void fake_provide(fwd_t *f, unsigned idx)
{
    fake_t *k = f->impl;
    if ((k->bufs.head > 0 && k->bufs.head == k->bufs.len)) /* PUSH without its return */
        k->bufs.head = k->bufs.len = 0;
    if (grow((void **)&k->bufs.v, &k->bufs.cap, k->bufs.len + 1, sizeof *k->bufs.v) == 0)
        k->bufs.v[k->bufs.len++] = idx;
}

static int fake_write(fwd_t *f, const uint8_t *data, uint32_t len, uint64_t ud, int fixed_idx)
{
    fake_t *k = f->impl;
    if (k->sq_len == k->sq_cap)
        return -EBUSY;
    k->sq[k->sq_len++] = (op_t){OP_WRITE, 0, data, len, ud};
    return 0;
}

static int fake_enter(fwd_t *f, int wait, int64_t timeout_ns)
{
    fake_t *k = f->impl;
    if (k->sq_len) {
        if (grow((void **)&k->submits, &k->submits_cap, k->nsubmits + 1, sizeof *k->submits))
            return -ENOMEM;
        k->submits[k->nsubmits++] = k->sq_len;
    }
    for (unsigned i = 0; i < k->sq_len; i++) {
        op_t *op = &k->sq[i];
        if (op->op == OP_MSHOT) {
            k->mshot = 1;
            continue;
        }
        k->inflight++; /* single reads and writes: one completion each */
        if (k->inflight > k->max_inflight)
            k->max_inflight = k->inflight;
        if (op->op == OP_READ) {
            PUSH(k->reads, op->idx);
            continue;
        }
        completion_t c = {op->ud, (int32_t)op->len, 0};
        uint8_t first = op->len ? op->data[0] : 0;
        if (first == 0xEE)
            c.res = -EINVAL;
        else if (first == 0xE1)
            c.res = -EIO;
        else if (first == 0xBD)
            c.res = -EBADFD;
        if (c.res >= 0) {
            if (grow((void **)&k->log, &k->log_cap, k->log_len + op->len, 1) ||
                grow((void **)&k->lens, &k->lens_cap, k->nwritten + 1, sizeof *k->lens))
                return -ENOMEM;
            memcpy(k->log + k->log_len, op->data, op->len);
            k->log_len += op->len;
            k->lens[k->nwritten++] = op->len;
        }
        PUSH(k->cq, c);
    }
    k->sq_len = 0;
    if (fake_match(f) < 0)
        return -ENOMEM;
    if (wait && k->cq.head == k->cq.len)
        return -ETIME;
    return 0;
}

static unsigned fake_reap(fwd_t *f, completion_t *out, unsigned max)
{
    fake_t *k = f->impl;
    unsigned n = 0;
    while (n < max && k->cq.head < k->cq.len) {
        out[n] = k->cq.v[k->cq.head++];
        if (!(out[n].user_data & MSHOT_TAG))
            k->inflight--;
        n++;
    }
    return n;
}

static void fake_destroy(fwd_t *f)
{
    fake_t *k = f->impl;
    if (k == NULL)
        return;
    for (size_t i = k->src.head; i < k->src.len; i++)
        free(k->src.v[i].data);
    free(k->src.v);
    free(k->reads.v);
    free(k->cq.v);
    free(k->bufs.v);
    free(k->sq);
    free(k->log);
    free(k->lens);
    free(k->submits);
    free(k);
    f->impl = NULL;
}

static const backend_t FAKE = {fake_read,  fake_write, fake_read_multishot, fake_provide,
                               fake_enter, fake_reap,  fake_destroy};

int backend_fake(fwd_t *f, unsigned sq_entries)
{
    fake_t *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->sq = calloc(sq_entries, sizeof *k->sq);
    if (k->sq == NULL) {
        free(k);
        return -ENOMEM;
    }
    k->sq_cap = sq_entries;
    f->impl = k;
    f->be = &FAKE;
    return 0;
}

int fake_feed(fwd_t *f, const uint8_t *data, uint32_t len, int err)
{
    fake_t *k = f->impl;
    frame_t fr = {NULL, len, err};
    if (!err) {
        fr.data = malloc(len ? len : 1);
        if (fr.data == NULL)
            return -ENOMEM;
        memcpy(fr.data, data, len);
    }
    PUSH(k->src, fr);
    return fake_match(f); /* a read already waiting completes now */
}

size_t fake_written(fwd_t *f, const uint8_t **data, const uint32_t **lens, size_t *bytes)
{
    fake_t *k = f->impl;
    *data = k->log;
    *lens = k->lens;
    *bytes = k->log_len;
    return k->nwritten;
}

size_t fake_submits(fwd_t *f, const unsigned **sizes)
{
    fake_t *k = f->impl;
    *sizes = k->submits;
    return k->nsubmits;
}

unsigned fake_max_inflight(fwd_t *f) { return ((fake_t *)f->impl)->max_inflight; }
