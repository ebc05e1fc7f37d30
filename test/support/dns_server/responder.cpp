#include "responder.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

// ldns/common.h defines bool, true and false in C++ unless <stdbool.h> came first (DESIGN.md).
#include <stdbool.h>
// stdbool.h must stay above ldns.
#include <ldns/ldns.h>

namespace vigil::test_dns {
namespace {

// A CNAME loop in test data must end in a bounded answer, not in a hang.
constexpr int kMaxCnameChain = 8;
// The bogus reply must reach the client first, so that it has to skip it and keep waiting.
constexpr std::uint32_t kWrongIdLeadMs = 50;
// The size that DNS flag day 2020 recommends; advertised back to EDNS clients.
constexpr std::uint16_t kOurEdnsUdpSize = 1232;
constexpr std::size_t kClassicUdpLimit = 512;
// Query names come from the peer: bound what reaches the log (DESIGN.md rule 8).
constexpr std::size_t kMaxLoggedName = 255;
constexpr std::uint32_t kDefaultTtl = 3600;
constexpr std::uint32_t kBogusTtl = 300;

struct RrFree {
    void operator()(ldns_rr* rr) const { ldns_rr_free(rr); }
};
struct RdfFree {
    void operator()(ldns_rdf* rdf) const { ldns_rdf_deep_free(rdf); }
};
struct PktFree {
    void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
struct ZoneFree {
    void operator()(ldns_zone* zone) const { ldns_zone_deep_free(zone); }
};
struct MallocFree {
    void operator()(void* p) const { std::free(p); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using ZonePtr = std::unique_ptr<ldns_zone, ZoneFree>;
using CString = std::unique_ptr<char, MallocFree>;

// Uncompressed wire form with ASCII letters lower-cased. Length octets are at most 63, below 'A', so
// lower-casing every byte is safe, and label boundaries stay unambiguous (unlike presentation form).
using NameKey = std::string;

NameKey key_of(const ldns_rdf* dname) {
    NameKey key(reinterpret_cast<const char*>(ldns_rdf_data(dname)), ldns_rdf_size(dname));
    for (char& c : key) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return key;
}

// Replaces `key` by its parent; false at the root (or on a malformed key).
bool to_parent(NameKey& key) {
    if (key.empty() || key[0] == 0) return false;
    std::size_t skip = 1 + static_cast<unsigned char>(key[0]);
    if (skip >= key.size()) return false;
    key.erase(0, skip);
    return true;
}

bool is_at_or_below(const NameKey& name, const NameKey& ancestor) {
    std::size_t pos = 0;
    while (pos < name.size()) {
        if (name.size() - pos == ancestor.size() && name.compare(pos, std::string::npos, ancestor) == 0) {
            return true;
        }
        if (name[pos] == 0) return false;
        pos += 1 + static_cast<unsigned char>(name[pos]);
    }
    return false;
}

std::string text_of(const ldns_rdf* rdf) {
    CString s(ldns_rdf2str(rdf));
    return s ? std::string(s.get()) : std::string("?");
}

std::string text_of(const NameKey& key) {
    RdfPtr rdf(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, key.size(), key.data()));
    return rdf ? text_of(rdf.get()) : std::string("?");
}

std::string type_text(ldns_rr_type type) {
    CString s(ldns_rr_type2str(type));
    return s ? std::string(s.get()) : std::string("?");
}

// ldns already escapes unusual bytes; this also guarantees one log line stays one field of bounded size.
std::string printable(std::string text) {
    if (text.size() > kMaxLoggedName) text.resize(kMaxLoggedName);
    for (char& c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) c = '?';
    }
    return text.empty() ? std::string("-") : text;
}

RrPtr clone_rr(const ldns_rr* rr, const ldns_rdf* new_owner) {
    RrPtr copy(ldns_rr_clone(rr));
    if (new_owner != nullptr) {
        // ldns_rr_set_owner does not free the previous owner.
        ldns_rdf_deep_free(ldns_rr_owner(copy.get()));
        ldns_rr_set_owner(copy.get(), ldns_rdf_clone(new_owner));
    }
    return copy;
}

std::vector<std::uint8_t> to_wire(const ldns_pkt* pkt) {
    std::uint8_t* buf = nullptr;
    std::size_t size = 0;
    if (ldns_pkt2wire(&buf, pkt, &size) != LDNS_STATUS_OK) {
        std::free(buf);
        return {};
    }
    std::vector<std::uint8_t> out(buf, buf + size);
    std::free(buf);
    return out;
}

struct Node {
    std::vector<RrPtr> rrs;

