/* GSO split: one super-packet read from TUN into MTU-sized IP packets with full checksums;
 * mirrors the pure engine's gso_split check by check (same errors, same order). */

#include "native.h"

typedef struct {
    const uint8_t *src; /* the IP packet */
    Py_ssize_t hlen;    /* IP + L4 header length */
    Py_ssize_t l4;      /* L4 offset */
    Py_ssize_t payload; /* bytes after the headers */
    Py_ssize_t gso_size;
    Py_ssize_t nseg;
    Py_ssize_t cfield; /* offset of the L4 checksum field */
    uint64_t pseudo;   /* addresses + protocol */
    uint32_t seq0;
    unsigned ip_id, tflags;
    int v4, tcp;
} split_plan_t;

static void fill_segment(uint8_t *o, const split_plan_t *s, Py_ssize_t i)
{
    Py_ssize_t hlen = s->hlen, l4 = s->l4, off = i * s->gso_size;
    Py_ssize_t plen = s->payload - off < s->gso_size ? s->payload - off : s->gso_size;
    Py_ssize_t seglen = hlen + plen, l4len = seglen - l4;
    memcpy(o, s->src, (size_t)hlen);
    memcpy(o + hlen, s->src + hlen + off, (size_t)plen);
    o[s->cfield] = o[s->cfield + 1] = 0;
    if (s->v4) {
        put16(o + 2, (unsigned)seglen);
        put16(o + 4, (s->ip_id + (unsigned)i) & 0xFFFF);
        o[10] = o[11] = 0;
        put16(o + 10, ~sum_be(o, l4) & 0xFFFF);
    } else {
        put16(o + 4, (unsigned)(seglen - 40));
    }
    if (s->tcp) {
        unsigned flags = s->tflags;
        if (i != s->nseg - 1)
            flags &= ~(unsigned)(TCP_FIN | TCP_PSH);
        if (i)
            flags &= ~(unsigned)TCP_CWR;
        put32(o + l4 + 4, s->seq0 + (uint32_t)(i * s->gso_size));
        o[l4 + 13] = (uint8_t)flags;
    } else {
        put16(o + l4 + 4, (unsigned)l4len);
    }
    unsigned csum = ~fold(s->pseudo + (uint64_t)l4len + sum_be(o + l4, l4len)) & 0xFFFF;
    if (csum == 0 && !s->tcp)
        csum = 0xFFFF; /* UDP: 0 means "no checksum"; 0xFFFF is the same in 1's complement */
    put16(o + s->cfield, csum);
}

