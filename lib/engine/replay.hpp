#pragma once
// Runs a whole message through a Session the way the milter would, stage by stage. This is what
// `vigil check` does, so anything the milter decides can be reproduced at a shell.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.hpp"

namespace vigil::engine {

struct ReplayInput {
    std::optional<core::IpAddress> ip;
    std::string client_name = "unknown";
    std::string helo;
    std::string mail_from;
    std::vector<std::string> rcpts;
    std::string auth_user;
    std::string queue_id;
    std::string_view message;  // the raw message, LF or CRLF line endings
};

struct ReplayResult {
    // Set when the dialogue ended before end of message (a refusal at connect, HELO or MAIL, or of
    // every recipient).
    std::optional<std::string> refused_at;
    StageResult refusal;
    std::vector<std::pair<std::string, StageResult>> refused_rcpts;
    core::Verdict verdict;  // valid when !refused_at
    core::Envelope envelope;
    long ms = 0;
};

ReplayResult replay(Session& session, const ReplayInput& in);

}  // namespace vigil::engine
