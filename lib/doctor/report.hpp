#pragma once
// How `vigil doctor` prints its findings: a table grouped by subject (IP, host, domain) for people,
// JSON for machines.
#include <string>
#include <vector>

#include "doctor/finding.hpp"

namespace vigil::doctor {

// Subjects in order of first appearance; each finding one line (level, area, reason) and its fix
// indented below. `colour` adds ANSI colours to the levels (only for a terminal).
std::string format_table(const std::vector<Finding>& findings, bool colour);
// {"findings":[{"area","subject","level","reason","fix"}...],"summary":{"ok","warn","fail","unknown"},"exit":N}
std::string format_json(const std::vector<Finding>& findings);

}  // namespace vigil::doctor
