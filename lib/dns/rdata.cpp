#include "dns/rdata.hpp"

#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "dns/dns_limits.hpp"

namespace vigil::dns {

namespace {

void append_label_byte(std::string& out, unsigned char c) {
    if (c >= 'A' && c <= 'Z') {
        out += static_cast<char>(c - 'A' + 'a');
    } else if (c == '.' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
    } else if (c < 0x21 || c > 0x7e) {
        out += fmt::format("\\{:03d}", c);
    } else {
        out += static_cast<char>(c);
    }
}

std::uint16_t u16(std::string_view b, std::size_t pos) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(b[pos]) << 8) |
                                      static_cast<unsigned char>(b[pos + 1]));
}

std::uint32_t u32(std::string_view b, std::size_t pos) {
    return (std::uint32_t{u16(b, pos)} << 16) | u16(b, pos + 2);
}

// Moves `pos` past a possibly compressed name in a whole message (a pointer ends the name).
bool skip_message_name(std::string_view msg, std::size_t& pos) {
    for (std::size_t labels = 0; labels <= limits::max_wire_name_length; ++labels) {
        if (pos >= msg.size()) return false;
        const auto len = static_cast<unsigned char>(msg[pos]);
        if ((len & 0xc0) == 0xc0) {
            pos += 2;
            return pos <= msg.size();
        }
        if ((len & 0xc0) != 0) return false;
        pos += 1 + len;
        if (len == 0) return pos <= msg.size();
    }
    return false;
}

bool decode_exact_name(std::string_view rdata, std::string& out, std::string& error, std::string_view what) {
    std::size_t pos = 0;
    if (!decode_wire_name(rdata, pos, out, error)) {
        error = fmt::format("{}: {}", what, error);
        return false;
    }
    if (pos != rdata.size()) {
        error = fmt::format("{}: {} bytes after the name", what, rdata.size() - pos);
        return false;
    }
    return true;
}

}  // namespace

bool decode_wire_name(std::string_view wire, std::size_t& pos, std::string& out, std::string& error) {
    std::string text;
    std::size_t p = pos;
    std::size_t wire_length = 0;
    for (;;) {
        if (p >= wire.size()) {
            error = "name runs past the end of the data";
            return false;
        }
        const auto len = static_cast<unsigned char>(wire[p]);
        if ((len & 0xc0) != 0) {
            error = "compression pointer or reserved label type in name";
            return false;
        }
        wire_length += 1 + len;
        if (wire_length > limits::max_wire_name_length) {
            error = "name longer than 255 octets";
            return false;
        }
        ++p;
        if (len == 0) break;
        if (len > wire.size() - p) {
            error = "label runs past the end of the data";
            return false;
        }
        if (!text.empty()) text += '.';
        for (std::size_t i = 0; i < len; ++i)
            append_label_byte(text, static_cast<unsigned char>(wire[p + i]));
        p += len;
    }
    pos = p;
    out = std::move(text);
    return true;
}

