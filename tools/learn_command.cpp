#include "tools/learn_command.hpp"

#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "content/bayes/bayes.hpp"
#include "core/clock.hpp"
#include "core/limits.hpp"
#include "core/printable.hpp"
#include "mime/parse.hpp"
#include "state/bayes/lmdb_store.hpp"

namespace fs = std::filesystem;
namespace bayes = vigil::content::bayes;

namespace vigil::tools {

namespace {

constexpr const char* default_state_dir = "/var/lib/vigil";
constexpr const char* store_file = "bayes.lmdb";
// Messages learned per store transaction: one fsync per batch, not per message.
constexpr std::size_t learn_batch_size = 200;

void learn_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: vigil learn --spam|--ham|--forget [--store PATH] [--verbose] FILE|DIR...\n"
                 "       vigil learn --expire [--store PATH] [--rare-age-days N] [--max-tokens N]\n"
                 "       vigil learn --stats [--store PATH]\n"
                 "       vigil learn --dump-tokens FILE\n"
                 "  teach the Bayes filter: each FILE is a message (an mbox \"From \" line first is fine)\n"
                 "  or an mbox of several; a DIR means every file in it. Learning a message twice is a\n"
                 "  no-op, learning it as the other class moves it, --forget takes it out.\n"
                 "  --expire removes tokens seen in one message only and not learned for N days\n"
                 "  (default 30), then the least recently learned beyond --max-tokens (default\n"
                 "  2000000). The running daemon sees every change at its next message.\n"
                 "  --store defaults to <[server] state_dir>/bayes.lmdb (state_dir /var/lib/vigil).\n"
                 "  --map-size MIB bounds the store file (default 512; a larger value grows it).\n");
}

std::string state_dir_from(const std::string& config_path, bool explicit_config) {
    if (!explicit_config && access(config_path.c_str(), R_OK) != 0) return default_state_dir;
    auto tbl = toml::parse_file(config_path);  // throws on a broken file: main() reports it
    return tbl["server"]["state_dir"].value_or(std::string(default_state_dir));
}

bool read_whole(const fs::path& p, std::string& out, std::string& error) {
    std::ifstream f(p, std::ios::binary);
    if (!f) {
        error = std::strerror(errno);
        return false;
    }
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    if (!ec && size > core::limits::max_check_file) {
        error = "larger than 256 MiB";
        return false;
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}

// An mbox holds several messages, each starting with a "From " line after an empty line. A file
// with one leading "From " line is one message.
std::vector<std::string_view> split_mbox(std::string_view data) {
    std::vector<std::string_view> out;
    if (data.rfind("From ", 0) != 0) {
        out.push_back(data);
        return out;
    }
    std::size_t start = 0;
    std::size_t pos = 0;
    while ((pos = data.find("\n\nFrom ", pos)) != std::string_view::npos) {
        out.push_back(data.substr(start, pos + 1 - start));
        start = pos + 2;
        pos = start;
    }
    out.push_back(data.substr(start));
    return out;
}

// Files named on the command line, directories expanded to their regular files (sorted).
bool collect(const std::vector<std::string>& args, std::vector<fs::path>& files) {
    bool ok = true;
    for (const auto& a : args) {
        std::error_code ec;
        if (fs::is_directory(a, ec)) {
            std::vector<fs::path> in_dir;
            for (const auto& e : fs::directory_iterator(a, ec)) {
                if (e.is_regular_file() && e.path().filename().string().rfind('.', 0) != 0)
                    in_dir.push_back(e.path());
            }
            if (ec) {
                std::fprintf(stderr, "vigil learn: cannot read directory %s: %s\n",
                             core::printable(a).c_str(), ec.message().c_str());
                ok = false;
            }
            std::sort(in_dir.begin(), in_dir.end());
            files.insert(files.end(), in_dir.begin(), in_dir.end());
        } else if (fs::is_regular_file(a, ec)) {
            files.emplace_back(a);
        } else {
            std::fprintf(stderr, "vigil learn: %s: no such file or directory\n", core::printable(a).c_str());
            ok = false;
        }
    }
    return ok;
}

// Store files created by root in a state directory that belongs to the daemon's user are handed
// to that user: the daemon (and LMDB's lock file, which readers write too) must be able to open them.
void give_to_state_dir_owner(const std::string& path) {
    if (geteuid() != 0) return;
    struct stat dir {};
    fs::path parent = fs::path(path).parent_path();
    if (parent.empty()) parent = ".";
    if (stat(parent.c_str(), &dir) != 0 || dir.st_uid == 0) return;
    for (const std::string& f : {path, path + "-lock"}) {
        struct stat st {};
        if (stat(f.c_str(), &st) == 0 && st.st_uid == 0 && chown(f.c_str(), dir.st_uid, dir.st_gid) != 0)
            std::fprintf(stderr, "vigil learn: warning: cannot give %s to uid %u: %s\n", f.c_str(),
                         static_cast<unsigned>(dir.st_uid), std::strerror(errno));
    }
}

}  // namespace

