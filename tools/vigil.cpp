// vigil: the command line. `vigil check` runs the milter's engine on a message file.
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/limits.hpp"
#include "core/printable.hpp"
#include "engine/config.hpp"
#include "engine/replay.hpp"
#include "engine/runtime.hpp"
#include "tools/dkim_command.hpp"
#include "tools/dmarc_command.hpp"
#include "tools/doctor_command.hpp"
#include "tools/learn_command.hpp"
#include "tools/spf_command.hpp"

namespace {

using vigil::core::json_escape;

constexpr const char* default_config = "/etc/vigil/vigil.conf";

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: vigil [--config FILE] [--dns HOST:PORT] COMMAND [options]\n"
        "commands:\n"
        "  check [--ip IP] [--helo NAME] [--mail-from ADDR] [--rcpt ADDR]... [--auth-user USER]\n"
        "        [--queue-id ID] [--authserv-id ID] [--json] [FILE]\n"
        "        run the milter's checks on a message (FILE or stdin) and print the verdict\n"
        "  symbols [--json]   list every symbol with its weight and meaning\n"
        "  spf --ip IP --mail-from ADDR --helo NAME [--json]   evaluate SPF (RFC 7208)\n"
        "  dkim keygen|sign|verify ...   DKIM keys, signing and verification (`vigil dkim --help`)\n"
        "  doctor [--domain D]... [--ip IP]... [--json]   check this server's reputation and DNS\n"
        "        set-up (`vigil doctor --help`); exit status 0 ok, 1 warn, 2 fail\n"
        "  dmarc report [--since T] [--until T] [--domain D] [--out DIR] [--send]   DMARC aggregate\n"
        "        reports from the milter's store (`vigil dmarc --help`)\n"
        "  learn --spam|--ham|--forget FILE|DIR...   teach the Bayes filter (`vigil learn --help`)\n"
        "Without --config, %s is used when it exists, else the built-in defaults.\n",
        default_config);
}

std::string read_all(std::istream& in) {
    std::string data;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        data.append(buf, static_cast<std::size_t>(in.gcount()));
        if (data.size() > vigil::core::limits::max_check_file)
            throw std::runtime_error("message larger than 256 MiB");
    }
    return data;
}

std::shared_ptr<const vigil::engine::Config> load(const std::string& path, bool explicit_path,
                                                  const vigil::engine::Overrides& ov) {
    if (explicit_path || access(path.c_str(), R_OK) == 0) return vigil::engine::load_config_file(path, ov);
    return vigil::engine::load_config_string("", "<defaults>", ov);
}

std::string display_value(const std::string& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') continue;
        out += v[i];
    }
    return out;
}

std::string edit_json(const vigil::core::HeaderEdit& e) {
    return fmt::format("{{\"name\":\"{}\",\"value\":\"{}\"}}", json_escape(e.name),
                       json_escape(vigil::core::trim(display_value(e.value))));
}

