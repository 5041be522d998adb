#include "server/jetstream_publisher.h"

#include <fmt/format.h>
#include <nats/nats.h>

#include <toml++/toml.h>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/assert.h"
#include "base/bytes.h"

namespace ledger::server {
namespace {

using eventstore::EventStore;
using eventstore::RecordedEvent;
using eventstore::StateStore;
using eventstore::StoreResult;
using Clock = std::chrono::steady_clock;

constexpr char kCheckpointPrefix[] = "js/checkpoint/";
// Events read from the log in one page, at most.
constexpr size_t kReadPageEventsMax = 1'000;
// How often the checkpoint is written while acknowledgements keep coming. The stream, not the
// checkpoint, decides where publishing resumes, so losing the last few writes costs nothing.
constexpr auto kCheckpointInterval = std::chrono::milliseconds(100);
// How long the publishing thread sleeps when nothing happens (it also wakes on commits and
// acknowledgements); bounds how stale Stats().connected can be.
constexpr auto kIdleWait = std::chrono::milliseconds(100);
// How often the publishing thread asks whether the stream still holds what was acknowledged: a
// deletion or a purge answers no publish with an error (a purge keeps the last sequence, so the
// expected-sequence check still passes), and without asking, a stream deleted or emptied while
// the ledger is quiet would stay so.
constexpr auto kStreamCheckInterval = std::chrono::milliseconds(1'000);

bool IsTokenByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// A NATS name (stream) or subject: no whitespace, no wildcards; a stream name has no '.' either.
bool IsValidNatsName(std::string_view name, bool dots_allowed) {
  if (name.empty() || name.size() > 255) return false;
  if (dots_allowed && (name.front() == '.' || name.back() == '.')) return false;
  if (dots_allowed && name.find("..") != std::string_view::npos) return false;
  for (char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || byte == 0x7f || c == '*' || c == '>' || c == '/' || c == '\\') return false;
    if (c == '.' && !dots_allowed) return false;
  }
  return true;
}

std::string NatsErrorText(natsStatus status, int code = 0) {
  const char* last = nats_GetLastError(nullptr);
  return fmt::format("{}{}{}", natsStatus_GetText(status),
                     code != 0 ? fmt::format(" (JetStream error {})", code) : "",
                     last != nullptr && *last != '\0' ? fmt::format(": {}", last) : "");
}

std::optional<uint64_t> ParseUnsigned(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  uint64_t value = 0;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return std::nullopt;
    if (value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(*c - '0');
  }
  return value;
}

}  // namespace

std::string SubjectToken(std::string_view name) {
  if (name.empty()) return "%";
  std::string token;
  token.reserve(name.size());
  for (char c : name) {
    if (IsTokenByte(c)) {
      token.push_back(c);
    } else {
      token += fmt::format("%{:02X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    }
  }
  return token;
}

std::string SubjectTokenDecode(std::string_view token) {
  if (token == "%") return {};
  std::string name;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '%' && i + 2 < token.size()) {
      auto byte = FromHex(token.substr(i + 1, 2));
      if (byte && byte->size() == 1) {
        name += *byte;
        i += 2;
        continue;
      }
    }
    name.push_back(token[i]);
  }
  return name;
}

std::string SubjectFor(std::string_view subject_prefix, const RecordedEvent& event) {
  return fmt::format("{}.{}.{}", subject_prefix, SubjectToken(event.stream),
                     SubjectToken(event.event_type));
}

Result<JetStreamConfig, std::string> ParseJetStreamConfig(std::string_view toml_document) {
  JetStreamConfig config;
  try {
    const toml::table document = toml::parse(toml_document);
    const toml::node* node = document.get("jetstream");
    if (node == nullptr) return config;
    const toml::table* table = node->as_table();
    if (table == nullptr) return Unexpected(std::string("jetstream: must be a table"));
    for (const auto& [key, value] : *table) {
      const std::optional<int64_t> number = value.value<int64_t>();
      const auto in = [&](int64_t low, int64_t high) {
        return number && *number >= low && *number <= high;
      };
      const std::optional<std::string> text =
          value.is_string() ? std::optional<std::string>(value.as_string()->get()) : std::nullopt;
      bool ok = true;
      if (key == "enabled" && value.is_boolean()) {
        config.enabled = value.as_boolean()->get();
      } else if (key == "urls" && value.is_array()) {
        config.urls.clear();
        for (const toml::node& url : *value.as_array()) {
          if (!url.is_string() || url.as_string()->get().empty()) ok = false;
          if (ok) config.urls.push_back(url.as_string()->get());
        }
        ok = ok && !config.urls.empty();
      } else if (key == "urls" && text && !text->empty()) {
        config.urls = {*text};
      } else if (key == "stream" && text && IsValidNatsName(*text, false)) {
        config.stream = *text;
      } else if (key == "subject_prefix" && text && IsValidNatsName(*text, true)) {
        config.subject_prefix = *text;
      } else if (key == "replicas" && in(1, 5)) {
        config.replicas = *number;
      } else if (key == "storage" && text && (*text == "file" || *text == "memory")) {
        config.memory_storage = *text == "memory";
      } else if (key == "duplicate_window_s" && in(1, 7 * 24 * 3600)) {
        config.duplicate_window_s = *number;
      } else if (key == "max_in_flight" && in(1, 65'536)) {
        config.max_in_flight = static_cast<size_t>(*number);
      } else if (key == "ack_timeout_ms" && in(10, 600'000)) {
        config.ack_timeout_ms = *number;
      } else if (key == "reconnect_backoff_ms_min" && in(1, 600'000)) {
        config.reconnect_backoff_ms_min = *number;
      } else if (key == "reconnect_backoff_ms_max" && in(1, 600'000)) {
        config.reconnect_backoff_ms_max = *number;
      } else {
        ok = false;
      }
      if (!ok) {
        return Unexpected(fmt::format(
            "jetstream.{} (line {}): unknown key, wrong type or out of range (known: enabled: "
            "boolean; urls: array of strings; stream: a name without '.', '*', '>' or spaces; "
            "subject_prefix: a subject without wildcards; replicas: 1-5; storage: \"file\" or "
            "\"memory\"; integers: duplicate_window_s 1-604800, max_in_flight 1-65536, "
            "ack_timeout_ms 10-600000, reconnect_backoff_ms_min and _max 1-600000)",
            std::string_view(key), value.source().begin.line));
      }
    }
  } catch (const toml::parse_error& error) {
    return Unexpected(fmt::format("TOML syntax error (line {}): {}", error.source().begin.line,
                                  error.description()));
  } catch (const std::exception& error) {
    return Unexpected(fmt::format("configuration not readable: {}", error.what()));
  }
  if (config.reconnect_backoff_ms_max < config.reconnect_backoff_ms_min) {
    return Unexpected(
        std::string("jetstream: reconnect_backoff_ms_max is below reconnect_backoff_ms_min"));
  }
  // A copy is sent again at most one acknowledgement timeout (plus a reconnect) after the first;
  // the window that drops duplicates must be longer than that, with a margin.
  if (config.duplicate_window_s * 1000 < 2 * config.ack_timeout_ms) {
    return Unexpected(fmt::format(
        "jetstream: duplicate_window_s ({} s) must be at least twice ack_timeout_ms ({} ms): a "
        "message may be sent again up to one acknowledgement timeout after it was first sent",
        config.duplicate_window_s, config.ack_timeout_ms));
  }
  return config;
}

namespace {

// What the stream answered for one message.
struct Outcome {
  bool ok = false;
  bool duplicate = false;
  uint64_t sequence = 0;
  std::string error;
};

// A message sent and not yet settled: its position, the stream sequence it must get, and when
// it was sent (an answer overdue by far says the connection is gone, see Publish).
struct InFlight {
  uint64_t position = 0;
  uint64_t sequence = 0;
  Clock::time_point sent_at;
};

// Whether the stream may drop messages on its own: then it is not expected to hold the whole
// log, and a missing head is no loss to report. The publisher creates its stream without limits.
bool HasLimits(const jsStreamConfig& config) {
  return config.Retention != js_LimitsPolicy || config.MaxMsgs > 0 || config.MaxBytes > 0 ||
         config.MaxAge > 0 || config.MaxMsgsPerSubject > 0;
}

// How a publishing session ended.
struct SessionEnd {
  std::string error;  // Empty when stopping.
  bool backoff = true;
};

class NatsPublisher;

// The NATS client reports acknowledgements on its own threads, and may still be running one
// after the connection is closed. The publishers alive are listed here, and a report goes to
// its publisher only while the publisher is listed: the report holds this lock throughout, so
// a publisher's destructor, which unlists it, cannot finish while a report is using it. A
// process has one publisher, so the lock is never contended in practice.
std::mutex& RegistryMutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
std::unordered_set<const NatsPublisher*>& Registry() {
  static auto* publishers = new std::unordered_set<const NatsPublisher*>();
  return *publishers;
}

class NatsPublisher final : public JetStreamPublisher {
 public:
  NatsPublisher(EventStore& store, StateStore& state, JetStreamConfig config, uint64_t checkpoint)
      : store_(store),
        state_(state),
        config_(std::move(config)),
        checkpoint_key_(kCheckpointPrefix + config_.stream),
        wildcard_(config_.subject_prefix + ".>"),
        acked_(checkpoint),
        saved_checkpoint_(checkpoint) {
    stats_.acknowledged_position = checkpoint;
    std::lock_guard registry_lock(RegistryMutex());
    Registry().insert(this);
  }

  ~NatsPublisher() override {
    Stop();
    std::lock_guard registry_lock(RegistryMutex());
    Registry().erase(this);
  }

  void Start() override {
    std::lock_guard lock(mutex_);
    LEDGER_ASSERT(!started_, "JetStreamPublisher::Start called twice");
    started_ = true;
    commit_listener_ = store_.AddCommitListener([this](uint64_t head) {
      std::lock_guard commit_lock(mutex_);
      committed_head_ = std::max(committed_head_, head);
      wake_.notify_all();
    });
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() override {
    std::lock_guard stop_lock(stop_mutex_);
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      wake_.notify_all();
    }
    if (!thread_.joinable()) return;
    thread_.join();
    store_.RemoveCommitListener(commit_listener_);
  }

  JetStreamStats Stats() const override {
    const uint64_t head = store_.HeadPosition();
    std::lock_guard lock(mutex_);
    JetStreamStats stats = stats_;
    stats.head_position = std::max(head, stats.acknowledged_position);
    stats.lag = stats.head_position - stats.acknowledged_position;
    // The last problem, what the stream lacks (while it lacks it) and the connection's state
    // (while it is lost), each kept apart so that one does not overwrite another.
    const auto add = [&](const std::string& part) {
      if (part.empty() || stats.last_error.find(part) != std::string::npos) return;
      stats.last_error += (stats.last_error.empty() ? "" : "; ") + part;
    };
    add(stream_lacks_);
    add(connection_problem_);
    return stats;
  }

  bool WaitForAcknowledged(uint64_t position, int64_t timeout_ms) override {
    std::unique_lock lock(mutex_);
    return acknowledged_changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                          [&] { return stats_.acknowledged_position >= position; });
  }

  // Called by the NATS client for each acknowledgement or failure (see RegistryMutex).
  static void OnAcknowledgement(jsCtx*, natsMsg* message, jsPubAck* ack, jsPubAckErr* failure,
                                void* closure) {
    {
      std::lock_guard registry_lock(RegistryMutex());
      auto* publisher = static_cast<NatsPublisher*>(closure);
      if (Registry().contains(publisher)) publisher->Record(message, ack, failure);
    }
    natsMsg_Destroy(message);
  }

 private:
  void Record(natsMsg* message, jsPubAck* ack, jsPubAckErr* failure) {
    std::lock_guard lock(mutex_);
    const auto live = live_.find(message);
    // Not listed: a message given up by Settle(); its answer no longer matters.
    if (live == live_.end()) return;
    const uint64_t position = live->second;
    live_.erase(live);
    Outcome outcome;
    if (ack != nullptr) {
      outcome.ok = true;
      outcome.duplicate = ack->Duplicate;
      outcome.sequence = ack->Sequence;
    } else if (failure != nullptr) {
      outcome.error = fmt::format(
          "publishing position {} failed: {}{}", position, natsStatus_GetText(failure->Err),
          failure->ErrText != nullptr ? fmt::format(" ({})", failure->ErrText) : "");
    } else {
      outcome.error = fmt::format("publishing position {} failed without an answer", position);
    }
    done_.emplace(position, std::move(outcome));
    wake_.notify_all();
  }

  bool Stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  // The publishing thread: sessions until Stop, with backoff between failed ones.
  void Run() {
    int64_t backoff_ms = config_.reconnect_backoff_ms_min;
    while (!Stopping()) {
      const uint64_t acked_before = acked_;
      const SessionEnd end = Session();
      if (end.error.empty()) break;
      {
        std::lock_guard lock(mutex_);
        ++stats_.retries;
        stats_.connected = Connected();
        stats_.last_error = end.error;
        // A request that timed out names no cause when the connection is what failed: Stats()
        // adds it.
        connection_problem_ =
            connection_ != nullptr && !stats_.connected ? ConnectionProblem() : std::string();
      }
      if (acked_ > acked_before) backoff_ms = config_.reconnect_backoff_ms_min;
      if (!end.backoff) continue;
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping_; });
      backoff_ms = std::min(backoff_ms * 2, config_.reconnect_backoff_ms_max);
    }
    Settle();
    SaveCheckpoint();
    Disconnect();
    std::lock_guard lock(mutex_);
    stats_.connected = false;
    stats_.in_flight = 0;
  }

  bool Connected() const {
    return connection_ != nullptr &&
           natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
  }

  SessionEnd Session() {
    if (connection_ != nullptr && natsConnection_Status(connection_) == NATS_CONN_STATUS_CLOSED) {
      Disconnect();
    }
    if (connection_ == nullptr) {
      if (std::string error = Connect(); !error.empty()) return {error, true};
    }
    if (!stream_checked_) {
      if (std::string error = EnsureStream(); !error.empty()) return {error, true};
      stream_checked_ = true;
    }
    if (std::string error = Resume(); !error.empty()) return {error, true};
    {
      std::lock_guard lock(mutex_);
      stats_.connected = Connected();
      if (stats_.connected) connection_problem_.clear();
    }
    SessionEnd end = Publish();
    Settle();
    SaveCheckpoint();
    return end;
  }

  std::string Connect() {
    natsOptions* options = nullptr;
    natsStatus status = natsOptions_Create(&options);
    std::vector<const char*> urls;
    for (const std::string& url : config_.urls) urls.push_back(url.c_str());
    if (status == NATS_OK) {
      status = natsOptions_SetServers(options, urls.data(), static_cast<int>(urls.size()));
    }
    if (status == NATS_OK) status = natsOptions_SetTimeout(options, 2'000);
    if (status == NATS_OK) status = natsOptions_SetAllowReconnect(options, true);
    if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);
    if (status == NATS_OK) {
      status = natsOptions_SetReconnectWait(options, config_.reconnect_backoff_ms_min);
    }
    if (status == NATS_OK) status = natsOptions_SetPingInterval(options, 2'000);
    if (status == NATS_OK) status = natsConnection_Connect(&connection_, options);
    natsOptions_Destroy(options);
    if (status != NATS_OK) {
      connection_ = nullptr;
      return fmt::format("connecting to {}: {}", fmt::join(config_.urls, ","),
                         NatsErrorText(status));
    }
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = config_.ack_timeout_ms;
    js_options.PublishAsync.AckHandler = &NatsPublisher::OnAcknowledgement;
    js_options.PublishAsync.AckHandlerClosure = this;
    // No limit in the client: the window is ours (max_in_flight), so a publish never stalls.
    js_options.PublishAsync.MaxPending = 0;
    status = natsConnection_JetStream(&js_, connection_, &js_options);
    if (status != NATS_OK) {
      Disconnect();
      return "JetStream context: " + NatsErrorText(status);
    }
    stream_checked_ = false;
    return {};
  }

  void Disconnect() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    js_ = nullptr;
    published_async_ = false;
    if (connection_ != nullptr) natsConnection_Destroy(connection_);
    connection_ = nullptr;
    stream_checked_ = false;
  }

  // Creates the stream, or checks it and brings replicas and the duplicate window to the
  // configuration.
  std::string EnsureStream() {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus status = js_GetStreamInfo(&info, js_, config_.stream.c_str(), nullptr, &code);
    const int64_t duplicates_ns = config_.duplicate_window_s * 1'000'000'000;
    const jsStorageType storage = config_.memory_storage ? js_MemoryStorage : js_FileStorage;
    if (status == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
      jsStreamConfig stream;
      jsStreamConfig_Init(&stream);
      const char* subjects[] = {wildcard_.c_str()};
      stream.Name = config_.stream.c_str();
      stream.Subjects = subjects;
      stream.SubjectsLen = 1;
      stream.Storage = storage;
      stream.Replicas = config_.replicas;
      stream.Duplicates = duplicates_ns;
      status = js_AddStream(&info, js_, &stream, nullptr, &code);
      jsStreamInfo_Destroy(info);
      if (status != NATS_OK)
        return "creating the stream: " + NatsErrorText(status, static_cast<int>(code));
      return {};
    }
    if (status != NATS_OK)
      return "reading the stream's configuration: " + NatsErrorText(status, static_cast<int>(code));
    std::string problem;
    jsStreamConfig* existing = info->Config;
    if (existing->Storage != storage) {
      problem = fmt::format("stream {} has {} storage, the configuration says {}", config_.stream,
                            existing->Storage == js_FileStorage ? "file" : "memory",
                            config_.memory_storage ? "memory" : "file");
    } else if (existing->SubjectsLen != 1 || wildcard_ != existing->Subjects[0]) {
      problem =
          fmt::format("stream {} must have exactly the subjects {}", config_.stream, wildcard_);
    } else if (existing->Replicas != config_.replicas || existing->Duplicates != duplicates_ns) {
      existing->Replicas = config_.replicas;
      existing->Duplicates = duplicates_ns;
      jsStreamInfo* updated = nullptr;
      status = js_UpdateStream(&updated, js_, existing, nullptr, &code);
      jsStreamInfo_Destroy(updated);
      if (status != NATS_OK)
        problem = "updating the stream: " + NatsErrorText(status, static_cast<int>(code));
    }
    jsStreamInfo_Destroy(info);
    return problem;
  }

  // Reads where the stream ends and sets where publishing resumes (see the header comment). A
  // stream deleted (or lost with a server's store) is created again, and an empty one whose
  // messages were acknowledged gets the log again from position 1. A stream that holds some but
  // not all of positions 1 to its end is left as it is (publishing goes on at its end): what it
  // lacks is reported in last_error. Nothing here purges or deletes.
  std::string Resume() {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus status = js_GetStreamInfo(&info, js_, config_.stream.c_str(), nullptr, &code);
    std::string loss;  // Why positions are published again; empty when none were lost.
    if (status == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
      // Deleted while we ran, or a server restarted with an empty store.
      if (std::string error = EnsureStream(); !error.empty()) return error;
      loss = "the stream was gone (deleted, or its store lost) and is created again";
      code = static_cast<jsErrCode>(0);
      status = js_GetStreamInfo(&info, js_, config_.stream.c_str(), nullptr, &code);
    }
    if (status != NATS_OK)
      return "reading the stream's state: " + NatsErrorText(status, static_cast<int>(code));
    // One snapshot of the stream's state: what it lacks is judged from it alone.
    const StreamState state = ToStreamState(*info);
    jsStreamInfo_Destroy(info);
    stream_has_limits_ = state.has_limits;
    first_message_checked_ = {};
    uint64_t position = 0;
    uint64_t sequence = state.last_sequence;
    std::string lacks;
    if (state.messages == 0 && state.last_sequence != 0 && state.has_limits) {
      // The stream's limits removed everything: trust the checkpoint for where it ended, if the
      // log reaches it.
      if (acked_ > store_.HeadPosition()) {
        return fmt::format(
            "the checkpoint says position {} was published, beyond the log's head {}: the log "
            "is older than the state directory or another ledger's",
            acked_, store_.HeadPosition());
      }
      position = acked_;
    } else if (state.messages == 0 && acked_ > 0 && loss.empty()) {
      loss = state.last_sequence == 0 ? "the stream is new (it was deleted or its store lost)"
                                      : "the stream is empty (purged)";
    } else if (state.messages != 0) {
      if (std::string error = ReadLastPosition(position, sequence); !error.empty()) return error;
      if (std::string error = DescribeLacks(state, lacks); !error.empty()) return error;
    }
    {
      std::lock_guard lock(mutex_);
      stream_lacks_ = lacks;
    }
    if (!loss.empty() || position < acked_) {
      // The stream lost what we (or a predecessor) published: publish it again from its end.
      // The messages get new stream sequences, hence new Nats-Msg-Ids (see MessageId), which
      // the duplicate window does not confuse with the removed ones.
      std::lock_guard lock(mutex_);
      stats_.last_error = fmt::format(
          "{}the stream ends at position {}, the checkpoint was {}: "
          "publishing again from {}",
          loss.empty() ? "" : loss + "; ", position, acked_, position + 1);
    }
    acked_ = position;
    next_position_ = position + 1;
    expected_last_sequence_ = sequence;
    SetAcknowledged(position);
    SaveCheckpoint();
    return {};
  }

  // What Resume and CheckStreamIntact read of a stream's state.
  struct StreamState {
    uint64_t first_sequence = 0;
    uint64_t last_sequence = 0;
    uint64_t messages = 0;
    uint64_t deleted = 0;
    bool has_limits = false;
  };
  static StreamState ToStreamState(const jsStreamInfo& info) {
    return {.first_sequence = info.State.FirstSeq,
            .last_sequence = info.State.LastSeq,
            .messages = info.State.Msgs,
            .deleted = info.State.NumDeleted,
            .has_limits = HasLimits(*info.Config)};
  }

  // Sets `lacks` to what a stream without limits lacks of positions 1 to its end, judged from
  // one snapshot of its state: messages deleted between its first and last sequence, or a first
  // message that is not position 1 (its head purged). Empty when it lacks nothing, or has
  // limits (then it is not expected to hold the whole log). Reads the first message only when
  // the first sequence changed since the last call (a stored message does not change).
  std::string DescribeLacks(const StreamState& state, std::string& lacks) {
    lacks.clear();
    if (state.has_limits || state.messages == 0) return {};
    if (first_message_checked_.first != state.first_sequence) {
      natsMsg* first = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus status =
          js_GetMsg(&first, js_, config_.stream.c_str(), state.first_sequence, nullptr, &code);
      if (status != NATS_OK) {
        return fmt::format("reading the stream's first message (sequence {}): {}",
                           state.first_sequence, NatsErrorText(status, static_cast<int>(code)));
      }
      const char* position_text = nullptr;
      natsMsgHeader_Get(first, kHeaderPosition, &position_text);
      const uint64_t first_position = ParseUnsigned(position_text).value_or(0);
      natsMsg_Destroy(first);
      first_message_checked_ = {state.first_sequence, first_position};
    }
    const uint64_t first_position = first_message_checked_.second;
    std::vector<std::string> parts;
    if (first_position == 0) {
      parts.push_back(fmt::format("its first message (sequence {}) has no {} header",
                                  state.first_sequence, kHeaderPosition));
    } else if (first_position > 1) {
      parts.push_back(
          fmt::format("positions 1 to {} (its first message, sequence {}, is "
                      "position {})",
                      first_position - 1, state.first_sequence, first_position));
    }
    if (state.deleted > 0) {
      parts.push_back(fmt::format("{} message(s) deleted between sequences {} and {}",
                                  state.deleted, state.first_sequence, state.last_sequence));
    }
    if (parts.empty()) return {};
    lacks = fmt::format(
        "stream {} lacks {}: publishing goes on at its end and does not fill the gap; purge the "
        "stream (all of it) to make the ledger publish the whole log again from position 1",
        config_.stream, fmt::join(parts, " and "));
    return {};
  }

  // Reads the stream's last message: its position (checked against the log) and sequence.
  std::string ReadLastPosition(uint64_t& position, uint64_t& sequence) {
    natsMsg* last = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus status =
        js_GetLastMsg(&last, js_, config_.stream.c_str(), wildcard_.c_str(), nullptr, &code);
    if (status != NATS_OK) {
      return "reading the stream's last message: " + NatsErrorText(status, static_cast<int>(code));
    }
    sequence = natsMsg_GetSequence(last);
    const char* position_text = nullptr;
    const char* hash_text = nullptr;
    natsMsgHeader_Get(last, kHeaderPosition, &position_text);
    natsMsgHeader_Get(last, kHeaderHash, &hash_text);
    const std::optional<uint64_t> parsed = ParseUnsigned(position_text);
    const std::string hash = hash_text != nullptr ? hash_text : "";
    natsMsg_Destroy(last);
    if (!parsed) {
      return fmt::format(
          "the stream's last message (sequence {}) has no {} header: it was not "
          "published by a ledger",
          sequence, kHeaderPosition);
    }
    position = *parsed;
    return CheckOurs(position, hash);
  }

  // Asked every kStreamCheckInterval while connected. Returns why Resume must run: the stream
  // is gone, or it is empty although positions were acknowledged (purged) and has no limits.
  // What a stream that still holds messages lacks is only reported (stream_lacks_), never
  // repaired: a Resume would find the same and end in the same place. Other failures to ask are
  // left to the publishes, which meet them too.
  std::string CheckStreamIntact() {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus status = js_GetStreamInfo(&info, js_, config_.stream.c_str(), nullptr, &code);
    if (status == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
      return fmt::format(
          "stream {} is gone (deleted, or a server lost its store): creating it "
          "again",
          config_.stream);
    }
    if (status != NATS_OK) return {};
    const StreamState state = ToStreamState(*info);
    jsStreamInfo_Destroy(info);
    stream_has_limits_ = state.has_limits;
    if (!state.has_limits && state.messages == 0 && acked_ > 0) {
      return fmt::format(
          "stream {} is empty, though positions up to {} were acknowledged (purged): "
          "publishing the log again from position 1",
          config_.stream, acked_);
    }
    std::string lacks;
    if (DescribeLacks(state, lacks).empty()) {
      std::lock_guard lock(mutex_);
      stream_lacks_ = lacks;
    }
    return {};
  }

  // Whether the stream's last message, at `position` with `hash`, is our log's event there.
  std::string CheckOurs(uint64_t position, const std::string& hash) {
    if (position == 0) return "the stream's last message says position 0";
    auto page = store_.ReadAll(position, 1);
    if (!page) return "reading the log: " + page.error().ToString();
    if (page->events.empty() || page->events.front().position != position) {
      return fmt::format(
          "the stream holds position {}, beyond the log's head {}: it belongs to "
          "another ledger",
          position, store_.HeadPosition());
    }
    if (ToHex(page->events.front().hash) != hash) {
      return fmt::format(
          "the stream's message for position {} has another hash than the log: "
          "the stream belongs to another ledger",
          position);
    }
    return {};
  }

  // Sends and settles until a failure or Stop.
  SessionEnd Publish() {
    auto last_save = Clock::now();
    auto last_stream_check = Clock::now();
    for (;;) {
      const bool connected = Connected();
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return {};
        stats_.connected = connected;
        stats_.in_flight = in_flight_.size();
        // The client buffers publishes while it reconnects, and their answers come only after
        // it did: say why nothing is acknowledged meanwhile (Stats() adds it to last_error).
        connection_problem_ = connected ? std::string() : ConnectionProblem();
      }
      if (!in_flight_.empty() && Clock::now() - in_flight_.front().sent_at >
                                     std::chrono::milliseconds(config_.ack_timeout_ms + 1'000)) {
        return {fmt::format("no answer for position {} within {} ms: {}",
                            in_flight_.front().position, config_.ack_timeout_ms,
                            connected ? "the stream did not answer" : ConnectionProblem()),
                true};
      }
      if (connected && Clock::now() - last_stream_check >= kStreamCheckInterval) {
        last_stream_check = Clock::now();
        if (std::string lost = CheckStreamIntact(); !lost.empty()) return {lost, false};
      }
      while (in_flight_.size() < config_.max_in_flight) {
        if (read_ahead_.empty()) {
          if (next_position_ > store_.HeadPosition()) break;
          auto page = store_.ReadAll(next_position_, kReadPageEventsMax);
          if (!page) return {"reading the log: " + page.error().ToString(), true};
          if (page->events.empty()) break;
          for (RecordedEvent& event : page->events) read_ahead_.push_back(std::move(event));
        }
        if (std::string error = Send(read_ahead_.front()); !error.empty()) return {error, true};
        read_ahead_.pop_front();
      }
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, kIdleWait, [&] {
        return stopping_ || (!in_flight_.empty() && done_.contains(in_flight_.front().position)) ||
               (in_flight_.size() < config_.max_in_flight &&
                (committed_head_ >= next_position_ || !read_ahead_.empty()));
      });
      const uint64_t acked_before = acked_;
      while (!in_flight_.empty()) {
        const auto done = done_.find(in_flight_.front().position);
        if (done == done_.end()) break;
        const InFlight sent = in_flight_.front();
        const Outcome outcome = std::move(done->second);
        done_.erase(done);
        in_flight_.pop_front();
        if (!outcome.error.empty()) return {outcome.error, true};
        if (outcome.duplicate) {
          ++stats_.duplicates;
          return {fmt::format("position {} was already in the stream (sequence {}): reading the "
                              "stream's end again",
                              sent.position, outcome.sequence),
                  false};
        }
        if (outcome.sequence != sent.sequence) {
          return {fmt::format("position {} was stored at sequence {}, not {}", sent.position,
                              outcome.sequence, sent.sequence),
                  true};
        }
        acked_ = sent.position;
        ++stats_.published;
      }
      if (acked_ != acked_before) {
        stats_.acknowledged_position = acked_;
        stats_.last_error.clear();
        acknowledged_changed_.notify_all();
      }
      lock.unlock();
      if (acked_ != saved_checkpoint_ && Clock::now() - last_save >= kCheckpointInterval) {
        SaveCheckpoint();
        last_save = Clock::now();
      }
    }
  }

  // Why the connection is not usable, with the client's last error, for last_error.
  std::string ConnectionProblem() const {
    if (connection_ == nullptr) return "not connected to NATS";
    const natsConnStatus status = natsConnection_Status(connection_);
    const char* text = nullptr;
    const natsStatus last = natsConnection_GetLastError(connection_, &text);
    // Copied at once: the client's threads may replace the text it points into.
    const std::string last_text = text != nullptr ? text : "";
    return fmt::format("the connection to NATS ({}) is {}{}; messages in flight wait for it",
                       fmt::join(config_.urls, ","),
                       status == NATS_CONN_STATUS_RECONNECTING ? "lost, reconnecting"
                       : status == NATS_CONN_STATUS_CLOSED     ? "closed"
                                                               : "not connected",
                       last != NATS_OK
                           ? fmt::format(" (last error: {}{})", natsStatus_GetText(last),
                                         last_text.empty() ? "" : ": " + last_text)
                           : "");
  }

  std::string Send(const RecordedEvent& event) {
    LEDGER_ASSERT(event.position == next_position_, "the publisher reads the log in order");
    const std::string subject = SubjectFor(config_.subject_prefix, event);
    natsMsg* message = nullptr;
    natsStatus status = natsMsg_Create(&message, subject.c_str(), nullptr, event.payload.data(),
                                       static_cast<int>(event.payload.size()));
    if (status != NATS_OK) {
      return fmt::format("building the message of position {}: {}", event.position,
                         NatsErrorText(status));
    }
    const std::string event_id = event.event_id.ToString();
    const std::pair<const char*, std::string> headers[] = {
        {kHeaderPosition, std::to_string(event.position)},
        {kHeaderStream, event.stream},
        {kHeaderVersion, std::to_string(event.version)},
        {kHeaderEventId, event_id},
        {kHeaderEventType, event.event_type},
        {kHeaderHash, ToHex(event.hash)},
        {kHeaderPreviousHash, ToHex(event.previous_hash)},
        {kHeaderRecordedAt, std::to_string(event.recorded_at_us)},
    };
    for (const auto& [name, value] : headers) {
      if (status == NATS_OK) status = natsMsgHeader_Set(message, name, value.c_str());
    }
    jsPubOptions options;
    jsPubOptions_Init(&options);
    const std::string message_id = MessageId(event_id, event.position);
    options.MsgId = message_id.c_str();
    options.ExpectLastSeq = expected_last_sequence_;  // 0: an empty stream, no condition.
    options.MaxWait = config_.ack_timeout_ms;
    natsMsg* const identity = message;
    if (status == NATS_OK) {
      std::lock_guard lock(mutex_);
      live_.emplace(identity, event.position);
    }
    if (status == NATS_OK) status = js_PublishMsgAsync(js_, &message, &options);
    if (status != NATS_OK) {
      {
        std::lock_guard lock(mutex_);
        live_.erase(identity);
      }
      natsMsg_Destroy(message);
      return fmt::format("publishing position {}: {}", event.position, NatsErrorText(status));
    }
    published_async_ = true;
    ++expected_last_sequence_;
    in_flight_.push_back(
        {.position = event.position, .sequence = expected_last_sequence_, .sent_at = Clock::now()});
    ++next_position_;
    return {};
  }

  // The Nats-Msg-Id of the event at `position` sent now: the event id, and when the message's
  // stream sequence (expected_last_sequence_ + 1) differs from its position, "@" and the
  // difference (the stream's base). A predecessor and a successor compute the same id for the
  // same message at the same place, so a copy a killed publisher left in flight is dropped as a
  // duplicate; a position published again after a purge gets a new sequence, hence a new id,
  // which the duplicate window (it remembers purged messages' ids) does not drop.
  std::string MessageId(const std::string& event_id, uint64_t position) const {
    const uint64_t sequence = expected_last_sequence_ + 1;
    if (sequence == position) return event_id;
    return sequence > position ? fmt::format("{}@{}", event_id, sequence - position)
                               : fmt::format("{}@-{}", event_id, position - sequence);
  }

  // Waits for the answers to the messages in flight (at most ack_timeout_ms and a second), takes
  // what they acknowledged in order, and forgets the rest.
  void Settle() {
    if (!in_flight_.empty()) {
      const auto deadline =
          Clock::now() + std::chrono::milliseconds(config_.ack_timeout_ms + 1'000);
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, deadline, [&] { return live_.empty(); });
      while (!in_flight_.empty()) {
        const auto done = done_.find(in_flight_.front().position);
        if (done == done_.end() || !done->second.error.empty() || done->second.duplicate ||
            done->second.sequence != in_flight_.front().sequence) {
          break;
        }
        acked_ = in_flight_.front().position;
        ++stats_.published;
        in_flight_.pop_front();
      }
      stats_.acknowledged_position = std::max(stats_.acknowledged_position, acked_);
      acknowledged_changed_.notify_all();
    }
    // Only after a publish: libnats 3.4 creates the context's table of pending messages on the
    // first one, and this call dereferences it unchecked (a SIGSEGV when stopping a publisher
    // whose stream could not be created).
    if (js_ != nullptr && published_async_) {
      natsMsgList pending{};
      if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) natsMsgList_Destroy(&pending);
    }
    std::lock_guard lock(mutex_);
    live_.clear();
    done_.clear();
    in_flight_.clear();
    read_ahead_.clear();
    stats_.in_flight = 0;
  }

  void SetAcknowledged(uint64_t position) {
    std::lock_guard lock(mutex_);
    stats_.acknowledged_position = position;
    acknowledged_changed_.notify_all();
  }

  void SaveCheckpoint() {
    if (acked_ == saved_checkpoint_) return;
    eventstore::StateBatch batch = state_.NewBatch();
    std::string value;
    AppendBigEndian64(value, acked_);
    batch.Put(checkpoint_key_, value);
    if (auto written = state_.Write(batch); !written) {
      std::lock_guard lock(mutex_);
      stats_.last_error = "saving the checkpoint: " + written.error().ToString();
      return;
    }
    saved_checkpoint_ = acked_;
  }

  EventStore& store_;
  StateStore& state_;
  const JetStreamConfig config_;
  const std::string checkpoint_key_;
  const std::string wildcard_;  // <subject_prefix>.>

  // Guards what the NATS client's threads, Stats() and the publishing thread share.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable acknowledged_changed_;
  bool started_ = false;
  bool stopping_ = false;
  uint64_t committed_head_ = 0;
  JetStreamStats stats_;
  // Messages sent and not yet answered, by identity (the client hands the message back with
  // its answer; it stays alive until the answer was recorded, so the pointer is unique).
  std::unordered_map<natsMsg*, uint64_t> live_;
  // Answers by position, taken in order by the publishing thread.
  std::map<uint64_t, Outcome> done_;

  // Serializes Stop() calls; the publishing thread's handle.
  std::mutex stop_mutex_;
  std::thread thread_;

  // The publishing thread's own.
  uint64_t commit_listener_ = 0;
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
  bool stream_checked_ = false;
  // Whether js_ has published asynchronously since it was created (see Settle).
  bool published_async_ = false;
  std::deque<InFlight> in_flight_;
  std::deque<RecordedEvent> read_ahead_;
  uint64_t next_position_ = 1;
  uint64_t expected_last_sequence_ = 0;
  uint64_t acked_ = 0;
  uint64_t saved_checkpoint_ = 0;
  // Whether the stream has limits or a retention that remove messages (see HasLimits).
  bool stream_has_limits_ = false;
  // The first sequence whose message DescribeLacks read last, and that message's position.
  std::pair<uint64_t, uint64_t> first_message_checked_ = {0, 0};
  // Guarded by mutex_, added to last_error by Stats(): what the stream lacks (set by each
  // Resume and stream check, empty when it lacks nothing), and why the connection is not usable
  // (empty while connected). Kept apart from stats_.last_error so that neither overwrites it.
  std::string stream_lacks_;
  std::string connection_problem_;
};

}  // namespace