    const ldns_rr* first_of(ldns_rr_type type) const {
        for (const auto& rr : rrs) {
            if (ldns_rr_get_type(rr.get()) == type) return rr.get();
        }
        return nullptr;
    }
};

struct Zone {
    NameKey apex;
    std::string file;
    RrPtr soa;
    std::unordered_map<NameKey, Node> nodes;
    // Every owner name and each of its ancestors down to the apex: a name here without a node is an
    // empty non-terminal, which answers NODATA rather than NXDOMAIN and blocks wildcard matching.
    std::unordered_set<NameKey> existing;

    const Node* find(const NameKey& key) const {
        auto it = nodes.find(key);
        return it == nodes.end() ? nullptr : &it->second;
    }

    // RFC 4592: only the wildcard child of the closest encloser may match.
    const Node* find_wildcard(const NameKey& qname) const {
        NameKey encloser = qname;
        while (to_parent(encloser)) {
            if (existing.contains(encloser)) return find(NameKey("\x01*", 2) + encloser);
        }
        return nullptr;
    }
};

Zone load_zone(const std::string& path) {
    FILE* fp = std::fopen(path.c_str(), "r");
    if (fp == nullptr) throw std::runtime_error(path + ": " + std::strerror(errno));
    ldns_zone* raw = nullptr;
    int line = 0;
    ldns_status status = ldns_zone_new_frm_fp_l(&raw, fp, nullptr, kDefaultTtl, LDNS_RR_CLASS_IN, &line);
    std::fclose(fp);
    if (status != LDNS_STATUS_OK) {
        throw std::runtime_error(path + ":" + std::to_string(line) + ": " + ldns_get_errorstr_by_id(status));
    }
    ZonePtr parsed(raw);

    Zone zone;
    zone.file = path;
    std::vector<RrPtr> records;
    if (const ldns_rr* soa = ldns_zone_soa(parsed.get())) zone.soa.reset(ldns_rr_clone(soa));
    const ldns_rr_list* list = ldns_zone_rrs(parsed.get());
    for (std::size_t i = 0; list != nullptr && i < ldns_rr_list_rr_count(list); ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(list, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA) {
            if (zone.soa) {
                throw std::runtime_error(path + ": more than one SOA record (" + text_of(ldns_rr_owner(rr)) +
                                         "); use one file per zone");
            }
            zone.soa.reset(ldns_rr_clone(rr));
            continue;
        }
        records.emplace_back(ldns_rr_clone(rr));
    }
    if (zone.soa) records.emplace_back(ldns_rr_clone(zone.soa.get()));
    if (records.empty()) throw std::runtime_error(path + ": no records");

    if (zone.soa) {
        zone.apex = key_of(ldns_rr_owner(zone.soa.get()));
    } else {
        // Without an SOA the file does not say where the zone starts; the closest common ancestor of its
        // names is the narrowest apex that still makes every record authoritative.
        zone.apex = key_of(ldns_rr_owner(records.front().get()));
        for (const auto& rr : records) {
            NameKey owner = key_of(ldns_rr_owner(rr.get()));
            bool climbing = true;
            while (climbing && !is_at_or_below(owner, zone.apex)) climbing = to_parent(zone.apex);
        }
    }

    for (auto& rr : records) {
        NameKey owner = key_of(ldns_rr_owner(rr.get()));
        if (!is_at_or_below(owner, zone.apex)) {
            throw std::runtime_error(path + ": " + text_of(ldns_rr_owner(rr.get())) +
                                     " is outside the zone " + text_of(zone.apex));
        }
        zone.nodes[owner].rrs.push_back(std::move(rr));
        for (NameKey name = owner;;) {
            zone.existing.insert(name);
            if (name == zone.apex || !to_parent(name)) break;
        }
    }
    return zone;
}

struct Pattern {
    enum class Scope { kExact, kBelow, kAll };
    Scope scope = Scope::kExact;
    NameKey name;
    std::optional<ldns_rr_type> type;

