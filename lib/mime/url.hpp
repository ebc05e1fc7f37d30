#pragma once
// URLs for content checks: found in plain text (scheme URLs, "www." forms, bare domain/path forms),
// and the host of any URL normalised the way a browser resolves it (user info dropped, lowercase,
// percent-escapes undone, IDNs as A-labels via libidn2, decimal/octal/hex IPv4 forms as dotted quads).
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::mime {

struct UrlHost {
    std::string host;
    bool is_ip = false;
};

// The host of an absolute http/https/ftp URL, or nullopt (another scheme, no host, bad characters).
std::optional<UrlHost> url_host(std::string_view url);

// An IPv4 address in any form WHATWG's URL parser accepts (1 to 4 parts, each decimal, 0x-hex or
// 0-octal; the last part fills the remaining bytes): "3232235777", "0xC0.0250.1.1". Dotted quad.
std::optional<std::string> normalize_ipv4(std::string_view host);

// Every URL in plain text, in order: "http://", "https://", "ftp://" (any case), "www." and "ftp."
// prefixes (a scheme added), and bare "domain.tld/path" where the last label is a public suffix.
// E-mail addresses are not URLs. `emit` receives the URL (with scheme) and returns false to stop.
void find_text_urls(std::string_view text, const std::function<bool(std::string_view url)>& emit);

// The URL an HTML attribute value points to, or nullopt: white space trimmed and tabs/newlines
// removed as browsers do; http/https/ftp kept; "//host" and "www." given "http:"; relative references
// resolved against `base` when it is an absolute http(s) URL; other schemes (mailto:, cid:,
// javascript:) dropped.
std::optional<std::string> html_url(std::string_view value, std::string_view base);

// Registrable domain (public suffix + 1 label, from the system Public Suffix List) of a normalised
// host; the host itself when it has none (an IP address, a bare suffix).
std::string registrable_domain(const std::string& host);

// A hostname named by display text: the host of the first URL in it, or the whole text when it is
// itself a domain name with a public suffix ("paypal.com"). Empty when the text names no host.
std::string host_named_by(std::string_view text);

}  // namespace vigil::mime
