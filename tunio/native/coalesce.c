/* GRO coalesce: a batch of IP packets into as few TUN writes as the merge rules allow;
 * mirrors the pure engine's gro_coalesce (same flow table semantics, counters and output). */

#include "native.h"

enum { P_PASS = 0, P_KEY = 1, P_CAND = 2 };

typedef struct {
    const uint8_t *p;
    Py_ssize_t n;
    Py_ssize_t plen;    /* payload length (candidates) */
    uint32_t seq;       /* TCP sequence number (candidates) */
    int32_t item;       /* index of the item this packet heads, or -1 */
    int32_t next_chunk; /* next packet merged into the same item, or -1 */
    uint16_t l4, hlen;  /* L4 offset, IP + L4 header length (candidates) */
    uint16_t addr_off, port_off;
    uint8_t kind, proto, addr_len, v6, psh;
    uint8_t own; /* its trusted flag: L4 checksum computed by the split, not verified */
} gpkt_t;

typedef struct {
    int32_t head, out_index, first_chunk, last_chunk, count;
    uint32_t next_seq;
    Py_ssize_t total;
    int8_t valid; /* -1: head checksum not checked yet */
    uint8_t psh;
} gitem_t;

typedef struct {
    int32_t rep;  /* a packet with this flow key, -1 for an empty slot */
    int32_t open; /* the flow's item that can still grow, or -1 */
} gslot_t;

/* Flow key, and for coalescing candidates the parse; mirrors the pure engine's _parse. */
static void gparse(gpkt_t *k, int udp)
{
    const uint8_t *p = k->p;
    Py_ssize_t n = k->n;
    unsigned proto;
    Py_ssize_t l4;
    k->kind = P_PASS;
    k->item = k->next_chunk = -1;
    if (n < 28)
        return;
    int version = p[0] >> 4;
    if (version == 4) {
        Py_ssize_t ihl = (p[0] & 0x0F) * 4;
        proto = p[9];
        if ((proto != PROTO_TCP && proto != PROTO_UDP) || ihl < 20 || n < ihl + 8)
            return;
        unsigned frag = get16(p + 6);
        if (frag & 0x1FFF)
            return; /* later fragments carry no ports */
        k->kind = P_KEY;
        k->proto = (uint8_t)proto;
        k->addr_off = 12;
        k->addr_len = 8;
        k->port_off = (uint16_t)ihl;
        k->v6 = 0;
        if (ihl != 20 || (frag & 0x2000) || get16(p + 2) != n)
            return;
        l4 = 20;
    } else if (version == 6) {
        proto = p[6];
        if ((proto != PROTO_TCP && proto != PROTO_UDP) || n < 48)
            return; /* extension headers are never coalesced */
        k->kind = P_KEY;
        k->proto = (uint8_t)proto;
        k->addr_off = 8;
        k->addr_len = 32;
        k->port_off = 40;
        k->v6 = 1;
        if (get16(p + 4) + 40 != n)
            return;
        l4 = 40;
    } else {
        return;
    }
    if (proto == PROTO_TCP) {
        if (n < l4 + 20)
            return;
        unsigned off_byte = p[l4 + 12], flags = p[l4 + 13];
        Py_ssize_t l4_hlen = (off_byte >> 4) * 4;
        if (l4_hlen < 20 || l4 + l4_hlen >= n || (off_byte & 0x0F) ||
            (flags != TCP_ACK && flags != (TCP_ACK | TCP_PSH)))
            return;
        k->hlen = (uint16_t)(l4 + l4_hlen);
        k->seq = get32(p + l4 + 4);
        k->psh = flags != TCP_ACK;
    } else {
        if (!udp || n <= l4 + 8 || get16(p + l4 + 4) != n - l4)
            return;
        k->hlen = (uint16_t)(l4 + 8);
        k->seq = 0;
        k->psh = 0;
    }
    k->l4 = (uint16_t)l4;
    k->plen = n - k->hlen;
    k->kind = P_CAND;
}

/* Everything besides the flow key that must be equal for a merge (the pure engine's
 * "compat" bytes); a and b have equal flow keys, so equal protocol and IP version. */
