#include "core/ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace vigil::core {

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> b) {
    IpAddress ip;
    ip.family_ = Family::v4;
    std::memcpy(ip.bytes_.data(), b.data(), 4);
    return ip;
}

IpAddress IpAddress::v6(std::array<std::uint8_t, 16> b) {
    IpAddress ip;
    ip.family_ = Family::v6;
    ip.bytes_ = b;
    return ip;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    if (text.size() > 5 && (text.substr(0, 5) == "IPv6:" || text.substr(0, 5) == "ipv6:"))
        text.remove_prefix(5);
    if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN + 1];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    if (text.find(':') == std::string_view::npos) {
        std::array<std::uint8_t, 4> b{};
        if (inet_pton(AF_INET, buf, b.data()) != 1) return std::nullopt;
        return v4(b);
    }
    std::array<std::uint8_t, 16> b{};
    if (inet_pton(AF_INET6, buf, b.data()) != 1) return std::nullopt;
    return v6(b);
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa) {
    if (sa == nullptr) return std::nullopt;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        std::array<std::uint8_t, 4> b{};
        std::memcpy(b.data(), &in->sin_addr, 4);
        return v4(b);
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::array<std::uint8_t, 16> b{};
        std::memcpy(b.data(), &in6->sin6_addr, 16);
        return v6(b);
    }
    return std::nullopt;
}

IpAddress IpAddress::unmapped() const {
    if (is_v4()) return *this;
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes_.data(), prefix, 12) != 0) return *this;
    return v4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]});
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
    return buf;
}

std::string IpAddress::reverse_labels() const {
    std::string out;
    if (is_v4()) {
        return fmt::format("{}.{}.{}.{}", bytes_[3], bytes_[2], bytes_[1], bytes_[0]);
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(63);
    for (int i = 15; i >= 0; --i) {
        out += hex[bytes_[i] & 0xf];
        out += '.';
        out += hex[bytes_[i] >> 4];
        if (i != 0) out += '.';
    }
    return out;
}

Cidr::Cidr(IpAddress network, unsigned prefix) : network_(network), prefix_(prefix) {}

std::optional<Cidr> Cidr::parse(std::string_view text, bool strict) {
    auto slash = text.find('/');
    auto ip = IpAddress::parse(text.substr(0, slash));
    if (!ip) return std::nullopt;
    unsigned max = ip->is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3) return std::nullopt;
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (ec != std::errc() || p != digits.data() + digits.size() || prefix > max) return std::nullopt;
    }
    auto bytes = ip->bytes();
    bool host_bits = false;
    for (unsigned i = 0; i < ip->size(); ++i) {
        unsigned bit_start = i * 8;
        std::uint8_t mask = prefix >= bit_start + 8 ? 0xff
                            : prefix <= bit_start
                                ? 0x00
                                : static_cast<std::uint8_t>(0xff << (8 - (prefix - bit_start)));
        if ((bytes[i] & ~mask) != 0) host_bits = true;
        bytes[i] &= mask;
    }
    if (host_bits && strict) return std::nullopt;
    IpAddress net =
        ip->is_v4() ? IpAddress::v4({bytes[0], bytes[1], bytes[2], bytes[3]}) : IpAddress::v6(bytes);
    return Cidr(net, prefix);
}

bool Cidr::contains(const IpAddress& raw) const {
    IpAddress ip = raw.unmapped();
    if (ip.family() != network_.family()) return false;
    unsigned full = prefix_ / 8, rest = prefix_ % 8;
    const auto& a = ip.bytes();
    const auto& n = network_.bytes();
    if (std::memcmp(a.data(), n.data(), full) != 0) return false;
    if (rest == 0) return true;
    std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == n[full];
}

std::string Cidr::to_string() const {
    return fmt::format("{}/{}", network_.to_string(), prefix_);
}

}  // namespace vigil::core
