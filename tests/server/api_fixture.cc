#include "tests/server/api_fixture.h"

#include <unistd.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "domain/commands.h"
#include "eventstore/order_command_service.h"
#include "projections/registry.h"
#include "server/data_dir.h"

namespace ledger::server {

std::string FreshTestDataDir(std::string_view prefix) {
  const char* root = std::getenv("LEDGER_TEST_TMP");
  static std::atomic<int> counter{0};
  std::filesystem::path path =
      std::filesystem::path(root != nullptr ? root : "/tmp") /
      fmt::format("{}-{}-{}", prefix, ::getpid(), counter.fetch_add(1) + 1);
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

TestDataDir::~TestDataDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

LedgerStores::LedgerStores(const std::string& data_dir) {
  auto store = eventstore::OpenRocksDbEventStore(LogPath(data_dir));
  REQUIRE(store);
  store_ = std::move(*store);
  auto state = eventstore::OpenRocksDbStateStore(StatePath(data_dir));
  REQUIRE(state);
  state_ = std::move(*state);
  for (projections::ProjectionFactory& factory : projections::DefaultProjections()) {
    auto runner = projections::ProjectionRunner::Open(*store_, *state_, std::move(factory));
    REQUIRE(runner);
    (*runner)->Start();
    runners_.push_back(std::move(*runner));
  }
}

LedgerStores::~LedgerStores() {
  for (auto& runner : runners_) runner->Stop();
}

std::vector<projections::ProjectionRunner*> LedgerStores::runners() const {
  std::vector<projections::ProjectionRunner*> pointers;
  for (const auto& runner : runners_) pointers.push_back(runner.get());
  return pointers;
}

ApiFixture::ApiFixture(LedgerApiOptions options)
    : data_dir_("api-fixture"), stores_(data_dir_.path()) {
  options.http_metrics = &http_metrics_;
  api_ =
      std::make_unique<LedgerApi>(stores_.store(), stores_.runners(), nullptr, std::move(options));
  Router routes;
  api_->Register(routes);
  HttpServerOptions server_options;
  server_options.on_handled = [this](const HttpServerRequest& request, int status,
                                     int64_t handler_us) {
    http_metrics_.Record(request, status, handler_us);
  };
  auto server = HttpServer::Start(server_options, std::move(routes));
  REQUIRE(server);
  server_ = std::move(*server);
}

ApiFixture::~ApiFixture() { server_->Stop(); }

void ApiFixture::Pay(int first, int count) {
  eventstore::OrderCommandService service(stores_.store());
  for (int i = first; i < first + count; ++i) {
    domain::CapturePayment command;
    command.order_number = "EDX-" + std::to_string(i);
    command.processor = "paypal";
    command.reference = "ref-" + std::to_string(i);
    command.amount = {.minor_units = 1000, .currency = "USD"};
    command.captured_at_us = 1'700'000'000'000'000;
    auto handled = service.Handle(command, {});
    REQUIRE(handled);
  }
}

}  // namespace ledger::server
