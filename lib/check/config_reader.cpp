#include "check/config_reader.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>

#include "core/ip_address.hpp"

namespace vigil::check {

void ConfigErrors::add(const toml::node* where, const std::string& message) {
    if (where != nullptr && where->source().begin) {
        errors_.push_back(fmt::format("{}:{}:{}: {}", file_, where->source().begin.line,
                                      where->source().begin.column, message));
    } else {
        errors_.push_back(fmt::format("{}: {}", file_, message));
    }
}

void ConfigErrors::add_plain(const std::string& message) {
    errors_.push_back(fmt::format("{}: {}", file_, message));
}

void ConfigErrors::raise() const {
    std::string all;
    for (const auto& e : errors_) {
        if (!all.empty()) all += '\n';
        all += e;
    }
    throw ConfigError(all);
}

Section::Section(const toml::table* table, std::string path, ConfigErrors& errors)
    : table_(table), path_(std::move(path)), errors_(&errors) {}

Section::Section(Section&& o) noexcept
    : table_(o.table_),
      path_(std::move(o.path_)),
      errors_(o.errors_),
      used_(std::move(o.used_)),
      finished_(o.finished_) {
    o.finished_ = true;  // the moved-from section must not report anything
}

Section::~Section() = default;

bool Section::has(std::string_view key) const {
    return table_ != nullptr && table_->contains(key);
}

const toml::node* Section::node(std::string_view key) {
    used_.emplace(key);
    if (table_ == nullptr) return nullptr;
    return table_->get(key);
}

void Section::mark_used(std::string_view key) {
    used_.emplace(key);
}

std::vector<std::string> Section::keys() const {
    std::vector<std::string> out;
    if (table_ == nullptr) return out;
    for (const auto& [k, v] : *table_) out.emplace_back(k.str());
    return out;
}

void Section::error(std::string_view key, const std::string& message) {
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    if (path_.empty()) {
        errors_->add(n ? n : table_, fmt::format("{}: {}", key, message));
    } else {
        errors_->add(n ? n : table_, fmt::format("[{}] {}: {}", path_, key, message));
    }
}

void Section::error(const std::string& message) {
    errors_->add(table_, path_.empty() ? message : fmt::format("[{}] {}", path_, message));
}

std::string Section::get_string(std::string_view key, std::string def) {
    const auto* n = node(key);
    if (n == nullptr) return def;
    if (auto v = n->value<std::string>(); n->is_string() && v) return *v;
    error(key, "must be a string");
    return def;
}

bool Section::get_bool(std::string_view key, bool def) {
    const auto* n = node(key);
    if (n == nullptr) return def;
    if (n->is_boolean()) return *n->value<bool>();
    error(key, "must be true or false");
    return def;
}

std::optional<double> Section::get_optional_double(std::string_view key) {
    const auto* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (n->is_floating_point() || n->is_integer()) return *n->value<double>();
    error(key, "must be a number");
    return std::nullopt;
}

double Section::get_double(std::string_view key, double def) {
    return get_optional_double(key).value_or(def);
}

std::int64_t Section::get_int(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max) {
    const auto* n = node(key);
    if (n == nullptr) return def;
    if (!n->is_integer()) {
        error(key, "must be a whole number");
        return def;
    }
    auto v = *n->value<std::int64_t>();
    if (v < min || v > max) {
        error(key, fmt::format("must be between {} and {} (got {})", min, max, v));
        return def;
    }
    return v;
}

std::vector<std::string> Section::get_strings(std::string_view key, std::vector<std::string> def) {
    const auto* n = node(key);
    if (n == nullptr) return def;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
        error(key, "must be a list of strings, e.g. [\"a\", \"b\"]");
        return def;
    }
    std::vector<std::string> out;
    for (const auto& el : *arr) {
        if (!el.is_string()) {
            errors_->add(&el, fmt::format("[{}] {}: every element must be a string", path_, key));
            continue;
        }
        out.push_back(*el.value<std::string>());
    }
    return out;
}

std::vector<core::Cidr> Section::get_cidrs(std::string_view key, const std::vector<std::string>& def) {
    const auto* n = node(key);
    std::vector<core::Cidr> out;
    if (n == nullptr) {
        for (const auto& s : def) out.push_back(*core::Cidr::parse(s));
        return out;
    }
    const auto* arr = n->as_array();
    if (arr == nullptr) {
        error(key, "must be a list of networks, e.g. [\"192.0.2.0/24\", \"2001:db8::/32\"]");
        return out;
    }
    for (const auto& el : *arr) {
        auto s = el.value<std::string>();
        auto cidr = (el.is_string() && s) ? core::Cidr::parse(*s) : std::nullopt;
        if (!cidr) {
            errors_->add(&el, fmt::format("[{}] {}: '{}' is not a network (address or address/prefix with "
                                          "host bits zero)",
                                          path_, key, s.value_or("?")));
            continue;
        }
        out.push_back(*cidr);
    }
    return out;
}

std::string Section::get_choice(std::string_view key, std::string def,
                                const std::vector<std::string>& allowed) {
    auto v = get_string(key, def);
    for (const auto& a : allowed) {
        if (a == v) return v;
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    error(key, fmt::format("'{}' is not one of: {}", v, list));
    return def;
}

Section Section::sub(std::string_view key) {
    const auto* n = node(key);
    if (n == nullptr)
        return Section(nullptr, path_.empty() ? std::string(key) : path_ + "." + std::string(key), *errors_);
    if (!n->is_table()) {
        error(key, "must be a table");
        return Section(nullptr, path_ + "." + std::string(key), *errors_);
    }
    return Section(n->as_table(), path_.empty() ? std::string(key) : path_ + "." + std::string(key),
                   *errors_);
}

std::vector<Section> Section::sub_array(std::string_view key) {
    const auto* n = node(key);
    std::vector<Section> out;
    if (n == nullptr) return out;
    const auto* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
        error(key, fmt::format("must be an array of tables ([[{}.{}]])", path_, key));
        return out;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
        out.emplace_back(arr->get(i)->as_table(), fmt::format("{}.{}[{}]", path_, key, i), *errors_);
    }
    return out;
}

void Section::finish() {
    if (finished_) return;
    finished_ = true;
    if (table_ == nullptr) return;
    for (const auto& [k, v] : *table_) {
        if (used_.find(k.str()) == used_.end()) {
            errors_->add(&v, path_.empty() ? fmt::format("unknown section or key '{}'", k.str())
                                           : fmt::format("unknown key '{}' in [{}]", k.str(), path_));
        }
    }
}

}  // namespace vigil::check
