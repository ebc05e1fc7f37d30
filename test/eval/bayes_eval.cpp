// vigil-eval-bayes: k-fold cross-validation of the Bayes filter on a labelled corpus.
//
//   vigil-eval-bayes --corpus DIR [--folds 5] [--seed 1] [--method chi|osb] [feature switches]
//
// DIR holds index.tsv (path, label ham|spam, group, difficulty easy|hard, bytes; a header line) and
// the messages it names, either extracted or still in DIR/messages.tar.xz (then extracted to a
// temporary directory with tar). Each message is parsed and tokenized once; for each fold a fresh
// in-memory store learns the other folds and scores the held-out one. Prints spam recall and ham
// false-positive rates at fixed probabilities (hard ham separately), the ham FPR at 97 % and 99 %
// spam recall (ROC points), and the cost per message of tokenize and classify.
//
// Exit status: 0, 1 when a --min-recall / --max-fpr floor is not met, 2 on usage errors, 77 when
// the corpus is absent (ctest's skip).
#include <getopt.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "content/bayes/bayes.hpp"
#include "core/clock.hpp"
#include "mime/parse.hpp"
#include "state/bayes/lmdb_store.hpp"
#include "state/bayes/memory_store.hpp"

extern char** environ;

namespace fs = std::filesystem;
namespace bayes = vigil::content::bayes;

// CPU time of this thread: the machine may be shared, and wall time would count other programs.
struct Clock {
    using time_point = std::chrono::duration<double, std::micro>;
    static time_point now() {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return time_point(ts.tv_sec * 1e6 + ts.tv_nsec / 1e3);
    }
};

namespace {

struct Sample {
    std::string path, group;
    bool spam = false, hard = false;
    bayes::MessageId id;
    bayes::TokenList tokens;
    std::vector<std::string> texts;  // with --top only
    int fold = 0;
    double probability = -1;  // -1: not scored
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: vigil-eval-bayes --corpus DIR [options]\n"
                 "  --folds K            k-fold cross-validation (default 5)\n"
                 "  --seed N             fold assignment seed (default 1)\n"
                 "  --sample N           use every Nth message of each label only (default 1: all)\n"
                 "  --method chi|osb     SpamAssassin chi-square or rspamd OSB-Bayes (default chi)\n"
                 "  --min-learned N      minimum spam and ham learned before scoring (default 200)\n"
                 "  --s X --x X --min-strength X --max-significant N   chi-square constants\n"
                 "  --no-headers --no-urls --no-mime --no-subject --no-body\n"
                 "                       leave a token family out\n"
                 "  --pairs --received   add word pairs (OSB) / Received-chain tokens (off by default)\n"
                 "  --pair-distance N    word pairs up to N words apart (1..4, default 4)\n"
                 "  --store memory|lmdb  where folds learn (lmdb: a temporary file, for timing)\n"
                 "  --top N              learn everything, print the N strongest tokens each way\n"
                 "  --min-recall R --max-fpr F --at P   fail unless spam recall >= R and ham FPR <= F\n"
                 "                       at probability >= P (default P 0.9)\n"
                 "  --min-auc A          fail unless the area under the ROC curve is >= A\n"
                 "  --thresholds P,P...  probabilities to report recall and FPR at\n"
                 "                       (default 0.5,0.8,0.9,0.95,0.99,0.999)\n");
}

// Runs tar to extract the archive into dir; true on success.
bool extract(const fs::path& archive, const fs::path& dir) {
    std::string a = archive.string(), d = dir.string();
    std::vector<char*> argv = {const_cast<char*>("tar"),
                               const_cast<char*>("-xJf"),
                               a.data(),
                               const_cast<char*>("-C"),
                               d.data(),
                               nullptr};
    pid_t pid;
    if (posix_spawnp(&pid, "tar", nullptr, nullptr, argv.data(), environ) != 0) return false;
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

double percent(std::size_t n, std::size_t d) {
    return d == 0 ? 0.0 : 100.0 * static_cast<double>(n) / d;
}

}  // namespace

