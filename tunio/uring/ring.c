/* The forwarding loop of the uring-* variants, over any backend (backends.c).
 *
 * Every buffer has exactly one operation in flight: a read from the source device, then
 * the write of what it read to the destination device (from the same buffer: no copy in
 * user space), then a read again. The reads are either `depth` single reads, one per buffer
 * (io_uring arms a poll for each read that finds the device empty, and every packet then
 * wakes all of them), or one multishot read (Linux 6.7) that takes the next free buffer
 * for each packet: a written buffer is given back to it without a system call. Completions are reaped `batch` at a time; each one is
 * turned into the next operation of its buffer, queued; the queue is submitted once per
 * `batch` completions, or, when no completion is ready, by the call that waits for the
 * next one (submit and wait are one io_uring_enter). So a busy ring makes one system call
 * per `batch` completions, an idle one sleeps in the kernel.
 *
 * Errors: a read or write error that says the device is gone (EBADFD, EBADF, ENODEV,
 * ENXIO) ends the loop with f->gone set; any other failed write is a counted drop, any
 * other failed read a counted read error, and the buffer goes back to reading.
 */

#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fatal(int err)
{
    return err == EBADFD || err == EBADF || err == ENODEV || err == ENXIO;
}

/* Errors of io_uring_enter after which the loop goes on (reaping frees what was busy). */
static int transient(int ret)
{
    return ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY;
}

int fwd_init(fwd_t *f, unsigned depth, unsigned batch, uint32_t bufsize, int vnet, int split,
             int multishot)
{
    memset(f, 0, sizeof *f);
    f->src = f->dst = -1;
    f->depth = depth;
    f->batch = batch;
    f->bufsize = bufsize;
    f->stride = ((size_t)bufsize + 4095) & ~(size_t)4095;
    f->vnet = vnet;
    f->split = split;
    f->multishot = multishot;
    void *mem = mmap(NULL, f->stride * depth, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    f->bufs = mem;
    f->buflen = calloc(depth, sizeof *f->buflen);
    f->cq = calloc(batch, sizeof *f->cq);
    f->ready = calloc(depth, sizeof *f->ready);
    if (f->buflen == NULL || f->cq == NULL || f->ready == NULL)
        return -ENOMEM;
    return 0;
}

void fwd_free(fwd_t *f)
{
    if (f->be != NULL && f->be->destroy != NULL)
        f->be->destroy(f);
    f->be = NULL;
    if (f->bufs != NULL)
        munmap(f->bufs, f->stride * f->depth);
    f->bufs = NULL;
    free(f->buflen);
    free(f->cq);
    free(f->ready);
    free(f->wdata);
    free(f->wlen);
    f->buflen = NULL;
    f->cq = NULL;
    f->ready = NULL;
    f->wdata = NULL;
    f->wlen = NULL;
}

void fwd_stop(fwd_t *f) { __atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED); }

static int stopped(fwd_t *f) { return __atomic_load_n(&f->stop, __ATOMIC_RELAXED); }

/* One io_uring_enter (none when there is nothing to submit and no need to wait). */
static int enter(fwd_t *f, int wait, int64_t timeout_ns)
{
    if (!wait && f->queued == 0)
        return 0;
    f->c.enters++;
    if (f->queued) {
        f->c.submits++;
        f->c.sqes += f->queued;
    }
    if (wait)
        f->c.waits++;
    f->queued = 0;
    int ret = f->be->enter(f, wait, timeout_ns);
    if (ret == -ETIME)
        f->c.timeouts++;
    return ret;
}

/* Queue an operation; a full queue is submitted first (it should not be: the ring has room
 * for depth + batch operations and is submitted every `batch` completions). */
static int queued(fwd_t *f, int ret)
{
    if (ret == 0)
        f->queued++;
    return ret;
}

static int queue_read(fwd_t *f, unsigned idx)
{
    int ret = f->be->read(f, idx);
    if (ret == -EBUSY) {
        ret = enter(f, 0, 0);
        if (ret < 0 && !transient(ret))
            return ret;
        ret = f->be->read(f, idx);
    }
    return queued(f, ret);
}

static int queue_write(fwd_t *f, const uint8_t *data, uint32_t len, uint64_t ud, int fixed)
{
    int ret = f->be->write(f, data, len, ud, fixed);
    if (ret == -EBUSY) {
        ret = enter(f, 0, 0);
        if (ret < 0 && !transient(ret))
            return ret;
        ret = f->be->write(f, data, len, ud, fixed);
    }
    return queued(f, ret);
}

