/* tunio._uring: the io_uring forwarding loop of the uring-* variants (see ring.c).
 *
 * One fwd_t per direction: a ring, `depth` buffers each with exactly one operation in flight
 * (a read from the source device, or the write of what that read returned), and the counters
 * the Python side turns into a forwarder's counters. The loop (ring.c) does not know which
 * ring it drives: a backend (backends.c) queues reads and writes, enters the kernel and hands
 * back completions, either a real io_uring (liburing) or a scripted fake for the unit tests.
 */

#ifndef TUNIO_URING_RING_H
#define TUNIO_URING_RING_H

#include <stddef.h>
#include <stdint.h>

/* user_data of a completion: the buffer index, plus these tags on writes. */
#define WRITE_TAG (1ULL << 63)
#define SLOT_TAG (1ULL << 62)   /* a write of a caller's frame (the split path), not of a buffer */
#define MSHOT_TAG (1ULL << 61)  /* the multishot read: the buffer index is in the flags */
#define IDX_MASK 0xFFFFFFFFULL

/* completion flags (the kernel's IORING_CQE_F_*) */
#define CQE_F_BUFFER 1u /* the upper 16 bits are the id of the provided buffer it used */
#define CQE_F_MORE 2u   /* the multishot operation goes on */
#define CQE_BUFFER_SHIFT 16

#define ERRNO_SLOTS 160 /* write errors counted per errno below this; the rest share the last */
#define GSO_BUCKETS 17  /* gso_size is a u16: bit lengths 0..16 */
#define MAX_DEPTH 4096
#define MAX_BATCH 4096

typedef struct {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} completion_t;

typedef struct {
    uint64_t packets, bytes; /* frames written and their bytes (vnet header included) */
    uint64_t drops;          /* writes that failed with a non-fatal error (EINVAL, EIO, ...) */
    uint64_t read_errors;    /* reads that failed with a non-fatal error */
    uint64_t frames_read, bytes_read;
    uint64_t enters;  /* io_uring_enter calls: the ring's system calls */
    uint64_t submits; /* ... of which submitted operations */
    uint64_t waits;   /* ... of which waited for a completion */
    uint64_t timeouts;
    uint64_t sqes, cqes; /* operations submitted, completions handled */
    uint64_t write_errors[ERRNO_SLOTS];
    uint64_t gso_hist[GSO_BUCKETS];
} counters_t;

typedef struct fwd fwd_t;

typedef struct {
    /* Queue (not submit) a read into buffer idx, or a write of len bytes at data (from
     * registered buffer fixed_idx when >= 0): 0, or -EBUSY when the queue is full. */
    int (*read)(fwd_t *f, unsigned idx);
    int (*write)(fwd_t *f, const uint8_t *data, uint32_t len, uint64_t user_data, int fixed_idx);
    /* Queue one multishot read: every packet read into the next provided buffer, one
     * completion each, until the buffers run out (-ENOBUFS, no CQE_F_MORE). */
    int (*read_multishot)(fwd_t *f);
    /* Give buffer idx to the kernel for the multishot read (no system call). */
    void (*provide)(fwd_t *f, unsigned idx);
    /* Submit what is queued in one system call and, if wait, wait in the same call up to
     * timeout_ns for at least one completion: 0, -ETIME or another -errno. */
    int (*enter)(fwd_t *f, int wait, int64_t timeout_ns);
    /* Copy out up to max completions that are ready (no system call) and consume them. */
    unsigned (*reap)(fwd_t *f, completion_t *out, unsigned max);
    void (*destroy)(fwd_t *f);
} backend_t;

struct fwd {
    const backend_t *be;
    void *impl; /* the backend's state */
    int src, dst;
    unsigned depth, batch;
    uint32_t bufsize; /* the most a read returns */
    size_t stride;    /* bytes between buffers (bufsize rounded up to a page) */
    int vnet;         /* frames start with a virtio_net_hdr: count gso sizes */
    int split;        /* completed reads wait for the caller (fwd_wait_ready), not for a write */
    int fixed;        /* the buffers are registered with the ring (READ_FIXED / WRITE_FIXED) */
    int multishot;    /* one multishot read into provided buffers instead of depth reads */
    int mshot_armed;  /* ... and it is in flight */
    unsigned provided; /* buffers the kernel may read into */
    uint8_t *bufs;
    uint32_t *buflen;
    unsigned queued; /* operations queued since the last enter */
    int armed;       /* the first `depth` reads have been queued */
    int gone;        /* the errno that said the device is gone (EBADFD, ...), 0 while it lives */
    int stop;        /* set by fwd_stop from any thread: the loop returns at its next turn */
    completion_t *cq;
    /* split path: buffers whose reads completed, oldest first, until the caller takes them */
    unsigned *ready;
    unsigned ready_head, ready_count;
    /* split path: the caller's frames being written */
    const uint8_t **wdata;
    uint32_t *wlen;
    unsigned wcap, writes_out;
    counters_t c;
};

/* ring.c: the loop. All return 0 or -errno (a ring failure, not a device error: those are
 * counted, or recorded in f->gone). */
int fwd_init(fwd_t *f, unsigned depth, unsigned batch, uint32_t bufsize, int vnet, int split,
             int multishot);
void fwd_free(fwd_t *f);
/* Forward until `budget` frames are written or dropped, timeout_ns pass without a
 * completion, the device is gone or fwd_stop is called. */
int fwd_pump(fwd_t *f, uint64_t budget, int64_t timeout_ns);
/* Split path: wait up to timeout_ns until at least one read has completed; the number of
 * buffers ready (f->ready), at most `batch` reaped past the first. */
int fwd_wait_ready(fwd_t *f, int64_t timeout_ns);
/* Split path: hand the k oldest ready buffers back to reading (queued, not yet submitted). */
int fwd_release(fwd_t *f, unsigned k);
/* Split path: write n frames, `batch` per submit, and wait until every write completed. */
int fwd_write(fwd_t *f, const uint8_t *const *data, const uint32_t *len, unsigned n);
int fwd_grow_slots(fwd_t *f, unsigned n);
void fwd_stop(fwd_t *f);
static inline unsigned fwd_ready_index(const fwd_t *f, unsigned i)
{
    return f->ready[(f->ready_head + i) % f->depth];
}

/* backends.c */
/* A real ring on src/dst; *setup names the setup flags the kernel took. With multishot set
 * it sets up the provided buffers too, or clears f->multishot if the kernel cannot. */
int backend_uring(fwd_t *f, int src, int dst, int register_buffers, const char **setup);
/* io_uring_setup with the flags backend_uring would use, then close it: 0 or -errno. */
int uring_probe(const char **setup);
/* The fake: reads complete from frames given to fake_feed, writes complete at once. */
int backend_fake(fwd_t *f, unsigned sq_entries);
int fake_feed(fwd_t *f, const uint8_t *data, uint32_t len, int err);
size_t fake_written(fwd_t *f, const uint8_t **data, const uint32_t **lens, size_t *bytes);
size_t fake_submits(fwd_t *f, const unsigned **sizes);
unsigned fake_max_inflight(fwd_t *f);

#endif