static int compatible(const gpkt_t *a, const gpkt_t *b)
{
    const uint8_t *x = a->p, *y = b->p;
    if (a->v6) {
        if (x[0] != y[0] || (x[1] & 0xF0) != (y[1] & 0xF0) || x[7] != y[7])
            return 0;
    } else if (x[1] != y[1] || x[6] != y[6] || x[8] != y[8]) {
        return 0;
    }
    if (a->proto != PROTO_TCP)
        return 1;
    Py_ssize_t l4 = a->l4;
    /* ack + data offset, window, urgent pointer + options */
    return a->hlen == b->hlen && memcmp(x + l4 + 8, y + l4 + 8, 5) == 0 &&
           memcmp(x + l4 + 14, y + l4 + 14, 2) == 0 &&
           memcmp(x + l4 + 18, y + l4 + 18, (size_t)(a->hlen - l4 - 18)) == 0;
}

/* Full TCP/UDP checksum of a candidate, before the kernel recomputes (hides) it. */
static int l4_csum_ok(const gpkt_t *k)
{
    const uint8_t *p = k->p;
    Py_ssize_t l4 = k->l4, len = k->n - l4;
    if (k->proto == PROTO_UDP && p[l4 + 6] == 0 && p[l4 + 7] == 0)
        return !k->v6; /* IPv4 UDP may go without checksum, IPv6 UDP may not */
    uint64_t s = pseudo_base(p + k->addr_off, k->addr_len, k->proto) + (uint64_t)len +
                 sum_be(p + l4, len);
    return fold(s) == 0xFFFF;
}

static uint32_t key_hash(const gpkt_t *k)
{
    uint32_t h = 2166136261u ^ k->proto;
    const uint8_t *a = k->p + k->addr_off, *b = k->p + k->port_off;
    for (int i = 0; i < k->addr_len; i++)
        h = (h ^ a[i]) * 16777619u;
    for (int i = 0; i < 4; i++)
        h = (h ^ b[i]) * 16777619u;
    return h ^ (h >> 15);
}

static int key_equal(const gpkt_t *a, const gpkt_t *b)
{
    return a->proto == b->proto && a->addr_len == b->addr_len &&
           memcmp(a->p + a->addr_off, b->p + b->addr_off, a->addr_len) == 0 &&
           memcmp(a->p + a->port_off, b->p + b->port_off, 4) == 0;
}

typedef struct {
    gpkt_t *pk;
    gitem_t *items;
    int32_t *out; /* packet index per output entry */
    gslot_t *slots;
    Py_ssize_t npk, nout, nitems, ngrown, merged, bad, verified, trusted;
    uint32_t mask;
} gro_t;

/* Whether a candidate's L4 checksum lets it merge, counting the check made or skipped
 * (the pure engine's order: not verifying, trusted, else summed). */
static int csum_accepts(gro_t *g, const gpkt_t *k, int verify)
{
    if (!verify)
        return 1;
    if (k->own) {
        g->trusted++;
        return 1;
    }
    g->verified++;
    return l4_csum_ok(k);
}

/* The merge loop of the pure engine's gro_coalesce, on parsed packets; touches no Python
 * object. */
static void gro_run(gro_t *g, int udp, long long max_size, int verify)
{
    for (Py_ssize_t i = 0; i < g->npk; i++)
        gparse(&g->pk[i], udp);
    for (Py_ssize_t i = 0; i < g->npk; i++) {
        gpkt_t *k = &g->pk[i];
        if (k->kind == P_PASS) {
            g->out[g->nout++] = (int32_t)i;
            continue;
        }
        uint32_t h = key_hash(k) & g->mask;
        while (g->slots[h].rep >= 0 && !key_equal(&g->pk[g->slots[h].rep], k))
            h = (h + 1) & g->mask;
        gslot_t *slot = &g->slots[h];
        if (slot->rep < 0)
            slot->rep = (int32_t)i;
        int32_t it = slot->open;
        slot->open = -1;
        int cand = k->kind == P_CAND;
        if (cand && it >= 0) {
            gitem_t *item = &g->items[it];
            const gpkt_t *head = &g->pk[item->head];
            if (compatible(k, head) && k->plen <= head->plen &&
                (k->proto != PROTO_TCP || k->seq == item->next_seq) &&
                item->total + k->plen <= max_size && item->count < MAX_SEGMENTS) {
                if (item->valid < 0) {
                    item->valid = (int8_t)csum_accepts(g, head, verify);
                    g->bad += !item->valid;
                }
                if (item->valid) {
                    if (csum_accepts(g, k, verify)) {
                        if (item->count == 1) {
                            item->first_chunk = (int32_t)i;
                            g->ngrown++;
                        } else {
                            g->pk[item->last_chunk].next_chunk = (int32_t)i;
                        }
                        item->last_chunk = (int32_t)i;
                        item->total += k->plen;
                        item->count++;
                        item->next_seq = k->seq + (uint32_t)k->plen;
                        g->merged++;
                        if (k->psh)
                            item->psh = 1;
                        else if (k->plen == head->plen)
                            slot->open = it; /* still open */
                        continue;
                    }
                    g->bad++;
                    cand = 0; /* bad checksum: write it alone, unchanged */
                }
            }
        }
        g->out[g->nout++] = (int32_t)i;
        if (cand && !k->psh) {
            int32_t ni = (int32_t)g->nitems++;
            gitem_t *item = &g->items[ni];
            item->head = (int32_t)i;
            item->out_index = (int32_t)(g->nout - 1);
            item->first_chunk = item->last_chunk = -1;
            item->count = 1;
            item->next_seq = k->seq + (uint32_t)k->plen;
            item->total = k->n;
            item->valid = -1;
            item->psh = 0;
            k->item = ni;
            slot->open = ni;
        }
    }
}

