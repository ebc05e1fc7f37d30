#include "doctor/monitor.hpp"

#include <signal.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace vigil::doctor {

namespace {

// Items named in the start summary; the rest are counted.
constexpr std::size_t max_summary_items = 10;

bool is_block(const WatchedList& w) {
    return w.list.type == reputation::DnsblList::Type::block;
}

}  // namespace

Monitor::Monitor(Options options, dns::Resolver& resolver, const core::Clock& clock, Log log)
    : options_(std::move(options)), resolver_(&resolver), clock_(&clock), log_(std::move(log)) {}

Monitor::~Monitor() {
    stop();
}

bool Monitor::stopping() const {
    std::lock_guard lock(mutex_);
    return stop_;
}

std::size_t Monitor::rounds() const {
    std::lock_guard lock(mutex_);
    return rounds_;
}

void Monitor::run_once() {
    struct Lookup {
        std::size_t ip, list;
        dns::Pending pending;
    };
    std::vector<Lookup> lookups;
    for (std::size_t i = 0; i < options_.ips.size(); ++i) {
        const auto& ip = options_.ips[i];
        for (std::size_t j = 0; j < options_.lists.size(); ++j) {
            const auto& l = options_.lists[j].list;
            if (!ip.is_v4() && !l.ipv6) continue;
            lookups.push_back(
                {i, j, resolver_->lookup(reputation::dnsbl_query_name(ip, l.zone), dns::RrType::a)});
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    const auto now = clock_->now();
    const bool first = rounds() == 0;
    std::vector<std::string> listed, allowed, unknown;
    std::size_t clean = 0;
    for (auto& l : lookups) {
        // Waits in short slices so that stop() is never held up by a slow list.
        while (!l.pending.ready() && std::chrono::steady_clock::now() < deadline) {
            if (stopping()) return;
            l.pending.wait_until(std::min(deadline, std::chrono::steady_clock::now() + limits::stop_poll));
        }
        if (stopping()) return;
        const auto answer = l.pending.wait_until(deadline);
        const auto& w = options_.lists[l.list];
        const auto ip = options_.ips[l.ip].to_string();
        const auto where = fmt::format("{} ({})", w.list.zone, w.known ? w.known->title : w.list.name);
        auto r = reputation::classify_answer(w.list, answer);
        auto& last = last_[{l.ip, l.list}];

        if (r.kind == reputation::ListResult::Kind::refused ||
            r.kind == reputation::ListResult::Kind::tempfail) {
            auto why =
                r.kind == reputation::ListResult::Kind::refused
                    ? fmt::format("refused with {}: {}", r.refused_code, refusal_meaning(r.refused_code))
                    : r.status;
            unknown.push_back(fmt::format("{} on {}: {}", ip, where, why));
            if (!first && !last.cannot_tell) {
                log_(Priority::warning,
                     fmt::format("reputation: cannot tell whether {} is listed on {}: {}{}", ip, where, why,
                                 last.state == State::listed ? " (it was listed)" : ""));
            }
            last.cannot_tell = true;
            continue;
        }
        if (last.cannot_tell && !first) {
            log_(Priority::notice, fmt::format("reputation: {} answers again for {}", where, ip));
        }
        last.cannot_tell = false;
        const bool on_list = r.kind == reputation::ListResult::Kind::listed;
        const auto meaning = on_list ? listing_meaning(w, answer) : std::string();
        const auto state = on_list ? State::listed : State::clean;
        if (on_list) {
            (is_block(w) ? listed : allowed).push_back(fmt::format("{} on {} ({})", ip, where, meaning));
        } else {
            ++clean;
        }
        if (!first && last.state != State::unknown && last.state != state) {
            auto held = std::chrono::duration_cast<std::chrono::seconds>(now - last.since).count();
            if (is_block(w)) {
                if (on_list) {
                    log_(Priority::warning,
                         fmt::format("reputation: {} is now LISTED on {}: {}{}", ip, where, meaning,
                                     w.known ? "; removal: " + w.known->removal : std::string()));
                } else {
                    log_(Priority::warning,
                         fmt::format("reputation: {} is no longer listed on {} (de-listed after {} s)", ip,
                                     where, held));
                }
            } else {
                log_(on_list ? Priority::notice : Priority::warning,
                     on_list
                         ? fmt::format("reputation: {} is now on the allow list {}: {}", ip, where, meaning)
                         : fmt::format("reputation: {} dropped off the allow list {} (after {} s)", ip, where,
                                       held));
            }
        }
        if (last.state != state) {
            last.state = state;
            last.since = now;
        }
    }
    if (first) {
        auto items = [](const std::vector<std::string>& v) {
            std::string s;
            for (std::size_t i = 0; i < v.size() && i < max_summary_items; ++i) s += (i ? "; " : "") + v[i];
            if (v.size() > max_summary_items) s += fmt::format("; and {} more", v.size() - max_summary_items);
            return s;
        };
        std::string line =
            fmt::format("reputation monitor: {} IPs on {} lists, every {} s: ", options_.ips.size(),
                        options_.lists.size(), options_.interval.count());
        line += listed.empty() ? "listed nowhere" : "LISTED: " + items(listed);
        if (!allowed.empty()) line += "; on allow lists: " + items(allowed);
        if (!unknown.empty()) line += "; cannot tell: " + items(unknown);
        line += fmt::format("; {} answers clean", clean);
        log_(listed.empty() && unknown.empty() ? Priority::notice : Priority::warning,
             core::printable(line, 4096));
    }
    std::lock_guard lock(mutex_);
    ++rounds_;
}

void Monitor::start() {
    if (thread_.joinable()) return;
    // The thread inherits the signal mask it is created with: all blocked, so that SIGTERM and
    // friends keep going to libmilter's signal thread.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    thread_ = std::thread([this] {
        for (;;) {
            run_once();
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
        }
    });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void Monitor::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

}  // namespace vigil::doctor