    bool matches(const NameKey& qname, ldns_rr_type qtype) const {
        if (type && *type != qtype) return false;
        switch (scope) {
            case Scope::kAll:
                return true;
            case Scope::kExact:
                return qname == name;
            case Scope::kBelow:
                return qname != name && is_at_or_below(qname, name);
        }
        return false;
    }
};

Pattern compile_pattern(const std::string& text) {
    Pattern pattern;
    std::string name = text;
    if (auto slash = text.rfind('/'); slash != std::string::npos) {
        std::string type = text.substr(slash + 1);
        ldns_rr_type parsed = ldns_get_rr_type_by_name(type.c_str());
        if (type.empty() || parsed == 0) throw std::runtime_error("unknown record type in '" + text + "'");
        pattern.type = parsed;
        name = text.substr(0, slash);
    }
    if (name == "*") {
        pattern.scope = Pattern::Scope::kAll;
        return pattern;
    }
    if (name.starts_with("*.")) {
        pattern.scope = Pattern::Scope::kBelow;
        name.erase(0, 2);
    }
    RdfPtr dname(name.empty() ? nullptr : ldns_dname_new_frm_str(name.c_str()));
    if (!dname) throw std::runtime_error("bad name in '" + text + "'");
    pattern.name = key_of(dname.get());
    return pattern;
}

struct CompiledFault {
    FaultKind kind;
    Pattern pattern;
};

struct CompiledValue {
    Pattern pattern;
    std::uint32_t value;
};

enum class Outcome { kAnswer, kNodata, kNxdomain, kRefused };

struct Resolution {
    Outcome outcome = Outcome::kAnswer;
    std::vector<RrPtr> answer;
    RrPtr negative_soa;
};

const char* outcome_text(Outcome outcome) {
    switch (outcome) {
        case Outcome::kAnswer:
            return "answer";
        case Outcome::kNodata:
            return "nodata";
        case Outcome::kNxdomain:
            return "nxdomain";
        case Outcome::kRefused:
            return "refused";
    }
    return "?";
}

// A reply that starts like every reply: same ID (unless told otherwise), question echoed byte for byte so
// that 0x20-randomising clients accept it, EDNS answered with EDNS.
PktPtr reply_skeleton(const ldns_pkt* query, std::uint16_t id) {
    PktPtr reply(ldns_pkt_new());
    ldns_pkt_set_id(reply.get(), id);
    ldns_pkt_set_qr(reply.get(), true);
    ldns_pkt_set_opcode(reply.get(), ldns_pkt_get_opcode(query));
    ldns_pkt_set_rd(reply.get(), ldns_pkt_rd(query));
    ldns_pkt_set_cd(reply.get(), ldns_pkt_cd(query));
    const ldns_rr_list* question = ldns_pkt_question(query);
    for (std::size_t i = 0; question != nullptr && i < ldns_rr_list_rr_count(question); ++i) {
        ldns_pkt_push_rr(reply.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(question, i)));
    }
    if (ldns_pkt_edns(query)) ldns_pkt_set_edns_udp_size(reply.get(), kOurEdnsUdpSize);
    // RFC 3225 §3: the DO bit is copied into the response.
    if (ldns_pkt_edns_do(query)) ldns_pkt_set_edns_do(reply.get(), true);
    return reply;
}

std::vector<std::uint8_t> rcode_only(const ldns_pkt* query, ldns_pkt_rcode rcode) {
    PktPtr reply = reply_skeleton(query, ldns_pkt_id(query));
    ldns_pkt_set_rcode(reply.get(), rcode);
    return to_wire(reply.get());
}

RrPtr bogus_record(const ldns_rdf* owner, ldns_rr_type qtype) {
    RrPtr rr(ldns_rr_new());
    ldns_rr_set_owner(rr.get(), ldns_rdf_clone(owner));
    ldns_rr_set_ttl(rr.get(), kBogusTtl);
    ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
    if (qtype == LDNS_RR_TYPE_A) {
        ldns_rr_set_type(rr.get(), LDNS_RR_TYPE_A);
        ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, "192.0.2.66"));
    } else if (qtype == LDNS_RR_TYPE_AAAA) {
        ldns_rr_set_type(rr.get(), LDNS_RR_TYPE_AAAA);
        ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, "2001:db8::66"));
    } else {
        ldns_rr_set_type(rr.get(), LDNS_RR_TYPE_TXT);
        ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_str(LDNS_RDF_TYPE_STR, "wrong-id"));
    }
    return rr;
}

}  // namespace