/* Assemble a merged frame into o (item->total bytes), mirroring the pure engine's groframe.build;
 * writes the virtio_net_hdr into vh when vh is not NULL. */
static void gro_build(const gro_t *g, const gitem_t *item, uint8_t *o, uint8_t *vh)
{
    const gpkt_t *head = &g->pk[item->head];
    memcpy(o, head->p, (size_t)head->n);
    Py_ssize_t pos = head->n;
    for (int32_t c = item->first_chunk; c >= 0; c = g->pk[c].next_chunk) {
        const gpkt_t *k = &g->pk[c];
        memcpy(o + pos, k->p + k->hlen, (size_t)k->plen);
        pos += k->plen;
    }
    Py_ssize_t total = item->total, l4 = head->l4, l4len = total - l4;
    const uint8_t *addrs;
    if (head->v6) {
        put16(o + 4, (unsigned)(total - 40));
        addrs = o + 8;
    } else {
        put16(o + 2, (unsigned)total);
        o[10] = o[11] = 0;
        put16(o + 10, ~sum_be(o, 20) & 0xFFFF);
        addrs = o + 12;
    }
    unsigned proto, csum_off, gso_type;
    if (head->proto == PROTO_TCP) {
        if (item->psh)
            o[l4 + 13] |= TCP_PSH;
        proto = PROTO_TCP;
        csum_off = TCP_CSUM_OFFSET;
        gso_type = head->v6 ? GSO_TCPV6 : GSO_TCPV4;
    } else {
        put16(o + l4 + 4, (unsigned)l4len);
        proto = PROTO_UDP;
        csum_off = UDP_CSUM_OFFSET;
        gso_type = GSO_UDP_L4;
    }
    put16(o + l4 + csum_off, fold(pseudo_base(addrs, head->addr_len, proto) + (uint64_t)l4len));
    if (vh != NULL)
        hdr_to_wire(vh, F_NEEDS_CSUM, gso_type, head->hlen, (unsigned)head->plen,
                    (unsigned)l4, csum_off);
}

static int bump(PyObject *stats, PyObject *name, Py_ssize_t by)
{
    PyObject *old = PyObject_GetAttr(stats, name);
    if (old == NULL)
        return -1;
    PyObject *delta = PyLong_FromSsize_t(by);
    PyObject *sum = delta ? PyNumber_InPlaceAdd(old, delta) : NULL;
    Py_DECREF(old);
    Py_XDECREF(delta);
    if (sum == NULL)
        return -1;
    int rc = PyObject_SetAttr(stats, name, sum);
    Py_DECREF(sum);
    return rc;
}

/* frames == 0: list of (VirtioNetHdr, bytes) like the pure engine's gro_coalesce;
 * frames == 1: list of bytes, each the 10-byte virtio_net_hdr followed by the packet. */
