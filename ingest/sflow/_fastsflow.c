/*
 * _fastsflow: the sFlow version 5 decoder of ingest/sflow/decode.py (and the sampled-header parser
 * of ingest/packet.py) in C, for the ingest hot path.
 *
 * The pure-Python decoder is the reference: this module must give exactly its samples, its error
 * messages and offsets, and the same partial results (the samples decoded before a fault). Every
 * rule below is the Python rule, in the Python order; tests/test_sflow_fast.py checks them against
 * each other on real captures, hand-built datagrams and fuzzed bytes.
 *
 * Two ways out:
 *   decode_datagram(data) -> SflowDatagram        the Python objects, identical to the reference
 *   FlowBatch().add(data)                         flow samples appended to one growable array of
 *                                                 fixed-size C records, read out as Arrow buffers of
 *                                                 the lake's flows columns (numbers and MAC / IP
 *                                                 text) and int64 key columns for the matrix
 *
 * Safety: every read is bounds-checked against the datagram length with 64-bit arithmetic (a 32-bit
 * length plus an offset cannot wrap); counts never size anything (each loop step consumes at least
 * eight bytes, so a loop ends with the bytes).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------------------------------- */
/* records                                                                                       */

/* which optional fields are present (None in Python when the bit is clear) */
#define P_HEADER (1u << 0)   /* header_protocol, stripped, header_length (raw header record) */
#define P_FLEN (1u << 1)     /* frame_length */
#define P_SMAC (1u << 2)
#define P_DMAC (1u << 3)
#define P_VLAN (1u << 4)
#define P_IVLAN (1u << 5)
#define P_ETYPE (1u << 6)
#define P_IPV (1u << 7)
#define P_SIP (1u << 8)
#define P_DIP (1u << 9)
#define P_PROTO (1u << 10)
#define P_SPORT (1u << 11)
#define P_DPORT (1u << 12)
#define P_TOS (1u << 13)
#define P_IPLEN (1u << 14)
#define P_SWITCH (1u << 15) /* src_vlan, src_priority, dst_vlan, dst_priority (extended switch) */
#define P_PACKET_FIELDS                                                                            \
    (P_SMAC | P_DMAC | P_VLAN | P_IVLAN | P_ETYPE | P_IPV | P_SIP | P_DIP | P_PROTO | P_SPORT |    \
     P_DPORT | P_TOS | P_IPLEN)

/* The fields a sampled header (or the sampled Ethernet/IPv4/IPv6 records) give. */
typedef struct {
    uint32_t present;
    uint64_t src_mac, dst_mac;
    uint32_t vlan, inner_vlan, ethertype, ip_version, ip_protocol, src_port, dst_port, tos, ip_length;
    uint8_t src_ip[16], dst_ip[16];
    uint8_t src_family, dst_family; /* 4 or 6 when the address is present */
} hdr_t;

/* One flow sample: every field of the reference's FlowSample, and which optional ones are there. */
typedef struct {
    uint64_t src_mac, dst_mac; /* 48-bit big-endian value */
    uint8_t src_ip[16], dst_ip[16];
    uint32_t sequence_number, source_id_type, source_id_index, sampling_rate, sample_pool, drops;
    uint32_t input_format, input_value, output_format, output_value, record_count;
    uint32_t header_protocol, frame_length, stripped, header_length;
    uint32_t vlan, inner_vlan, ethertype, ip_version, ip_protocol, src_port, dst_port, tos, ip_length;
    uint32_t src_vlan, src_priority, dst_vlan, dst_priority;
    uint32_t present;
    uint8_t expanded, src_ip_family, dst_ip_family, pad;
    /* the datagram's context, set by FlowBatch */
    int64_t received_ns;
    uint32_t agent_code, sub_agent_id;
} sf_flow;

typedef struct {
    uint32_t expanded, sequence_number, source_id_type, source_id_index, record_count;
    int has_generic, has_ethernet;
    uint64_t generic[19];
    uint32_t ethernet[13];
} sf_counter;

typedef struct {
    sf_flow *items;
    Py_ssize_t len, cap;
} flow_vec;

typedef struct {
    sf_counter *items;
    Py_ssize_t len, cap;
} counter_vec;

enum { ST_OK = 0, ST_BAD_HEADER = 1, ST_MALFORMED = 2, ST_NOMEM = -1 };

typedef struct {
    uint32_t version, sub_agent_id, sequence_number, uptime_ms, n_samples;
    int agent_family; /* 4 or 6 once the header is read */
    uint8_t agent[16];
    Py_ssize_t unknown_samples, unknown_records, skipped_records;
    int status;
    int value_error; /* the fault is a value past its bound (VALUE_ADVICE), not broken structure */
    long long offset;
    char message[640];
} sf_result;

static int flow_reserve(flow_vec *v) {
    if (v->len < v->cap) return 0;
    Py_ssize_t cap = v->cap ? v->cap * 2 : 256;
    sf_flow *items = PyMem_Realloc(v->items, (size_t)cap * sizeof(sf_flow));
    if (items == NULL) return -1;
    v->items = items;
    v->cap = cap;
    return 0;
}

static int counter_reserve(counter_vec *v) {
    if (v->len < v->cap) return 0;
    Py_ssize_t cap = v->cap ? v->cap * 2 : 16;
    sf_counter *items = PyMem_Realloc(v->items, (size_t)cap * sizeof(sf_counter));
    if (items == NULL) return -1;
    v->items = items;
    v->cap = cap;
    return 0;
}

/* The lake value of the VLAN (the sampled tag, else the extended-switch source VLAN; valid 0..4095)
 * and the matrix key's VLAN (the same before validation); -1 for None. */
static inline int64_t key_vlan(const sf_flow *f) {
    if (f->present & P_VLAN) return f->vlan;
    if (f->present & P_SWITCH) return f->src_vlan;
    return -1;
}

/* ------------------------------------------------------------------------------------------- */
/* byte helpers                                                                                  */

static inline uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }

static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t be48(const uint8_t *p) {
    return ((uint64_t)be16(p) << 32) | be32(p + 2);
}

static inline uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

/* ------------------------------------------------------------------------------------------- */
/* sampled packet headers: ingest/packet.py, rule for rule                                      */

#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_IPV6 0x86DDu
#define MAX_VLAN_TAGS 8
#define MAX_IPV6_EXTENSION_HEADERS 16

static inline int is_vlan_tpid(uint32_t t) { return t == 0x8100u || t == 0x88A8u || t == 0x9100u; }

/* TCP, UDP, DCCP, SCTP, UDP-Lite */
static inline int is_port_protocol(uint32_t p) {
    return p == 6 || p == 17 || p == 33 || p == 132 || p == 136;
}

static void ipv4_fields(const uint8_t *b, uint64_t pos, uint64_t end, hdr_t *h) {
    uint64_t n = end - pos; /* callers guarantee pos <= end */
    if (n < 20) {
        if (n < 1 || (b[pos] >> 4) != 4) return;
        h->present |= P_IPV;
        h->ip_version = 4;
        if (n >= 2) { h->present |= P_TOS; h->tos = b[pos + 1]; }
        if (n >= 4) { h->present |= P_IPLEN; h->ip_length = be16(b + pos + 2); }
        if (n >= 10) { h->present |= P_PROTO; h->ip_protocol = b[pos + 9]; }
        if (n >= 16) { h->present |= P_SIP; h->src_family = 4; memcpy(h->src_ip, b + pos + 12, 4); }
        return;
    }
    uint32_t ver_ihl = b[pos];
    if ((ver_ihl >> 4) != 4) return;
    uint32_t proto = b[pos + 9];
    h->present |= P_IPV | P_SIP | P_DIP | P_PROTO | P_TOS | P_IPLEN;
    h->ip_version = 4;
    h->tos = b[pos + 1];
    h->ip_length = be16(b + pos + 2);
    h->ip_protocol = proto;
    h->src_family = h->dst_family = 4;
    memcpy(h->src_ip, b + pos + 12, 4);
    memcpy(h->dst_ip, b + pos + 16, 4);
    uint64_t ihl = (uint64_t)(ver_ihl & 0x0F) << 2;
    uint64_t l4 = pos + ihl;
    if (ihl < 20 || (b[pos + 6] & 0x1F) || b[pos + 7]) return; /* bogus IHL or a later fragment */
    if (is_port_protocol(proto)) {
        if (l4 + 4 <= end) {
            h->present |= P_SPORT | P_DPORT;
            h->src_port = be16(b + l4);
            h->dst_port = be16(b + l4 + 2);
        }
    } else if (proto == 1 && l4 + 2 <= end) {
        h->present |= P_SPORT | P_DPORT;
        h->src_port = 0;
        h->dst_port = be16(b + l4);
    }
}

static void ipv6_fields(const uint8_t *b, uint64_t pos, uint64_t end, hdr_t *h) {
    uint64_t n = end - pos;
    if (n < 40) {
        if (n < 1 || (b[pos] >> 4) != 6) return;
        h->present |= P_IPV;
        h->ip_version = 6;
        if (n >= 2) { h->present |= P_TOS; h->tos = ((b[pos] & 0x0Fu) << 4) | (b[pos + 1] >> 4); }
        if (n >= 6) { h->present |= P_IPLEN; h->ip_length = be16(b + pos + 4) + 40; }
        if (n >= 7) {
            uint32_t nh = b[pos + 6];
            if (!(nh == 0 || nh == 43 || nh == 60 || nh == 51 || nh == 44)) {
                h->present |= P_PROTO;
                h->ip_protocol = nh;
            }
        }
        if (n >= 24) { h->present |= P_SIP; h->src_family = 6; memcpy(h->src_ip, b + pos + 8, 16); }
        return;
    }
    uint32_t b0 = b[pos], b1 = b[pos + 1];
    if ((b0 >> 4) != 6) return;
    h->present |= P_IPV | P_SIP | P_DIP | P_TOS | P_IPLEN;
    h->ip_version = 6;
    h->tos = ((b0 & 0x0Fu) << 4) | (b1 >> 4);
    h->ip_length = be16(b + pos + 4) + 40;
    h->src_family = h->dst_family = 6;
    memcpy(h->src_ip, b + pos + 8, 16);
    memcpy(h->dst_ip, b + pos + 24, 16);
    uint32_t nh = b[pos + 6];
    uint64_t q = pos + 40;
    if (is_port_protocol(nh)) {
        h->present |= P_PROTO;
        h->ip_protocol = nh;
        if (q + 4 <= end) {
            h->present |= P_SPORT | P_DPORT;
            h->src_port = be16(b + q);
            h->dst_port = be16(b + q + 2);
        }
        return;
    }
    uint32_t proto = nh;
    int known = 1, first_fragment = 1, walked = 0;
    for (;;) {
        if (proto == 0 || proto == 43 || proto == 60 || proto == 51) {
            if (q + 2 > end || walked == MAX_IPV6_EXTENSION_HEADERS) { known = 0; break; }
            uint64_t size = proto == 51 ? ((uint64_t)b[q + 1] + 2) << 2 : ((uint64_t)b[q + 1] + 1) << 3;
            proto = b[q];
            q += size;
        } else if (proto == 44) {
            if (q + 4 > end || walked == MAX_IPV6_EXTENSION_HEADERS) { known = 0; break; }
            if (be16(b + q + 2) & 0xFFF8u) first_fragment = 0;
            proto = b[q];
            q += 8;
        } else {
            break;
        }
        walked++;
    }
    if (!known) return; /* ip_protocol stays None: the copy ends inside the extension chain */
    h->present |= P_PROTO;
    h->ip_protocol = proto;
    if (!first_fragment) return;
    if (is_port_protocol(proto)) {
        if (q + 4 <= end) {
            h->present |= P_SPORT | P_DPORT;
            h->src_port = be16(b + q);
            h->dst_port = be16(b + q + 2);
        }
    } else if (proto == 58 && q + 2 <= end) {
        h->present |= P_SPORT | P_DPORT;
        h->src_port = 0;
        h->dst_port = be16(b + q);
    }
}

