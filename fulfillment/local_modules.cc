// The modules that need no partner system: enrollment codes, coupons, donations.
#include <fmt/format.h>

#include "base/sha256.h"
#include "domain/limits.h"
#include "domain/status.h"
#include "fulfillment/modules.h"

namespace ledger::fulfillment {
namespace {

// Crockford's base32: no I, L, O or U, so that codes read aloud or typed are hard to get wrong.
constexpr std::string_view kCrockfordAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// A module whose lines complete at once and whose revocation has nothing outside the ledger to
// undo. `make_fulfillment` gives what a line's success carries.
class LocalModule : public Module {
 public:
  LocalModule(std::string_view name, domain::ProductKind kind, std::string revocation_note)
      : name_(name), kind_(kind), revocation_note_(std::move(revocation_note)) {}

  std::string_view name() const override { return name_; }

  bool Supports(const domain::Line& line) const override {
    return domain::ClassifyProductType(line.product_type) == kind_;
  }

  std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                   std::span<const domain::Line> lines) override {
    std::vector<LineOutcome> outcomes;
    outcomes.reserve(lines.size());
    for (const domain::Line& line : lines) outcomes.push_back(FulfillLine(order, line));
    return outcomes;
  }

  RevokeOutcome Revoke(const domain::OrderCreated&, const domain::LineState& line) override {
    return RevokeOutcome{.line_id = line.line.line_id,
                         .module = std::string(name_),
                         .result = Revocation{.note = revocation_note_}};
  }

 protected:
  virtual LineOutcome FulfillLine(const domain::OrderCreated& order, const domain::Line& line) {
    (void)order;
    return Succeeded(line, name_, Fulfillment{});
  }

 private:
  const std::string_view name_;
  const domain::ProductKind kind_;
  const std::string revocation_note_;
};

class EnrollmentCodeModule final : public LocalModule {
 public:
  explicit EnrollmentCodeModule(std::string secret)
      : LocalModule(kEnrollmentCodeModule, domain::ProductKind::kEnrollmentCode,
                    "the line's enrollment codes are void from now on (nothing outside the "
                    "ledger to undo)"),
        secret_(std::move(secret)) {}

 protected:
  LineOutcome FulfillLine(const domain::OrderCreated& order, const domain::Line& line) override {
    const auto quantity_max =
        std::min(domain::kQuantityMax, static_cast<int64_t>(domain::kCodesPerLineMax));
    if (line.quantity < 1 || line.quantity > quantity_max) {
      return Failed(line, name(),
                    Failure{.kind = domain::FailureKind::kConfiguration,
                            .message = fmt::format("line {} asks for {} enrollment codes; a line "
                                                   "mints 1 to {}",
                                                   line.line_id, line.quantity, quantity_max),
                            .retryable = false});
    }
    if (secret_.empty()) {
      // Codes anyone could compute from the order number are no codes at all.
      return Failed(line, name(),
                    Failure{.kind = domain::FailureKind::kConfiguration,
                            .message = "no secret to mint enrollment codes with (ledgerd keeps "
                                       "it in DIR/enrollment-codes.key)",
                            .retryable = false});
    }
    return Succeeded(line, name(),
                     Fulfillment{.external_reference = "",
                                 .codes = MintEnrollmentCodes(secret_, order.order_number,
                                                              line.line_id, line.quantity)});
  }

 private:
  const std::string secret_;
};

}  // namespace

std::vector<std::string> MintEnrollmentCodes(std::string_view secret, std::string_view order_number,
                                             std::string_view line_id, int64_t quantity) {
  std::vector<std::string> codes;
  if (quantity <= 0) return codes;
  codes.reserve(static_cast<size_t>(quantity));
  std::string prefix = "orderledger-enrollment-code\n";
  AppendKeyField(prefix, order_number);
  AppendKeyField(prefix, line_id);
  for (int64_t index = 0; index < quantity; ++index) {
    const Hash256 digest = HmacSha256(secret, prefix + std::to_string(index));
    // 16 characters x 5 bits = the digest's first 80 bits.
    std::string code;
    code.reserve(kEnrollmentCodeLength);
    uint32_t bits = 0;
    int bit_count = 0;
    size_t byte = 0;
    while (code.size() < kEnrollmentCodeLength) {
      if (bit_count < 5) {
        bits = (bits << 8) | digest[byte++];
        bit_count += 8;
      }
      bit_count -= 5;
      code += kCrockfordAlphabet[(bits >> bit_count) & 0x1f];
    }
    codes.push_back(std::move(code));
  }
  return codes;
}

std::unique_ptr<Module> MakeEnrollmentCodeModule(std::string secret) {
  return std::make_unique<EnrollmentCodeModule>(std::move(secret));
}

std::unique_ptr<Module> MakeCouponModule() {
  return std::make_unique<LocalModule>(
      kCouponModule, domain::ProductKind::kCoupon,
      "the coupon is void from now on (nothing outside the ledger to undo)");
}

std::unique_ptr<Module> MakeDonationModule() {
  return std::make_unique<LocalModule>(kDonationModule, domain::ProductKind::kDonation,
                                       "a donation has nothing to undo");
}

}  // namespace ledger::fulfillment
