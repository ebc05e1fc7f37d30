#pragma once
// The benchmark's mail: a reproducible corpus (fixed seed) in five sizes and four signing kinds, signed
// with Vigil's own signer under keys generated at run time, and the DNS zone that makes every check of
// a message pass (DKIM keys, SPF, DMARC, block-list answers, PTR + forward names for iprev and HELO).
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::bench {

enum class Kind { plain, rsa, ed25519, dual };
std::string_view to_string(Kind k);
std::optional<Kind> parse_kind(std::string_view s);

struct HeaderField {
    std::string name;
    // Bytes after the colon, leading space kept, folded lines joined by a bare LF: what Postfix
    // hands a filter (before it strips one space unless HDR_LEADSPC was negotiated).
    std::string value;
};

struct Message {
    Kind kind = Kind::plain;
    std::size_t size = 0;  // size class: bytes of the unsigned message
    int variant = 0;
    std::string domain;  // From, MAIL FROM and d= domain
    std::string mail_from, rcpt;
    std::vector<HeaderField> headers;
    std::string body;  // CRLF lines
    std::string raw;   // the whole message as a file would hold it
};

// A client as the filter sees it at CONNECT: its address, and the name its PTR gives (which resolves
// back to it, so iprev passes); it says the same name in HELO.
struct Client {
    std::string ip, name;
};

struct CorpusSpec {
    std::uint64_t seed = 20260801;
    int variants = 8;  // distinct messages per (size, kind); each from its own sender domain
    int clients = 8;
    std::vector<std::size_t> sizes = {2048, 4096, 16384, 102400, 1048576};
    std::vector<Kind> kinds = {Kind::plain, Kind::rsa, Kind::ed25519, Kind::dual};
};

class Corpus {
  public:
    // Generates the keys (RSA-2048 and Ed25519, fresh each run) and every message. Throws on failure.
    explicit Corpus(const CorpusSpec& spec);

    const std::vector<Message>& cell(std::size_t size, Kind kind) const;
    const std::vector<Client>& clients() const { return clients_; }
    const std::vector<std::string>& domains() const { return domains_; }
    // Writes the zone files (forward zone bench.example, reverse zone of the clients) into `dir`; returns
    // their paths.
    std::vector<std::string> write_zones(const std::string& dir) const;
    // Writes every message as DIR/<size>-<kind>-<variant>.eml.
    void write_messages(const std::string& dir) const;

    // Not under .test: libunbound (OpenDKIM's resolver) answers .test itself unless configured with a
    // file, and OpenDKIM parses that file once per message, which crashes under concurrency.
    static constexpr const char* kZone = "bench.example";
    static constexpr const char* kBlockList = "bl.bench.example";
    static constexpr const char* kAllowList = "wl.bench.example";
    static constexpr const char* kOurHost = "mx.bench.example";

  private:
    std::vector<std::string> domains_;
    std::vector<Client> clients_;
    std::string rsa_public_, ed_public_;
    std::map<std::pair<std::size_t, Kind>, std::vector<Message>> cells_;
};

// "2k", "4k", "100k", "1m", "4096" -> bytes; nullopt when malformed.
std::optional<std::size_t> parse_size(std::string_view s);
std::string size_label(std::size_t bytes);

}  // namespace vigil::bench
