#include "state/bayes/store.hpp"

#include <cstdio>

namespace vigil::state::bayes {

std::string MessageId::hex() const {
    std::string out;
    char b[3];
    for (auto c : bytes) {
        std::snprintf(b, sizeof b, "%02x", c);
        out += b;
    }
    return out;
}

std::string_view to_string(StoreStatus s) {
    switch (s) {
        case StoreStatus::ok:
            return "ok";
        case StoreStatus::full:
            return "full";
        case StoreStatus::unavailable:
            return "unavailable";
        case StoreStatus::corrupt:
            return "corrupt";
        case StoreStatus::error:
            return "error";
    }
    return "error";
}

}  // namespace vigil::state::bayes
