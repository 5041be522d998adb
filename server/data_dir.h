// The layout of a ledger's data directory, shared by ledgerd and ledgerctl:
//   <data dir>/log    the event store (RocksDB; eventstore/FORMAT.md)
//   <data dir>/state  derived state: projections and checkpoints (RocksDB)
#pragma once

#include <string>

namespace ledger::server {

inline std::string LogPath(const std::string& data_dir) { return data_dir + "/log"; }
inline std::string StatePath(const std::string& data_dir) { return data_dir + "/state"; }

}  // namespace ledger::server