int cmd_check(int argc, char** argv, const std::string& config_path, bool explicit_config,
              vigil::engine::Overrides ov) {
    vigil::engine::ReplayInput in;
    bool json = false;
    static const option opts[] = {{"ip", required_argument, nullptr, 'i'},
                                  {"helo", required_argument, nullptr, 'H'},
                                  {"mail-from", required_argument, nullptr, 'm'},
                                  {"rcpt", required_argument, nullptr, 'r'},
                                  {"auth-user", required_argument, nullptr, 'u'},
                                  {"queue-id", required_argument, nullptr, 'q'},
                                  {"authserv-id", required_argument, nullptr, 'a'},
                                  {"dns", required_argument, nullptr, 'D'},
                                  {"json", no_argument, nullptr, 'j'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, nullptr)) != -1) {
        switch (c) {
            case 'i':
                in.ip = vigil::core::IpAddress::parse(optarg);
                if (!in.ip) {
                    std::fprintf(stderr, "vigil check: --ip %s is not an IP address\n", optarg);
                    return 2;
                }
                break;
            case 'H':
                in.helo = optarg;
                break;
            case 'm':
                in.mail_from = optarg;
                break;
            case 'r':
                in.rcpts.emplace_back(optarg);
                break;
            case 'u':
                in.auth_user = optarg;
                break;
            case 'q':
                in.queue_id = optarg;
                break;
            case 'a':
                ov.authserv_id = optarg;
                break;
            case 'D':
                ov.dns_server = optarg;
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                usage(stdout);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return 2;
    }
    auto config = load(config_path, explicit_config, ov);
    std::string data;
    if (optind < argc && std::string(argv[optind]) != "-") {
        std::ifstream f(argv[optind], std::ios::binary);
        if (!f) {
            std::fprintf(stderr, "vigil check: cannot open %s\n", argv[optind]);
            return 2;
        }
        data = read_all(f);
    } else {
        data = read_all(std::cin);
    }
    if (in.rcpts.empty()) in.rcpts.emplace_back("postmaster@localhost");
    in.message = data;
    in.client_name = in.ip ? "unknown" : "localhost";

    vigil::engine::Runtime runtime(config->dns);
    vigil::engine::Session session(config, runtime.services());
    auto r = vigil::engine::replay(session, in);

    using vigil::core::Action;
    using Kind = vigil::core::HeaderEdit::Kind;
    std::string action, reply;
    if (r.refused_at) {
        action = r.refusal.kind == vigil::engine::StageResult::Kind::reject ? "reject" : "tempfail";
        reply = fmt::format("{} {} {}", r.refusal.reply.code, r.refusal.reply.xcode, r.refusal.reply.text);
    } else {
        action = std::string(vigil::core::to_string(r.verdict.action));
        if (r.verdict.reply)
            reply =
                fmt::format("{} {} {}", r.verdict.reply->code, r.verdict.reply->xcode, r.verdict.reply->text);
    }
    const auto& v = r.verdict;
    if (json) {
        std::string symbols, headers, removed, refused;
        for (const auto& s : v.symbols) {
            std::string opts;
            for (const auto& o : s.options)
                opts += fmt::format("{}\"{}\"", opts.empty() ? "" : ",", json_escape(o));
            symbols += fmt::format("{}{{\"name\":\"{}\",\"score\":{:.2f},\"options\":[{}]}}",
                                   symbols.empty() ? "" : ",", s.name, s.score, opts);
        }
        for (const auto& e : v.edits) {
            if (e.kind == Kind::remove) {
                removed += fmt::format("{}{{\"name\":\"{}\",\"index\":{}}}", removed.empty() ? "" : ",",
                                       json_escape(e.name), e.index);
            } else {
                headers += (headers.empty() ? "" : ",") + edit_json(e);
            }
        }
        for (const auto& [rcpt, rr] : r.refused_rcpts) {
            refused +=
                fmt::format("{}{{\"rcpt\":\"{}\",\"smtp_reply\":\"{} {} {}\"}}", refused.empty() ? "" : ",",
                            json_escape(rcpt), rr.reply.code, rr.reply.xcode, json_escape(rr.reply.text));
        }
        std::string forced = "null";
        if (v.forced) {
            forced = fmt::format("{{\"action\":\"{}\",\"by\":\"{}\",\"reason\":\"{}\"}}",
                                 vigil::core::to_string(v.forced->action), v.forced->check,
                                 json_escape(v.forced->reason));
        }
        std::string warnings;
        for (const auto& w : v.warnings)
            warnings += fmt::format("{}\"{}\"", warnings.empty() ? "" : ",", json_escape(w));
        // Per-method objects from the checks ("spf", "dkim", "dnsbl", ...); a key added twice becomes a list.
        std::string reports;
        std::vector<std::string> seen;
        for (const auto& [key, value] : v.reports) {
            if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
            seen.push_back(key);
            std::vector<std::string> values;
            for (const auto& [k2, v2] : v.reports) {
                if (k2 == key) values.push_back(v2);
            }
            std::string joined = values.size() == 1 ? values[0] : "[";
            if (values.size() > 1) {
                for (std::size_t n = 0; n < values.size(); ++n) joined += (n ? "," : "") + values[n];
                joined += "]";
            }
            reports += fmt::format(",\"{}\":{}", json_escape(key), joined);
        }
        std::printf(
            "{\"action\":\"%s\",\"score\":%.2f,\"reject_score\":%.2f,\"direction\":\"%s\",\"symbols\":[%s],"
            "\"headers\":[%s],\"removed_headers\":[%s],\"forced\":%s,\"refused_rcpts\":[%s],\"warnings\":[%s]"
            "%s%s%s}\n",
            action.c_str(), v.score, v.reject_threshold,
            std::string(vigil::core::to_string(r.envelope.direction)).c_str(), symbols.c_str(),
            headers.c_str(), removed.c_str(), forced.c_str(), refused.c_str(), warnings.c_str(),
            reply.empty() ? "" : fmt::format(",\"smtp_reply\":\"{}\"", json_escape(reply)).c_str(),
            r.refused_at ? fmt::format(",\"stage\":\"{}\"", *r.refused_at).c_str() : "", reports.c_str());
        return 0;
    }
    if (r.refused_at) {
        std::printf("refused at %s: %s\n", r.refused_at->c_str(), reply.c_str());
        std::printf("reason: %s\n", vigil::core::printable(r.refusal.reason).c_str());
        return 0;
    }
    for (const auto& e : v.edits) {
        if (e.kind == Kind::remove) {
            std::printf("(removed: %s #%d, %s)\n", e.name.c_str(), e.index,
                        vigil::core::iequals(e.name, "Authentication-Results")
                            ? "it claims our authserv-id"
                            : "the sender's own, [headers] remove_incoming");
        } else {
            std::printf("%s:%s\n", e.name.c_str(), display_value(e.value).c_str());
        }
    }
    for (const auto& [rcpt, rr] : r.refused_rcpts) {
        std::printf("recipient %s refused: %s %s %s\n", vigil::core::printable(rcpt).c_str(),
                    rr.reply.code.c_str(), rr.reply.xcode.c_str(), rr.reply.text.c_str());
    }
    for (const auto& w : v.warnings) std::printf("warning: %s\n", vigil::core::printable(w, 512).c_str());
    std::printf("action: %s\n", action.c_str());
    if (!reply.empty()) std::printf("smtp reply: %s\n", reply.c_str());
    if (v.forced)
        std::printf("forced by %s: %s\n", v.forced->check.c_str(),
                    vigil::core::printable(v.forced->reason).c_str());
    std::printf("score: %.2f (reject at %.2f)\n", v.score, v.reject_threshold);
    std::printf("symbols:%s\n", v.symbols.empty() ? " none" : "");
    for (const auto& s : v.symbols) {
        std::string opts;
        for (const auto& o : s.options) opts += (opts.empty() ? "" : ", ") + vigil::core::printable(o, 80);
        const auto* def = session.config().symbol(s.name);
        std::printf("  %-24s %7.2f  %s%s%s\n", s.name.c_str(), s.score, def ? def->description.c_str() : "",
                    opts.empty() ? "" : " | ", opts.c_str());
    }
    return 0;
}

