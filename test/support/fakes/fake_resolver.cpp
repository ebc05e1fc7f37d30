#include "fakes/fake_resolver.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/printable.hpp"

namespace vigil::dns {

namespace {

std::string normalized(std::string_view name) {
    QueryName q = normalize_query_name(name);
    return q.ok() ? std::move(q.name) : std::string(name);
}

Record record(RrType type, std::string_view name) {
    Record r;
    r.type = type;
    r.name = normalized(name);
    return r;
}

}  // namespace

FakeResolver::Key FakeResolver::key_of(std::string_view name, RrType type) {
    return {normalized(name), type};
}

void FakeResolver::set(std::string_view name, RrType type, Answer answer) {
    std::lock_guard lock(mutex_);
    answers_.insert_or_assign(key_of(name, type), std::move(answer));
}

void FakeResolver::set_records(std::string_view name, RrType type, std::vector<Record> records,
                               std::uint32_t ttl) {
    Answer a;
    a.status = records.empty() ? Status::nodata : Status::answer;
    a.dnssec = Dnssec::unchecked;
    a.ttl = ttl;
    a.records = std::move(records);
    set(name, type, std::move(a));
}

void FakeResolver::set_status(std::string_view name, RrType type, Status status, std::uint32_t ttl) {
    Answer a = Answer::failure(status, std::string(to_string(status)));
    a.ttl = ttl;
    set(name, type, std::move(a));
}

void FakeResolver::hold(std::string_view name, RrType type) {
    std::lock_guard lock(mutex_);
    held_.try_emplace(key_of(name, type));
}

std::size_t FakeResolver::release(std::string_view name, RrType type) {
    std::vector<Promise> waiting;
    Answer answer;
    {
        std::lock_guard lock(mutex_);
        auto key = key_of(name, type);
        auto it = held_.find(key);
        if (it == held_.end()) return 0;
        waiting = std::move(it->second);
        held_.erase(it);
        auto a = answers_.find(key);
        if (a == answers_.end()) {
            throw std::logic_error("FakeResolver: release of " + key.first + " " +
                                   std::string(to_string(type)) + " which has no programmed answer");
        }
        answer = a->second;
    }
    // Outside the lock: completion runs the waiters' callbacks, which may call back into this fake.
    for (auto& p : waiting) p.complete(answer);
    return waiting.size();
}

void FakeResolver::never_answer(std::string_view name, RrType type) {
    std::lock_guard lock(mutex_);
    never_.try_emplace(key_of(name, type));
}

Pending FakeResolver::lookup(std::string_view name, RrType type) {
    QueryName q = normalize_query_name(name);
    std::lock_guard lock(mutex_);
    if (!q.ok()) {
        queries_.push_back({std::string(name), type});
        return Pending::of(Answer::failure(Status::malformed, q.error));
    }
    Key key{q.name, type};
    queries_.push_back({q.name, type});
    if (auto it = never_.find(key); it != never_.end()) {
        Promise p;
        it->second.push_back(p);
        return p.pending();
    }
    auto answer = answers_.find(key);
    if (answer == answers_.end()) {
        unexpected_.push_back({q.name, type});
        throw std::logic_error("FakeResolver: unexpected query " + core::printable(q.name) + " " +
                               std::string(to_string(type)));
    }
    if (auto it = held_.find(key); it != held_.end()) {
        Promise p;
        it->second.push_back(p);
        return p.pending();
    }
    return Pending::of(answer->second);
}

std::vector<FakeResolver::Query> FakeResolver::queries() const {
    std::lock_guard lock(mutex_);
    return queries_;
}

std::vector<FakeResolver::Query> FakeResolver::unexpected() const {
    std::lock_guard lock(mutex_);
    return unexpected_;
}

std::size_t FakeResolver::count(std::string_view name, RrType type) const {
    const Query wanted{normalized(name), type};
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count(queries_.begin(), queries_.end(), wanted));
}

void FakeResolver::clear_queries() {
    std::lock_guard lock(mutex_);
    queries_.clear();
    unexpected_.clear();
}

namespace fake {

Record address(std::string_view name, std::string_view ip) {
    auto parsed = core::IpAddress::parse(ip);
    if (!parsed) throw std::invalid_argument("fake::address: not an IP address: " + std::string(ip));
    Record r = record(parsed->is_v4() ? RrType::a : RrType::aaaa, name);
    r.address = *parsed;
    return r;
}

Record txt(std::string_view name, std::vector<std::string> strings) {
    Record r = record(RrType::txt, name);
    r.txt = std::move(strings);
    return r;
}

Record mx(std::string_view name, std::uint16_t preference, std::string_view target) {
    Record r = record(RrType::mx, name);
    r.preference = preference;
    r.target = target == "." ? std::string() : normalized(target);
    return r;
}

Record ptr(std::string_view name, std::string_view target) {
    Record r = record(RrType::ptr, name);
    r.target = normalized(target);
    return r;
}

Record cname(std::string_view name, std::string_view target) {
    Record r = record(RrType::cname, name);
    r.target = normalized(target);
    return r;
}

Record ns(std::string_view name, std::string_view target) {
    Record r = record(RrType::ns, name);
    r.target = normalized(target);
    return r;
}

}  // namespace fake

}  // namespace vigil::dns