StoreResult<std::unique_ptr<JetStreamPublisher>> JetStreamPublisher::Open(EventStore& store,
                                                                          StateStore& state,
                                                                          JetStreamConfig config) {
  LEDGER_ASSERT(!config.urls.empty() && config.max_in_flight > 0,
                "JetStreamConfig needs servers and a window");
  auto saved = state.Get(kCheckpointPrefix + config.stream);
  if (!saved) return Unexpected(std::move(saved).error());
  uint64_t checkpoint = 0;
  if (*saved) {
    if ((*saved)->size() != 8) {
      return Unexpected(eventstore::Error{.code = eventstore::ErrorCode::kCorruption,
                                          .message = "the JetStream checkpoint is damaged",
                                          .current_version = std::nullopt,
                                          .position = 0});
    }
    checkpoint = ReadBigEndian64((*saved)->data());
  }
  return std::unique_ptr<JetStreamPublisher>(
      new NatsPublisher(store, state, std::move(config), checkpoint));
}

namespace {

JetStreamMessage ToJetStreamMessage(natsMsg* message) {
  JetStreamMessage out;
  out.sequence = natsMsg_GetSequence(message);
  if (out.sequence == 0) {
    // Delivered by a consumer: the stream sequence is in the reply subject's metadata.
    jsMsgMetaData* metadata = nullptr;
    if (natsMsg_GetMetaData(&metadata, message) == NATS_OK) {
      out.sequence = metadata->Sequence.Stream;
      jsMsgMetaData_Destroy(metadata);
    }
  }
  out.subject = natsMsg_GetSubject(message);
  const char* data = natsMsg_GetData(message);
  out.payload.assign(data != nullptr ? data : "",
                     static_cast<size_t>(std::max(0, natsMsg_GetDataLength(message))));
  const auto header = [&](const char* name) -> std::string {
    const char* value = nullptr;
    if (natsMsgHeader_Get(message, name, &value) != NATS_OK || value == nullptr) return {};
    return value;
  };
  out.position = ParseUnsigned(header(kHeaderPosition).c_str()).value_or(0);
  out.stream = header(kHeaderStream);
  out.version = ParseUnsigned(header(kHeaderVersion).c_str()).value_or(0);
  out.event_id = header(kHeaderEventId);
  out.event_type = header(kHeaderEventType);
  out.hash = header(kHeaderHash);
  out.previous_hash = header(kHeaderPreviousHash);
  out.recorded_at_us =
      static_cast<int64_t>(ParseUnsigned(header(kHeaderRecordedAt).c_str()).value_or(0));
  return out;
}

class NatsReader final : public JetStreamReader {
 public:
  NatsReader(natsConnection* connection, jsCtx* js, std::string stream)
      : connection_(connection), js_(js), stream_(std::move(stream)) {}
  ~NatsReader() override {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(connection_);
  }