/* a bare IP packet (header_protocol 11 or 12): the version nibble decides */
static void ip_fields(const uint8_t *b, uint64_t start, uint64_t end, hdr_t *h) {
    if (start >= end) return;
    uint32_t version = b[start] >> 4;
    if (version == 4) ipv4_fields(b, start, end, h);
    else if (version == 6) ipv6_fields(b, start, end, h);
}

static void ethernet_fields(const uint8_t *b, uint64_t start, uint64_t end, hdr_t *h) {
    uint64_t n = end - start;
    if (n < 14) {
        if (n >= 6) { h->present |= P_DMAC; h->dst_mac = be48(b + start); }
        if (n >= 12) { h->present |= P_SMAC; h->src_mac = be48(b + start + 6); }
        return;
    }
    h->present |= P_SMAC | P_DMAC;
    h->dst_mac = be48(b + start);
    h->src_mac = be48(b + start + 6);
    uint32_t ethertype = be16(b + start + 12);
    uint64_t pos = start + 14;
    if (is_vlan_tpid(ethertype)) {
        int tags = 0;
        while (is_vlan_tpid(ethertype)) {
            if (pos + 4 > end || tags == MAX_VLAN_TAGS) {
                /* the copy ends inside a tag (or the tags never end): what follows is unknown */
                if (pos + 2 <= end && tags < MAX_VLAN_TAGS) {
                    uint32_t vid = be16(b + pos) & 0x0FFFu;
                    if (tags == 0) { h->present |= P_VLAN; h->vlan = vid; }
                    else if (tags == 1) { h->present |= P_IVLAN; h->inner_vlan = vid; }
                }
                return;
            }
            uint32_t vid = be16(b + pos) & 0x0FFFu;
            if (tags == 0) { h->present |= P_VLAN; h->vlan = vid; }
            else if (tags == 1) { h->present |= P_IVLAN; h->inner_vlan = vid; }
            ethertype = be16(b + pos + 2);
            pos += 4;
            tags++;
        }
    }
    if (ethertype == ETHERTYPE_IPV4) {
        h->present |= P_ETYPE;
        h->ethertype = ethertype;
        ipv4_fields(b, pos, end, h);
        return;
    }
    if (ethertype == ETHERTYPE_IPV6) {
        h->present |= P_ETYPE;
        h->ethertype = ethertype;
        ipv6_fields(b, pos, end, h);
        return;
    }
    if (ethertype >= 0x0600) { /* below: an 802.3 length field (LLC frame), no ethertype */
        h->present |= P_ETYPE;
        h->ethertype = ethertype;
    }
}

/* ------------------------------------------------------------------------------------------- */
/* the datagram: ingest/sflow/decode.py, rule for rule                                          */

static const char ADVICE[] =
    "the datagram is truncated or corrupt; it cannot be decoded (check the exporter and the capture)";
static const char VALUE_ADVICE[] =
    "the exporter sent a value this field cannot have, so the sample cannot be stored "
    "(check the exporter's sflow implementation)";

/* Value bounds of ingest/sflow/constants.py (MAX_*; the arithmetic of the int64 sums is written out
 * there): a value past its bound is a decode error of the datagram, as in the reference. Exported as
 * module constants so tests can hold them against the Python ones. */
#define MAX_IP_PROTOCOL 255u
#define MAX_PORT 65535u
#define MAX_ETHERTYPE 65535u
#define MAX_FRAME_LENGTH (1u << 24)

typedef unsigned long long ull;

#define MALFORMED(at, ...)                                                                         \
    do {                                                                                           \
        r->status = ST_MALFORMED;                                                                  \
        r->offset = (long long)(at);                                                               \
        snprintf(r->message, sizeof r->message, __VA_ARGS__);                                      \
        return ST_MALFORMED;                                                                       \
    } while (0)

/* the reference's _out_of_range: record ``rec`` of flow sample ``index`` has ``field`` past ``bound`` */
#define OUT_OF_RANGE(at, index, rec, record_name, field, value, bound)                             \
    do {                                                                                           \
        r->value_error = 1;                                                                        \
        MALFORMED(at, "flow sample %llu, record %llu (%s): %s %u is outside 0..%u", (ull)(index) + 1, \
                  (ull)(rec) + 1, record_name, field, (unsigned)(value), (unsigned)(bound));      \
    } while (0)

/* Fill what the raw header did not give from the sampled Ethernet (2), IPv4 (3) and IPv6 (4)
 * records, in record order (each fills only fields still empty); walks the already validated records
 * of the sample a second time. */
static void merge_sampled_records(const uint8_t *d, uint64_t p, uint64_t n_walked, hdr_t *h,
                                  sf_flow *f) {
    int have_eth = 0, have_ip = 0;
    uint32_t eth_length = 0, ip_length = 0;
    for (uint64_t r = 0; r < n_walked; r++) {
        uint32_t fmt = be32(d + p), len = be32(d + p + 4);
        uint64_t at = p + 8;
        p = at + len;
        if (fmt == 2) {
            have_eth = 1;
            eth_length = be32(d + at);
            if (!(h->present & P_SMAC)) { h->present |= P_SMAC; h->src_mac = be48(d + at + 4); }
            if (!(h->present & P_DMAC)) { h->present |= P_DMAC; h->dst_mac = be48(d + at + 12); }
            if (!(h->present & P_ETYPE)) { h->present |= P_ETYPE; h->ethertype = be32(d + at + 20); }
        } else if (fmt == 3 || fmt == 4) {
            int v6 = fmt == 4;
            int alen = v6 ? 16 : 4;
            uint64_t ports = at + 8 + 2 * (uint64_t)alen; /* sport, dport, tcp flags, tos/priority */
            have_ip = 1;
            ip_length = be32(d + at);
            if (!(h->present & P_IPV)) { h->present |= P_IPV; h->ip_version = v6 ? 6 : 4; }
            if (!(h->present & P_SIP)) {
                h->present |= P_SIP;
                h->src_family = v6 ? 6 : 4;
                memcpy(h->src_ip, d + at + 8, alen);
            }
            if (!(h->present & P_DIP)) {
                h->present |= P_DIP;
                h->dst_family = v6 ? 6 : 4;
                memcpy(h->dst_ip, d + at + 8 + alen, alen);
            }
            if (!(h->present & P_PROTO)) { h->present |= P_PROTO; h->ip_protocol = be32(d + at + 4); }
            if (!(h->present & P_SPORT)) { h->present |= P_SPORT; h->src_port = be32(d + ports); }
            if (!(h->present & P_DPORT)) { h->present |= P_DPORT; h->dst_port = be32(d + ports + 4); }
            if (!(h->present & P_TOS)) { h->present |= P_TOS; h->tos = be32(d + ports + 12); }
            if (!(h->present & P_IPLEN)) { h->present |= P_IPLEN; h->ip_length = ip_length; }
        }
    }
    if (!(f->present & P_FLEN)) {
        f->present |= P_FLEN;
        f->frame_length = have_eth ? eth_length : ip_length;
        (void)have_ip; /* at least one of the two is set: this runs only when a record was seen */
    }
}

static int flow_sample(const uint8_t *d, uint64_t start, uint64_t end, int expanded, uint64_t index,
                       sf_result *r, flow_vec *fv) {
    uint32_t sample_length = (uint32_t)(end - start);
    if (flow_reserve(fv) < 0) { r->status = ST_NOMEM; return ST_NOMEM; }
    sf_flow *f = &fv->items[fv->len];
    memset(f, 0, sizeof *f);
    uint64_t p;
    uint32_t n_records;
    if (!expanded) {
        if (sample_length < 32)
            MALFORMED(start, "flow sample %llu is %u bytes, less than 32", (ull)(index + 1), sample_length);
        const uint8_t *w = d + start;
        uint32_t source_id = be32(w + 4), inp = be32(w + 20), outp = be32(w + 24);
        f->sequence_number = be32(w);
        f->source_id_type = source_id >> 24;
        f->source_id_index = source_id & 0xFFFFFFu;
        f->sampling_rate = be32(w + 8);
        f->sample_pool = be32(w + 12);
        f->drops = be32(w + 16);
        f->input_format = inp >> 30;
        f->input_value = inp & 0x3FFFFFFFu;
        f->output_format = outp >> 30;
        f->output_value = outp & 0x3FFFFFFFu;
        n_records = be32(w + 28);
        p = start + 32;
    } else {
        if (sample_length < 44)
            MALFORMED(start, "expanded flow sample %llu is %u bytes, less than 44", (ull)(index + 1),
                      sample_length);
        const uint8_t *w = d + start;
        f->sequence_number = be32(w);
        f->source_id_type = be32(w + 4);
        f->source_id_index = be32(w + 8);
        f->sampling_rate = be32(w + 12);
        f->sample_pool = be32(w + 16);
        f->drops = be32(w + 20);
        f->input_format = be32(w + 24);
        f->input_value = be32(w + 28);
        f->output_format = be32(w + 32);
        f->output_value = be32(w + 36);
        n_records = be32(w + 40);
        p = start + 44;
    }
    f->expanded = (uint8_t)expanded;
    f->record_count = n_records;
    hdr_t h;
    memset(&h, 0, sizeof h); /* absent fields are zero, so a record's bytes are deterministic */
    int has_sampled = 0;
    uint64_t records_start = p;
    for (uint64_t rec = 0; rec < n_records; rec++) {
        if (p + 8 > end)
            MALFORMED(p, "flow sample %llu ends after %llu of the %u records it announces",
                      (ull)(index + 1), (ull)rec, n_records);
        uint32_t fmt = be32(d + p), len = be32(d + p + 4);
        uint64_t rs = p + 8;
        p = rs + len;
        if (p > end)
            MALFORMED(rs - 4,
                      "flow record %llu (format %u) of sample %llu is %u bytes long but only %llu "
                      "bytes remain in the sample",
                      (ull)(rec + 1), fmt, (ull)(index + 1), len, (ull)(end - rs));
        if (fmt == 1) {
            if (len < 16) MALFORMED(rs, "raw packet header record is %u bytes, not 16 or more", len);
            uint32_t w0 = be32(d + rs), w1 = be32(d + rs + 4), w2 = be32(d + rs + 8),
                     w3 = be32(d + rs + 12);
            f->present |= P_HEADER | P_FLEN;
            f->header_protocol = w0;
            f->frame_length = w1;
            f->stripped = w2;
            f->header_length = w3;
            uint64_t hs = rs + 16, he = hs + w3;
            if (he > p)
                MALFORMED(rs + 12, "raw packet header claims %u header bytes but its record holds %u",
                          w3, len - 16);
            if (w1 > MAX_FRAME_LENGTH)
                OUT_OF_RANGE(rs + 4, index, rec, "sampled_header", "frame_length", w1, MAX_FRAME_LENGTH);
            memset(&h, 0, sizeof h); /* a later raw header replaces an earlier one's fields */
            if (w0 == 1) ethernet_fields(d, hs, he, &h);
            else if (w0 == 11 || w0 == 12) ip_fields(d, hs, he, &h);
        } else if (fmt == 1001) {
            if (len < 16) MALFORMED(rs, "extended switch record is %u bytes, not 16 or more", len);
            f->present |= P_SWITCH;
            f->src_vlan = be32(d + rs);
            f->src_priority = be32(d + rs + 4);
            f->dst_vlan = be32(d + rs + 8);
            f->dst_priority = be32(d + rs + 12);
        } else if (fmt == 2 || fmt == 3 || fmt == 4) {
            uint32_t need = fmt == 2 ? 24 : fmt == 3 ? 32 : 56;
            if (len < need)
                MALFORMED(rs, "flow record format %u is %u bytes, not %u or more", fmt, len, need);
            /* the bounded fields in wire order: length (it may become the frame length), then the
             * EtherType, or the IP protocol and the ports (behind two 4- or 16-byte addresses) */
            const char *name = fmt == 2 ? "sampled_ethernet" : fmt == 3 ? "sampled_ipv4" : "sampled_ipv6";
            uint32_t length = be32(d + rs);
            if (length > MAX_FRAME_LENGTH)
                OUT_OF_RANGE(rs, index, rec, name, "length", length, MAX_FRAME_LENGTH);
            if (fmt == 2) {
                uint32_t type = be32(d + rs + 20);
                if (type > MAX_ETHERTYPE) OUT_OF_RANGE(rs + 20, index, rec, name, "type", type, MAX_ETHERTYPE);
            } else {
                uint64_t ports = rs + 8 + (fmt == 3 ? 8 : 32);
                uint32_t protocol = be32(d + rs + 4), sport = be32(d + ports), dport = be32(d + ports + 4);
                if (protocol > MAX_IP_PROTOCOL)
                    OUT_OF_RANGE(rs + 4, index, rec, name, "protocol", protocol, MAX_IP_PROTOCOL);
                if (sport > MAX_PORT) OUT_OF_RANGE(ports, index, rec, name, "src_port", sport, MAX_PORT);
                if (dport > MAX_PORT) OUT_OF_RANGE(ports + 4, index, rec, name, "dst_port", dport, MAX_PORT);
            }
            has_sampled = 1;
        } else if (fmt >= 1002 && fmt <= 1012) {
            r->skipped_records++;
        } else {
            r->unknown_records++;
        }
    }
    if (has_sampled) merge_sampled_records(d, records_start, n_records, &h, f);
    f->present |= h.present & P_PACKET_FIELDS;
    f->src_mac = h.src_mac;
    f->dst_mac = h.dst_mac;
    f->vlan = h.vlan;
    f->inner_vlan = h.inner_vlan;
    f->ethertype = h.ethertype;
    f->ip_version = h.ip_version;
    f->ip_protocol = h.ip_protocol;
    f->src_port = h.src_port;
    f->dst_port = h.dst_port;
    f->tos = h.tos;
    f->ip_length = h.ip_length;
    if (h.present & P_SIP) { f->src_ip_family = h.src_family; memcpy(f->src_ip, h.src_ip, 16); }
    if (h.present & P_DIP) { f->dst_ip_family = h.dst_family; memcpy(f->dst_ip, h.dst_ip, 16); }
    fv->len++;
    return ST_OK;
}