int learn_command(int argc, char** argv, const std::string& config_path, bool explicit_config) {
    enum class Mode { none, spam, ham, forget, expire, stats, dump };
    Mode mode = Mode::none;
    std::string store_path, dump_file;
    bool verbose = false;
    std::size_t map_mib = 512;
    state::bayes::ExpirePolicy expire;
    static const option opts[] = {{"spam", no_argument, nullptr, 's'},
                                  {"ham", no_argument, nullptr, 'H'},
                                  {"forget", no_argument, nullptr, 'f'},
                                  {"expire", no_argument, nullptr, 'e'},
                                  {"stats", no_argument, nullptr, 'S'},
                                  {"dump-tokens", no_argument, nullptr, 'd'},
                                  {"store", required_argument, nullptr, 'p'},
                                  {"map-size", required_argument, nullptr, 'M'},
                                  {"rare-age-days", required_argument, nullptr, 'a'},
                                  {"max-tokens", required_argument, nullptr, 'x'},
                                  {"verbose", no_argument, nullptr, 'v'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    optind = 1;
    int c;
    auto set_mode = [&](Mode m) {
        if (mode != Mode::none && mode != m) {
            std::fprintf(stderr,
                         "vigil learn: choose one of --spam, --ham, --forget, --expire, --stats, "
                         "--dump-tokens\n");
            return false;
        }
        mode = m;
        return true;
    };
    while ((c = getopt_long(argc, argv, "vh", opts, nullptr)) != -1) {
        bool ok = true;
        switch (c) {
            case 's':
                ok = set_mode(Mode::spam);
                break;
            case 'H':
                ok = set_mode(Mode::ham);
                break;
            case 'f':
                ok = set_mode(Mode::forget);
                break;
            case 'e':
                ok = set_mode(Mode::expire);
                break;
            case 'S':
                ok = set_mode(Mode::stats);
                break;
            case 'd':
                ok = set_mode(Mode::dump);
                break;
            case 'p':
                store_path = optarg;
                break;
            case 'M':
                map_mib = std::strtoull(optarg, nullptr, 10);
                ok = map_mib >= 1 && map_mib <= (std::size_t{1} << 20);
                break;
            case 'a':
                expire.rare_age_days = static_cast<std::uint32_t>(std::strtoul(optarg, nullptr, 10));
                break;
            case 'x':
                expire.max_tokens = std::strtoull(optarg, nullptr, 10);
                break;
            case 'v':
                verbose = true;
                break;
            case 'h':
                learn_usage(stdout);
                return 0;
            default:
                ok = false;
        }
        if (!ok) {
            learn_usage(stderr);
            return 2;
        }
    }
    std::vector<std::string> args(argv + optind, argv + argc);
    bool takes_files = mode == Mode::spam || mode == Mode::ham || mode == Mode::forget || mode == Mode::dump;
    if (mode == Mode::none || (takes_files && args.empty()) || (!takes_files && !args.empty()) ||
        (mode == Mode::dump && args.size() != 1)) {
        learn_usage(stderr);
        return 2;
    }

    auto tokenizer = std::make_shared<const bayes::Tokenizer>();
    if (mode == Mode::dump) {
        std::string data, error;
        if (!read_whole(args[0], data, error)) {
            std::fprintf(stderr, "vigil learn: %s: %s\n", core::printable(args[0]).c_str(), error.c_str());
            return 1;
        }
        std::vector<std::string> texts;
        auto parsed = mime::parse_raw(data);
        auto list = tokenizer->tokenize_with_text(parsed, texts);
        std::printf("message id %s, %zu tokens%s\n", bayes::message_id(parsed).hex().c_str(),
                    list.tokens.size(), list.truncated ? " (truncated)" : "");
        for (std::size_t i = 0; i < texts.size(); ++i)
            std::printf("%016llx %s\n", static_cast<unsigned long long>(list.tokens[i].hash),
                        core::printable(texts[i], 200).c_str());
        return 0;
    }

    if (store_path.empty())
        store_path = (fs::path(state_dir_from(config_path, explicit_config)) / store_file).string();
    state::bayes::LmdbStoreOptions so;
    so.path = store_path;
    so.map_size = map_mib << 20;
    so.tokenizer_id = tokenizer->id();
    so.read_only = mode == Mode::stats;
    std::unique_ptr<state::bayes::LmdbStore> store;
    auto st = state::bayes::LmdbStore::open(so, store);
    if (!st.ok()) {
        std::fprintf(stderr, "vigil learn: %s\n", st.message().c_str());
        return 2;
    }
    if (!so.read_only) give_to_state_dir_owner(store_path);
    const auto& clock = core::SystemClock::instance();

    if (mode == Mode::stats) {
        state::bayes::LmdbStoreStats s;
        if (!(st = store->stats(s)).ok()) {
            std::fprintf(stderr, "vigil learn: %s\n", st.message().c_str());
            return 2;
        }
        std::printf("store: %s\n", store_path.c_str());
        std::printf("learned: %llu spam, %llu ham (%llu message records)\n",
                    static_cast<unsigned long long>(s.totals.spam),
                    static_cast<unsigned long long>(s.totals.ham),
                    static_cast<unsigned long long>(s.messages));
        std::printf("tokens: %llu\n", static_cast<unsigned long long>(s.tokens));
        std::printf("file: %.1f MiB used of a %.1f MiB map\n", s.env.used_bytes / 1048576.0,
                    s.env.map_size / 1048576.0);
        std::printf("tokenizer: %s\n", s.tokenizer_id.c_str());
        return 0;
    }
    if (mode == Mode::expire) {
        auto days =
            std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count() / 86400;
        state::bayes::ExpireResult r;
        if (!(st = store->expire(expire, static_cast<std::uint32_t>(days), r)).ok()) {
            std::fprintf(stderr, "vigil learn: expire: %s\n", st.message().c_str());
            return 2;
        }
        std::printf(
            "expire: %llu tokens, removed %llu rare (older than %u days) and %llu least recently "
            "learned; %llu left\n",
            static_cast<unsigned long long>(r.before), static_cast<unsigned long long>(r.removed_rare),
            expire.rare_age_days, static_cast<unsigned long long>(r.removed_old),
            static_cast<unsigned long long>(r.after));
        return 0;
    }

    bayes::Label to = mode == Mode::spam  ? bayes::Label::spam
                      : mode == Mode::ham ? bayes::Label::ham
                                          : bayes::Label::none;
    bayes::Filter filter(tokenizer, *store, clock);
    std::vector<fs::path> files;
    int rc = collect(args, files) ? 0 : 1;
    std::size_t counts[7] = {};
    std::vector<mime::ParsedMessage> batch;
    std::vector<std::string> names;
    auto flush = [&]() -> bool {
        if (batch.empty()) return true;
        std::vector<const mime::ParsedMessage*> ptrs;
        for (const auto& m : batch) ptrs.push_back(&m);
        bayes::StoreResult err;
        auto outcomes = filter.learn_batch(ptrs, to, err);
        if (!err.ok()) {
            std::fprintf(stderr, "vigil learn: %s\n", err.detail.c_str());
            return false;
        }
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            ++counts[static_cast<int>(outcomes[i])];
            if (verbose)
                std::printf("%s: %s\n", core::printable(names[i], 200).c_str(),
                            std::string(bayes::to_string(outcomes[i])).c_str());
        }
        batch.clear();
        names.clear();
        return true;
    };
    for (const auto& f : files) {
        std::string data, error;
        if (!read_whole(f, data, error)) {
            std::fprintf(stderr, "vigil learn: %s: %s\n", core::printable(f.string()).c_str(), error.c_str());
            rc = 1;
            continue;
        }
        auto messages = split_mbox(data);
        for (std::size_t i = 0; i < messages.size(); ++i) {
            batch.push_back(mime::parse_raw(messages[i]));
            names.push_back(messages.size() > 1 ? f.string() + "#" + std::to_string(i + 1) : f.string());
            if (batch.size() >= learn_batch_size && !flush()) return 2;
        }
    }
    if (!flush()) return 2;
    using O = bayes::LearnOutcome;
    auto n = [&](O o) { return counts[static_cast<int>(o)]; };
    if (to == bayes::Label::none) {
        std::printf("forgot %zu messages (%zu were not learned)\n", n(O::forgotten), n(O::not_learned));
    } else {
        std::printf("learned %zu messages as %s (%zu new, %zu moved from %s, %zu already learned)\n",
                    n(O::learned) + n(O::relearned) + n(O::already_learned),
                    to == bayes::Label::spam ? "spam" : "ham", n(O::learned), n(O::relearned),
                    to == bayes::Label::spam ? "ham" : "spam", n(O::already_learned));
    }
    return rc;
}

}  // namespace vigil::tools