  Result<std::pair<uint64_t, uint64_t>, std::string> Bounds() override {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus status = js_GetStreamInfo(&info, js_, stream_.c_str(), nullptr, &code);
    if (status != NATS_OK)
      return Unexpected("stream info: " + NatsErrorText(status, static_cast<int>(code)));
    const std::pair<uint64_t, uint64_t> bounds = {info->State.FirstSeq, info->State.LastSeq};
    jsStreamInfo_Destroy(info);
    return bounds;
  }

  Result<uint64_t, std::string> SequenceOfPosition(uint64_t position) override {
    auto bounds = Bounds();
    if (!bounds) return Unexpected(std::move(bounds).error());
    auto [low, high] = *bounds;  // The answer is in [low, high + 1].
    if (high == 0) return uint64_t{1};
    ++high;
    while (low < high) {
      const uint64_t middle = low + (high - low) / 2;
      natsMsg* message = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus status = js_GetMsg(&message, js_, stream_.c_str(), middle, nullptr, &code);
      if (status != NATS_OK) {
        return Unexpected(
            fmt::format("message {}: {}", middle, NatsErrorText(status, static_cast<int>(code))));
      }
      const JetStreamMessage read = ToJetStreamMessage(message);
      natsMsg_Destroy(message);
      if (read.position >= position) {
        high = middle;
      } else {
        low = middle + 1;
      }
    }
    return low;
  }