static int counter_sample(const uint8_t *d, uint64_t start, uint64_t end, int expanded,
                          uint64_t index, sf_result *r, counter_vec *cv) {
    uint64_t size = end - start, p;
    if (counter_reserve(cv) < 0) { r->status = ST_NOMEM; return ST_NOMEM; }
    sf_counter *c = &cv->items[cv->len];
    memset(c, 0, sizeof *c);
    c->expanded = (uint32_t)expanded;
    if (expanded) {
        if (size < 16)
            MALFORMED(start, "expanded counter sample %llu is %llu bytes, less than 16", (ull)(index + 1),
                      (ull)size);
        c->sequence_number = be32(d + start);
        c->source_id_type = be32(d + start + 4);
        c->source_id_index = be32(d + start + 8);
        c->record_count = be32(d + start + 12);
        p = start + 16;
    } else {
        if (size < 12)
            MALFORMED(start, "counter sample %llu is %llu bytes, less than 12", (ull)(index + 1),
                      (ull)size);
        uint32_t source_id = be32(d + start + 4);
        c->sequence_number = be32(d + start);
        c->source_id_type = source_id >> 24;
        c->source_id_index = source_id & 0xFFFFFFu;
        c->record_count = be32(d + start + 8);
        p = start + 12;
    }
    Py_ssize_t unknown = 0, skipped = 0;
    for (uint64_t rec = 0; rec < c->record_count; rec++) {
        if (p + 8 > end)
            MALFORMED(p, "counter sample %llu ends after %llu of the %u records it announces",
                      (ull)(index + 1), (ull)rec, c->record_count);
        uint32_t fmt = be32(d + p), len = be32(d + p + 4);
        uint64_t rs = p + 8;
        p = rs + len;
        if (p > end)
            MALFORMED(rs - 4,
                      "counter record %llu (format %u) of sample %llu is %u bytes long but only %llu "
                      "bytes remain in the sample",
                      (ull)(rec + 1), fmt, (ull)(index + 1), len, (ull)(end - rs));
        if (fmt == 1) {
            if (len < 88)
                MALFORMED(rs, "generic interface counters record is %u bytes, less than 88", len);
            /* !IIQIIQIIIIIIQIIIIII */
            const uint8_t *w = d + rs;
            uint64_t *g = c->generic;
            g[0] = be32(w); g[1] = be32(w + 4); g[2] = be64(w + 8); g[3] = be32(w + 16);
            g[4] = be32(w + 20); g[5] = be64(w + 24);
            for (int i = 0; i < 6; i++) g[6 + i] = be32(w + 32 + 4 * i);
            g[12] = be64(w + 56);
            for (int i = 0; i < 6; i++) g[13 + i] = be32(w + 64 + 4 * i);
            c->has_generic = 1;
        } else if (fmt == 2) {
            if (len < 52) MALFORMED(rs, "ethernet counters record is %u bytes, less than 52", len);
            for (int i = 0; i < 13; i++) c->ethernet[i] = be32(d + rs + 4 * i);
            c->has_ethernet = 1;
        } else if (fmt == 3 || fmt == 4 || fmt == 5 || fmt == 1001) {
            skipped++;
        } else {
            unknown++;
        }
    }
    r->unknown_records += unknown; /* only a sample that decoded whole adds its counts */
    r->skipped_records += skipped;
    cv->len++;
    return ST_OK;
}

/* Decode one datagram: flow samples appended to fv, counter samples to cv (both keep what decoded
 * before a fault). Returns r->status. */
static int parse_datagram(const uint8_t *d, uint64_t n, sf_result *r, flow_vec *fv, counter_vec *cv) {
    memset(r, 0, offsetof(sf_result, message));
    r->message[0] = '\0';
    if (n < 8) {
        r->status = ST_BAD_HEADER;
        r->offset = 0;
        snprintf(r->message, sizeof r->message,
                 "datagram of %llu bytes is shorter than an sflow v5 header; %s", (ull)n, ADVICE);
        return r->status;
    }
    uint32_t version = be32(d), address_type = be32(d + 4);
    uint64_t off;
    if (version != 5) {
        r->status = ST_BAD_HEADER;
        r->offset = 0;
        snprintf(r->message, sizeof r->message,
                 "datagram version field is %u, not 5: not an sflow v5 datagram "
                 "(check which protocol the exporter sends to this port)",
                 version);
        return r->status;
    }
    if (address_type == 1 || address_type == 2) {
        off = address_type == 1 ? 12 : 24;
        /* sub_agent_id, sequence_number, uptime and the samples<> count: 16 bytes; a datagram of no
         * samples ends there */
        if (n < off + 16) {
            r->status = ST_BAD_HEADER;
            r->offset = (long long)n;
            snprintf(r->message, sizeof r->message, "datagram of %llu bytes ends inside its header; %s",
                     (ull)n, ADVICE);
            return r->status;
        }
        r->agent_family = address_type == 1 ? 4 : 6;
        memcpy(r->agent, d + 8, address_type == 1 ? 4 : 16);
    } else {
        r->status = ST_BAD_HEADER;
        r->offset = 4;
        snprintf(r->message, sizeof r->message,
                 "agent address type is %u (expected 1 for ipv4 or 2 for ipv6); %s", address_type,
                 ADVICE);
        return r->status;
    }
    r->version = version;
    r->sub_agent_id = be32(d + off);
    r->sequence_number = be32(d + off + 4);
    r->uptime_ms = be32(d + off + 8);
    r->n_samples = be32(d + off + 12);
    off += 16;
    for (uint64_t index = 0; index < r->n_samples; index++) {
        if (off + 8 > n)
            MALFORMED(off, "datagram ends after %llu of the %u samples it announces", (ull)index,
                      r->n_samples);
        uint32_t fmt = be32(d + off), sample_length = be32(d + off + 4);
        uint64_t start = off + 8, end = start + sample_length;
        if (end > n)
            MALFORMED(off + 4, "sample %llu of %u is %u bytes long but only %llu bytes remain",
                      (ull)(index + 1), r->n_samples, sample_length, (ull)(n - start));
        off = end;
        int st;
        if (fmt == 1 || fmt == 3) st = flow_sample(d, start, end, fmt == 3, index, r, fv);
        else if (fmt == 2 || fmt == 4) st = counter_sample(d, start, end, fmt == 4, index, r, cv);
        else { r->unknown_samples++; continue; }
        if (st != ST_OK) return st;
    }
    return ST_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* Python objects                                                                                */

typedef struct {
    PyTypeObject *flow_sample;    /* FlowSample (a named tuple of 35 fields) */
    PyTypeObject *counter_sample; /* CounterSample (7) */
    PyTypeObject *generic;        /* GenericInterfaceCounters (19) */
    PyTypeObject *ethernet;       /* EthernetCounters (13) */
    PyObject *datagram;           /* SflowDatagram */
    PyObject *error;              /* SflowDecodeError */
    PyObject *kw_names;           /* ("exporter", "offset", "partial") */
    int bound;
} module_state;

static module_state S;

#define MAC_CACHE_SIZE 4096
static uint64_t mac_cache_key[MAC_CACHE_SIZE];
static PyObject *mac_cache_value[MAC_CACHE_SIZE];

static const char HEX[] = "0123456789abcdef";

static void mac_text(uint64_t mac, char *out) { /* 17 characters, no terminator */
    for (int i = 0; i < 6; i++) {
        uint32_t byte = (uint32_t)(mac >> (40 - 8 * i)) & 0xFF;
        out[3 * i] = HEX[byte >> 4];
        out[3 * i + 1] = HEX[byte & 15];
        if (i < 5) out[3 * i + 2] = ':';
    }
}

static PyObject *mac_object(uint64_t mac) {
    uint32_t slot = (uint32_t)((mac ^ (mac >> 17) ^ (mac >> 31)) & (MAC_CACHE_SIZE - 1));
    PyObject *cached = mac_cache_value[slot];
    if (cached != NULL && mac_cache_key[slot] == mac) {
        Py_INCREF(cached);
        return cached;
    }
    PyObject *s = PyUnicode_New(17, 127);
    if (s == NULL) return NULL;
    mac_text(mac, (char *)PyUnicode_1BYTE_DATA(s));
    Py_XDECREF(cached);
    Py_INCREF(s);
    mac_cache_value[slot] = s;
    mac_cache_key[slot] = mac;
    return s;
}

static char *ipv4_text(const uint8_t *raw, char *o) { /* dotted quad, as inet_ntop; returns the end */
    for (int i = 0; i < 4; i++) {
        unsigned v = raw[i];
        if (v >= 100) {
            *o++ = (char)('0' + v / 100);
            v %= 100;
            *o++ = (char)('0' + v / 10);
            *o++ = (char)('0' + v % 10);
        } else if (v >= 10) {
            *o++ = (char)('0' + v / 10);
            *o++ = (char)('0' + v % 10);
        } else {
            *o++ = (char)('0' + v);
        }
        if (i < 3) *o++ = '.';
    }
    return o;
}

/* IPv6 text by glibc's inet_ntop rules (RFC 5952 style): lower-case hex without leading zeros, the
 * first longest run of two or more zero words as "::", and an address whose first five words are
 * zero and sixth 0 or ffff written with its last four bytes as a dotted quad. inet_ntop formats each
 * word with sprintf, which makes it the costliest step of a flows table; module start-up checks this
 * against the C library's inet_ntop on tricky and random addresses and uses inet_ntop instead if
 * they ever disagree (use_own_ipv6 = 0). */
static int use_own_ipv6;

static int ipv6_text_own(const uint8_t *raw, char *out) {
    unsigned words[8];
    for (int i = 0; i < 8; i++) words[i] = ((unsigned)raw[2 * i] << 8) | raw[2 * i + 1];
    int best_base = -1, best_len = 0, cur_base = -1, cur_len = 0;
    for (int i = 0; i < 8; i++) {
        if (words[i] == 0) {
            if (cur_base == -1) { cur_base = i; cur_len = 1; }
            else cur_len++;
        } else if (cur_base != -1) {
            if (best_base == -1 || cur_len > best_len) { best_base = cur_base; best_len = cur_len; }
            cur_base = -1;
        }
    }
    if (cur_base != -1 && (best_base == -1 || cur_len > best_len)) { best_base = cur_base; best_len = cur_len; }
    if (best_base != -1 && best_len < 2) best_base = -1;
    char *o = out;
    for (int i = 0; i < 8; i++) {
        if (best_base != -1 && i >= best_base && i < best_base + best_len) {
            if (i == best_base) *o++ = ':';
            continue;
        }
        if (i != 0) *o++ = ':';
        if (i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff))) {
            o = ipv4_text(raw + 12, o);
            break;
        }
        unsigned w = words[i];
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned nibble = (w >> shift) & 15;
            if (nibble || started || shift == 0) { *o++ = HEX[nibble]; started = 1; }
        }
    }
    if (best_base != -1 && best_base + best_len == 8) *o++ = ':';
    *o = '\0';
    return (int)(o - out);
}