bool decode_rdata(RrType type, std::string_view rdata, Record& out, std::string& error) {
    switch (type) {
        case RrType::a: {
            if (rdata.size() != 4) {
                error = fmt::format("A rdata of {} bytes, expected 4", rdata.size());
                return false;
            }
            std::array<std::uint8_t, 4> b{};
            for (std::size_t i = 0; i < 4; ++i) b[i] = static_cast<std::uint8_t>(rdata[i]);
            out.address = core::IpAddress::v4(b);
            return true;
        }
        case RrType::aaaa: {
            if (rdata.size() != 16) {
                error = fmt::format("AAAA rdata of {} bytes, expected 16", rdata.size());
                return false;
            }
            std::array<std::uint8_t, 16> b{};
            for (std::size_t i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(rdata[i]);
            out.address = core::IpAddress::v6(b);
            return true;
        }
        case RrType::ns:
            return decode_exact_name(rdata, out.target, error, "NS");
        case RrType::cname:
            return decode_exact_name(rdata, out.target, error, "CNAME");
        case RrType::ptr:
            return decode_exact_name(rdata, out.target, error, "PTR");
        case RrType::mx: {
            if (rdata.size() < 3) {
                error = fmt::format("MX rdata of {} bytes, too short", rdata.size());
                return false;
            }
            out.preference = static_cast<std::uint16_t>((static_cast<unsigned char>(rdata[0]) << 8) |
                                                        static_cast<unsigned char>(rdata[1]));
            return decode_exact_name(rdata.substr(2), out.target, error, "MX");
        }
        case RrType::soa: {
            // MNAME, RNAME, then five 32-bit numbers. Only MNAME is kept; the rest is checked for shape.
            std::size_t pos = 0;
            std::string rname;
            if (!decode_wire_name(rdata, pos, out.target, error) ||
                !decode_wire_name(rdata, pos, rname, error)) {
                error = "SOA: " + error;
                return false;
            }
            if (rdata.size() - pos != 20) {
                error = fmt::format("SOA: {} bytes after the names, expected 20", rdata.size() - pos);
                return false;
            }
            return true;
        }
        case RrType::dnskey: {
            // RFC 4034 §2.1: flags, protocol (always 3), algorithm, then the public key.
            if (rdata.size() < 5 || rdata[2] != 3) {
                error = rdata.size() < 5 ? fmt::format("DNSKEY rdata of {} bytes, too short", rdata.size())
                                         : "DNSKEY protocol is not 3";
                return false;
            }
            out.flags = u16(rdata, 0);
            out.algorithm = static_cast<std::uint8_t>(rdata[3]);
            return true;
        }
        case RrType::txt: {
            // RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and that many bytes.
            if (rdata.empty()) {
                error = "TXT rdata without any character-string";
                return false;
            }
            std::size_t pos = 0;
            while (pos < rdata.size()) {
                const auto len = static_cast<unsigned char>(rdata[pos]);
                ++pos;
                if (len > rdata.size() - pos) {
                    error = fmt::format("TXT character-string of {} bytes with only {} left", len,
                                        rdata.size() - pos);
                    return false;
                }
                out.txt.emplace_back(rdata.substr(pos, len));
                pos += len;
            }
            return true;
        }
    }
    error = fmt::format("unsupported record type {}", static_cast<unsigned>(type));
    return false;
}

bool decode_answer_records(RrType type, std::string_view owner, std::span<const std::string_view> rdatas,
                           std::vector<Record>& records, std::string& detail) {
    records.clear();
    detail.clear();
    std::size_t txt_bytes = 0;
    for (std::string_view rdata : rdatas) {
        if (records.size() == limits::max_records_per_answer) {
            detail = fmt::format("truncated to {} records", limits::max_records_per_answer);
            break;
        }
        Record rec;
        rec.type = type;
        rec.name = std::string(owner);
        std::string error;
        if (!decode_rdata(type, rdata, rec, error)) {
            records.clear();
            detail = std::move(error);
            return false;
        }
        for (const auto& s : rec.txt) txt_bytes += s.size();
        if (txt_bytes > limits::max_txt_bytes) {
            records.clear();
            detail = fmt::format("TXT data over {} bytes", limits::max_txt_bytes);
            return false;
        }
        records.push_back(std::move(rec));
    }
    return true;
}

bool find_signatures(std::string_view msg, RrType covered, std::vector<Signature>& out, std::string& error) {
    // RFC 1035 §4.1: a 12-byte header, the questions (name, type, class), then the answer records.
    constexpr std::uint16_t type_rrsig = 46;
    constexpr std::size_t rrsig_fixed = 18;  // covered, algorithm, labels, TTL, expiration, inception, tag
    out.clear();
    auto fail = [&](const char* why) {
        out.clear();  // never a partial list
        error = why;
        return false;
    };
    if (msg.size() < 12) return fail("message shorter than its header");
    const std::size_t questions = u16(msg, 4), answers = u16(msg, 6);
    std::size_t pos = 12;
    for (std::size_t i = 0; i < questions; ++i) {
        if (!skip_message_name(msg, pos) || msg.size() - pos < 4) return fail("question cut short");
        pos += 4;
    }
    for (std::size_t i = 0; i < answers; ++i) {
        if (!skip_message_name(msg, pos) || msg.size() - pos < 10) return fail("answer record cut short");
        const std::uint16_t type = u16(msg, pos);
        const std::size_t length = u16(msg, pos + 8);
        pos += 10;
        if (msg.size() - pos < length) return fail("answer rdata runs past the end of the message");
        const std::string_view rdata = msg.substr(pos, length);
        pos += length;
        if (type != type_rrsig || rdata.size() < rrsig_fixed ||
            u16(rdata, 0) != static_cast<std::uint16_t>(covered))
            continue;
        if (out.size() == limits::max_records_per_answer) break;
        out.push_back(
            Signature{static_cast<std::uint8_t>(rdata[2]), u16(rdata, 16), u32(rdata, 12), u32(rdata, 8)});
    }
    return true;
}

}  // namespace vigil::dns