/* GSO_NONE with NEEDS_CSUM: finish the checksum the kernel left partial. */
static PyObject *complete_csum(const uint8_t *p, Py_ssize_t n, const vhdr_t *h)
{
    Py_ssize_t start = h->csum_start, field = start + h->csum_offset;
    if (field + 2 > n)
        return offload_error("checksum field at %zd outside %zd-byte packet", field, n);
    PyObject *out = PyBytes_FromStringAndSize((const char *)p, n);
    if (out == NULL)
        return NULL;
    uint8_t *o = (uint8_t *)PyBytes_AS_STRING(out);
    unsigned initial = get16(o + field);
    o[field] = o[field + 1] = 0;
    unsigned csum = ~fold((uint64_t)initial + sum_be(o + start, n - start)) & 0xFFFF;
    if (csum == 0 && h->csum_offset == UDP_CSUM_OFFSET)
        csum = 0xFFFF;
    put16(o + field, csum);
    PyObject *list = PyList_New(1);
    if (list == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyList_SET_ITEM(list, 0, out);
    return list;
}

/* (L4 protocol, L4 offset) of the packet, or -1 with OffloadError set. */
static int l4_offset(const uint8_t *p, Py_ssize_t n, int v4, unsigned *proto, Py_ssize_t *l4)
{
    if (v4) {
        if (n < 20) {
            offload_error("truncated IPv4 header (%zd bytes)", n);
            return -1;
        }
        Py_ssize_t ihl = (p[0] & 0x0F) * 4;
        if (ihl < 20 || ihl > n) {
            offload_error("bad IPv4 header length %zd in %zd-byte packet", ihl, n);
            return -1;
        }
        if (get16(p + 6) & 0x3FFF) {
            offload_error("IPv4 fragment cannot carry GSO");
            return -1;
        }
        *proto = p[9];
        *l4 = ihl;
        return 0;
    }
    if (n < 40) {
        offload_error("truncated IPv6 header (%zd bytes)", n);
        return -1;
    }
    unsigned nh = p[6];
    Py_ssize_t off = 40;
    for (int k = 0; k < 8; k++) {
        if (nh != 0 && nh != 43 && nh != 60) {
            *proto = nh;
            *l4 = off;
            return 0;
        }
        if (off + 8 > n) {
            offload_error("truncated IPv6 extension header");
            return -1;
        }
        if (nh == 43 && p[off + 3]) {
            offload_error("IPv6 routing header with segments left is not supported");
            return -1;
        }
        nh = p[off];
        off += (p[off + 1] + 1) * 8;
    }
    offload_error("too many IPv6 extension headers");
    return -1;
}

/* Validate one packet and plan its segmentation; 0, or -1 with OffloadError set. Sets
 * *done to a finished result list for GSO_NONE (no segmentation to plan). */
static int plan_split(const uint8_t *p, Py_ssize_t n, const vhdr_t *h, long long mtu,
                      split_plan_t *s, PyObject **done)
{
    *done = NULL;
    if (n == 0) {
        offload_error("empty packet");
        return -1;
    }
    long gso_type = h->gso_type;
    int needs_csum = (h->flags & F_NEEDS_CSUM) != 0;
    if (gso_type == GSO_NONE) {
        if (needs_csum)
            *done = complete_csum(p, n, h);
        else {
            PyObject *pkt = PyBytes_FromStringAndSize((const char *)p, n);
            *done = pkt ? PyList_New(1) : NULL;
            if (*done)
                PyList_SET_ITEM(*done, 0, pkt);
            else
                Py_XDECREF(pkt);
        }
        return *done ? 0 : -1;
    }
    if (gso_type & GSO_ECN) {
        offload_error("gso_type 0x%x: ECN bit not supported", (unsigned)gso_type);
        return -1;
    }
    int version = p[0] >> 4, ok, tcp;
    if (gso_type == GSO_TCPV4) {
        ok = version == 4;
        tcp = 1;
    } else if (gso_type == GSO_TCPV6) {
        ok = version == 6;
        tcp = 1;
    } else if (gso_type == GSO_UDP_L4) {
        ok = version == 4 || version == 6;
        tcp = 0;
    } else {
        offload_error("unsupported gso_type %ld", gso_type);
        return -1;
    }
    if (!ok) {
        offload_error("gso_type %ld on an IPv%d packet", gso_type, version);
        return -1;
    }
    Py_ssize_t g = h->gso_size;
    if (g == 0 || g >= 0xFFFF) {
        offload_error("bad gso_size %zd", g);
        return -1;
    }
    int v4 = version == 4;
    unsigned proto;
    Py_ssize_t l4;
    if (l4_offset(p, n, v4, &proto, &l4) < 0)
        return -1;
    if (proto != (tcp ? PROTO_TCP : PROTO_UDP)) {
        offload_error("gso_type %ld but L4 protocol %u", gso_type, proto);
        return -1;
    }
    Py_ssize_t l4_hlen, csum_off;
    if (tcp) {
        if (l4 + 20 > n) {
            offload_error("truncated TCP header");
            return -1;
        }
        l4_hlen = (p[l4 + 12] >> 4) * 4;
        if (l4_hlen < 20 || l4_hlen > 60) {
            offload_error("bad TCP data offset %zd", l4_hlen);
            return -1;
        }
        csum_off = TCP_CSUM_OFFSET;
    } else {
        l4_hlen = 8;
        csum_off = UDP_CSUM_OFFSET;
    }
    Py_ssize_t hlen = l4 + l4_hlen;
    if (hlen > n) {
        offload_error("truncated L4 header (%zd < %zd bytes)", n, hlen);
        return -1;
    }
    if (needs_csum && (h->csum_start != l4 || h->csum_offset != csum_off)) {
        offload_error("csum_start/offset %ld/%ld, L4 at %zd", h->csum_start, h->csum_offset,
                      l4);
        return -1;
    }
    Py_ssize_t payload = n - hlen;
    Py_ssize_t nseg = payload ? (payload + g - 1) / g : 1;
    if (nseg > MAX_SEGMENTS) {
        offload_error("%zd segments exceed %d", nseg, MAX_SEGMENTS);
        return -1;
    }
    Py_ssize_t biggest = hlen + (g < payload ? g : payload);
    if (biggest > mtu) {
        offload_error("segment of %zd bytes exceeds mtu %lld", biggest, mtu);
        return -1;
    }
    s->src = p;
    s->hlen = hlen;
    s->l4 = l4;
    s->payload = payload;
    s->gso_size = g;
    s->nseg = nseg;
    s->cfield = l4 + csum_off;
    s->pseudo = v4 ? pseudo_base(p + 12, 8, proto) : pseudo_base(p + 8, 32, proto);
    s->v4 = v4;
    s->tcp = tcp;
    s->ip_id = v4 ? get16(p + 4) : 0;
    s->seq0 = tcp ? get32(p + l4 + 4) : 0;
    s->tflags = tcp ? p[l4 + 13] : 0;
    return 0;
}

/* Segments of a planned split; the caller keeps the source buffer alive. */
static PyObject *run_split(const split_plan_t *s)
{
    PyObject *list = PyList_New(s->nseg);
    if (list == NULL)
        return NULL;
    uint8_t *outs[MAX_SEGMENTS];
    for (Py_ssize_t i = 0; i < s->nseg; i++) {
        Py_ssize_t off = i * s->gso_size;
        Py_ssize_t plen = s->payload - off < s->gso_size ? s->payload - off : s->gso_size;
        PyObject *seg = PyBytes_FromStringAndSize(NULL, s->hlen + plen);
        if (seg == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        outs[i] = (uint8_t *)PyBytes_AS_STRING(seg);
        PyList_SET_ITEM(list, i, seg);
    }
    if (s->payload >= GIL_FREE_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < s->nseg; i++)
            fill_segment(outs[i], s, i);
        Py_END_ALLOW_THREADS
    } else {
        for (Py_ssize_t i = 0; i < s->nseg; i++)
            fill_segment(outs[i], s, i);
    }
    return list;
}

static PyObject *split_buffer(const uint8_t *p, Py_ssize_t n, const vhdr_t *h, long long mtu)
{
    split_plan_t plan;
    PyObject *done;
    if (plan_split(p, n, h, mtu, &plan, &done) < 0)
        return NULL;
    return done ? done : run_split(&plan);
}

const char gso_split_doc[] =
    "gso_split(frame, hdr, mtu=1500) -> list[bytes]\n\n"
    "Split one read (the IP packet after its virtio_net_hdr) into plain IP packets "
    "with complete checksums; same contract as the pure engine's gso_split.";

PyObject *py_gso_split(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"frame", "hdr", "mtu", NULL};
    Py_buffer view;
    PyObject *hdr_obj;
    long long mtu = 1500;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*O|L:gso_split", kwlist, &view, &hdr_obj,
                                     &mtu))
        return NULL;
    vhdr_t h;
    PyObject *res = NULL;
    if (hdr_from_object(hdr_obj, &h) == 0)
        res = split_buffer((const uint8_t *)view.buf, view.len, &h, mtu);
    PyBuffer_Release(&view);
    return res;
}