/* IPv4 as dotted quad, IPv6 as inet_ntop writes it (what socket.inet_ntop gives the reference) */
static int ip_text(int family, const uint8_t *raw, char *out) {
    if (family == 4) {
        char *o = ipv4_text(raw, out);
        *o = '\0';
        return (int)(o - out);
    }
    if (use_own_ipv6) return ipv6_text_own(raw, out);
    if (inet_ntop(AF_INET6, raw, out, INET6_ADDRSTRLEN) == NULL) return -1;
    return (int)strlen(out);
}

/* 1 when ipv6_text_own agrees with inet_ntop on every address tried */
static int own_ipv6_agrees(void) {
    uint8_t raw[16];
    char mine[INET6_ADDRSTRLEN + 4], theirs[INET6_ADDRSTRLEN + 4];
    uint64_t state = 0x243F6A8885A308D3ull;
    for (int trial = 0; trial < 40000; trial++) {
        if (trial < 256 * 8) {
            /* every pattern of zero / non-zero words, with small and ffff values */
            int pattern = trial & 255, flavour = trial >> 8;
            for (int i = 0; i < 8; i++) {
                unsigned w = 0;
                if (pattern & (1 << i)) w = flavour == 0 ? 1 : flavour == 1 ? 0xffff : flavour == 2 ? 0x10 : (unsigned)(0x1234 + i);
                if (flavour >= 4 && i == 5) w = (flavour & 1) ? 0xffff : 0;
                raw[2 * i] = (uint8_t)(w >> 8);
                raw[2 * i + 1] = (uint8_t)w;
            }
        } else {
            for (int i = 0; i < 16; i++) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                raw[i] = (uint8_t)(state >> 56);
                if (((state >> 40) & 3) == 0) raw[i] = 0; /* plenty of zero bytes */
            }
        }
        if (inet_ntop(AF_INET6, raw, theirs, INET6_ADDRSTRLEN) == NULL) return 0;
        int len = ipv6_text_own(raw, mine);
        if (len != (int)strlen(theirs) || memcmp(mine, theirs, (size_t)len) != 0) return 0;
    }
    return 1;
}

static PyObject *ip_object(int family, const uint8_t *raw) {
    char text[INET6_ADDRSTRLEN + 4];
    int len = ip_text(family, raw, text);
    if (len < 0) return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *s = PyUnicode_New(len, 127);
    if (s == NULL) return NULL;
    memcpy(PyUnicode_1BYTE_DATA(s), text, (size_t)len);
    return s;
}

static inline PyObject *u32_object(uint32_t v) { return PyLong_FromUnsignedLong(v); }

static inline PyObject *opt_u32(uint32_t present, uint32_t bit, uint32_t v) {
    if (present & bit) return PyLong_FromUnsignedLong(v);
    Py_RETURN_NONE;
}

/* A tuple subclass instance of n items (what tuple.__new__(cls, items) builds). */
static PyObject *new_named_tuple(PyTypeObject *type, Py_ssize_t n) {
    return type->tp_alloc(type, n);
}

static PyObject *flow_object(const sf_flow *f) {
    PyObject *t = new_named_tuple(S.flow_sample, 35);
    if (t == NULL) return NULL;
    uint32_t pr = f->present;
    PyObject *items[35];
    int i = 0;
    items[i++] = Py_NewRef(f->expanded ? Py_True : Py_False);
    items[i++] = u32_object(f->sequence_number);
    items[i++] = u32_object(f->source_id_type);
    items[i++] = u32_object(f->source_id_index);
    items[i++] = u32_object(f->sampling_rate);
    items[i++] = u32_object(f->sample_pool);
    items[i++] = u32_object(f->drops);
    items[i++] = u32_object(f->input_format);
    items[i++] = u32_object(f->input_value);
    items[i++] = f->input_format == 0 ? u32_object(f->input_value) : Py_NewRef(Py_None);
    items[i++] = u32_object(f->output_format);
    items[i++] = u32_object(f->output_value);
    items[i++] = f->output_format == 0 ? u32_object(f->output_value) : Py_NewRef(Py_None);
    items[i++] = u32_object(f->record_count);
    items[i++] = opt_u32(pr, P_HEADER, f->header_protocol);
    items[i++] = opt_u32(pr, P_FLEN, f->frame_length);
    items[i++] = opt_u32(pr, P_HEADER, f->stripped);
    items[i++] = opt_u32(pr, P_HEADER, f->header_length);
    items[i++] = pr & P_SMAC ? mac_object(f->src_mac) : Py_NewRef(Py_None);
    items[i++] = pr & P_DMAC ? mac_object(f->dst_mac) : Py_NewRef(Py_None);
    items[i++] = opt_u32(pr, P_VLAN, f->vlan);
    items[i++] = opt_u32(pr, P_IVLAN, f->inner_vlan);
    items[i++] = opt_u32(pr, P_ETYPE, f->ethertype);
    items[i++] = opt_u32(pr, P_IPV, f->ip_version);
    items[i++] = pr & P_SIP ? ip_object(f->src_ip_family, f->src_ip) : Py_NewRef(Py_None);
    items[i++] = pr & P_DIP ? ip_object(f->dst_ip_family, f->dst_ip) : Py_NewRef(Py_None);
    items[i++] = opt_u32(pr, P_PROTO, f->ip_protocol);
    items[i++] = opt_u32(pr, P_SPORT, f->src_port);
    items[i++] = opt_u32(pr, P_DPORT, f->dst_port);
    items[i++] = opt_u32(pr, P_TOS, f->tos);
    items[i++] = opt_u32(pr, P_IPLEN, f->ip_length);
    items[i++] = opt_u32(pr, P_SWITCH, f->src_vlan);
    items[i++] = opt_u32(pr, P_SWITCH, f->src_priority);
    items[i++] = opt_u32(pr, P_SWITCH, f->dst_vlan);
    items[i++] = opt_u32(pr, P_SWITCH, f->dst_priority);
    int failed = 0;
    for (int k = 0; k < 35; k++) {
        if (items[k] == NULL) failed = 1;
        PyTuple_SET_ITEM(t, k, items[k]); /* NULL items are fine for dealloc */
    }
    if (failed) { Py_DECREF(t); return NULL; }
    return t;
}

static PyObject *counter_object(const sf_counter *c) {
    PyObject *generic = Py_NewRef(Py_None), *ethernet = Py_NewRef(Py_None);
    if (c->has_generic) {
        Py_DECREF(generic);
        generic = new_named_tuple(S.generic, 19);
        if (generic == NULL) { Py_DECREF(ethernet); return NULL; }
        for (int k = 0; k < 19; k++) {
            PyObject *v = PyLong_FromUnsignedLongLong(c->generic[k]);
            if (v == NULL) { Py_DECREF(generic); Py_DECREF(ethernet); return NULL; }
            PyTuple_SET_ITEM(generic, k, v);
        }
    }
    if (c->has_ethernet) {
        Py_DECREF(ethernet);
        ethernet = new_named_tuple(S.ethernet, 13);
        if (ethernet == NULL) { Py_DECREF(generic); return NULL; }
        for (int k = 0; k < 13; k++) {
            PyObject *v = u32_object(c->ethernet[k]);
            if (v == NULL) { Py_DECREF(generic); Py_DECREF(ethernet); return NULL; }
            PyTuple_SET_ITEM(ethernet, k, v);
        }
    }
    PyObject *t = new_named_tuple(S.counter_sample, 7);
    if (t == NULL) { Py_DECREF(generic); Py_DECREF(ethernet); return NULL; }
    PyObject *items[5] = {
        Py_NewRef(c->expanded ? Py_True : Py_False), u32_object(c->sequence_number),
        u32_object(c->source_id_type), u32_object(c->source_id_index), u32_object(c->record_count),
    };
    int failed = 0;
    for (int k = 0; k < 5; k++) {
        if (items[k] == NULL) failed = 1;
        PyTuple_SET_ITEM(t, k, items[k]);
    }
    PyTuple_SET_ITEM(t, 5, generic);
    PyTuple_SET_ITEM(t, 6, ethernet);
    if (failed) { Py_DECREF(t); return NULL; }
    return t;
}

static PyObject *flow_list(const sf_flow *items, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = flow_object(&items[k]);
        if (o == NULL) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, k, o);
    }
    return list;
}

static PyObject *counter_list(const sf_counter *items, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = counter_object(&items[k]);
        if (o == NULL) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, k, o);
    }
    return list;
}

static PyObject *agent_object(const sf_result *r) { return ip_object(r->agent_family, r->agent); }

/* SflowDatagram(version, agent, sub_agent_id, sequence_number, uptime_ms, flows, counters,
 *               unknown_samples, unknown_records, skipped_records) */
static PyObject *datagram_object(const sf_result *r, PyObject *agent, PyObject *flows,
                                 PyObject *counters) {
    PyObject *args[10];
    args[0] = PyLong_FromUnsignedLong(r->version);
    args[1] = agent;
    args[2] = PyLong_FromUnsignedLong(r->sub_agent_id);
    args[3] = PyLong_FromUnsignedLong(r->sequence_number);
    args[4] = PyLong_FromUnsignedLong(r->uptime_ms);
    args[5] = flows;
    args[6] = counters;
    args[7] = PyLong_FromSsize_t(r->unknown_samples);
    args[8] = PyLong_FromSsize_t(r->unknown_records);
    args[9] = PyLong_FromSsize_t(r->skipped_records);
    PyObject *out = NULL;
    if (args[0] && args[2] && args[3] && args[4] && args[7] && args[8] && args[9])
        out = PyObject_Vectorcall(S.datagram, args, 10, NULL);
    int owned[] = {0, 2, 3, 4, 7, 8, 9};
    for (int k = 0; k < 7; k++) Py_XDECREF(args[owned[k]]);
    return out;
}