int cmd_symbols(int argc, char** argv, const std::shared_ptr<const vigil::engine::Config>& config) {
    bool json = argc > 1 && std::string(argv[1]) == "--json";
    std::string out;
    for (const auto& [name, def] : config->symbols) {
        if (json) {
            out +=
                fmt::format("{}{{\"name\":\"{}\",\"weight\":{:.2f},\"description\":\"{}\"}}",
                            out.empty() ? "" : ",", name, config->weight(name), json_escape(def.description));
        } else {
            out += fmt::format("{:<24} {:7.2f}  {}\n", name, config->weight(name), def.description);
        }
    }
    std::printf(json ? "[%s]\n" : "%s", out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path = default_config;
    bool explicit_config = false;
    vigil::engine::Overrides ov;
    int i = 1;
    // Global options come before the command.
    for (; i < argc && argv[i][0] == '-'; ++i) {
        std::string a = argv[i];
        if ((a == "--config" || a == "-c") && i + 1 < argc) {
            config_path = argv[++i];
            explicit_config = true;
        } else if (a == "--dns" && i + 1 < argc) {
            ov.dns_server = argv[++i];
        } else if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    std::string cmd = argv[i];
    try {
        if (cmd == "check") return cmd_check(argc - i, argv + i, config_path, explicit_config, ov);
        if (cmd == "symbols") return cmd_symbols(argc - i, argv + i, load(config_path, explicit_config, ov));
        if (cmd == "spf")
            return vigil::tools::spf_command(argc - i, argv + i, load(config_path, explicit_config, ov));
        if (cmd == "dkim") return dkim_command(argc - i, argv + i, load(config_path, explicit_config, ov));
        if (cmd == "doctor")
            return vigil::tools::doctor_command(argc - i, argv + i, config_path, explicit_config, ov);
        if (cmd == "dmarc")
            return vigil::tools::dmarc_command(argc - i, argv + i, config_path, explicit_config, ov);
        if (cmd == "learn")
            return vigil::tools::learn_command(argc - i, argv + i, config_path, explicit_config);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vigil %s: %s\n", cmd.c_str(), e.what());
        return 2;
    }
    std::fprintf(stderr, "vigil: unknown command '%s'\n", cmd.c_str());
    usage(stderr);
    return 2;
}