  Result<void, std::string> Consume(
      uint64_t from_sequence, int64_t idle_timeout_ms,
      const std::function<bool(const JetStreamMessage&)>& visitor) override {
    // The ordered consumer wants a subject: the stream's own.
    std::string subject;
    {
      jsStreamInfo* info = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus status = js_GetStreamInfo(&info, js_, stream_.c_str(), nullptr, &code);
      if (status != NATS_OK) return Unexpected("stream info: " + NatsErrorText(status, code));
      if (info->Config->SubjectsLen > 0) subject = info->Config->Subjects[0];
      jsStreamInfo_Destroy(info);
      if (subject.empty()) return Unexpected(std::string("the stream has no subjects"));
    }
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = stream_.c_str();
    options.Ordered = true;
    options.Config.DeliverPolicy = js_DeliverByStartSequence;
    options.Config.OptStartSeq = std::max<uint64_t>(from_sequence, 1);
    natsSubscription* subscription = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus status =
        js_SubscribeSync(&subscription, js_, subject.c_str(), nullptr, &options, &code);
    if (status != NATS_OK)
      return Unexpected("subscribing: " + NatsErrorText(status, static_cast<int>(code)));
    Result<void, std::string> result;
    for (;;) {
      natsMsg* message = nullptr;
      status = natsSubscription_NextMsg(&message, subscription, idle_timeout_ms);
      if (status == NATS_TIMEOUT) break;
      if (status != NATS_OK) {
        result = Unexpected("consuming: " + NatsErrorText(status));
        break;
      }
      const bool more = visitor(ToJetStreamMessage(message));
      natsMsg_Destroy(message);
      if (!more) break;
    }
    natsSubscription_Unsubscribe(subscription);
    natsSubscription_Destroy(subscription);
    return result;
  }

