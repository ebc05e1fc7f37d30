#include "check/check.hpp"

#include <algorithm>

namespace vigil::check {

std::string_view to_string(Stage s) {
    static constexpr std::string_view names[] = {"connect", "helo", "mail", "rcpt", "headers", "body", "eom"};
    return names[static_cast<int>(s)];
}

bool Check::may_refuse_before_data() const {
    auto st = stages();
    return std::any_of(st.begin(), st.end(),
                       [](Stage s) { return static_cast<int>(s) <= static_cast<int>(Stage::rcpt); });
}

}  // namespace vigil::check
