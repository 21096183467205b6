// `edgekit pub` / `edgekit sub` over mutual TLS against the secured broker: a key pair generated
// in edgekit's token by `edgekit token`, its certificate registered in fleetd, used with
// --key-label (the handshake signed in the token); refusals and bad options reported clearly.

#include <gtest/gtest.h>

#include "token_device.hpp"

namespace edgekit::fleetd::test {
namespace {

class CliOverMutualTls : public TokenDeviceBroker {
 protected:
  std::string tls_args(const std::string& id) {
    return "-h 127.0.0.1 -p " + std::to_string(broker_->tls_port()) + " -V 5 -i " + id +
           " --cafile " + ca_->cert_file() + " --cert " + token_cert_ +
           " --key-label t9 --token dev-token";
  }
};

TEST_F(CliOverMutualTls, PubWithATokenKeyGetsInOnItsOwnTopicsOnly) {
  make_token_device();
  ASSERT_FALSE(HasFatalFailure());
  auto own = edgekit("pub " + tls_args("t9") + " -t t9/telemetry -m 21.5 -q 1 -d");
  EXPECT_EQ(own.code, 0) << own.out;
  // Accepted: nobody subscribes there, so MQTT 5 says NoMatchingSubscribers (not refused).
  EXPECT_NE(own.out.find("sent 4 bytes to 't9/telemetry' at QoS 1 → NoMatchingSubscribers"),
            std::string::npos)
      << own.out;

  auto other = edgekit("pub " + tls_args("t9") + " -t t1/telemetry -m x -q 1");
  EXPECT_EQ(other.code, 1) << other.out;
  EXPECT_NE(other.out.find("NotAuthorized (0x87)"), std::string::npos) << other.out;

  auto sub = edgekit("sub " + tls_args("t9") + " -t 't1/#' -W 2");
  EXPECT_EQ(sub.code, 1) << sub.out;
  EXPECT_NE(sub.out.find("broker refused 't1/#'"), std::string::npos) << sub.out;

  auto spoof = edgekit("pub " + tls_args("t1") + " -t t1/telemetry -m x -q 1");
  EXPECT_EQ(spoof.code, 1) << spoof.out;
  EXPECT_NE(spoof.out.find("broker refused the connection"), std::string::npos) << spoof.out;
}

TEST_F(CliOverMutualTls, PubWithAPemKeyGetsIn) {
  const auto& t1 = issued("t1");
  auto r = edgekit("pub -h 127.0.0.1 -p " + std::to_string(broker_->tls_port()) +
                   " -i t1 --cafile " + ca_->cert_file() + " --cert " + t1.cert_file + " --key " +
                   t1.key_file + " -t t1/telemetry -m x -q 1");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(CliOverMutualTls, BadTlsOptionsAndAWrongPinAreClearErrors) {
  make_token_device();
  ASSERT_FALSE(HasFatalFailure());
  auto no_ca = edgekit("pub -p 1 --cert " + token_cert_ + " --key-label t9 -t x -m y");
  EXPECT_EQ(no_ca.code, 2) << no_ca.out;
  EXPECT_NE(no_ca.out.find("--cafile"), std::string::npos) << no_ca.out;
  auto both = edgekit("pub -p 1 --cafile a --cert b --key c --key-label d -t x -m y");
  EXPECT_EQ(both.code, 2) << both.out;
  EXPECT_NE(both.out.find("not both"), std::string::npos) << both.out;
  auto key_only = edgekit("pub -p 1 --key c -t x -m y");
  EXPECT_EQ(key_only.code, 2) << key_only.out;

  auto wrong_pin = edgekit("pub " + tls_args("t9") + " --pin not-the-pin -t t9/x -m y");
  EXPECT_EQ(wrong_pin.code, 1) << wrong_pin.out;
  EXPECT_NE(wrong_pin.out.find("TLS set-up failed"), std::string::npos) << wrong_pin.out;
  EXPECT_NE(wrong_pin.out.find("CKR_PIN_INCORRECT"), std::string::npos) << wrong_pin.out;
}

}  // namespace
}  // namespace edgekit::fleetd::test
