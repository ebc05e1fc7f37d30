#pragma once
// `vigil learn`: teaches the Bayes filter from message files and maintains its store.
#include <string>

namespace vigil::tools {

// argv starts at "learn":
//   learn --spam|--ham|--forget [--store PATH] [--verbose] FILE|DIR...
//   learn --expire [--store PATH] [--rare-age-days N] [--max-tokens N]
//   learn --stats [--store PATH]
//   learn --dump-tokens FILE
// A FILE is one message (a leading mbox "From " line is fine) or an mbox of several; a DIR means
// every file in it (not its subdirectories). The store defaults to STATE_DIR/bayes.lmdb with
// STATE_DIR from the configuration's [server] state_dir (default /var/lib/vigil).
// Returns 0 on success, 1 when some file could not be read, 2 on usage or store errors.
int learn_command(int argc, char** argv, const std::string& config_path, bool explicit_config);

}  // namespace vigil::tools