/* The SflowDecodeError the reference raises for this result (not raised here). */
static PyObject *error_object(const sf_result *r, PyObject *agent, PyObject *partial) {
    PyObject *message;
    if (r->status == ST_BAD_HEADER)
        message = PyUnicode_FromString(r->message);
    else
        message = PyUnicode_FromFormat("datagram %lu of sub-agent %lu: %s; %s",
                                       (unsigned long)r->sequence_number,
                                       (unsigned long)r->sub_agent_id, r->message,
                                       r->value_error ? VALUE_ADVICE : ADVICE);
    if (message == NULL) return NULL;
    PyObject *offset = PyLong_FromLongLong(r->offset);
    PyObject *exporter = agent != NULL ? Py_NewRef(agent) : PyUnicode_FromString("");
    if (offset == NULL || exporter == NULL) {
        Py_DECREF(message);
        Py_XDECREF(offset);
        Py_XDECREF(exporter);
        return NULL;
    }
    PyObject *args[4] = {message, exporter, offset, partial != NULL ? partial : Py_None};
    PyObject *exc = PyObject_Vectorcall(S.error, args, 1, S.kw_names);
    Py_DECREF(message);
    Py_DECREF(offset);
    Py_DECREF(exporter);
    if (exc != NULL) PyException_SetCause(exc, NULL); /* "from None": no context shown */
    return exc;
}

static int check_bound(void) {
    if (!S.bound) {
        PyErr_SetString(PyExc_RuntimeError,
                        "_fastsflow is not bound to the classes of ingest.sflow.decode; call bind() first");
        return -1;
    }
    return 0;
}

static int get_bytes(PyObject *data, const uint8_t **ptr, uint64_t *n, Py_buffer *view) {
    view->obj = NULL;
    if (PyBytes_CheckExact(data)) {
        *ptr = (const uint8_t *)PyBytes_AS_STRING(data);
        *n = (uint64_t)PyBytes_GET_SIZE(data);
        return 0;
    }
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) < 0) return -1;
    *ptr = (const uint8_t *)view->buf;
    *n = (uint64_t)view->len;
    return 0;
}

/* decode_datagram(data) -> SflowDatagram; raises SflowDecodeError like the reference */
static PyObject *py_decode_datagram(PyObject *self, PyObject *data) {
    (void)self;
    if (check_bound() < 0) return NULL;
    const uint8_t *d;
    uint64_t n;
    Py_buffer view;
    if (get_bytes(data, &d, &n, &view) < 0) return NULL;
    /* reuse one pair of vectors across calls; a re-entrant call (a finaliser decoding while this
     * one builds objects) gets its own */
    static flow_vec scratch_f;
    static counter_vec scratch_c;
    static int scratch_busy;
    flow_vec local_f = {NULL, 0, 0};
    counter_vec local_c = {NULL, 0, 0};
    int own_scratch = !scratch_busy;
    flow_vec *fvp = own_scratch ? &scratch_f : &local_f;
    counter_vec *cvp = own_scratch ? &scratch_c : &local_c;
    scratch_busy = 1;
    fvp->len = 0;
    cvp->len = 0;
    sf_result r;
    int st;
    st = parse_datagram(d, n, &r, fvp, cvp);
    if (view.obj != NULL) PyBuffer_Release(&view);
    PyObject *result = NULL, *agent = NULL, *flows = NULL, *counters = NULL, *dg = NULL;
    if (st == ST_NOMEM) { PyErr_NoMemory(); goto done; }
    if (st == ST_BAD_HEADER) {
        PyObject *exc = error_object(&r, NULL, NULL);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        goto done;
    }
    agent = agent_object(&r);
    if (agent == NULL) goto done;
    flows = flow_list(fvp->items, fvp->len);
    if (flows == NULL) goto done;
    counters = counter_list(cvp->items, cvp->len);
    if (counters == NULL) goto done;
    dg = datagram_object(&r, agent, flows, counters);
    if (dg == NULL) goto done;
    if (st == ST_OK) {
        result = Py_NewRef(dg);
    } else {
        PyObject *exc = error_object(&r, agent, dg);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
    }
done:
    Py_XDECREF(agent);
    Py_XDECREF(flows);
    Py_XDECREF(counters);
    Py_XDECREF(dg);
    if (own_scratch) {
        scratch_busy = 0;
        if (scratch_f.cap > 4096) { PyMem_Free(scratch_f.items); scratch_f = (flow_vec){NULL, 0, 0}; }
        if (scratch_c.cap > 4096) { PyMem_Free(scratch_c.items); scratch_c = (counter_vec){NULL, 0, 0}; }
    } else {
        PyMem_Free(local_f.items);
        PyMem_Free(local_c.items);
    }
    return result;
}

/* ------------------------------------------------------------------------------------------- */
/* FlowBatch: flow samples of many datagrams in one array of sf_flow                            */

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32), eight table lookups per eight bytes: the spool
 * format's record checksum, checked here when the batch reads a spool file itself. */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24)) ^ c;
        uint32_t hi = (uint32_t)p[4] | ((uint32_t)p[5] << 8) | ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 24);
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
            crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
            crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

typedef struct {
    uint8_t raw[16];
    int family;
} agent_key;

/* The member matrix's raw key (ingest/matrix.py MatrixAggregator.add_samples): 5-minute interval,
 * agent, VLAN (the sampled tag, else the extended-switch source VLAN, not validated), IP version,
 * source and destination MAC; -1 stands for None. */
typedef struct {
    int64_t interval, vlan, ip_version, src_mac, dst_mac;
    int64_t agent_code;
} group_key;

typedef struct {
    group_key key;
    unsigned __int128 bytes;   /* frame length x sampling rate, summed exactly (as Python ints) */
    unsigned __int128 packets; /* sampling rates, summed exactly */
    uint64_t count;
    int used;
} group_slot;

typedef struct {
    PyObject_HEAD
    flow_vec flows;
    counter_vec counters; /* scratch: the counter samples of the datagram being added */
    /* the agents of the stored samples: code -> address and text; a hash index finds the code */
    agent_key *agent_keys;
    Py_ssize_t n_agents, agents_cap;
    int32_t *agent_slots; /* open addressing, -1 = empty; twice as many slots as agents at most */
    Py_ssize_t slots_cap;
    PyObject *agent_texts; /* list[str], index = code */
    Py_ssize_t last_agent; /* the code found last (datagrams of one agent come in runs), -1 = none */
    /* the matrix aggregate of every sample added (kept across clear(), read by groups()) */
    int64_t interval_ns;
    int matrix; /* aggregate the matrix (groups) while adding */
    group_slot *groups;
    Py_ssize_t n_groups, groups_cap;
} FlowBatch;

