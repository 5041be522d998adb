#include "server/audit_api.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/bytes.h"
#include "base/text.h"
#include "eventstore/audit_export.h"
#include "eventstore/audit_proof.h"
#include "projections/merkle_projection.h"

namespace ledger::server {
namespace {

namespace json = boost::json;

HttpServerResponse JsonText(std::string body) {
  return {.status = 200, .content_type = "application/json", .body = std::move(body)};
}

HttpServerResponse StoreError(const eventstore::Error& error) {
  switch (error.code) {
    case eventstore::ErrorCode::kInvalidArgument:
      return ErrorResponse(400, "invalid_parameter", error.message);
    case eventstore::ErrorCode::kIoError:
    case eventstore::ErrorCode::kClosed:
      return ErrorResponse(503, "store_unavailable", error.message);
    default:
      return ErrorResponse(500, "store_error", error.ToString());
  }
}

constexpr std::string_view kBehind = "projection_behind";

}  // namespace

AuditApi::AuditApi(eventstore::EventStore& store, projections::ProjectionRunner& merkle,
                   const eventstore::SigningKey& key, AuditApiOptions options)
    : store_(store), merkle_(merkle), key_(key), options_(std::move(options)) {}

int64_t AuditApi::NowUs() const {
  if (options_.clock_us) return options_.clock_us();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void AuditApi::Register(Router& router) {
  // `query`: the parameters the endpoint takes; any other is 400, not ignored.
  auto add = [&](std::string_view pattern, Roles roles,
                 HttpServerResponse (AuditApi::*handler)(const HttpServerRequest&),
                 std::vector<std::string> query = {}) {
    HttpHandler bound = AcceptingQuery(
        std::move(query),
        [this, handler](const HttpServerRequest& request) { return (this->*handler)(request); });
    if (options_.auth != nullptr) bound = options_.auth->Guard(roles, std::move(bound));
    router.Add("GET", pattern, std::move(bound));
  };
  const Roles audit = Role::kOps | Role::kAuditor;
  add("/v1/audit/public-key", audit | Role::kReader, &AuditApi::GetPublicKey);
  add("/v1/audit/digest", audit, &AuditApi::GetDigest, {"position"});
  add("/v1/audit/proof", audit, &AuditApi::GetProof, {"position", "tree_size", "digest"});
  add("/v1/audit/consistency", audit, &AuditApi::GetConsistency, {"from_size", "to_size"});
  add("/v1/audit/export", audit, &AuditApi::GetExport, {"from", "limit"});
}

eventstore::StoreResult<eventstore::Digest> AuditApi::SignDigest(std::optional<uint64_t> position,
                                                                 std::optional<int64_t> wait_ms) {
  const uint64_t head = store_.HeadPosition();
  const uint64_t at = position.value_or(head);
  if (at > head) {
    return Unexpected(eventstore::InvalidArgumentError(
        fmt::format("position {} is beyond the head {}", at, head)));
  }
  if (!merkle_.WaitFor(at, std::chrono::milliseconds(wait_ms.value_or(options_.wait_ms)))) {
    return Unexpected(eventstore::Error{
        .code = eventstore::ErrorCode::kIoError,
        .message = fmt::format("{}: the merkle projection is at position {}, not yet at {}",
                               kBehind, merkle_.checkpoint(), at),
        .current_version = std::nullopt,
        .position = 0});
  }
  projections::MerkleView view(merkle_.View());
  auto digest = eventstore::BuildDigest(store_, view, at, NowUs());
  if (!digest) return digest;
  key_.Sign(*digest);
  return digest;
}

std::optional<HttpServerResponse> AuditApi::WaitForTree(uint64_t position) {
  if (position > store_.HeadPosition()) {
    return ErrorResponse(
        404, "position_not_found",
        fmt::format("position {} is beyond the head {}", position, store_.HeadPosition()));
  }
  if (!merkle_.WaitFor(position, std::chrono::milliseconds(options_.wait_ms))) {
    return ErrorResponse(504, kBehind,
                         fmt::format("the merkle projection is at position {}, not yet at {}",
                                     merkle_.checkpoint(), position));
  }
  return std::nullopt;
}

HttpServerResponse AuditApi::GetPublicKey(const HttpServerRequest&) {
  json::object body;
  body["algorithm"] = "ed25519";
  body["public_key"] = ToHex(std::span<const uint8_t>(key_.public_key()));
  const eventstore::KeyId id = key_.key_id();
  body["key_id"] = ToHex(std::span<const uint8_t>(id));
  return JsonText(json::serialize(body));
}

HttpServerResponse AuditApi::GetDigest(const HttpServerRequest& request) {
  std::optional<uint64_t> position;
  if (auto text = request.Query("position")) {
    position = ParseDecimal(*text);
    if (!position) return ErrorResponse(400, "invalid_parameter", "position must be a position");
    if (auto refused = WaitForTree(*position)) return *refused;
  }
  auto digest = SignDigest(position);
  if (!digest) {
    if (digest.error().message.starts_with(kBehind)) {
      return ErrorResponse(504, kBehind, digest.error().message);
    }
    return StoreError(digest.error());
  }
  return JsonText(eventstore::DigestToJson(*digest, key_.public_key()));
}

HttpServerResponse AuditApi::GetProof(const HttpServerRequest& request) {
  auto position = ParseDecimal(request.Query("position").value_or(""));
  if (!position || *position == 0) {
    return ErrorResponse(400, "invalid_parameter", "position must be a log position (from 1)");
  }
  std::optional<eventstore::ParsedDigest> digest;
  uint64_t tree_size = 0;
  // A saved digest is named by its position, which is its tree's size: one or the other.
  const std::optional<std::string_view> tree_size_text = request.Query("tree_size");
  const std::optional<std::string_view> digest_text = request.Query("digest");
  if (tree_size_text && digest_text) {
    return ErrorResponse(400, "invalid_parameter", "give tree_size or digest, not both");
  }
  const char* const size_name = digest_text ? "digest" : "tree_size";
  if (auto text = tree_size_text ? tree_size_text : digest_text) {
    auto parsed = ParseDecimal(*text);
    if (!parsed) {
      return ErrorResponse(400, "invalid_parameter",
                           fmt::format("{} must be a tree size (a digest's position)", size_name));
    }
    if (*parsed < *position) {
      return ErrorResponse(400, "invalid_parameter",
                           fmt::format("{} {} is smaller than position {}: the tree would not "
                                       "hold the event",
                                       size_name, *parsed, *position));
    }
    tree_size = *parsed;
    if (auto refused = WaitForTree(tree_size)) return *refused;
  } else {
    if (auto refused = WaitForTree(*position)) return *refused;
    auto signed_digest = SignDigest(std::nullopt);
    if (!signed_digest) return StoreError(signed_digest.error());
    tree_size = signed_digest->tree_size;
    digest = eventstore::ParsedDigest{.digest = *signed_digest, .public_key = key_.public_key()};
  }
  projections::MerkleView view(merkle_.View());
  auto proof = eventstore::BuildInclusionProof(store_, view, *position, tree_size);
  if (!proof) return StoreError(proof.error());
  proof->digest = std::move(digest);
  return JsonText(eventstore::InclusionProofToJson(*proof));
}

HttpServerResponse AuditApi::GetConsistency(const HttpServerRequest& request) {
  auto from_size = ParseDecimal(request.Query("from_size").value_or(""));
  if (!from_size || *from_size == 0) {
    return ErrorResponse(400, "invalid_parameter", "from_size must be a tree size (from 1)");
  }
  std::optional<eventstore::ParsedDigest> digest;
  uint64_t to_size = 0;
  if (auto text = request.Query("to_size")) {
    auto parsed = ParseDecimal(*text);
    if (!parsed || *parsed < *from_size) {
      return ErrorResponse(400, "invalid_parameter", "to_size must be a size >= from_size");
    }
    to_size = *parsed;
    if (auto refused = WaitForTree(to_size)) return *refused;
  } else {
    if (auto refused = WaitForTree(*from_size)) return *refused;
    auto signed_digest = SignDigest(std::nullopt);
    if (!signed_digest) return StoreError(signed_digest.error());
    to_size = signed_digest->tree_size;
    digest = eventstore::ParsedDigest{.digest = *signed_digest, .public_key = key_.public_key()};
  }
  projections::MerkleView view(merkle_.View());
  auto proof = eventstore::BuildConsistencyProof(view, *from_size, to_size);
  if (!proof) return StoreError(proof.error());
  proof->digest = std::move(digest);
  return JsonText(eventstore::ConsistencyProofToJson(*proof));
}

HttpServerResponse AuditApi::GetExport(const HttpServerRequest& request) {
  auto from = ParseDecimal(request.Query("from").value_or("1"));
  std::optional<uint64_t> limit = options_.export_events_max;
  if (auto text = request.Query("limit")) limit = ParseDecimal(*text);
  if (!from || *from == 0 || !limit || *limit == 0 || *limit > options_.export_events_max) {
    return ErrorResponse(400, "invalid_parameter",
                         fmt::format("from must be a position (1 or more), limit 1..{}",
                                     options_.export_events_max));
  }
  // The next position is an empty page (caught up); past it, positions the log does not have
  // (as ledgerctl export says).
  const uint64_t head = store_.HeadPosition();
  if (*from > head + 1) {
    return ErrorResponse(400, "invalid_parameter",
                         fmt::format("from {} is past the log's head {}: the next position is {}",
                                     *from, head, head + 1));
  }
  auto page = store_.ReadAll(*from, static_cast<size_t>(*limit));
  if (!page) return StoreError(page.error());
  std::string body = "{\"events\":[";
  for (size_t i = 0; i < page->events.size(); ++i) {
    if (i > 0) body += ',';
    body += eventstore::ExportEventLine(page->events[i]);
  }
  body += fmt::format("],\"next_position\":{},\"head_position\":{}}}", page->next_position,
                      page->head_position);
  return JsonText(std::move(body));
}

DigestWriter::DigestWriter(AuditApi& api, std::string path, std::chrono::milliseconds interval)
    : api_(api), path_(std::move(path)), interval_(interval) {}

DigestWriter::~DigestWriter() { Stop(); }

void DigestWriter::Start() {
  LEDGER_ASSERT(!thread_.joinable(), "DigestWriter started twice");
  thread_ = std::thread([this] { Run(); });
}

void DigestWriter::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<void, std::string> DigestWriter::WriteOnce(int64_t wait_ms) {
  auto digest = api_.SignDigest(std::nullopt, wait_ms);
  if (!digest) return Unexpected("digest: " + digest.error().ToString());
  if (last_position_ && *last_position_ == digest->position) return {};
  std::error_code ignored;
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  const std::string line = eventstore::DigestToJson(*digest, api_.public_key()) + "\n";
  // O_APPEND: one write of one line, so a reader never sees half a digest from this writer.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Unexpected(fmt::format("cannot open {}: {}", path_, std::strerror(errno)));
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = written && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Unexpected(fmt::format("cannot write {}: {}", path_, std::strerror(errno)));
  last_position_ = digest->position;
  return {};
}

void DigestWriter::Run() {
  while (true) {
    auto written = WriteOnce(/*wait_ms=*/200);
    bool behind = false;
    if (!written) {
      behind = written.error().find(kBehind) != std::string::npos;
      if (!behind) std::fprintf(stderr, "ledgerd: audit digest: %s\n", written.error().c_str());
    }
    const std::chrono::milliseconds wait =
        behind ? std::min<std::chrono::milliseconds>(interval_, std::chrono::seconds(1))
               : interval_;
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
  }
}

}  // namespace ledger::server