 private:
  natsConnection* connection_;
  jsCtx* js_;
  const std::string stream_;
};

}  // namespace

Result<std::unique_ptr<JetStreamReader>, std::string> JetStreamReader::Connect(
    const std::vector<std::string>& urls, std::string stream, int64_t timeout_ms) {
  natsOptions* options = nullptr;
  natsStatus status = natsOptions_Create(&options);
  std::vector<const char*> servers;
  for (const std::string& url : urls) servers.push_back(url.c_str());
  if (status == NATS_OK) {
    status = natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
  }
  if (status == NATS_OK) status = natsOptions_SetTimeout(options, timeout_ms);
  if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);
  natsConnection* connection = nullptr;
  if (status == NATS_OK) status = natsConnection_Connect(&connection, options);
  natsOptions_Destroy(options);
  if (status != NATS_OK) return Unexpected("connecting: " + NatsErrorText(status));
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = timeout_ms;
  jsCtx* js = nullptr;
  status = natsConnection_JetStream(&js, connection, &js_options);
  if (status != NATS_OK) {
    natsConnection_Destroy(connection);
    return Unexpected("JetStream context: " + NatsErrorText(status));
  }
  return std::unique_ptr<JetStreamReader>(new NatsReader(connection, js, std::move(stream)));
}

}  // namespace ledger::server