int main(int argc, char** argv) {
    std::string corpus;
    int folds = 5, sample = 1, top = 0;
    unsigned seed = 1;
    std::string store_kind = "memory";
    bayes::TokenizerOptions topt;
    bayes::FilterOptions fopt;
    double min_recall = -1, max_fpr = -1, min_auc = -1, at = 0.9;
    std::vector<double> thresholds{0.5, 0.8, 0.9, 0.95, 0.99, 0.999};
    double auc = 0;
    static const option opts[] = {{"corpus", required_argument, nullptr, 'c'},
                                  {"folds", required_argument, nullptr, 'k'},
                                  {"seed", required_argument, nullptr, 'S'},
                                  {"sample", required_argument, nullptr, 'n'},
                                  {"method", required_argument, nullptr, 'm'},
                                  {"min-learned", required_argument, nullptr, 'l'},
                                  {"s", required_argument, nullptr, 1},
                                  {"x", required_argument, nullptr, 2},
                                  {"min-strength", required_argument, nullptr, 3},
                                  {"max-significant", required_argument, nullptr, 4},
                                  {"no-pairs", no_argument, nullptr, 10},
                                  {"pairs", no_argument, nullptr, 18},
                                  {"received", no_argument, nullptr, 19},
                                  {"pair-distance", required_argument, nullptr, 17},
                                  {"no-headers", no_argument, nullptr, 11},
                                  {"no-received", no_argument, nullptr, 12},
                                  {"no-urls", no_argument, nullptr, 13},
                                  {"no-mime", no_argument, nullptr, 14},
                                  {"no-subject", no_argument, nullptr, 15},
                                  {"no-body", no_argument, nullptr, 16},
                                  {"store", required_argument, nullptr, 20},
                                  {"top", required_argument, nullptr, 21},
                                  {"min-recall", required_argument, nullptr, 30},
                                  {"max-fpr", required_argument, nullptr, 31},
                                  {"at", required_argument, nullptr, 32},
                                  {"min-auc", required_argument, nullptr, 33},
                                  {"thresholds", required_argument, nullptr, 34},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, nullptr)) != -1) {
        switch (c) {
            case 'c':
                corpus = optarg;
                break;
            case 'k':
                folds = std::atoi(optarg);
                break;
            case 'S':
                seed = static_cast<unsigned>(std::atoi(optarg));
                break;
            case 'n':
                sample = std::max(1, std::atoi(optarg));
                break;
            case 'm':
                if (std::string(optarg) == "osb") {
                    fopt.classifier.method = bayes::Method::osb;
                } else if (std::string(optarg) == "chi") {
                    fopt.classifier.method = bayes::Method::chi_square;
                } else {
                    usage(stderr);
                    return 2;
                }
                break;
            case 'l':
                fopt.min_spam_learned = fopt.min_ham_learned = std::strtoull(optarg, nullptr, 10);
                break;
            case 1:
                fopt.classifier.robinson_s = std::atof(optarg);
                break;
            case 2:
                fopt.classifier.robinson_x = std::atof(optarg);
                break;
            case 3:
                fopt.classifier.min_strength = std::atof(optarg);
                break;
            case 4:
                fopt.classifier.max_significant = std::strtoull(optarg, nullptr, 10);
                break;
            case 10:
                topt.osb_pairs = false;
                break;
            case 11:
                topt.headers = false;
                break;
            case 12:
                topt.received = false;
                break;
            case 13:
                topt.urls = false;
                break;
            case 14:
                topt.mime_structure = false;
                break;
            case 15:
                topt.subject_words = false;
                break;
            case 16:
                topt.body_words = false;
                break;
            case 18:
                topt.osb_pairs = true;
                break;
            case 19:
                topt.received = true;
                break;
            case 17:
                topt.pair_distance = static_cast<unsigned>(std::atoi(optarg));
                break;
            case 20:
                store_kind = optarg;
                break;
            case 21:
                top = std::atoi(optarg);
                break;
            case 30:
                min_recall = std::atof(optarg);
                break;
            case 31:
                max_fpr = std::atof(optarg);
                break;
            case 32:
                at = std::atof(optarg);
                break;
            case 33:
                min_auc = std::atof(optarg);
                break;
            case 34: {
                thresholds.clear();
                std::stringstream ts(optarg);
                std::string t;
                while (std::getline(ts, t, ',')) thresholds.push_back(std::atof(t.c_str()));
                break;
            }
            case 'h':
                usage(stdout);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
    }
    if (corpus.empty() || folds < 2 || (store_kind != "memory" && store_kind != "lmdb")) {
        usage(stderr);
        return 2;
    }
    fs::path dir(corpus);
    if (!fs::exists(dir / "index.tsv")) {
        std::printf("SKIP: no corpus at %s (index.tsv missing)\n", corpus.c_str());
        return 77;
    }

    // Index.
    std::vector<Sample> all;
    {
        std::ifstream idx(dir / "index.tsv");
        std::string line;
        std::getline(idx, line);  // header
        while (std::getline(idx, line)) {
            std::vector<std::string> f;
            std::stringstream ss(line);
            std::string x;
            while (std::getline(ss, x, '\t')) f.push_back(x);
            if (f.size() < 4) continue;
            Sample s;
            s.path = f[0];
            s.spam = f[1] == "spam";
            s.group = f[2];
            s.hard = f[3] == "hard";
            all.push_back(std::move(s));
        }
    }
    if (all.empty()) {
        std::printf("SKIP: %s/index.tsv lists no messages\n", corpus.c_str());
        return 77;
    }
    fs::path root = dir;
    fs::path tmp;
    if (!fs::exists(root / all[0].path)) {
        if (!fs::exists(dir / "messages.tar.xz")) {
            std::printf("SKIP: neither the messages nor messages.tar.xz are in %s\n", corpus.c_str());
            return 77;
        }
        std::string tmpl = (fs::temp_directory_path() / "vigil-eval-bayes.XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) {
            std::perror("mkdtemp");
            return 2;
        }
        tmp = tmpl;
        if (!extract(dir / "messages.tar.xz", tmp)) {
            std::fprintf(stderr, "cannot extract %s\n", (dir / "messages.tar.xz").c_str());
            fs::remove_all(tmp);
            return 2;
        }
        root = tmp;
    }

    // Sample, stratified folds.
    std::vector<Sample> samples;
    {
        std::size_t n_spam = 0, n_ham = 0;
        for (auto& s : all) {
            std::size_t& n = s.spam ? n_spam : n_ham;
            if (n++ % static_cast<std::size_t>(sample) == 0) samples.push_back(std::move(s));
        }
        std::mt19937_64 rng(seed);
        for (bool spam : {false, true}) {
            std::vector<std::size_t> idx;
            for (std::size_t i = 0; i < samples.size(); ++i)
                if (samples[i].spam == spam) idx.push_back(i);
            std::shuffle(idx.begin(), idx.end(), rng);
            for (std::size_t k = 0; k < idx.size(); ++k) samples[idx[k]].fold = static_cast<int>(k % folds);
        }
    }

    // Parse and tokenize once.
    auto tokenizer = std::make_shared<const bayes::Tokenizer>(topt);
    double parse_us = 0, tokenize_us = 0;
    std::vector<std::size_t> token_counts;
    std::size_t truncated = 0;
    for (auto& s : samples) {
        std::string raw = read_file(root / s.path);
        auto t0 = Clock::now();
        auto parsed = vigil::mime::parse_raw(raw);
        auto t1 = Clock::now();
        s.tokens = top > 0 ? tokenizer->tokenize_with_text(parsed, s.texts) : tokenizer->tokenize(parsed);
        auto t2 = Clock::now();
        s.id = bayes::message_id(parsed);
        parse_us += (t1 - t0).count();
        tokenize_us += (t2 - t1).count();
        token_counts.push_back(s.tokens.tokens.size());
        if (s.tokens.truncated) ++truncated;
    }
    if (!tmp.empty()) fs::remove_all(tmp);

    const vigil::core::SystemClock& clock = vigil::core::SystemClock::instance();
    if (top > 0) {
        vigil::state::bayes::MemoryStore store;
        bayes::Filter filter(tokenizer, store, clock, fopt);
        std::map<std::uint64_t, std::string> text;
        for (auto& s : samples) {
            filter.learn_tokens(s.id, s.tokens, s.spam ? bayes::Label::spam : bayes::Label::ham);
            for (std::size_t i = 0; i < s.texts.size(); ++i)
                text.emplace(s.tokens.tokens[i].hash, s.texts[i]);
        }
        bayes::Totals totals;
        std::vector<std::uint64_t> one(1);
        std::vector<bayes::TokenCounts> cnt(1);
        struct Row {
            double p;
            bayes::TokenCounts c;
            std::string text;
        };
        std::vector<Row> rows;
        for (const auto& [h, t] : text) {
            one[0] = h;
            store.read(one, cnt, totals);
            double p = bayes::token_probability(cnt[0], totals, fopt.classifier.robinson_s,
                                                fopt.classifier.robinson_x);
            rows.push_back({p, cnt[0], t});
        }
        // Strength weighted by how many messages carry the token.
        auto weight = [](const Row& r) { return std::fabs(r.p - 0.5) * std::log1p(r.c.spam + r.c.ham); };
        std::sort(rows.begin(), rows.end(),
                  [&](const Row& a, const Row& b) { return weight(a) > weight(b); });
        for (bool spam : {true, false}) {
            std::printf("strongest %s tokens (spam/ham messages of %llu/%llu):\n", spam ? "spam" : "ham",
                        static_cast<unsigned long long>(totals.spam),
                        static_cast<unsigned long long>(totals.ham));
            int shown = 0;
            for (const auto& r : rows) {
                if ((r.p > 0.5) != spam) continue;
                std::printf("  %6.4f %5u %5u  %s\n", r.p, r.c.spam, r.c.ham, r.text.c_str());
                if (++shown >= top) break;
            }
        }
        return 0;
    }

    // Cross-validation.
    double classify_us = 0, learn_us = 0;
    std::size_t classified = 0, unscored = 0, learned = 0;
    for (int k = 0; k < folds; ++k) {
        std::unique_ptr<bayes::Store> store;
        fs::path lmdb_dir;
        if (store_kind == "lmdb") {
            std::string tmpl = (fs::temp_directory_path() / "vigil-eval-lmdb.XXXXXX").string();
            if (mkdtemp(tmpl.data()) == nullptr) return 2;
            lmdb_dir = tmpl;
            vigil::state::bayes::LmdbStoreOptions so;
            so.path = (lmdb_dir / "bayes.lmdb").string();
            so.durable = false;
            so.tokenizer_id = tokenizer->id();
            std::unique_ptr<vigil::state::bayes::LmdbStore> ls;
            auto st = vigil::state::bayes::LmdbStore::open(so, ls);
            if (!st.ok()) {
                std::fprintf(stderr, "%s\n", st.message().c_str());
                return 2;
            }
            store = std::move(ls);
        } else {
            store = std::make_unique<vigil::state::bayes::MemoryStore>();
        }
        bayes::Filter filter(tokenizer, *store, clock, fopt);
        auto t0 = Clock::now();
        for (auto& s : samples) {
            if (s.fold == k) continue;
            bayes::StoreResult err;
            auto o =
                filter.learn_tokens(s.id, s.tokens, s.spam ? bayes::Label::spam : bayes::Label::ham, &err);
            if (o == bayes::LearnOutcome::store_error) {
                std::fprintf(stderr, "learn: %s\n", err.detail.c_str());
                return 2;
            }
            ++learned;
        }
        auto t1 = Clock::now();
        learn_us += (t1 - t0).count();
        // An untimed pass first: the timed one then sees the store as a running daemon does (pages
        // mapped and cached), not the first touch of a file written a moment ago.
        for (auto& s : samples)
            if (s.fold == k) (void)filter.classify_tokens(s.tokens);
        for (auto& s : samples) {
            if (s.fold != k) continue;
            auto c0 = Clock::now();
            auto r = filter.classify_tokens(s.tokens);
            classify_us += (Clock::now() - c0).count();
            ++classified;
            if (r.scored()) {
                s.probability = r.probability;
            } else {
                ++unscored;
            }
        }
        if (!lmdb_dir.empty()) {
            store.reset();
            fs::remove_all(lmdb_dir);
        }
    }

    // Figures.
    std::size_t n_spam = 0, n_ham = 0, n_hard = 0;
    for (const auto& s : samples) {
        if (s.spam)
            ++n_spam;
        else
            ++n_ham, n_hard += s.hard;
    }
    std::printf("corpus: %zu messages (%zu ham, %zu of them hard; %zu spam), %d-fold, seed %u%s\n",
                samples.size(), n_ham, n_hard, n_spam, folds, seed,
                sample > 1 ? (", 1 in " + std::to_string(sample) + " sampled").c_str() : "");
    std::printf("tokenizer: %s; classifier: %s", tokenizer->id().c_str(),
                fopt.classifier.method == bayes::Method::osb ? "osb" : "chi-square");
    if (fopt.classifier.method == bayes::Method::chi_square)
        std::printf(" (s %.3f, x %.3f, min strength %.3f, max %zu tokens)", fopt.classifier.robinson_s,
                    fopt.classifier.robinson_x, fopt.classifier.min_strength,
                    fopt.classifier.max_significant);
    std::printf("; min learned %llu; store %s\n", static_cast<unsigned long long>(fopt.min_spam_learned),
                store_kind.c_str());
    std::printf("unscored (too few learned): %zu\n", unscored);
    std::printf("%-9s %12s %12s %12s %14s\n", "p >=", "spam recall", "ham FPR", "easy-ham FPR",
                "hard-ham FPR");
    auto at_threshold = [&](double t, std::size_t& tp, std::size_t& fp, std::size_t& fp_easy,
                            std::size_t& fp_hard) {
        tp = fp = fp_easy = fp_hard = 0;
        for (const auto& s : samples) {
            if (s.probability < 0 || s.probability < t) continue;
            if (s.spam)
                ++tp;
            else {
                ++fp;
                (s.hard ? fp_hard : fp_easy)++;
            }
        }
    };
    for (double t : thresholds) {
        std::size_t tp, fp, fe, fh;
        at_threshold(t, tp, fp, fe, fh);
        std::printf("%-9.3f %11.2f%% %11.2f%% %11.2f%% %13.2f%%   (%zu/%zu spam, %zu+%zu ham)\n", t,
                    percent(tp, n_spam), percent(fp, n_ham), percent(fe, n_ham - n_hard), percent(fh, n_hard),
                    tp, n_spam, fe, fh);
    }
    // ROC points: the threshold that keeps the given share of spam, and the ham it lets through.
    std::vector<double> spam_p, ham_p;
    for (const auto& s : samples)
        (s.spam ? spam_p : ham_p).push_back(s.probability < 0 ? 0.5 : s.probability);
    std::sort(spam_p.begin(), spam_p.end(), std::greater<>());
    for (double recall : {0.97, 0.99}) {
        if (spam_p.empty()) break;
        std::size_t k = static_cast<std::size_t>(std::ceil(recall * spam_p.size())) - 1;
        double t = spam_p[std::min(k, spam_p.size() - 1)];
        std::size_t fp = 0, fh = 0;
        for (const auto& s : samples) {
            double p = s.probability < 0 ? 0.5 : s.probability;
            if (!s.spam && p >= t) ++fp, fh += s.hard;
        }
        std::printf("ROC: at %.0f%% spam recall (p >= %.6f) ham FPR %.2f%% (%zu; %zu of them hard)\n",
                    recall * 100, t, percent(fp, n_ham), fp, fh);
    }
    // AUC: the chance a random spam scores above a random ham (ties count half).
    {
        std::vector<std::pair<double, bool>> all_p;
        for (const auto& s : samples) all_p.emplace_back(s.probability < 0 ? 0.5 : s.probability, s.spam);
        std::sort(all_p.begin(), all_p.end());
        double rank_sum = 0;
        for (std::size_t i = 0; i < all_p.size();) {
            std::size_t j = i;
            while (j < all_p.size() && all_p[j].first == all_p[i].first) ++j;
            double avg_rank = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;
            for (std::size_t q = i; q < j; ++q)
                if (all_p[q].second) rank_sum += avg_rank;
            i = j;
        }
        double ns = static_cast<double>(n_spam), nh = static_cast<double>(n_ham);
        if (ns > 0 && nh > 0) {
            auc = (rank_sum - ns * (ns + 1) / 2.0) / (ns * nh);
            std::printf("AUC: %.5f\n", auc);
        }
    }
    // Where the probabilities fall.
    {
        const double edges[] = {0,   0.01, 0.05, 0.2,  0.4,   0.499999, 0.500001,
                                0.6, 0.8,  0.95, 0.99, 0.999, 1.000001};
        std::printf("histogram (ham/spam):");
        for (std::size_t b = 0; b + 1 < std::size(edges); ++b) {
            std::size_t h = 0, sp = 0;
            for (const auto& s : samples) {
                double p = s.probability < 0 ? 0.5 : s.probability;
                if (p >= edges[b] && p < edges[b + 1]) (s.spam ? sp : h)++;
            }
            std::printf(" [%.3g,%.3g) %zu/%zu", edges[b], edges[b + 1], h, sp);
        }
        std::printf("\n");
    }
    // Per group.
    std::map<std::string, std::pair<std::size_t, std::size_t>> groups;  // group -> (messages, wrong at 0.5)
    for (const auto& s : samples) {
        auto& g = groups[s.group];
        ++g.first;
        double p = s.probability < 0 ? 0.5 : s.probability;
        if (s.spam ? p < 0.5 : p >= 0.5) ++g.second;
    }
    std::printf("wrong at 0.5 by group:");
    for (const auto& [g, v] : groups) std::printf(" %s %zu/%zu", g.c_str(), v.second, v.first);
    std::printf("\n");
    std::sort(token_counts.begin(), token_counts.end());
    auto pct = [&](double q) {
        return token_counts[std::min(token_counts.size() - 1,
                                     static_cast<std::size_t>(q * token_counts.size()))];
    };
    std::printf("tokens per message: mean %.0f, median %zu, p99 %zu, max %zu; truncated %zu\n",
                std::accumulate(token_counts.begin(), token_counts.end(), 0.0) / token_counts.size(),
                pct(0.5), pct(0.99), token_counts.back(), truncated);
    std::printf(
        "cost per message: parse (mime::parse) %.1f us, tokenize %.1f us, classify %.1f us (%s store), "
        "learn %.1f us\n",
        parse_us / samples.size(), tokenize_us / samples.size(),
        classify_us / std::max<std::size_t>(1, classified), store_kind.c_str(),
        learn_us / std::max<std::size_t>(1, learned));

    int rc = 0;
    if (min_recall >= 0 || max_fpr >= 0 || min_auc >= 0) {
        std::size_t tp, fp, fe, fh;
        at_threshold(at, tp, fp, fe, fh);
        double recall = n_spam ? static_cast<double>(tp) / n_spam : 0,
               fpr = n_ham ? static_cast<double>(fp) / n_ham : 1;
        if (min_recall >= 0 && recall < min_recall) {
            std::printf("FAIL: spam recall %.4f at p >= %.3f is below %.4f\n", recall, at, min_recall);
            rc = 1;
        }
        if (max_fpr >= 0 && fpr > max_fpr) {
            std::printf("FAIL: ham FPR %.4f at p >= %.3f is above %.4f\n", fpr, at, max_fpr);
            rc = 1;
        }
        if (min_auc >= 0 && auc < min_auc) {
            std::printf("FAIL: AUC %.5f is below %.5f\n", auc, min_auc);
            rc = 1;
        }
        if (unscored > 0) {
            std::printf("FAIL: %zu messages unscored\n", unscored);
            rc = 1;
        }
        if (rc == 0)
            std::printf("PASS: recall %.4f, ham FPR %.4f at p >= %.3f, AUC %.5f\n", recall, fpr, at, auc);
    }
    return rc;
}
