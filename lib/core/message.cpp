#include "core/message.hpp"

#include "core/limits.hpp"
#include "core/printable.hpp"

namespace vigil::core {

namespace {

// "From", also with the white space the obsolete syntax allows before the colon (RFC 5322 §4.5),
// should an MTA pass the name on with it (Postfix drops it).
bool is_from_name(std::string_view name) {
    while (name.size() > 4 && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    return name.size() == 4 && iequals(name, "From");
}

}  // namespace

bool Message::add_header(std::string_view name, std::string_view value) {
    ++fields_seen_;
    std::size_t bytes = name.size() + value.size();
    bool keep = headers_.size() < limits::max_header_fields &&
                header_bytes_ + bytes <= limits::max_header_bytes && name.size() <= limits::max_header_name;
    if (is_from_name(name)) {
        if (from_seen_ < from_.size()) {
            auto& slot = from_[from_seen_];
            if (keep) {
                slot.index = static_cast<std::uint32_t>(headers_.size());
            } else {
                slot.copy = true;
                slot.index = static_cast<std::uint32_t>(from_copies_.size());
                from_copies_.emplace_back(value.substr(0, limits::max_from_bytes));
            }
            if (value.size() > limits::max_from_bytes) from_cut_ = true;
        }
        ++from_seen_;
    }
    if (!keep) return false;
    header_bytes_ += bytes;
    headers_.push_back({std::string(name), std::string(value)});
    return true;
}

std::string_view Message::from_value(std::size_t i) const {
    if (i >= from_kept()) return {};
    const auto& slot = from_[i];
    if (slot.copy) return from_copies_[slot.index];
    return std::string_view(headers_[slot.index].value).substr(0, limits::max_from_bytes);
}

const HeaderField* Message::find(std::string_view name) const {
    for (const auto& h : headers_) {
        if (iequals(h.name, name)) return &h;
    }
    return nullptr;
}

std::size_t Message::count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& h : headers_) n += iequals(h.name, name) ? 1 : 0;
    return n;
}

namespace {

// One line without its terminator; `next` is set to the start of the following line.
std::string_view take_line(std::string_view raw, std::size_t pos, std::size_t& next) {
    auto nl = raw.find('\n', pos);
    if (nl == std::string_view::npos) {
        next = raw.size();
        return raw.substr(pos);
    }
    next = nl + 1;
    auto line = raw.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

bool is_field_name_char(char c) {
    return c > 32 && c < 127 && c != ':';
}

// Postfix's is_header(): a field name (printable ASCII but ':'), optional spaces and tabs, then ':'
// (the obsolete syntax of RFC 5322 §4.5.1, which Postfix keeps). Returns the name's length, or 0 when
// the line is not a header field. The name Postfix hands a milter is the name without that white
// space, and the value is what follows the colon.
std::size_t field_name_length(std::string_view line, std::size_t& colon) {
    std::size_t name = 0;
    while (name < line.size() && is_field_name_char(line[name])) ++name;
    if (name == 0) return 0;
    std::size_t i = name;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size() || line[i] != ':') return 0;
    colon = i;
    return name;
}

}  // namespace

ParsedMessage parse_message(std::string_view raw) {
    ParsedMessage out;
    std::size_t pos = 0;
    while (pos < raw.size()) {
        std::size_t next = 0;
        auto line = take_line(raw, pos, next);
        if (line.empty()) {  // the blank line that separates header and body
            pos = next;
            break;
        }
        if ((line[0] == ' ' || line[0] == '\t') && !out.headers.empty()) {
            out.headers.back().value += "\r\n";
            out.headers.back().value += line;
            pos = next;
            continue;
        }
        std::size_t colon = 0;
        auto name = field_name_length(line, colon);
        if (name == 0) break;  // not a header: everything from here on is body
        out.headers.push_back({std::string(line.substr(0, name)), std::string(line.substr(colon + 1))});
        pos = next;
    }
    // Body: normalise bare LF to CRLF, as the MTA would have sent it.
    out.body.reserve(raw.size() - pos + (raw.size() - pos) / 32);
    for (std::size_t i = pos; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '\n' && (i == pos || raw[i - 1] != '\r')) out.body += '\r';
        out.body += c;
    }
    return out;
}

std::string unfold(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\r' || c == '\n') continue;
        out += c;
    }
    return std::string(trim(out));
}

}  // namespace vigil::core