static int queue_multishot(fwd_t *f)
{
    int ret = f->be->read_multishot(f);
    if (ret == -EBUSY) {
        ret = enter(f, 0, 0);
        if (ret < 0 && !transient(ret))
            return ret;
        ret = f->be->read_multishot(f);
    }
    if (ret == 0)
        f->mshot_armed = 1;
    return queued(f, ret);
}

/* A buffer is free again: back to reading. */
static int recycle(fwd_t *f, unsigned idx)
{
    if (!f->multishot)
        return queue_read(f, idx);
    f->be->provide(f, idx);
    f->provided++;
    return f->mshot_armed || f->gone ? 0 : queue_multishot(f);
}

static int arm(fwd_t *f)
{
    if (f->armed)
        return 0;
    f->armed = 1;
    if (f->multishot) {
        for (unsigned i = 0; i < f->depth; i++)
            f->be->provide(f, i);
        f->provided = f->depth;
        return queue_multishot(f);
    }
    for (unsigned i = 0; i < f->depth; i++) {
        int ret = queue_read(f, i);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static unsigned bit_length(unsigned v)
{
    return v ? 32 - (unsigned)__builtin_clz(v) : 0;
}

static void count_write(fwd_t *f, const uint8_t *data, uint32_t len, int res)
{
    if (res >= 0) {
        f->c.packets++;
        f->c.bytes += len;
        if (f->vnet && len >= 6) /* virtio_net_hdr.gso_size: bytes 4-5, little-endian */
            f->c.gso_hist[bit_length(data[4] | (unsigned)data[5] << 8)]++;
        return;
    }
    int err = -res;
    if (fatal(err)) {
        if (!f->gone)
            f->gone = err;
        return;
    }
    f->c.write_errors[err < ERRNO_SLOTS ? err : ERRNO_SLOTS - 1]++;
    f->c.drops++;
}

static int on_completion(fwd_t *f, const completion_t *e)
{
    unsigned idx = (unsigned)(e->user_data & IDX_MASK);
    int res = e->res;
    if (e->user_data & WRITE_TAG) {
        if (e->user_data & SLOT_TAG) {
            count_write(f, f->wdata[idx], f->wlen[idx], res);
            f->writes_out--;
            return 0;
        }
        count_write(f, f->bufs + idx * f->stride, f->buflen[idx], res);
        return f->gone ? 0 : recycle(f, idx);
    }
    if (e->user_data & MSHOT_TAG) {
        if (!(e->flags & CQE_F_MORE))
            f->mshot_armed = 0; /* ended: out of buffers (-ENOBUFS) or an error */
        if (e->flags & CQE_F_BUFFER) {
            idx = e->flags >> CQE_BUFFER_SHIFT;
            f->provided--;
        }
        if (res <= 0 || !(e->flags & CQE_F_BUFFER) || idx >= f->depth) {
            if (res < 0 && fatal(-res)) {
                if (!f->gone)
                    f->gone = -res;
                return 0;
            }
            if (res < 0 && res != -ENOBUFS && res != -EAGAIN && res != -EINTR)
                f->c.read_errors++;
            if ((e->flags & CQE_F_BUFFER) && idx < f->depth)
                return recycle(f, idx);
            return f->mshot_armed || f->provided == 0 ? 0 : queue_multishot(f);
        }
        int ret = 0;
        if (!f->mshot_armed && f->provided > 0)
            ret = queue_multishot(f); /* ended after a packet: goes on reading */
        if (ret < 0)
            return ret;
    }
    if (res > 0) {
        f->c.frames_read++;
        f->c.bytes_read += (uint64_t)res;
        f->buflen[idx] = (uint32_t)res;
        if (f->split) {
            f->ready[(f->ready_head + f->ready_count++) % f->depth] = idx;
            return 0;
        }
        return queue_write(f, f->bufs + idx * f->stride, (uint32_t)res, WRITE_TAG | idx, (int)idx);
    }
    if (res < 0 && fatal(-res)) {
        if (!f->gone)
            f->gone = -res;
        return 0;
    }
    if (res < 0 && res != -EAGAIN && res != -EINTR)
        f->c.read_errors++;
    return queue_read(f, idx);
}

/* Reap up to `batch` completions and act on each; the number reaped. */
static int reap(fwd_t *f, unsigned *n)
{
    *n = f->be->reap(f, f->cq, f->batch);
    f->c.cqes += *n;
    for (unsigned i = 0; i < *n; i++) {
        int ret = on_completion(f, &f->cq[i]);
        if (ret < 0)
            return ret;
    }
    return 0;
}

int fwd_pump(fwd_t *f, uint64_t budget, int64_t timeout_ns)
{
    int64_t deadline = now_ns() + timeout_ns;
    uint64_t start = f->c.packets + f->c.drops;
    int ret = arm(f);
    if (ret < 0)
        return ret;
    for (;;) {
        if (f->gone || stopped(f))
            break;
        unsigned n;
        ret = reap(f, &n);
        if (ret < 0)
            return ret;
        if (f->gone || f->c.packets + f->c.drops - start >= budget)
            break;
        if (n == f->batch) {
            ret = enter(f, 0, 0); /* a full batch: submit it, more may be ready */
        } else {
            int64_t left = deadline - now_ns();
            if (left <= 0 && f->queued == 0)
                break;
            /* the CQ is empty: submit and sleep in one call */
            ret = enter(f, 1, left > 0 ? left : 0);
            if (ret == -ETIME)
                break;
        }
        if (ret < 0 && !transient(ret))
            return ret;
    }
    ret = enter(f, 0, 0); /* what the last completions queued goes out now */
    return ret < 0 && !transient(ret) ? ret : 0;
}

int fwd_wait_ready(fwd_t *f, int64_t timeout_ns)
{
    int64_t deadline = now_ns() + timeout_ns;
    int ret = arm(f);
    if (ret < 0)
        return ret;
    for (;;) {
        unsigned n;
        do {
            ret = reap(f, &n);
            if (ret < 0)
                return ret;
        } while (n == f->batch && f->ready_count < f->batch && !f->gone);
        if (f->ready_count > 0 || f->gone || stopped(f))
            break;
        int64_t left = deadline - now_ns();
        if (left <= 0 && f->queued == 0)
            break;
        ret = enter(f, 1, left > 0 ? left : 0);
        if (ret == -ETIME)
            break;
        if (ret < 0 && !transient(ret))
            return ret;
    }
    return (int)f->ready_count;
}

int fwd_release(fwd_t *f, unsigned k)
{
    if (k > f->ready_count)
        k = f->ready_count;
    for (unsigned i = 0; i < k; i++) {
        unsigned idx = f->ready[f->ready_head];
        f->ready_head = (f->ready_head + 1) % f->depth;
        f->ready_count--;
        int ret = recycle(f, idx);
        if (ret < 0)
            return ret;
    }
    return 0;
}

int fwd_grow_slots(fwd_t *f, unsigned n)
{
    if (n <= f->wcap)
        return 0;
    const uint8_t **d = realloc(f->wdata, n * sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    f->wdata = d;
    uint32_t *l = realloc(f->wlen, n * sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    f->wlen = l;
    f->wcap = n;
    return 0;
}

int fwd_write(fwd_t *f, const uint8_t *const *data, const uint32_t *len, unsigned n)
{
    int ret;
    unsigned since = 0, reaped;
    for (unsigned i = 0; i < n; i++) {
        f->wdata[i] = data[i];
        f->wlen[i] = len[i];
        ret = queue_write(f, data[i], len[i], WRITE_TAG | SLOT_TAG | i, -1);
        if (ret < 0)
            return ret;
        f->writes_out++;
        if (++since == f->batch) {
            since = 0;
            ret = enter(f, 0, 0);
            if (ret < 0 && !transient(ret))
                return ret;
            /* TUN writes complete inside the submit: take them off the CQ now */
            do {
                ret = reap(f, &reaped);
                if (ret < 0)
                    return ret;
            } while (reaped == f->batch);
        }
    }
    ret = enter(f, 0, 0);
    if (ret < 0 && !transient(ret))
        return ret;
    /* The frames belong to the caller: every write must have completed before returning. */
    while (f->writes_out > 0) {
        ret = reap(f, &reaped);
        if (ret < 0)
            return ret;
        if (reaped == 0 && f->writes_out > 0) {
            ret = enter(f, 1, 100000000);
            if (ret < 0 && !transient(ret))
                return ret;
        }
    }
    return 0;
}
