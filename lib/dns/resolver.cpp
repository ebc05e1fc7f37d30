#include "dns/resolver.hpp"

#include <condition_variable>
#include <mutex>
#include <utility>

#include "core/printable.hpp"
#include "core/wait_hook.hpp"
#include "dns/dns_limits.hpp"

namespace vigil::dns {

namespace detail {

// Shared by a Promise and all its Pendings. Callbacks run outside the lock, so a callback may itself
// complete other lookups or take other locks without deadlocking against a waiter here.
struct LookupState {
    mutable std::mutex mutex;
    std::condition_variable done;
    std::optional<Answer> answer;
    std::vector<std::function<void(const Answer&)>> callbacks;
};

}  // namespace detail

namespace {

// Runs the callbacks of a completed lookup. noexcept: a throwing callback is a programming error that
// must not be mistaken for a DNS result, so it terminates loudly instead of being swallowed.
void run_callbacks(std::vector<std::function<void(const Answer&)>>& callbacks,
                   const Answer& answer) noexcept {
    for (auto& fn : callbacks) fn(answer);
}

}  // namespace

std::string Record::txt_joined() const {
    std::string out;
    std::size_t total = 0;
    for (const auto& s : txt) total += s.size();
    out.reserve(total);
    for (const auto& s : txt) out += s;
    return out;
}

Answer Answer::failure(Status status, std::string detail, Dnssec dnssec) {
    Answer a;
    a.status = status;
    a.dnssec = dnssec;
    a.detail = std::move(detail);
    return a;
}

Pending::Pending(std::shared_ptr<detail::LookupState> state) : state_(std::move(state)) {}

Pending Pending::of(Answer answer) {
    // Nobody can wait on a state nobody else has seen yet: no lock, no callbacks to run.
    auto state = std::make_shared<detail::LookupState>();
    state->answer = std::move(answer);
    return Pending(std::move(state));
}

bool Pending::ready() const {
    std::lock_guard lock(state_->mutex);
    return state_->answer.has_value();
}

Answer Pending::wait_until(std::chrono::steady_clock::time_point deadline) const {
    {
        std::lock_guard lock(state_->mutex);
        if (state_->answer) return *state_->answer;  // the usual case behind the cache: no sleep
    }
    // Declared before the lock, so the hook takes back what it gave up (which may mean waiting for
    // other threads) only after the lookup's mutex is released: the resolver thread completing other
    // waiters' lookups must never wait for it.
    core::BlockingWait blocking;
    std::unique_lock lock(state_->mutex);
    if (!state_->done.wait_until(lock, deadline, [&] { return state_->answer.has_value(); })) {
        return Answer::failure(Status::timeout, "no answer before the deadline");
    }
    return *state_->answer;
}

void Pending::on_ready(std::function<void(const Answer&)> fn) const {
    std::unique_lock lock(state_->mutex);
    if (!state_->answer) {
        state_->callbacks.push_back(std::move(fn));
        return;
    }
    // The answer never changes once set, so it can be read after unlocking while we hold the state.
    lock.unlock();
    std::vector<std::function<void(const Answer&)>> one{std::move(fn)};
    run_callbacks(one, *state_->answer);
}

Promise::Promise() : state_(std::make_shared<detail::LookupState>()) {}

Pending Promise::pending() const {
    return Pending(state_);
}

bool Promise::complete(Answer answer) const {
    std::vector<std::function<void(const Answer&)>> callbacks;
    {
        std::lock_guard lock(state_->mutex);
        if (state_->answer) return false;
        state_->answer = std::move(answer);
        callbacks.swap(state_->callbacks);
    }
    state_->done.notify_all();
    run_callbacks(callbacks, *state_->answer);
    return true;
}

bool Promise::completed() const {
    std::lock_guard lock(state_->mutex);
    return state_->answer.has_value();
}

namespace {
QueryName check_and_lower(std::string_view name) {
    QueryName out;
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty()) {
        out.error = "empty name";
        return out;
    }
    if (name.size() > limits::max_name_length) {
        out.error = "name longer than 253 characters";
        return out;
    }
    std::size_t label = 0;
    out.name.resize(name.size());  // lowercased in the same pass
    char* lower = out.name.data();
    for (unsigned char c : name) {
        *lower++ = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        if (c == '.') {
            if (label == 0) {
                out.error = "empty label";
                return out;
            }
            label = 0;
            continue;
        }
        // Printable ASCII and space only (SPF macros can expand to names with spaces, and RFC 7208's
        // suite queries one); a backslash would be read by libunbound as the start of an escape and
        // make the name on the wire differ from the name we cache under. The resolver escapes spaces.
        if (c < 0x20 || c > 0x7e || c == '\\') {
            out.error = "byte outside printable ASCII or backslash in name: " + core::printable(name);
            return out;
        }
        if (++label > limits::max_label_length) {
            out.error = "label longer than 63 characters";
            return out;
        }
    }
    if (label == 0) {
        out.error = "empty label";
        return out;
    }
    return out;
}
}  // namespace

QueryName normalize_query_name(std::string_view name) {
    QueryName q = check_and_lower(name);
    if (!q.ok()) q.name.clear();  // never half a name
    return q;
}

bool is_known_type(RrType type) {
    switch (type) {
        case RrType::a:
        case RrType::ns:
        case RrType::cname:
        case RrType::soa:
        case RrType::ptr:
        case RrType::mx:
        case RrType::txt:
        case RrType::aaaa:
        case RrType::dnskey:
            return true;
    }
    return false;
}

std::string reverse_name(const core::IpAddress& ip) {
    const core::IpAddress plain = ip.unmapped();
    return plain.reverse_labels() + (plain.is_v4() ? ".in-addr.arpa" : ".ip6.arpa");
}

std::string_view to_string(Status status) {
    switch (status) {
        case Status::answer:
            return "answer";
        case Status::nxdomain:
            return "nxdomain";
        case Status::nodata:
            return "nodata";
        case Status::servfail:
            return "servfail";
        case Status::timeout:
            return "timeout";
        case Status::malformed:
            return "malformed";
    }
    return "unknown";
}

std::string_view to_string(Dnssec dnssec) {
    switch (dnssec) {
        case Dnssec::insecure:
            return "insecure";
        case Dnssec::secure:
            return "secure";
        case Dnssec::bogus:
            return "bogus";
        case Dnssec::unchecked:
            return "unchecked";
    }
    return "unknown";
}

std::string_view to_string(RrType type) {
    switch (type) {
        case RrType::a:
            return "A";
        case RrType::ns:
            return "NS";
        case RrType::cname:
            return "CNAME";
        case RrType::soa:
            return "SOA";
        case RrType::ptr:
            return "PTR";
        case RrType::mx:
            return "MX";
        case RrType::txt:
            return "TXT";
        case RrType::aaaa:
            return "AAAA";
        case RrType::dnskey:
            return "DNSKEY";
    }
    return "UNKNOWN";
}

}  // namespace vigil::dns
