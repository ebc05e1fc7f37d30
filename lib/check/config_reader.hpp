#pragma once
// Typed, validated access to one TOML table of the config. Every mistake becomes an error with
// file:line:column; keys nobody asked for are reported as unknown when the section is finished,
// so a typo never silently falls back to a default.
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace vigil::core {
class Cidr;
}

namespace vigil::check {

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Collected errors of one load; thrown together so the operator sees every mistake at once.
class ConfigErrors {
  public:
    explicit ConfigErrors(std::string file) : file_(std::move(file)) {}
    void add(const toml::node* where, const std::string& message);
    void add_plain(const std::string& message);
    bool empty() const { return errors_.empty(); }
    const std::string& file() const { return file_; }
    [[noreturn]] void raise() const;
    void raise_if_any() const {
        if (!empty()) raise();
    }

  private:
    std::string file_;
    std::vector<std::string> errors_;
};

class Section {
  public:
    // `table` may be null: the section is absent and every getter returns its default.
    Section(const toml::table* table, std::string path, ConfigErrors& errors);
    ~Section();
    Section(Section&&) noexcept;
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

    const std::string& path() const { return path_; }
    bool present() const { return table_ != nullptr; }
    bool has(std::string_view key) const;

    std::string get_string(std::string_view key, std::string def);
    bool get_bool(std::string_view key, bool def);
    double get_double(std::string_view key, double def);
    std::optional<double> get_optional_double(std::string_view key);
    std::int64_t get_int(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max);
    std::vector<std::string> get_strings(std::string_view key, std::vector<std::string> def);
    std::vector<core::Cidr> get_cidrs(std::string_view key, const std::vector<std::string>& def);
    // One of `allowed`; anything else is an error naming the allowed values.
    std::string get_choice(std::string_view key, std::string def, const std::vector<std::string>& allowed);

    Section sub(std::string_view key);                     // [path.key]; absent -> empty section
    std::vector<Section> sub_array(std::string_view key);  // [[path.key]]
    std::vector<std::string> keys() const;                 // keys present in the table
    void mark_used(std::string_view key);

    void error(std::string_view key, const std::string& message);
    void error(const std::string& message);  // about the section itself
    ConfigErrors& errors() { return *errors_; }

    // Reports keys present in the table that no getter asked for.
    void finish();

  private:
    const toml::node* node(std::string_view key);
    const toml::table* table_;
    std::string path_;
    ConfigErrors* errors_;
    std::set<std::string, std::less<>> used_;
    bool finished_ = false;
};

}  // namespace vigil::check
