#include "policy/builtin_checks.hpp"

#include "content/gtube.hpp"
#include "content/message_structure.hpp"
#include "policy/access_list.hpp"

namespace vigil::policy {

const std::vector<CheckFactory>& builtin_checks() {
    static const std::vector<CheckFactory> list = {
        {"access", true, &AccessListCheck::make},
        {"message_structure", true, &content::MessageStructureCheck::make},
        {"gtube", true, &content::GtubeCheck::make},
    };
    return list;
}

}  // namespace vigil::policy