static PyObject *coalesce(PyObject *packets, int udp, long long max_size, PyObject *stats,
                          int verify, PyObject *trusted, int frames)
{
    if (max_size > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "max_size must be at most 65535");
        return NULL;
    }
    /* A tuple: converting an item with bytes() may run code that mutates a list. */
    PyObject *seq = PySequence_Tuple(packets);
    if (seq == NULL)
        return NULL;
    Py_ssize_t npk = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *result = NULL;
    Py_buffer flags = {0};
    int have_flags = 0;
    PyObject **objs = NULL;
    PyObject **built = NULL;
    Py_ssize_t nobjs = 0;
    gro_t g;
    memset(&g, 0, sizeof g);
    if (npk > INT32_MAX / 4) {
        PyErr_SetString(PyExc_OverflowError, "too many packets");
        goto done;
    }
    if (trusted != Py_None) {
        if (PyObject_GetBuffer(trusted, &flags, PyBUF_SIMPLE) < 0)
            goto done;
        have_flags = 1;
        if (flags.len != npk) {
            PyErr_Format(PyExc_ValueError, "trusted has %zd flags for %zd packets", flags.len,
                         npk);
            goto done;
        }
    }
    uint32_t cap = 16;
    while (cap < 2 * (uint32_t)npk)
        cap <<= 1;
    g.npk = npk;
    g.mask = cap - 1;
    objs = PyMem_Calloc((size_t)npk + 1, sizeof *objs);
    g.pk = PyMem_Calloc((size_t)npk + 1, sizeof *g.pk);
    g.items = PyMem_Calloc((size_t)npk + 1, sizeof *g.items);
    g.out = PyMem_Calloc((size_t)npk + 1, sizeof *g.out);
    g.slots = PyMem_Malloc(cap * sizeof *g.slots);
    if (!objs || !g.pk || !g.items || !g.out || !g.slots) {
        PyErr_NoMemory();
        goto done;
    }
    memset(g.slots, 0xFF, cap * sizeof *g.slots); /* rep = open = -1 */
    Py_ssize_t bytes_in = 0; /* of the packets whose checksums may be summed */
    for (Py_ssize_t i = 0; i < npk; i++) {
        PyObject *raw = items[i];
        PyObject *pkt;
        if (PyBytes_CheckExact(raw)) {
            Py_INCREF(raw);
            pkt = raw;
        } else {
            pkt = PyObject_CallOneArg((PyObject *)&PyBytes_Type, raw); /* bytes(raw) */
            if (pkt == NULL)
                goto done;
        }
        objs[nobjs++] = pkt;
        g.pk[i].p = (const uint8_t *)PyBytes_AS_STRING(pkt);
        g.pk[i].n = PyBytes_GET_SIZE(pkt);
        g.pk[i].own = have_flags && ((const uint8_t *)flags.buf)[i] != 0;
        if (!g.pk[i].own)
            bytes_in += g.pk[i].n;
    }
    /* Parse, merge decisions and checksum checks read only the bytes objects held in objs;
     * without verification they touch only headers, too little to hand the GIL over. */
    if (bytes_in >= GIL_FREE_BYTES && verify) {
        Py_BEGIN_ALLOW_THREADS
        gro_run(&g, udp, max_size, verify);
        Py_END_ALLOW_THREADS
    } else {
        gro_run(&g, udp, max_size, verify);
    }
    /* Allocate the merged frames, fill them (without the GIL when big), then the list. */
    built = PyMem_Calloc((size_t)g.nitems + 1, sizeof *built);
    if (built == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t bytes_out = 0, extra = frames ? VNET_HDR_LEN : 0;
    for (Py_ssize_t j = 0; j < g.nitems; j++) {
        if (g.items[j].count < 2)
            continue;
        built[j] = PyBytes_FromStringAndSize(NULL, g.items[j].total + extra);
        if (built[j] == NULL)
            goto done;
        bytes_out += g.items[j].total;
    }
#define BUILD_ALL()                                                                         \
    for (Py_ssize_t j = 0; j < g.nitems; j++) {                                             \
        if (built[j] != NULL) {                                                             \
            uint8_t *o = (uint8_t *)PyBytes_AS_STRING(built[j]);                            \
            gro_build(&g, &g.items[j], o + extra, frames ? o : NULL);                       \
        }                                                                                   \
    }
    if (bytes_out >= GIL_FREE_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        BUILD_ALL()
        Py_END_ALLOW_THREADS
    } else {
        BUILD_ALL()
    }
#undef BUILD_ALL
    result = PyList_New(g.nout);
    if (result == NULL)
        goto done;
    for (Py_ssize_t o = 0; o < g.nout; o++) {
        const gpkt_t *k = &g.pk[g.out[o]];
        PyObject *entry;
        if (k->item >= 0 && built[k->item] != NULL) {
            PyObject *pkt = built[k->item];
            built[k->item] = NULL;
            if (frames) {
                entry = pkt;
            } else {
                unsigned tcp = k->proto == PROTO_TCP;
                unsigned gso_type = tcp ? (k->v6 ? GSO_TCPV6 : GSO_TCPV4) : GSO_UDP_L4;
                PyObject *hdr = PyObject_CallFunction(
                    VirtioNetHdr, "IIIIII", (unsigned)F_NEEDS_CSUM, gso_type,
                    (unsigned)k->hlen, (unsigned)k->plen, (unsigned)k->l4,
                    tcp ? (unsigned)TCP_CSUM_OFFSET : (unsigned)UDP_CSUM_OFFSET);
                entry = hdr ? PyTuple_Pack(2, hdr, pkt) : NULL;
                Py_XDECREF(hdr);
                Py_DECREF(pkt);
            }
        } else if (frames) {
            entry = PyBytes_FromStringAndSize(NULL, k->n + VNET_HDR_LEN);
            if (entry != NULL) {
                uint8_t *o8 = (uint8_t *)PyBytes_AS_STRING(entry);
                memset(o8, 0, VNET_HDR_LEN);
                memcpy(o8 + VNET_HDR_LEN, k->p, (size_t)k->n);
            }
        } else {
            entry = PyTuple_Pack(2, ZeroHdr, objs[g.out[o]]);
        }
        if (entry == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, o, entry);
    }
    if (stats != NULL && stats != Py_None) {
        if (bump(stats, s_packets_in, npk) || bump(stats, s_frames_out, g.nout) ||
            bump(stats, s_merged, g.merged) || bump(stats, s_super_frames, g.ngrown) ||
            bump(stats, s_bad_csum, g.bad) || bump(stats, s_csum_verified, g.verified) ||
            bump(stats, s_csum_trusted, g.trusted))
            Py_CLEAR(result);
    }
done:
    if (built != NULL) {
        for (Py_ssize_t j = 0; j < g.nitems; j++)
            Py_XDECREF(built[j]);
        PyMem_Free(built);
    }
    for (Py_ssize_t i = 0; i < nobjs; i++)
        Py_DECREF(objs[i]);
    PyMem_Free(objs);
    PyMem_Free(g.pk);
    PyMem_Free(g.items);
    PyMem_Free(g.out);
    PyMem_Free(g.slots);
    if (have_flags)
        PyBuffer_Release(&flags);
    Py_DECREF(seq);
    return result;
}

