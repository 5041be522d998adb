// jetstream_consume: an example of a service reading the ledger's JetStream stream (written by
// ledgerd's JetStreamPublisher) from a position, printing one JSON object per event. A real
// consumer would keep the last position it processed and start from the next one.
#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "server/jetstream_publisher.h"

namespace {

constexpr std::string_view kUsage =
    R"(usage: jetstream_consume [--urls URL[,URL...]] [--stream NAME]
                         [--from-position P | --from-sequence S] [--idle-ms N | --follow]

Prints the events of the ledger's JetStream stream as JSON lines, in position order.

  --urls URLS         NATS servers, comma-separated (default nats://127.0.0.1:4222)
  --stream NAME       the JetStream stream (default LEDGER)
  --from-position P   start at the event at log position P (found by binary search)
  --from-sequence S   start at stream sequence S (default 1)
  --idle-ms N         stop after N ms without a message (default 2000)
  --follow            never stop: wait for new events
  --help              print this help

Positions below P, and positions at or below the last one printed (a stream the ledger published
again from position 1 after a purge repeats them), are skipped.

Exit codes: 0 (ok), 1 (the stream no longer holds position P: its first message after P is a
later position, purged or removed by the stream's limits; nothing is printed), 2 (bad usage),
3 (the stream could not be read).
)";

std::optional<uint64_t> ParseNumber(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || value > UINT64_MAX / 10 - 1) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) parts.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

int Usage(const char* problem) {
  std::fprintf(stderr, "jetstream_consume: %s\n\n%s", problem, kUsage.data());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> urls = {"nats://127.0.0.1:4222"};
  std::string stream = "LEDGER";
  std::optional<uint64_t> from_position;
  uint64_t from_sequence = 1;
  int64_t idle_ms = 2'000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      return 0;
    }
    if (arg == "--follow") {
      idle_ms = int64_t{365} * 24 * 3600 * 1000;
    } else if (!has_value) {
      return Usage(("unknown or incomplete argument " + std::string(arg)).c_str());
    } else if (arg == "--urls") {
      urls = SplitCommas(argv[++i]);
      if (urls.empty()) return Usage("--urls wants at least one URL");
    } else if (arg == "--stream") {
      stream = argv[++i];
    } else if (arg == "--from-position" || arg == "--from-sequence" || arg == "--idle-ms") {
      const std::optional<uint64_t> number = ParseNumber(argv[++i]);
      if (!number) return Usage((std::string(arg) + " wants a number").c_str());
      if (arg == "--from-position") from_position = *number;
      if (arg == "--from-sequence") from_sequence = *number;
      if (arg == "--idle-ms") idle_ms = static_cast<int64_t>(*number);
    } else {
      return Usage(("unknown argument " + std::string(arg)).c_str());
    }
  }

  auto reader = ledger::server::JetStreamReader::Connect(urls, stream);
  if (!reader) {
    std::fprintf(stderr, "jetstream_consume: %s\n", reader.error().c_str());
    return 3;
  }
  if (from_position) {
    auto sequence = (*reader)->SequenceOfPosition(*from_position);
    if (!sequence) {
      std::fprintf(stderr, "jetstream_consume: %s\n", sequence.error().c_str());
      return 3;
    }
    from_sequence = *sequence;
  }
  // The first position printed must be the one asked for: a later one means the positions
  // between are missing from the stream, and a consumer that went on would skip them silently.
  // Positions below it are skipped (the binary search lands on the first message at or after
  // it, but a stream published again from position 1 after a purge holds lower ones after it),
  // and so is every position at or below the last one printed (such a republish repeats them).
  const uint64_t wanted = from_position ? std::max<uint64_t>(*from_position, 1) : 0;
  std::optional<uint64_t> last_printed;
  std::optional<uint64_t> first_position_found;
  auto consumed = (*reader)->Consume(
      from_sequence, idle_ms, [&](const ledger::server::JetStreamMessage& message) {
        if (from_position && message.position < wanted) return true;
        if (last_printed && message.position != 0 && message.position <= *last_printed) {
          return true;
        }
        if (!last_printed && from_position && message.position > wanted) {
          first_position_found = message.position;
          return false;
        }
        last_printed = message.position;
        boost::json::object line;
        line["sequence"] = message.sequence;
        line["subject"] = message.subject;
        line["position"] = message.position;
        line["stream"] = message.stream;
        line["version"] = message.version;
        line["event_id"] = message.event_id;
        line["event_type"] = message.event_type;
        line["recorded_at_us"] = message.recorded_at_us;
        line["hash"] = message.hash;
        line["previous_hash"] = message.previous_hash;
        line["payload_hex"] = ledger::ToHex(message.payload);
        fmt::print("{}\n", boost::json::serialize(line));
        std::fflush(stdout);
        return true;
      });
  if (!consumed) {
    std::fprintf(stderr, "jetstream_consume: %s\n", consumed.error().c_str());
    return 3;
  }
  if (first_position_found) {
    const uint64_t found = *first_position_found;
    std::fprintf(stderr,
                 "jetstream_consume: stream %s does not hold position %llu: its first message "
                 "from there holds position %llu, so positions %llu to %llu are missing (purged, "
                 "or removed by the stream's limits); --from-position %llu reads what it holds\n",
                 stream.c_str(), static_cast<unsigned long long>(wanted),
                 static_cast<unsigned long long>(found), static_cast<unsigned long long>(wanted),
                 static_cast<unsigned long long>(found - 1),
                 static_cast<unsigned long long>(found));
    return 1;
  }
  return 0;
}
