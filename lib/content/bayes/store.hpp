#pragma once
// The Bayes store's interface and value types live in the state floor (state/bayes/store.hpp, with
// the memory and LMDB stores); the filter names them as its own.
#include "state/bayes/store.hpp"

namespace vigil::content::bayes {

using state::bayes::Label;
using state::bayes::MessageId;
using state::bayes::Store;
using state::bayes::StoreResult;
using state::bayes::StoreStatus;
using state::bayes::TokenCounts;
using state::bayes::Totals;
using state::bayes::Update;

}  // namespace vigil::content::bayes
