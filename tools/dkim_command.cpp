#include "dkim_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "auth/dkim/dkim_check.hpp"
#include "auth/dkim/keys.hpp"
#include "auth/dkim/sign.hpp"
#include "auth/dkim/verify.hpp"
#include "core/clock.hpp"
#include "core/limits.hpp"
#include "core/message.hpp"
#include "dns/cache.hpp"
#include "engine/config.hpp"
#include "engine/runtime.hpp"

namespace dk = vigil::auth::dkim;

namespace {

void usage(FILE* out) {
    std::fputs(
        "usage: vigil dkim keygen --domain D --selector S --type rsa|ed25519 [--bits N] --out DIR\n"
        "       vigil dkim sign --key FILE --domain D --selector S [--algorithm rsa-sha256|ed25519-sha256]\n"
        "                       [--canon relaxed/relaxed] [--headers From:To:Subject] [--timestamp T]\n"
        "                       [--expire SECONDS] [FILE]\n"
        "       vigil dkim verify [--dns HOST:PORT] [--json] [--key-record NAME=TXT]... [FILE]\n",
        out);
}

bool read_input(const std::string& path, std::string& data) {
    if (path.empty() || path == "-") {
        data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        std::ifstream f(path, std::ios::binary);
        if (!f) {
            std::fprintf(stderr, "vigil dkim: cannot open %s\n", path.c_str());
            return false;
        }
        data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    if (data.size() > vigil::core::limits::max_check_file) {
        std::fprintf(stderr, "vigil dkim: input larger than %zu bytes\n",
                     vigil::core::limits::max_check_file);
        return false;
    }
    return true;
}

// --name value options; positional arguments collected in `rest`.
struct Args {
    std::map<std::string, std::vector<std::string>> opts;
    std::vector<std::string> rest;
    bool ok = true;
    std::string get(const std::string& k, std::string def = {}) const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second.back();
    }
    bool has(const std::string& k) const { return opts.count(k) != 0; }
};

Args parse_args(int argc, char** argv, int from, const std::vector<std::string>& flags) {
    Args a;
    for (int i = from; i < argc; ++i) {
        std::string s = argv[i];
        if (s.size() > 2 && s.rfind("--", 0) == 0) {
            if (std::find(flags.begin(), flags.end(), s) != flags.end()) {
                a.opts[s].push_back("1");
            } else if (i + 1 < argc) {
                a.opts[s].push_back(argv[++i]);
            } else {
                std::fprintf(stderr, "vigil dkim: %s needs a value\n", s.c_str());
                a.ok = false;
            }
        } else {
            a.rest.push_back(s);
        }
    }
    return a;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

int keygen(const Args& a) {
    auto domain = lower(a.get("--domain")), selector = lower(a.get("--selector")),
         type = a.get("--type", "rsa");
    auto dir = a.get("--out");
    if (!dk::valid_domain(domain) || !dk::valid_domain(selector) || dir.empty() ||
        (type != "rsa" && type != "ed25519")) {
        usage(stderr);
        return 2;
    }
    unsigned bits = static_cast<unsigned>(std::stoul(a.get("--bits", "2048")));
    if (type == "rsa" && (bits < 1024 || bits > 8192)) {
        std::fprintf(stderr, "vigil dkim keygen: --bits must be 1024..8192 (2048 recommended)\n");
        return 2;
    }
    auto kt = type == "rsa" ? dk::KeyType::rsa : dk::KeyType::ed25519;
    auto g = dk::generate_key(kt, bits);
    if (!g.error.empty()) {
        std::fprintf(stderr, "vigil dkim keygen: %s\n", g.error.c_str());
        return 1;
    }
    auto path = dir + "/" + domain + "." + selector + ".pem";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        std::fprintf(stderr, "vigil dkim keygen: cannot create %s: %s\n", path.c_str(), std::strerror(errno));
        return 1;
    }
    ::fchmod(fd, 0600);
    bool ok =
        ::write(fd, g.private_pem.data(), g.private_pem.size()) == static_cast<ssize_t>(g.private_pem.size());
    ok = (::close(fd) == 0) && ok;
    if (!ok) {
        std::fprintf(stderr, "vigil dkim keygen: cannot write %s\n", path.c_str());
        return 1;
    }
    std::fprintf(stderr, "wrote %s (mode 0600); publish this TXT record:\n", path.c_str());
    auto out = dk::key_txt_record(selector, domain, kt, g.public_b64) + "\n";
    std::fputs(out.c_str(), stdout);
    return 0;
}

int sign(const Args& a) {
    auto keyfile = a.get("--key"), domain = lower(a.get("--domain")), selector = lower(a.get("--selector"));
    if (keyfile.empty() || !dk::valid_domain(domain) || !dk::valid_domain(selector) || a.rest.size() > 1) {
        usage(stderr);
        return 2;
    }
    dk::SigningKey key;
    if (auto err = dk::load_signing_key(keyfile, key); !err.empty()) {
        std::fprintf(stderr, "vigil dkim sign: %s\n", err.c_str());
        return 1;
    }
    key.domain = domain;
    key.selector = selector;
    if (a.has("--algorithm")) {
        auto alg = a.get("--algorithm");
        auto want = alg == "rsa-sha256" ? dk::KeyType::rsa : dk::KeyType::ed25519;
        if ((alg != "rsa-sha256" && alg != "ed25519-sha256") || want != key.type) {
            std::fprintf(stderr, "vigil dkim sign: --algorithm %s does not match the %s key\n", alg.c_str(),
                         std::string(dk::to_string(key.type)).c_str());
            return 2;
        }
    }
    dk::SignParams p;
    auto canon = a.get("--canon", "relaxed/relaxed");
    auto slash = canon.find('/');
    auto ch = canon.substr(0, slash), cb = slash == std::string::npos ? "simple" : canon.substr(slash + 1);
    auto canon_of = [](const std::string& s, dk::Canon& c) {
        if (s == "simple")
            c = dk::Canon::simple;
        else if (s == "relaxed")
            c = dk::Canon::relaxed;
        else
            return false;
        return true;
    };
    if (!canon_of(ch, p.header_canon) || !canon_of(cb, p.body_canon)) {
        std::fprintf(stderr, "vigil dkim sign: --canon must be simple|relaxed[/simple|relaxed]\n");
        return 2;
    }
    if (a.has("--headers")) {
        p.headers.clear();
        std::stringstream ss(a.get("--headers"));
        for (std::string h; std::getline(ss, h, ':');) {
            if (!h.empty()) p.headers.push_back(lower(h));
        }
        std::vector<std::string> over;
        for (const auto& o : p.oversign) {
            if (std::find(p.headers.begin(), p.headers.end(), o) != p.headers.end()) over.push_back(o);
        }
        p.oversign = over;
    }
    if (std::find(p.headers.begin(), p.headers.end(), "from") == p.headers.end())
        p.headers.insert(p.headers.begin(), "from");
    p.timestamp = a.has("--timestamp") ? std::stoll(a.get("--timestamp"))
                                       : std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count();
    if (a.has("--expire")) p.expire_after = std::stoll(a.get("--expire"));
    std::string data;
    if (!read_input(a.rest.empty() ? "" : a.rest[0], data)) return 1;
    bool crlf = data.find("\r\n") != std::string::npos;
    auto m = vigil::core::parse_message(data);
    dk::Signer signer({std::make_shared<const dk::SigningKey>(std::move(key))}, p);
    signer.body(m.body);
    auto out = signer.finish(dk::header_refs(m.headers));
    if (!out.error.empty()) {
        std::fprintf(stderr, "vigil dkim sign: %s\n", out.error.c_str());
        return 1;
    }
    std::string msg;
    for (const auto& v : out.values) msg += "DKIM-Signature:" + v + "\r\n";
    for (const auto& h : m.headers) msg += h.name + ":" + h.value + "\r\n";
    msg += "\r\n" + m.body;
    if (!crlf) {
        std::string lf;
        lf.reserve(msg.size());
        for (std::size_t i = 0; i < msg.size(); ++i) {
            if (msg[i] == '\r' && i + 1 < msg.size() && msg[i + 1] == '\n') continue;
            lf += msg[i];
        }
        msg = std::move(lf);
    }
    std::fwrite(msg.data(), 1, msg.size(), stdout);
    return 0;
}

int verify(const Args& a, const std::shared_ptr<const vigil::engine::Config>& config) {
    if (a.rest.size() > 1) {
        usage(stderr);
        return 2;
    }
    dk::VerifyOptions opts;
    for (const auto& c : config->checks) {
        if (const auto* d = dynamic_cast<const dk::DkimCheck*>(c.get())) opts = d->options().verify_options;
    }
    std::map<std::string, std::string> records;  // offline key records (tests, debugging)
    if (a.has("--key-record")) {
        for (const auto& kv : a.opts.at("--key-record")) {
            auto eq = kv.find('=');
            if (eq == std::string::npos) {
                std::fprintf(stderr, "vigil dkim verify: --key-record NAME=TXT\n");
                return 2;
            }
            records[lower(kv.substr(0, eq))] = kv.substr(eq + 1);
        }
    }
    std::string data;
    if (!read_input(a.rest.empty() ? "" : a.rest[0], data)) return 1;
    auto m = vigil::core::parse_message(data);
    auto refs = dk::header_refs(m.headers);
    dk::Verifier v(opts);
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    v.begin(refs, now);
    v.body(m.body);

    std::unique_ptr<vigil::engine::Runtime> runtime;
    std::optional<dk::KeyFetcher> fetcher;
    auto budget = config->dns.stage_budget;
    auto key_names = v.key_names();
    bool need_dns = std::any_of(key_names.begin(), key_names.end(),
                                [&](const std::string& n) { return !records.count(n); });
    if (need_dns) {
        vigil::engine::DnsSettings dns_config = config->dns;
        if (a.has("--dns")) dns_config.server = a.get("--dns");
        try {
            runtime = std::make_unique<vigil::engine::Runtime>(dns_config);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "vigil dkim verify: %s\n", e.what());
            return 1;
        }
        fetcher.emplace(runtime->cache(), &runtime->cache());
        for (const auto& n : key_names) {
            if (!records.count(n)) fetcher->start(n);
        }
    }
    auto deadline = std::chrono::steady_clock::now() + budget;
    auto results = v.finish(refs, [&](const std::string& name) -> dk::KeyOutcome {
        if (auto it = records.find(name); it != records.end()) {
            vigil::dns::Answer ans;
            ans.status = vigil::dns::Status::answer;
            vigil::dns::Record r;
            r.type = vigil::dns::RrType::txt;
            r.txt = {it->second};
            ans.records.push_back(r);
            return dk::key_from_answer(ans);
        }
        return fetcher->get(name, deadline);
    });
    bool any_pass = false;
    if (a.has("--json")) {
        std::string json = "{\"signatures\": [";
        for (std::size_t i = 0; i < results.size(); ++i) {
            if (i) json += ", ";
            json += dk::json_of(results[i]);
        }
        json += "]}\n";
        std::fputs(json.c_str(), stdout);
    } else if (results.empty()) {
        std::puts("dkim=none");
    }
    for (const auto& r : results) {
        if (!a.has("--json")) std::puts(dk::auth_result_text(r).c_str());
        any_pass = any_pass || r.result == dk::Result::pass;
    }
    return any_pass ? 0 : 1;
}

}  // namespace

int dkim_command(int argc, char** argv, std::shared_ptr<const vigil::engine::Config> config) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    std::string sub = argv[1];
    if (sub == "-h" || sub == "--help" || sub == "help") {
        usage(stdout);
        return 0;
    }
    auto a = parse_args(argc, argv, 2, {"--json", "--help"});
    if (!a.ok) return 2;
    if (a.has("--help")) {
        usage(stdout);
        return 0;
    }
    try {
        if (sub == "keygen") return keygen(a);
        if (sub == "sign") return sign(a);
        if (sub == "verify") return verify(a, config);
    } catch (const std::invalid_argument&) {
        std::fprintf(stderr, "vigil dkim %s: a numeric option is not a number\n", sub.c_str());
        return 2;
    } catch (const std::out_of_range&) {
        std::fprintf(stderr, "vigil dkim %s: a numeric option is out of range\n", sub.c_str());
        return 2;
    }
    usage(stderr);
    return 2;
}
