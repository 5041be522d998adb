#include "tests/server/api_fixture.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "domain/commands.h"
#include "eventstore/order_command_service.h"
#include "projections/registry.h"
#include "server/data_dir.h"

namespace ledger::server {
namespace {

std::string TempDataDir() {
  const char* root = std::getenv("LEDGER_TEST_TMP");
  static int counter = 0;
  std::filesystem::path path =
      std::filesystem::path(root != nullptr ? root : "/tmp") /
      ("api-fixture-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

}  // namespace

ApiFixture::ApiFixture(LedgerApiOptions options) : data_dir_(TempDataDir()) {
  auto store = eventstore::OpenRocksDbEventStore(LogPath(data_dir_));
  REQUIRE(store);
  store_ = std::move(*store);
  auto state = eventstore::OpenRocksDbStateStore(StatePath(data_dir_));
  REQUIRE(state);
  state_ = std::move(*state);
  std::vector<projections::ProjectionRunner*> pointers;
  for (projections::ProjectionFactory& factory : projections::DefaultProjections()) {
    auto runner = projections::ProjectionRunner::Open(*store_, *state_, std::move(factory));
    REQUIRE(runner);
    (*runner)->Start();
    pointers.push_back(runner->get());
    runners_.push_back(std::move(*runner));
  }
  options.http_metrics = &http_metrics_;
  api_ = std::make_unique<LedgerApi>(*store_, pointers, nullptr, std::move(options));
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

ApiFixture::~ApiFixture() {
  server_->Stop();
  for (auto& runner : runners_) runner->Stop();
  std::filesystem::remove_all(data_dir_);
}

void ApiFixture::Pay(int first, int count) {
  eventstore::OrderCommandService service(*store_);
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