const char split_frame_doc[] =
    "split_frame(raw, mtu) -> (list[bytes], bool)\n\n"
    "gso_split of one whole TUN read (the 10-byte virtio_net_hdr, then the packet), and "
    "whether the packets' L4 checksums were computed entirely here (NEEDS_CSUM and a GSO "
    "type: the pure engine's computes_l4_csum).";

PyObject *py_split_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "split_frame(raw, mtu) takes 2 arguments");
        return NULL;
    }
    long long mtu = PyLong_AsLongLong(args[1]);
    if (mtu == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *res = NULL;
    if (view.len < VNET_HDR_LEN) {
        offload_error("virtio_net_hdr needs %d bytes, got %zd", VNET_HDR_LEN, view.len);
    } else {
        vhdr_t h;
        hdr_from_wire((const uint8_t *)view.buf, &h);
        PyObject *segs = split_buffer((const uint8_t *)view.buf + VNET_HDR_LEN,
                                      view.len - VNET_HDR_LEN, &h, mtu);
        if (segs != NULL) {
            int own = (h.flags & F_NEEDS_CSUM) && h.gso_type != GSO_NONE;
            res = PyTuple_Pack(2, segs, own ? Py_True : Py_False);
            Py_DECREF(segs);
        }
    }
    PyBuffer_Release(&view);
    return res;
}
