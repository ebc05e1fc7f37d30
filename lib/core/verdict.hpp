#pragma once
// Symbols that checks add, and the verdict the engine makes of them.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::core {

// Ordered from mildest to strongest; the order is used only to pick among forced actions.
enum class Action { accept, add_header, quarantine, tempfail, reject };
std::string_view to_string(Action a);
std::optional<Action> parse_action(std::string_view s);

struct SymbolDef {
    std::string name;         // UPPER_SNAKE with the check's prefix
    std::string description;  // one line, shown in the README and `vigil symbols`
    double default_weight;    // used unless [scores] overrides it
};

struct SymbolHit {
    std::string name;
    double multiplier = 1.0;
    std::vector<std::string> options;  // short details, e.g. the list entry that matched
    std::string check;                 // which check added it
};

struct ScoredSymbol {
    std::string name;
    double score;
    std::vector<std::string> options;
};

struct SmtpReply {
    std::string code;   // "550"
    std::string xcode;  // "5.7.1" (RFC 3463 / RFC 7372)
    std::string text;
};

// A check may insist on an action regardless of the score (e.g. DMARC p=reject, a deny rule).
struct ForcedAction {
    Action action;
    std::string reason;
    std::string check;
    std::optional<SmtpReply> reply;
};

struct HeaderEdit {
    enum class Kind { insert_top, append, change, remove };
    Kind kind;
    std::string name;
    std::string value;  // for insert_top/append/change; the value as it follows "Name:"
    int index = 0;      // 1-based occurrence among fields of this name, for change/remove
};

struct Verdict {
    Action action = Action::accept;
    double score = 0;
    double reject_threshold = 0;  // for the "score=7.20/15.00" form in the log
    std::vector<ScoredSymbol> symbols;
    std::optional<ForcedAction> forced;  // the forced action that decided, if any
    std::optional<SmtpReply> reply;      // for reject and tempfail
    std::string quarantine_reason;
    std::vector<HeaderEdit> edits;  // in the order the MTA must apply them
    // Per-method details for `vigil check --json`: key -> serialised JSON value.
    std::vector<std::pair<std::string, std::string>> reports;
    // Operator warnings raised by checks, logged at warning level next to the decision line.
    std::vector<std::string> warnings;
};

}  // namespace vigil::core
