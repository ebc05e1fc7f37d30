#pragma once
// IP addresses and CIDR networks, parsed from text the peer or the operator supplies.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr;

namespace vigil::core {

class IpAddress {
  public:
    enum class Family : std::uint8_t { v4, v6 };

    IpAddress() = default;
    static IpAddress v4(std::array<std::uint8_t, 4> bytes);
    static IpAddress v6(std::array<std::uint8_t, 16> bytes);
    // Accepts dotted quad, RFC 4291 text, and an optional surrounding "[...]" or "IPv6:" prefix as
    // found in SMTP address literals. Returns nullopt for anything else.
    static std::optional<IpAddress> parse(std::string_view text);
    static std::optional<IpAddress> from_sockaddr(const sockaddr* sa);

    Family family() const { return family_; }
    bool is_v4() const { return family_ == Family::v4; }
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as the IPv4 address it carries,
    // as RFC 7208 §5 and every block list expect.
    IpAddress unmapped() const;
    const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }  // v4 uses the first 4
    std::size_t size() const { return is_v4() ? 4 : 16; }

    std::string to_string() const;
    // Reverse-lookup labels: "4.3.2.1" for v4, nibbles for v6 (no trailing zone).
    std::string reverse_labels() const;

    friend bool operator==(const IpAddress&, const IpAddress&) = default;

  private:
    Family family_ = Family::v4;
    std::array<std::uint8_t, 16> bytes_{};
};

class Cidr {
  public:
    // "192.0.2.0/24", "2001:db8::/32", or a bare address (host route). Host bits must be zero
    // unless `strict` is false (then they are masked off).
    static std::optional<Cidr> parse(std::string_view text, bool strict = true);
    Cidr(IpAddress network, unsigned prefix);

    bool contains(const IpAddress& ip) const;
    const IpAddress& network() const { return network_; }
    unsigned prefix() const { return prefix_; }
    std::string to_string() const;

  private:
    IpAddress network_;
    unsigned prefix_;
};

}  // namespace vigil::core