const char gro_coalesce_doc[] =
    "gro_coalesce(packets, udp=True, max_size=65535, stats=None, verify=True, "
    "trusted=None)\n\n"
    "Coalesce plain IP packets into (VirtioNetHdr, bytes) frames; same contract as "
    "the pure engine's gro_coalesce.";

PyObject *py_gro_coalesce(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"packets", "udp", "max_size", "stats", "verify", "trusted", NULL};
    PyObject *packets, *stats = Py_None, *trusted = Py_None;
    int udp = 1, verify = 1;
    long long max_size = 65535;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|pLOpO:gro_coalesce", kwlist, &packets,
                                     &udp, &max_size, &stats, &verify, &trusted))
        return NULL;
    return coalesce(packets, udp, max_size, stats, verify, trusted, 0);
}

const char coalesce_frames_doc[] =
    "coalesce_frames(packets, udp=True, max_size=65535, stats=None, verify=True, "
    "trusted=None)\n\n"
    "gro_coalesce, but each frame comes as one bytes object ready for write(): the "
    "10-byte virtio_net_hdr followed by the packet.";

PyObject *py_coalesce_frames(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"packets", "udp", "max_size", "stats", "verify", "trusted", NULL};
    PyObject *packets, *stats = Py_None, *trusted = Py_None;
    int udp = 1, verify = 1;
    long long max_size = 65535;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|pLOpO:coalesce_frames", kwlist, &packets,
                                     &udp, &max_size, &stats, &verify, &trusted))
        return NULL;
    return coalesce(packets, udp, max_size, stats, verify, trusted, 1);
}
