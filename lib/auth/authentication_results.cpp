#include "auth/authentication_results.hpp"

#include "core/printable.hpp"

namespace vigil::auth {

std::string format_authentication_results(std::string_view authserv_id, const std::vector<std::string>& resinfos) {
    // "Authentication-Results: " is 24 columns; continuation lines start with a tab (8 columns).
    constexpr std::size_t limit = 78;
    std::string out = " ";
    out += authserv_id;
    out += ';';
    std::size_t col = 24 + out.size();
    if (resinfos.empty()) {
        out += " none";
        return out;
    }
    // Fold between the words of a result (method, reason, properties) as well as between results:
    // a dkim= result alone is often longer than one line.
    for (std::size_t i = 0; i < resinfos.size(); ++i) {
        std::string_view rest = resinfos[i];
        bool last_result = i + 1 == resinfos.size();
        while (!rest.empty()) {
            auto sp = rest.find(' ');
            std::string word(rest.substr(0, sp));
            rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
            if (rest.empty() && !last_result) word += ';';
            if (word.empty() || word == ";") continue;
            if (col + 1 + word.size() > limit) {
                out += "\r\n\t";
                col = 8;
            } else {
                out += ' ';
                col += 1;
            }
            out += word;
            col += word.size();
        }
    }
    return out;
}

namespace {

// Skips white space and (nested) comments; false when a comment never closes.
bool skip_cfws(std::string_view s, std::size_t& i) {
    while (i < s.size()) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            ++i;
        } else if (c == '(') {
            int depth = 0;
            for (; i < s.size(); ++i) {
                if (s[i] == '\\') {
                    ++i;
                    continue;
                }
                if (s[i] == '(') ++depth;
                if (s[i] == ')' && --depth == 0) break;
            }
            if (i >= s.size()) return false;
            ++i;
        } else {
            break;
        }
    }
    return true;
}

}  // namespace

std::optional<std::string> claimed_authserv_id(std::string_view s) {
    std::size_t i = 0;
    if (!skip_cfws(s, i) || i >= s.size()) return std::nullopt;
    std::string id;
    if (s[i] == '"') {
        for (++i; i < s.size() && s[i] != '"'; ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) ++i;
            id += s[i];
        }
        if (i >= s.size()) return std::nullopt;
    } else {
        // RFC 2045 token: anything printable but tspecials and space.
        static constexpr std::string_view tspecials = "()<>@,;:\\\"/[]?=";
        while (i < s.size() && s[i] > 32 && s[i] < 127 && tspecials.find(s[i]) == std::string_view::npos) {
            id += s[i++];
        }
    }
    if (id.empty()) return std::nullopt;
    return core::to_lower(id);
}

}  // namespace vigil::auth