static void batch_dealloc(FlowBatch *self) {
    PyMem_Free(self->flows.items);
    PyMem_Free(self->counters.items);
    PyMem_Free(self->agent_keys);
    PyMem_Free(self->agent_slots);
    PyMem_Free(self->groups);
    Py_XDECREF(self->agent_texts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* FlowBatch(interval_ns=300_000_000_000, matrix=True): the matrix interval groups() aggregates on;
 * matrix=False leaves the aggregate out (to time decoding alone) */
static PyObject *batch_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"interval_ns", "matrix", NULL};
    long long interval_ns = 300000000000LL;
    int matrix = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Lp", keywords, &interval_ns, &matrix)) return NULL;
    if (interval_ns <= 0) {
        PyErr_SetString(PyExc_ValueError, "interval_ns must be positive");
        return NULL;
    }
    FlowBatch *self = (FlowBatch *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->interval_ns = interval_ns;
    self->matrix = matrix;
    self->last_agent = -1;
    self->agent_texts = PyList_New(0);
    if (self->agent_texts == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static inline uint64_t agent_hash(const agent_key *k) {
    uint64_t a, b;
    memcpy(&a, k->raw, 8);
    memcpy(&b, k->raw + 8, 8);
    return ((a * 0x9E3779B97F4A7C15ull) ^ (b + (uint64_t)k->family) * 0xC2B2AE3D27D4EB4Full) >> 17;
}

static int agent_slots_rebuild(FlowBatch *self, Py_ssize_t cap) {
    int32_t *slots = PyMem_Malloc((size_t)cap * sizeof(int32_t));
    if (slots == NULL) return -1;
    for (Py_ssize_t k = 0; k < cap; k++) slots[k] = -1;
    for (Py_ssize_t code = 0; code < self->n_agents; code++) {
        uint64_t h = agent_hash(&self->agent_keys[code]);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(cap - 1));
        while (slots[at] >= 0) at = (at + 1) & (cap - 1);
        slots[at] = (int32_t)code;
    }
    PyMem_Free(self->agent_slots);
    self->agent_slots = slots;
    self->slots_cap = cap;
    return 0;
}

/* The code of the datagram's agent in this batch (a new one gets the next code and its text). */
static Py_ssize_t batch_agent_code(FlowBatch *self, const sf_result *r) {
    agent_key key;
    memset(&key, 0, sizeof key);
    key.family = r->agent_family;
    memcpy(key.raw, r->agent, r->agent_family == 4 ? 4 : 16);
    Py_ssize_t last = self->last_agent;
    if (last >= 0 && memcmp(&self->agent_keys[last], &key, sizeof key) == 0) return last;
    if (self->slots_cap == 0 && agent_slots_rebuild(self, 64) < 0) { PyErr_NoMemory(); return -1; }
    uint64_t h = agent_hash(&key);
    Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(self->slots_cap - 1));
    while (self->agent_slots[at] >= 0) {
        Py_ssize_t code = self->agent_slots[at];
        if (memcmp(&self->agent_keys[code], &key, sizeof key) == 0) {
            self->last_agent = code;
            return code;
        }
        at = (at + 1) & (self->slots_cap - 1);
    }
    if (self->n_agents >= INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "too many agents"); return -1; }
    if (self->n_agents == self->agents_cap) {
        Py_ssize_t cap = self->agents_cap ? self->agents_cap * 2 : 16;
        agent_key *keys = PyMem_Realloc(self->agent_keys, (size_t)cap * sizeof(agent_key));
        if (keys == NULL) { PyErr_NoMemory(); return -1; }
        self->agent_keys = keys;
        self->agents_cap = cap;
    }
    PyObject *text = agent_object(r);
    if (text == NULL) return -1;
    int appended = PyList_Append(self->agent_texts, text);
    Py_DECREF(text);
    if (appended < 0) return -1;
    Py_ssize_t code = self->n_agents++;
    self->agent_keys[code] = key;
    self->agent_slots[at] = (int32_t)code;
    if (self->n_agents * 2 > self->slots_cap && agent_slots_rebuild(self, self->slots_cap * 2) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->last_agent = code;
    return code;
}

/* Runs of the new samples for loss accounting: (source_id_type, source_id_index, first sequence,
 * count) for each stretch of samples of one source whose sequence numbers go up by one. */
static PyObject *sequence_runs(const sf_flow *f, Py_ssize_t n) {
    PyObject *runs = PyList_New(0);
    if (runs == NULL) return NULL;
    Py_ssize_t k = 0;
    while (k < n) {
        Py_ssize_t j = k + 1;
        while (j < n && f[j].source_id_type == f[k].source_id_type &&
               f[j].source_id_index == f[k].source_id_index &&
               f[j].sequence_number == (uint32_t)(f[j - 1].sequence_number + 1u))
            j++;
        PyObject *run = Py_BuildValue("(kkkn)", (unsigned long)f[k].source_id_type,
                                      (unsigned long)f[k].source_id_index,
                                      (unsigned long)f[k].sequence_number, j - k);
        if (run == NULL || PyList_Append(runs, run) < 0) {
            Py_XDECREF(run);
            Py_DECREF(runs);
            return NULL;
        }
        Py_DECREF(run);
        k = j;
    }
    return runs;
}

static inline uint64_t group_hash(const group_key *k) {
    uint64_t h = (uint64_t)k->interval * 0x9E3779B97F4A7C15ull;
    h = (h ^ (uint64_t)k->src_mac) * 0xC2B2AE3D27D4EB4Full;
    h = (h ^ (uint64_t)k->dst_mac) * 0x165667B19E3779F9ull;
    h = (h ^ ((uint64_t)k->vlan << 8) ^ (uint64_t)k->ip_version ^ ((uint64_t)k->agent_code << 40)) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static int groups_grow(FlowBatch *self) {
    Py_ssize_t cap = self->groups_cap ? self->groups_cap * 2 : 1024;
    group_slot *slots = PyMem_Calloc((size_t)cap, sizeof(group_slot));
    if (slots == NULL) return -1;
    for (Py_ssize_t k = 0; k < self->groups_cap; k++) {
        if (!self->groups[k].used) continue;
        Py_ssize_t at = (Py_ssize_t)(group_hash(&self->groups[k].key) & (uint64_t)(cap - 1));
        while (slots[at].used) at = (at + 1) & (cap - 1);
        slots[at] = self->groups[k];
    }
    PyMem_Free(self->groups);
    self->groups = slots;
    self->groups_cap = cap;
    return 0;
}

/* Add one sample to the matrix aggregate, as MatrixAggregator.add_samples does. */
static int group_add(FlowBatch *self, const sf_flow *f) {
    if ((self->n_groups + 1) * 2 > self->groups_cap && groups_grow(self) < 0) return -1;
    group_key key;
    memset(&key, 0, sizeof key);
    uint64_t received = (uint64_t)f->received_ns;
    key.interval = (int64_t)(received - received % (uint64_t)self->interval_ns);
    key.agent_code = f->agent_code;
    key.vlan = key_vlan(f);
    key.ip_version = (f->present & P_IPV) ? (int64_t)f->ip_version : -1;
    key.src_mac = (f->present & P_SMAC) ? (int64_t)f->src_mac : -1;
    key.dst_mac = (f->present & P_DMAC) ? (int64_t)f->dst_mac : -1;
    Py_ssize_t at = (Py_ssize_t)(group_hash(&key) & (uint64_t)(self->groups_cap - 1));
    group_slot *g = &self->groups[at];
    while (g->used && memcmp(&g->key, &key, sizeof key) != 0) {
        at = (at + 1) & (self->groups_cap - 1);
        g = &self->groups[at];
    }
    if (!g->used) {
        g->used = 1;
        g->key = key;
        self->n_groups++;
    }
    uint64_t length = (f->present & P_FLEN) ? f->frame_length : 0;
    g->bytes += (unsigned __int128)(length * (uint64_t)f->sampling_rate); /* < 2**56: bounded length */
    g->packets += (unsigned __int128)f->sampling_rate;
    g->count += 1;
    return 0;
}

/* Give the samples [before, len) their datagram's context and add them to the matrix aggregate;
 * returns the agent's text (new ref). */
static PyObject *batch_context(FlowBatch *self, const sf_result *r, Py_ssize_t before, int64_t received_ns) {
    Py_ssize_t code = batch_agent_code(self, r);
    if (code < 0) return NULL;
    for (Py_ssize_t k = before; k < self->flows.len; k++) {
        sf_flow *f = &self->flows.items[k];
        f->received_ns = received_ns;
        f->agent_code = (uint32_t)code;
        f->sub_agent_id = r->sub_agent_id;
        if (self->matrix && group_add(self, f) < 0) return PyErr_NoMemory();
    }
    return Py_NewRef(PyList_GET_ITEM(self->agent_texts, code));
}

static PyObject *opt_int64(int64_t v) {
    if (v < 0) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

static PyObject *u128_object(unsigned __int128 v) {
    if (v <= (unsigned __int128)UINT64_MAX) return PyLong_FromUnsignedLongLong((uint64_t)v);
    PyObject *hi = PyLong_FromUnsignedLongLong((uint64_t)(v >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((uint64_t)v);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *out = NULL;
    if (hi && lo && shift) {
        PyObject *high = PyNumber_Lshift(hi, shift);
        if (high != NULL) {
            out = PyNumber_Or(high, lo);
            Py_DECREF(high);
        }
    }
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(shift);
    return out;
}

/* groups() -> list of (interval_ns, agent code, vlan | None, ip_version | None, src_mac | None,
 * dst_mac | None, estimated bytes, estimated packets, samples): the matrix aggregate of every sample
 * added since the batch was made (clear() keeps it), MACs as text. */
static PyObject *batch_groups(FlowBatch *self, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (Py_ssize_t k = 0; k < self->groups_cap; k++) {
        const group_slot *g = &self->groups[k];
        if (!g->used) continue;
        PyObject *items[9] = {
            PyLong_FromLongLong(g->key.interval),
            PyLong_FromLongLong(g->key.agent_code),
            opt_int64(g->key.vlan),
            opt_int64(g->key.ip_version),
            g->key.src_mac >= 0 ? mac_object((uint64_t)g->key.src_mac) : Py_NewRef(Py_None),
            g->key.dst_mac >= 0 ? mac_object((uint64_t)g->key.dst_mac) : Py_NewRef(Py_None),
            u128_object(g->bytes),
            u128_object(g->packets),
            PyLong_FromUnsignedLongLong(g->count),
        };
        PyObject *t = PyTuple_New(9);
        int failed = t == NULL;
        for (int j = 0; j < 9; j++) {
            if (items[j] == NULL) failed = 1;
            if (t != NULL) PyTuple_SET_ITEM(t, j, items[j]);
            else Py_XDECREF(items[j]);
        }
        if (failed || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
    }
    return out;
}

/* add(data, received_ns=0) -> (flow samples added, agent | None, sub_agent_id, sequence_number,
 *                              uptime_ms, runs, counter samples list | None, SflowDecodeError | None)
 * A datagram that fails after its header keeps the samples decoded before the fault (the
 * reference's ``partial``); one whose header fails adds nothing and gives agent None. */
static PyObject *batch_add(FlowBatch *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_bound() < 0) return NULL;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "add(data, received_ns=0)");
        return NULL;
    }
    int64_t received_ns = 0;
    if (nargs == 2) {
        received_ns = PyLong_AsLongLong(args[1]);
        if (received_ns == -1 && PyErr_Occurred()) return NULL;
    }
    const uint8_t *d;
    uint64_t n;
    Py_buffer view;
    if (get_bytes(args[0], &d, &n, &view) < 0) return NULL;
    Py_ssize_t before = self->flows.len;
    self->counters.len = 0;
    sf_result r;
    int st = parse_datagram(d, n, &r, &self->flows, &self->counters);
    if (view.obj != NULL) PyBuffer_Release(&view);
    if (st == ST_NOMEM) {
        self->flows.len = before;
        return PyErr_NoMemory();
    }
    if (st == ST_BAD_HEADER) {
        PyObject *exc = error_object(&r, NULL, NULL);
        if (exc == NULL) return NULL;
        return Py_BuildValue("(nOkkkOON)", (Py_ssize_t)0, Py_None, 0ul, 0ul, 0ul, Py_None, Py_None, exc);
    }
    Py_ssize_t added = self->flows.len - before;
    PyObject *agent = batch_context(self, &r, before, received_ns);
    if (agent == NULL) goto fail;
    PyObject *runs = sequence_runs(self->flows.items + before, added);
    if (runs == NULL) { Py_DECREF(agent); goto fail; }
    PyObject *counters = Py_NewRef(Py_None);
    if (self->counters.len) {
        Py_DECREF(counters);
        counters = counter_list(self->counters.items, self->counters.len);
        if (counters == NULL) { Py_DECREF(agent); Py_DECREF(runs); goto fail; }
    }
    PyObject *error = Py_NewRef(Py_None);
    if (st == ST_MALFORMED) {
        Py_DECREF(error);
        error = error_object(&r, agent, NULL);
        if (error == NULL) { Py_DECREF(agent); Py_DECREF(runs); Py_DECREF(counters); goto fail; }
    }
    return Py_BuildValue("(nNkkkNNN)", added, agent, (unsigned long)r.sub_agent_id,
                         (unsigned long)r.sequence_number, (unsigned long)r.uptime_ms, runs, counters,
                         error);
fail:
    self->flows.len = before;
    return NULL;
}

/* The spool record layout of ingest/spool.py: u32 body length | body | u32 crc32(body), body =
 * u64 arrival_ns | u8 af | 16 bytes address | u16 port | u8 protocol | datagram. */
#define SPOOL_BODY_HEAD 28
#define SPOOL_MAX_BODY (SPOOL_BODY_HEAD + 65535)
#define SPOOL_PROTO_SFLOW5 1
#define SPOOL_PROTO_MAX 3

enum { SPOOL_END = 0, SPOOL_FULL = 1, SPOOL_HAND_OVER = 2 };

/* add_spool(buffer, pos, end, limit) -> (next position, why it stopped, datagrams)
 *
 * Reads spool records from ``pos`` while each is a whole, valid record (the checks of
 * ingest.spool's reader: length within bounds, CRC, address family 4 or 6, known protocol) holding
 * an sFlow datagram that decodes without error, and adds their samples as ``add`` does.
 * ``datagrams`` has one (arrival_ns, agent, sub_agent_id, sequence_number, uptime_ms, runs,
 * counter samples | None) per record read. It stops at the end (0), once the batch holds ``limit``
 * samples or more (1), or before a record it leaves to the caller (2): damaged bytes, another
 * protocol, or a datagram with an error (which the caller quarantines). */
static PyObject *batch_add_spool(FlowBatch *self, PyObject *args) {
    if (check_bound() < 0) return NULL;
    PyObject *buffer;
    Py_ssize_t pos, end, limit;
    if (!PyArg_ParseTuple(args, "Onnn", &buffer, &pos, &end, &limit)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (end > view.len) end = view.len;
    if (pos < 0) pos = 0;
    const uint8_t *b = (const uint8_t *)view.buf;
    PyObject *infos = PyList_New(0);
    if (infos == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int why = SPOOL_END;
    while (pos < end) {
        uint64_t upos = (uint64_t)pos, uend = (uint64_t)end;
        if (upos + 4 + SPOOL_BODY_HEAD + 4 > uend) { why = SPOOL_HAND_OVER; break; }
        uint32_t length = be32(b + upos);
        uint64_t stop = upos + 4 + length;
        if (length < SPOOL_BODY_HEAD || length > SPOOL_MAX_BODY || stop + 4 > uend) { why = SPOOL_HAND_OVER; break; }
        const uint8_t *body = b + upos + 4;
        if (crc32_of(body, length) != be32(b + stop)) { why = SPOOL_HAND_OVER; break; }
        uint8_t af = body[8], proto = body[27];
        if ((af != 4 && af != 6) || proto > SPOOL_PROTO_MAX || proto != SPOOL_PROTO_SFLOW5) {
            why = SPOOL_HAND_OVER;
            break;
        }
        uint64_t arrival = be64(body);
        if (arrival > (uint64_t)INT64_MAX) { /* beyond the lake's timestamps: the per-datagram path */
            why = SPOOL_HAND_OVER;
            break;
        }
        Py_ssize_t before = self->flows.len;
        self->counters.len = 0;
        sf_result r;
        int st = parse_datagram(body + SPOOL_BODY_HEAD, length - SPOOL_BODY_HEAD, &r, &self->flows, &self->counters);
        if (st == ST_NOMEM) {
            self->flows.len = before;
            PyErr_NoMemory();
            goto fail;
        }
        if (st != ST_OK) { /* the caller decodes it again and quarantines it */
            self->flows.len = before;
            why = SPOOL_HAND_OVER;
            break;
        }
        PyObject *agent = batch_context(self, &r, before, (int64_t)arrival);
        if (agent == NULL) { self->flows.len = before; goto fail; }
        PyObject *runs = sequence_runs(self->flows.items + before, self->flows.len - before);
        PyObject *counters = self->counters.len ? counter_list(self->counters.items, self->counters.len)
                                                : Py_NewRef(Py_None);
        PyObject *info = NULL;
        if (runs != NULL && counters != NULL)
            info = Py_BuildValue("(KNkkkNN)", (unsigned long long)arrival, agent, (unsigned long)r.sub_agent_id,
                                 (unsigned long)r.sequence_number, (unsigned long)r.uptime_ms, runs, counters);
        else {
            Py_DECREF(agent);
            Py_XDECREF(runs);
            Py_XDECREF(counters);
        }
        if (info == NULL || PyList_Append(infos, info) < 0) {
            Py_XDECREF(info);
            self->flows.len = before;
            goto fail;
        }
        Py_DECREF(info);
        pos = (Py_ssize_t)(stop + 4);
        if (self->flows.len >= limit) { why = SPOOL_FULL; break; }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(niN)", pos, why, infos);
fail:
    PyBuffer_Release(&view);
    Py_DECREF(infos);
    return NULL;
}

/* crc32(data) -> int: the checksum add_spool checks (equal to zlib.crc32) */
static PyObject *py_crc32(PyObject *self, PyObject *data) {
    (void)self;
    const uint8_t *d;
    uint64_t n;
    Py_buffer view;
    if (get_bytes(data, &d, &n, &view) < 0) return NULL;
    uint32_t c = crc32_of(d, (size_t)n);
    if (view.obj != NULL) PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

static Py_ssize_t batch_len(FlowBatch *self) { return self->flows.len; }

static PyObject *batch_clear(FlowBatch *self, PyObject *unused) {
    (void)unused;
    self->flows.len = 0;
    if (self->flows.cap > (1 << 20)) { /* give back what a huge batch took */
        PyMem_Free(self->flows.items);
        self->flows.items = NULL;
        self->flows.cap = 0;
    }
    /* agent codes and the matrix aggregate stay: they belong to the whole file */
    Py_RETURN_NONE;
}

/* agents() -> list[str]: the agent text of every code in context_columns()["agent_code"] */
static PyObject *batch_agents(FlowBatch *self, PyObject *unused) {
    (void)unused;
    return PyList_GetSlice(self->agent_texts, 0, PyList_GET_SIZE(self->agent_texts));
}


/* samples(start=0, stop=len) -> list[FlowSample], the reference's objects for stored samples */
static PyObject *batch_samples(FlowBatch *self, PyObject *args) {
    Py_ssize_t start = 0, stop = self->flows.len;
    if (!PyArg_ParseTuple(args, "|nn", &start, &stop)) return NULL;
    if (check_bound() < 0) return NULL;
    if (start < 0) start = 0;
    if (stop > self->flows.len) stop = self->flows.len;
    if (stop < start) stop = start;
    return flow_list(self->flows.items + start, stop - start);
}

/* One Arrow fixed-width column being filled: values of ``width`` bytes and a validity bitmap. */
typedef struct {
    PyObject *values, *validity;
    char *v;
    uint8_t *bits;
    Py_ssize_t nulls;
    int width;
} column;

static int column_init(column *c, Py_ssize_t n, int width) {
    c->width = width;
    c->nulls = 0;
    c->values = PyBytes_FromStringAndSize(NULL, n * width > 0 ? n * width : 1);
    c->validity = PyBytes_FromStringAndSize(NULL, (n + 7) / 8 > 0 ? (n + 7) / 8 : 1);
    if (c->values == NULL || c->validity == NULL) {
        Py_CLEAR(c->values);
        Py_CLEAR(c->validity);
        return -1;
    }
    c->v = PyBytes_AS_STRING(c->values);
    c->bits = (uint8_t *)PyBytes_AS_STRING(c->validity);
    memset(c->bits, 0, (size_t)PyBytes_GET_SIZE(c->validity));
    return 0;
}

static inline void column_put(column *c, Py_ssize_t k, int64_t value, int valid) {
    if (valid) c->bits[k >> 3] |= (uint8_t)(1u << (k & 7));
    else { c->nulls++; value = 0; }
    switch (c->width) {
    case 8: ((int64_t *)c->v)[k] = value; break;
    case 4: ((int32_t *)c->v)[k] = (int32_t)value; break;
    case 2: ((int16_t *)c->v)[k] = (int16_t)value; break;
    default: ((int8_t *)c->v)[k] = (int8_t)value; break;
    }
}

/* (validity | None, values, null count), reference to both buffers handed over */
static PyObject *column_finish(column *c) {
    PyObject *validity = c->validity;
    if (c->nulls == 0) {
        Py_DECREF(validity);
        validity = Py_NewRef(Py_None);
    }
    PyObject *t = Py_BuildValue("(NNn)", validity, c->values, c->nulls);
    c->values = c->validity = NULL;
    return t;
}

enum {
    LC_SEQUENCE, LC_RATE, LC_POOL, LC_DROPS, LC_INPUT, LC_OUTPUT, LC_VLAN, LC_ETHERTYPE, LC_IP_VERSION,
    LC_PROTOCOL, LC_SRC_PORT, LC_DST_PORT, LC_BYTES, LC_ESTIMATED_BYTES, LC_COUNT
};
static const char *const LAKE_COLUMN_NAMES[LC_COUNT] = {
    "sequence_number", "sampling_rate", "sample_pool", "drops", "input_ifindex", "output_ifindex",
    "vlan", "ethertype", "ip_version", "ip_protocol", "src_port", "dst_port", "bytes", "estimated_bytes",
};
/* the lake's column types (peerpool/lake.py FLOWS): int64 but vlan/ethertype/ports int32,
 * ip_version int8, ip_protocol int16 */
static const int LAKE_COLUMN_WIDTHS[LC_COUNT] = {8, 8, 8, 8, 8, 8, 4, 4, 1, 2, 4, 4, 8, 8};

/* Arrow string column being filled: int32 offsets, data, validity bitmap. */
typedef struct {
    PyObject *offsets, *data, *validity;
    int32_t *off;
    char *out;
    uint8_t *bits;
    Py_ssize_t pos, nulls;
} text_column;

static int text_init(text_column *t, Py_ssize_t n, Py_ssize_t per_value) {
    t->pos = t->nulls = 0;
    t->offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 4);
    t->data = PyBytes_FromStringAndSize(NULL, n * per_value > 0 ? n * per_value : 1);
    t->validity = PyBytes_FromStringAndSize(NULL, (n + 7) / 8 > 0 ? (n + 7) / 8 : 1);
    if (t->offsets == NULL || t->data == NULL || t->validity == NULL) {
        Py_CLEAR(t->offsets);
        Py_CLEAR(t->data);
        Py_CLEAR(t->validity);
        return -1;
    }
    t->off = (int32_t *)PyBytes_AS_STRING(t->offsets);
    t->out = PyBytes_AS_STRING(t->data);
    t->bits = (uint8_t *)PyBytes_AS_STRING(t->validity);
    memset(t->bits, 0, (size_t)PyBytes_GET_SIZE(t->validity));
    return 0;
}

static void text_clear(text_column *t) {
    Py_CLEAR(t->offsets);
    Py_CLEAR(t->data);
    Py_CLEAR(t->validity);
}

/* (validity | None, offsets, data, null count), buffers handed over */
static PyObject *text_finish(text_column *t, Py_ssize_t n) {
    t->off[n] = (int32_t)t->pos;
    if (_PyBytes_Resize(&t->data, t->pos > 0 ? t->pos : 1) < 0) {
        t->data = NULL;
        text_clear(t);
        return NULL;
    }
    PyObject *validity = t->validity;
    if (t->nulls == 0) {
        Py_DECREF(validity);
        validity = Py_NewRef(Py_None);
    }
    PyObject *out = Py_BuildValue("(NNNn)", validity, t->offsets, t->data, t->nulls);
    t->offsets = t->data = t->validity = NULL;
    return out;
}

enum { IC_RECEIVED, IC_AGENT, IC_SUB_AGENT, IC_KEY_VLAN, IC_SRC_MAC, IC_DST_MAC, IC_COUNT };
static const char *const INT_COLUMN_NAMES[IC_COUNT] = {
    "received_ns", "agent_code", "sub_agent_id", "vlan", "src_mac", "dst_mac",
};
static const char *const TEXT_COLUMN_NAMES[4] = {"src_mac", "dst_mac", "src_ip", "dst_ip"};

static int dict_put(PyObject *dict, const char *name, PyObject *value) {
    if (value == NULL) return -1;
    int rc = PyDict_SetItemString(dict, name, value);
    Py_DECREF(value);
    return rc;
}

/* columns() -> {"lake": {name: (validity | None, values, null count)} | None,
 *               "text": {name: (validity | None, offsets, data, null count)},
 *               "int64": {name: int64 values}}
 * Everything the pipeline reads from the stored samples, in one pass over them:
 * - "lake": the flows table's numeric columns in the lake's types, as the pure path builds them
 *   (estimated_bytes = bytes x rate, below 2**56 since the decoder bounds the frame length), or None
 *   when a value does not fit its lake column, where the pure path raises. Since the decoder rejects
 *   sampled records whose protocol, ports or type are past their bounds (MAX_*) this cannot happen
 *   any more; the check stays as a guard that fails like the pure path instead of truncating;
 * - "text": src_mac, dst_mac, src_ip, dst_ip as Arrow string buffers (the reference's text);
 * - "int64": received_ns, agent_code, sub_agent_id, and for the member lookups the VLAN before
 *   validation (sampled tag, else extended-switch source VLAN) and the MACs as integers, -1 = None. */
static PyObject *batch_columns(FlowBatch *self, PyObject *unused) {
    (void)unused;
    Py_ssize_t n = self->flows.len;
    const sf_flow *f = self->flows.items;
    if (n > (Py_ssize_t)(INT32_MAX / INET6_ADDRSTRLEN)) {
        PyErr_SetString(PyExc_OverflowError, "too many samples in one batch for 32-bit text offsets");
        return NULL;
    }
    column c[LC_COUNT];
    text_column t[4];
    PyObject *ints[IC_COUNT];
    int64_t *iv[IC_COUNT];
    int made_c = 0, made_t = 0, made_i = 0, failed = 0, out_of_range = 0;
    for (; made_c < LC_COUNT; made_c++)
        if (column_init(&c[made_c], n, LAKE_COLUMN_WIDTHS[made_c]) < 0) { failed = 1; break; }
    for (; !failed && made_t < 4; made_t++)
        if (text_init(&t[made_t], n, made_t < 2 ? 17 : INET6_ADDRSTRLEN) < 0) { failed = 1; break; }
    for (; !failed && made_i < IC_COUNT; made_i++) {
        ints[made_i] = PyBytes_FromStringAndSize(NULL, n * 8 > 0 ? n * 8 : 1);
        if (ints[made_i] == NULL) { failed = 1; break; }
        iv[made_i] = (int64_t *)PyBytes_AS_STRING(ints[made_i]);
    }
    char ip[INET6_ADDRSTRLEN + 4];
    for (Py_ssize_t k = 0; !failed && k < n; k++) {
        const sf_flow *x = &f[k];
        uint32_t pr = x->present;
        int64_t vlan = key_vlan(x);
        if (((pr & P_ETYPE) && x->ethertype > INT32_MAX) || ((pr & P_IPV) && x->ip_version > INT8_MAX) ||
            ((pr & P_PROTO) && x->ip_protocol > INT16_MAX) || ((pr & P_SPORT) && x->src_port > INT32_MAX) ||
            ((pr & P_DPORT) && x->dst_port > INT32_MAX))
            out_of_range = 1;
        column_put(&c[LC_SEQUENCE], k, x->sequence_number, 1);
        column_put(&c[LC_RATE], k, x->sampling_rate, 1);
        column_put(&c[LC_POOL], k, x->sample_pool, 1);
        column_put(&c[LC_DROPS], k, x->drops, 1);
        column_put(&c[LC_INPUT], k, x->input_value, x->input_format == 0);
        column_put(&c[LC_OUTPUT], k, x->output_value, x->output_format == 0);
        column_put(&c[LC_VLAN], k, vlan, vlan >= 0 && vlan <= 4095);
        column_put(&c[LC_ETHERTYPE], k, x->ethertype, (pr & P_ETYPE) != 0);
        column_put(&c[LC_IP_VERSION], k, x->ip_version, (pr & P_IPV) != 0);
        column_put(&c[LC_PROTOCOL], k, x->ip_protocol, (pr & P_PROTO) != 0);
        column_put(&c[LC_SRC_PORT], k, x->src_port, (pr & P_SPORT) != 0);
        column_put(&c[LC_DST_PORT], k, x->dst_port, (pr & P_DPORT) != 0);
        column_put(&c[LC_BYTES], k, x->frame_length, (pr & P_FLEN) != 0);
        column_put(&c[LC_ESTIMATED_BYTES], k,
                   (int64_t)((uint64_t)x->frame_length * (uint64_t)x->sampling_rate), (pr & P_FLEN) != 0);
        for (int j = 0; j < 4; j++) {
            text_column *tc = &t[j];
            tc->off[k] = (int32_t)tc->pos;
            uint32_t bit = j == 0 ? P_SMAC : j == 1 ? P_DMAC : j == 2 ? P_SIP : P_DIP;
            if (!(pr & bit)) {
                tc->nulls++;
                continue;
            }
            tc->bits[k >> 3] |= (uint8_t)(1u << (k & 7));
            if (j < 2) {
                mac_text(j == 0 ? x->src_mac : x->dst_mac, tc->out + tc->pos);
                tc->pos += 17;
            } else {
                int len = j == 2 ? ip_text(x->src_ip_family, x->src_ip, ip) : ip_text(x->dst_ip_family, x->dst_ip, ip);
                if (len < 0) {
                    PyErr_SetFromErrno(PyExc_OSError);
                    failed = 1;
                    break;
                }
                memcpy(tc->out + tc->pos, ip, (size_t)len);
                tc->pos += len;
            }
        }
        iv[IC_RECEIVED][k] = x->received_ns;
        iv[IC_AGENT][k] = x->agent_code;
        iv[IC_SUB_AGENT][k] = x->sub_agent_id;
        iv[IC_KEY_VLAN][k] = vlan;
        iv[IC_SRC_MAC][k] = (pr & P_SMAC) ? (int64_t)x->src_mac : -1;
        iv[IC_DST_MAC][k] = (pr & P_DMAC) ? (int64_t)x->dst_mac : -1;
    }
    PyObject *out = NULL, *lake = NULL, *text = NULL, *int64 = NULL;
    if (!failed) {
        out = PyDict_New();
        text = PyDict_New();
        int64 = PyDict_New();
        lake = out_of_range ? Py_NewRef(Py_None) : PyDict_New();
        failed = out == NULL || text == NULL || int64 == NULL || lake == NULL;
    }
    for (int j = 0; j < made_c; j++) {
        if (!failed && !out_of_range) {
            if (dict_put(lake, LAKE_COLUMN_NAMES[j], column_finish(&c[j])) < 0) failed = 1;
        } else {
            Py_XDECREF(c[j].values);
            Py_XDECREF(c[j].validity);
        }
    }
    for (int j = 0; j < made_t; j++) {
        if (!failed) {
            if (dict_put(text, TEXT_COLUMN_NAMES[j], text_finish(&t[j], n)) < 0) failed = 1;
        } else {
            text_clear(&t[j]);
        }
    }
    for (int j = 0; j < made_i; j++) {
        if (!failed && PyDict_SetItemString(int64, INT_COLUMN_NAMES[j], ints[j]) < 0) failed = 1;
        Py_DECREF(ints[j]);
    }
    if (!failed && (dict_put(out, "lake", Py_NewRef(lake)) < 0 || dict_put(out, "text", Py_NewRef(text)) < 0 ||
                    dict_put(out, "int64", Py_NewRef(int64)) < 0))
        failed = 1;
    Py_XDECREF(lake);
    Py_XDECREF(text);
    Py_XDECREF(int64);
    if (failed) {
        Py_XDECREF(out);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return NULL;
    }
    return out;
}

static PyMethodDef batch_methods[] = {
    {"add", (PyCFunction)(void (*)(void))batch_add, METH_FASTCALL,
     "add(data, received_ns=0) -> (samples added, agent | None, sub_agent_id, sequence_number, uptime_ms, "
     "runs, counter samples | None, SflowDecodeError | None)"},
    {"add_spool", (PyCFunction)batch_add_spool, METH_VARARGS,
     "add_spool(buffer, pos, end, limit) -> (next position, why it stopped, datagrams)"},
    {"agents", (PyCFunction)batch_agents, METH_NOARGS, "agents() -> the agent text of every agent code"},
    {"groups", (PyCFunction)batch_groups, METH_NOARGS,
     "groups() -> [(interval_ns, agent code, vlan, ip_version, src_mac, dst_mac, bytes, packets, samples)]: "
     "the member-matrix aggregate of every sample added"},
    {"columns", (PyCFunction)batch_columns, METH_NOARGS,
     "columns() -> {lake: {name: Arrow buffers} | None, text: {name: Arrow string buffers}, "
     "int64: {name: values}}: everything the pipeline reads from the stored samples, in one pass"},
    {"clear", (PyCFunction)batch_clear, METH_NOARGS, "forget the stored samples"},
    {"samples", (PyCFunction)batch_samples, METH_VARARGS, "samples(start=0, stop=len) -> list[FlowSample]"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods batch_as_sequence = {.sq_length = (lenfunc)batch_len};

static PyTypeObject FlowBatchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ingest.sflow._fastsflow.FlowBatch",
    .tp_basicsize = sizeof(FlowBatch),
    .tp_dealloc = (destructor)batch_dealloc,
    .tp_as_sequence = &batch_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Flow samples of many sFlow datagrams, decoded into one array of fixed-size records.",
    .tp_methods = batch_methods,
    .tp_new = batch_new,
};

/* ------------------------------------------------------------------------------------------- */
/* module                                                                                        */

static int tuple_type_of(PyObject *cls, Py_ssize_t n_fields, const char *what, PyTypeObject **out) {
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_Format(PyExc_TypeError, "bind: %s must be a named tuple class", what);
        return -1;
    }
    PyObject *fields = PyObject_GetAttrString(cls, "_fields");
    if (fields == NULL) return -1;
    Py_ssize_t got = PyObject_Length(fields);
    Py_DECREF(fields);
    if (got != n_fields) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "bind: %s has %zd fields, this module builds %zd", what, got,
                         n_fields);
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    if (type->tp_basicsize != PyTuple_Type.tp_basicsize || type->tp_dictoffset != 0) {
        PyErr_Format(PyExc_TypeError, "bind: %s must be a plain named tuple (__slots__ = ())", what);
        return -1;
    }
    *out = type;
    return 0;
}

/* bind(FlowSample, CounterSample, GenericInterfaceCounters, EthernetCounters, SflowDatagram,
 *      SflowDecodeError): the classes this module builds instances of */
static PyObject *py_bind(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *flow, *counter, *generic, *ethernet, *datagram, *error;
    if (!PyArg_ParseTuple(args, "OOOOOO", &flow, &counter, &generic, &ethernet, &datagram, &error))
        return NULL;
    PyTypeObject *tf, *tc, *tg, *te;
    if (tuple_type_of(flow, 35, "FlowSample", &tf) < 0 ||
        tuple_type_of(counter, 7, "CounterSample", &tc) < 0 ||
        tuple_type_of(generic, 19, "GenericInterfaceCounters", &tg) < 0 ||
        tuple_type_of(ethernet, 13, "EthernetCounters", &te) < 0)
        return NULL;
    if (!PyCallable_Check(datagram) || !PyCallable_Check(error)) {
        PyErr_SetString(PyExc_TypeError, "bind: SflowDatagram and SflowDecodeError must be classes");
        return NULL;
    }
    PyObject *kw = Py_BuildValue("(sss)", "exporter", "offset", "partial");
    if (kw == NULL) return NULL;
    Py_XSETREF(S.flow_sample, (PyTypeObject *)Py_NewRef(flow));
    Py_XSETREF(S.counter_sample, (PyTypeObject *)Py_NewRef(counter));
    Py_XSETREF(S.generic, (PyTypeObject *)Py_NewRef(generic));
    Py_XSETREF(S.ethernet, (PyTypeObject *)Py_NewRef(ethernet));
    Py_XSETREF(S.datagram, Py_NewRef(datagram));
    Py_XSETREF(S.error, Py_NewRef(error));
    Py_XSETREF(S.kw_names, kw);
    (void)tf; (void)tc; (void)tg; (void)te;
    S.bound = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", py_bind, METH_VARARGS,
     "bind(FlowSample, CounterSample, GenericInterfaceCounters, EthernetCounters, SflowDatagram, "
     "SflowDecodeError)"},
    {"crc32", py_crc32, METH_O, "crc32(data) -> the CRC-32 add_spool checks records with (as zlib.crc32)"},
    {"decode_datagram", py_decode_datagram, METH_O,
     "decode_datagram(data) -> SflowDatagram; raises SflowDecodeError (as ingest.sflow.decode)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fastsflow",
    .m_doc = "sFlow v5 decoding in C: the same samples as ingest.sflow.decode, faster.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fastsflow(void) {
    if (PyType_Ready(&FlowBatchType) < 0) return NULL;
    crc_init();
    if (crc32_of((const uint8_t *)"123456789", 9) != 0xCBF43926u) { /* the standard check value */
        PyErr_SetString(PyExc_ImportError, "_fastsflow: CRC-32 self-check failed");
        return NULL;
    }
    use_own_ipv6 = own_ipv6_agrees();
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    Py_INCREF(&FlowBatchType);
    if (PyModule_AddObject(m, "FlowBatch", (PyObject *)&FlowBatchType) < 0) {
        Py_DECREF(&FlowBatchType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "OWN_IPV6_TEXT", use_own_ipv6) < 0 ||
        PyModule_AddIntConstant(m, "MAX_IP_PROTOCOL", MAX_IP_PROTOCOL) < 0 ||
        PyModule_AddIntConstant(m, "MAX_PORT", MAX_PORT) < 0 ||
        PyModule_AddIntConstant(m, "MAX_ETHERTYPE", MAX_ETHERTYPE) < 0 ||
        PyModule_AddIntConstant(m, "MAX_FRAME_LENGTH", MAX_FRAME_LENGTH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