struct Responder::Impl {
    std::vector<Zone> zones;
    std::vector<CompiledFault> faults;
    std::vector<CompiledValue> delays;
    std::vector<CompiledValue> ttl_overrides;
    std::uint32_t delay_ms = 0;
    std::optional<std::uint32_t> udp_max;

    // The most specific zone wins, so a child zone file can sit under a parent one.
    const Zone* find_zone(const NameKey& name) const {
        const Zone* best = nullptr;
        for (const auto& zone : zones) {
            if (is_at_or_below(name, zone.apex) &&
                (best == nullptr || zone.apex.size() > best->apex.size())) {
                best = &zone;
            }
        }
        return best;
    }

    bool has_fault(FaultKind kind, const NameKey& name, ldns_rr_type type) const {
        return std::any_of(faults.begin(), faults.end(), [&](const CompiledFault& f) {
            return f.kind == kind && f.pattern.matches(name, type);
        });
    }

    static std::optional<std::uint32_t> first_value(const std::vector<CompiledValue>& rules,
                                                    const NameKey& name, ldns_rr_type type) {
        for (const auto& rule : rules) {
            if (rule.pattern.matches(name, type)) return rule.value;
        }
        return std::nullopt;
    }

    static void negative(Resolution& res, const Zone& zone, Outcome outcome) {
        res.outcome = outcome;
        if (!zone.soa) return;
        // RFC 2308 section 3: negative answers carry the SOA with TTL min(SOA TTL, SOA MINIMUM).
        res.negative_soa.reset(ldns_rr_clone(zone.soa.get()));
        std::uint32_t minimum = ldns_rdf2native_int32(ldns_rr_rdf(zone.soa.get(), 6));
        ldns_rr_set_ttl(res.negative_soa.get(), std::min(ldns_rr_ttl(zone.soa.get()), minimum));
    }

