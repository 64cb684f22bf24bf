/* Shared by the native offload engine's C files (see module.c for the design notes). */

#ifndef TUNIO_NATIVE_H
#define TUNIO_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define VNET_HDR_LEN 10
#define MAX_SEGMENTS 128
#define F_NEEDS_CSUM 1
#define GSO_NONE 0
#define GSO_TCPV4 1
#define GSO_TCPV6 4
#define GSO_UDP_L4 5
#define GSO_ECN 0x80
#define PROTO_TCP 6
#define PROTO_UDP 17
#define TCP_CSUM_OFFSET 16
#define UDP_CSUM_OFFSET 6
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80
/* Below this many bytes of work the GIL hand-over costs more than it can give back. */
#define GIL_FREE_BYTES 8192

extern PyObject *OffloadError; /* the Python module's exception class */
extern PyObject *VirtioNetHdr; /* its header dataclass */
extern PyObject *ZeroHdr;      /* VirtioNetHdr(): the header of unmerged packets */
extern PyObject *s_packets_in, *s_frames_out, *s_merged, *s_super_frames, *s_bad_csum;
extern PyObject *s_csum_verified, *s_csum_trusted;

/* ------------------------------------------------------------------------ byte helpers */

static inline unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put16le(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* ------------------------------------------------------------------------ checksums */

/* End-around-carry fold to 16 bits: 0 stays 0, any other value lands in 1..0xFFFF. */
static inline uint32_t fold(uint64_t s)
{
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (uint32_t)s;
}

/* Unfolded sum of the buffer's native-order 16-bit words (an odd last byte ignored); only
 * its value modulo 0xFFFF and whether it is 0 mean anything. module.c; chosen at load time
 * for the CPU (AVX2 or baseline). */
uint64_t sum_words(const uint8_t *p, Py_ssize_t n);

/* Folded one's-complement sum of data read as big-endian 16-bit words, an odd last byte
 * padded on the right. 0 only for all-zero (or empty) data. */
static inline uint32_t sum_be(const uint8_t *p, Py_ssize_t n)
{
    uint64_t s = sum_words(p, n);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n & 1)
        s += p[n - 1]; /* low byte of a native word = the high (left) byte of the BE word */
    uint32_t f = fold(s);
    return ((f & 0xFF) << 8) | (f >> 8);
#else
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return fold(s);
#endif
}

/* Unfolded sum of the pseudo-header's constant part: both addresses and the protocol. */
static inline uint64_t pseudo_base(const uint8_t *addrs, Py_ssize_t len, unsigned proto)
{
    return (uint64_t)sum_be(addrs, len) + proto;
}

/* ------------------------------------------------------------------------ virtio_net_hdr */

typedef struct {
    long flags, gso_type, hdr_len, gso_size, csum_start, csum_offset;
} vhdr_t;

/* Set OffloadError with a PyUnicode_FromFormat message; returns NULL. */
PyObject *offload_error(const char *fmt, ...);
/* Read a VirtioNetHdr-like object's six fields, range-checked; 0 or -1 with an error set. */
int hdr_from_object(PyObject *obj, vhdr_t *h);

static inline void hdr_from_wire(const uint8_t *p, vhdr_t *h)
{
    h->flags = p[0];
    h->gso_type = p[1];
    h->hdr_len = p[2] | p[3] << 8;
    h->gso_size = p[4] | p[5] << 8;
    h->csum_start = p[6] | p[7] << 8;
    h->csum_offset = p[8] | p[9] << 8;
}

static inline void hdr_to_wire(uint8_t *p, unsigned flags, unsigned gso_type, unsigned hdr_len,
                        unsigned gso_size, unsigned csum_start, unsigned csum_offset)
{
    p[0] = (uint8_t)flags;
    p[1] = (uint8_t)gso_type;
    put16le(p + 2, hdr_len);
    put16le(p + 4, gso_size);
    put16le(p + 6, csum_start);
    put16le(p + 8, csum_offset);
}

/* The module's methods (split.c, coalesce.c). */
PyObject *py_gso_split(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *py_split_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *py_gro_coalesce(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *py_coalesce_frames(PyObject *self, PyObject *args, PyObject *kwargs);
extern const char gso_split_doc[], split_frame_doc[], gro_coalesce_doc[], coalesce_frames_doc[];

#endif
