#include "core/verdict.hpp"

namespace vigil::core {

std::string_view to_string(Action a) {
    switch (a) {
        case Action::accept:
            return "accept";
        case Action::add_header:
            return "add_header";
        case Action::quarantine:
            return "quarantine";
        case Action::tempfail:
            return "tempfail";
        case Action::reject:
            return "reject";
    }
    return "accept";
}

std::optional<Action> parse_action(std::string_view s) {
    for (auto a :
         {Action::accept, Action::add_header, Action::quarantine, Action::tempfail, Action::reject}) {
        if (to_string(a) == s) return a;
    }
    return std::nullopt;
}

}  // namespace vigil::core