    // RFC 4035 §3.1.1: a DO query gets the RRSIGs of the zone data that cover each answered record's
    // type (read from the zone file as they are; nothing is signed here). Negative answers get no NSEC.
    static void add_signatures(std::vector<RrPtr>& answer, const Node& node, ldns_rr_type type,
                               const ldns_rdf* owner) {
        for (const auto& rr : node.rrs) {
            if (ldns_rr_get_type(rr.get()) != LDNS_RR_TYPE_RRSIG || ldns_rr_rd_count(rr.get()) == 0) continue;
            if (ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr.get())) == type)
                answer.push_back(clone_rr(rr.get(), owner));
        }
    }

    Resolution resolve(const ldns_rdf* qname, ldns_rr_type qtype, bool dnssec_ok = false) const {
        Resolution res;
        RdfPtr current(ldns_rdf_clone(qname));
        std::unordered_set<NameKey> visited;
        for (int step = 0;; ++step) {
            NameKey key = key_of(current.get());
            const Zone* zone = find_zone(key);
            if (zone == nullptr) {
                // After a CNAME this is a chain leaving our data: the client resolves the rest.
                if (step == 0) res.outcome = Outcome::kRefused;
                return res;
            }
            visited.insert(key);
            const Node* node = zone->find(key);
            bool synthesized = false;
            if (node == nullptr) {
                if (zone->existing.contains(key)) {
                    negative(res, *zone, Outcome::kNodata);
                    return res;
                }
                node = zone->find_wildcard(key);
                if (node == nullptr) {
                    negative(res, *zone, Outcome::kNxdomain);
                    return res;
                }
                synthesized = true;
            }
            const ldns_rdf* owner = synthesized ? current.get() : nullptr;

            const ldns_rr* cname = node->first_of(LDNS_RR_TYPE_CNAME);
            if (cname != nullptr && qtype != LDNS_RR_TYPE_CNAME && qtype != LDNS_RR_TYPE_ANY) {
                res.answer.push_back(clone_rr(cname, owner));
                if (dnssec_ok) add_signatures(res.answer, *node, LDNS_RR_TYPE_CNAME, owner);
                res.outcome = Outcome::kAnswer;
                const ldns_rdf* target = ldns_rr_rdf(cname, 0);
                if (step + 1 >= kMaxCnameChain || visited.contains(key_of(target))) return res;
                current.reset(ldns_rdf_clone(target));
                continue;
            }

            bool found = false;
            for (const auto& rr : node->rrs) {
                if (qtype == LDNS_RR_TYPE_ANY || ldns_rr_get_type(rr.get()) == qtype) {
                    res.answer.push_back(clone_rr(rr.get(), owner));
                    found = true;
                }
            }
            if (found) {
                const bool sigs = dnssec_ok && qtype != LDNS_RR_TYPE_ANY && qtype != LDNS_RR_TYPE_RRSIG;
                if (sigs) add_signatures(res.answer, *node, qtype, owner);
                res.outcome = Outcome::kAnswer;
            } else {
                negative(res, *zone, Outcome::kNodata);
            }
            return res;
        }
    }

    std::size_t udp_limit(const ldns_pkt* query) const {
        std::size_t limit = kClassicUdpLimit;
        if (ldns_pkt_edns(query)) limit = std::max<std::size_t>(limit, ldns_pkt_edns_udp_size(query));
        if (udp_max) limit = std::min<std::size_t>(limit, *udp_max);
        return limit;
    }

    std::vector<std::uint8_t> malformed(const ldns_pkt* query) const {
        PktPtr reply = reply_skeleton(query, ldns_pkt_id(query));
        ldns_pkt_set_aa(reply.get(), true);
        // The OPT record would sit after the cut and only muddle which section is broken.
        ldns_pkt_set_edns_udp_size(reply.get(), 0);
        std::vector<std::uint8_t> wire = to_wire(reply.get());
        if (wire.size() < 12) return wire;
        // Header promises one answer and no additional records; the answer stops after its owner name.
        wire[6] = 0;
        wire[7] = 1;
        wire[10] = 0;
        wire[11] = 0;
        const std::uint8_t cut_answer[] = {0xc0, 0x0c};
        wire.insert(wire.end(), std::begin(cut_answer), std::end(cut_answer));
        return wire;
    }

    Reply respond(std::span<const std::uint8_t> query, Transport transport) const {
        Reply reply;
        ldns_pkt* raw = nullptr;
        if (query.size() < 12 || ldns_wire2pkt(&raw, query.data(), query.size()) != LDNS_STATUS_OK) {
            ldns_pkt_free(raw);
            return reply;
        }
        PktPtr q(raw);
        // Answering a response could start an endless exchange with another server.
        if (ldns_pkt_qr(q.get())) return reply;
        reply.is_query = true;
        reply.qname = "-";
        reply.qtype = "-";

        std::uint32_t delay = delay_ms;
        auto finish = [&](std::vector<std::uint8_t> bytes, const char* action) {
            reply.action = action;
            if (!bytes.empty()) reply.sends.push_back({delay, std::move(bytes)});
            return std::move(reply);
        };

        if (ldns_pkt_get_opcode(q.get()) != LDNS_PACKET_QUERY) {
            return finish(rcode_only(q.get(), LDNS_RCODE_NOTIMPL), "notimp");
        }
        if (ldns_pkt_qdcount(q.get()) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(q.get())) != 1) {
            return finish(rcode_only(q.get(), LDNS_RCODE_FORMERR), "formerr");
        }
        const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
        const ldns_rdf* qname = ldns_rr_owner(question);
        ldns_rr_type qtype = ldns_rr_get_type(question);
        reply.qname = printable(text_of(qname));
        reply.qtype = printable(type_text(qtype));

        if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN) {
            return finish(rcode_only(q.get(), LDNS_RCODE_REFUSED), "refused");
        }
        if (qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR) {
            return finish(rcode_only(q.get(), LDNS_RCODE_NOTIMPL), "notimp");
        }

        NameKey key = key_of(qname);
        if (auto d = first_value(delays, key, qtype)) delay = *d;

        if (has_fault(FaultKind::kTimeout, key, qtype)) return finish({}, "timeout");
        if (has_fault(FaultKind::kMalformed, key, qtype)) return finish(malformed(q.get()), "malformed");
        if (has_fault(FaultKind::kServfail, key, qtype)) {
            return finish(rcode_only(q.get(), LDNS_RCODE_SERVFAIL), "servfail");
        }
        if (has_fault(FaultKind::kRefused, key, qtype)) {
            return finish(rcode_only(q.get(), LDNS_RCODE_REFUSED), "refused");
        }

        Resolution res = resolve(qname, qtype, ldns_pkt_edns_do(q.get()));
        if (res.outcome == Outcome::kRefused)
            return finish(rcode_only(q.get(), LDNS_RCODE_REFUSED), "refused");

        PktPtr response = reply_skeleton(q.get(), ldns_pkt_id(q.get()));
        ldns_pkt_set_aa(response.get(), true);
        ldns_pkt_set_rcode(response.get(),
                           res.outcome == Outcome::kNxdomain ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR);
        std::optional<std::uint32_t> ttl = first_value(ttl_overrides, key, qtype);
        for (auto& rr : res.answer) {
            if (ttl) ldns_rr_set_ttl(rr.get(), *ttl);
            ldns_pkt_push_rr(response.get(), LDNS_SECTION_ANSWER, rr.release());
        }
        if (res.negative_soa) {
            if (ttl) ldns_rr_set_ttl(res.negative_soa.get(), *ttl);
            ldns_pkt_push_rr(response.get(), LDNS_SECTION_AUTHORITY, res.negative_soa.release());
        }
        std::vector<std::uint8_t> wire = to_wire(response.get());
        if (wire.empty()) return finish({}, "encode-error");

        if (transport == Transport::kUdp) {
            if (has_fault(FaultKind::kTruncate, key, qtype) || wire.size() > udp_limit(q.get())) {
                PktPtr truncated = reply_skeleton(q.get(), ldns_pkt_id(q.get()));
                ldns_pkt_set_aa(truncated.get(), true);
                ldns_pkt_set_tc(truncated.get(), true);
                ldns_pkt_set_rcode(truncated.get(), ldns_pkt_get_rcode(response.get()));
                return finish(to_wire(truncated.get()), "truncated");
            }
            if (has_fault(FaultKind::kWrongId, key, qtype)) {
                PktPtr bogus = reply_skeleton(q.get(), static_cast<std::uint16_t>(ldns_pkt_id(q.get()) + 1));
                ldns_pkt_set_aa(bogus.get(), true);
                ldns_pkt_push_rr(bogus.get(), LDNS_SECTION_ANSWER, bogus_record(qname, qtype).release());
                reply.sends.push_back({delay, to_wire(bogus.get())});
                delay += kWrongIdLeadMs;
                return finish(std::move(wire), "wrong-id");
            }
        }
        return finish(std::move(wire), outcome_text(res.outcome));
    }
};

Responder::Responder(const Options& options) : impl_(std::make_unique<Impl>()) {
    for (const auto& file : options.zone_files) {
        Zone zone = load_zone(file);
        for (const auto& other : impl_->zones) {
            if (other.apex == zone.apex) {
                throw std::runtime_error(file + ": zone " + text_of(zone.apex) + " is already loaded from " +
                                         other.file);
            }
        }
        impl_->zones.push_back(std::move(zone));
    }
    for (const auto& rule : options.faults)
        impl_->faults.push_back({rule.kind, compile_pattern(rule.pattern)});
    for (const auto& rule : options.delays)
        impl_->delays.push_back({compile_pattern(rule.pattern), rule.value});
    for (const auto& rule : options.ttl_overrides) {
        impl_->ttl_overrides.push_back({compile_pattern(rule.pattern), rule.value});
    }
    impl_->delay_ms = options.delay_ms;
    impl_->udp_max = options.udp_max;
}

Responder::~Responder() = default;

Reply Responder::respond(std::span<const std::uint8_t> query, Transport transport) const {
    return impl_->respond(query, transport);
}

}  // namespace vigil::test_dns
