// fleetd's OTA end to end (aws-iot-protocols.md 2.6 and 3): a real Mosquitto with edgekit's
// plugin, the fleetd binary with its own CA (whose token holds the code-signing key), devices
// over mutual TLS speaking the MQTT-based file delivery API with edgekit's MQTT client, and an
// HTTPS client for the download endpoint. Images, streams and updates go through the admin API.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/ota/stream.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/pki/certificate.hpp"
#include "edgekit_image.hpp"
#include "ota/base64.hpp"
#include "ota/signing.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The firmware: 10,000 bytes of every value (not a whole number of 1 KB blocks).
std::string firmware(std::size_t size = 10'000, int seed = 1) {
  std::string b;
  for (std::size_t i = 0; i < size; ++i) b += static_cast<char>((i * 31 + seed * 7 + i / 251) % 256);
  return b;
}

// A CBOR map of the given members (text keys; integers, text or bytes).
struct CborMember {
  std::string key;
  std::variant<std::int64_t, std::string, std::vector<std::uint8_t>> value;
};
std::string cbor_map(const std::vector<CborMember>& members) {
  std::string buf(16 * 1024, '\0');
  doc::cbor::Writer w(std::span<std::byte>(reinterpret_cast<std::byte*>(buf.data()), buf.size()));
  w.begin_object();
  for (const auto& m : members) {
    w.key(m.key);
    if (auto* i = std::get_if<std::int64_t>(&m.value)) w.int64(*i);
    if (auto* s = std::get_if<std::string>(&m.value)) w.string(*s);
    if (auto* b = std::get_if<std::vector<std::uint8_t>>(&m.value)) {
      w.bytes(std::as_bytes(std::span<const std::uint8_t>(*b)));
    }
  }
  w.end_object();
  auto item = w.finish();
  EXPECT_TRUE(item);
  buf.resize(item ? item.value().size() : 0);
  return buf;
}

// One data message read in either format.
struct Block {
  std::int64_t f = -1, l = -1, i = -1;
  std::string c, p;
};
Block read_block(const std::string& payload, bool cbor) {
  Block b;
  if (!cbor) {
    const json j = json::parse(payload, nullptr, false);
    b.f = j.value("f", -1);
    b.l = j.value("l", -1);
    b.i = j.value("i", -1);
    b.c = j.value("c", "");
    b.p = ota::base64_decode(j.value("p", "")).value_or("<bad base64>");
    return b;
  }
  auto v = doc::cbor::parse(std::as_bytes(std::span<const char>(payload.data(), payload.size())));
  if (!v) return b;
  auto integer = [&](const char* k) {
    auto m = v.value().find(k);
    return m ? m.value().as_int64().value_or(-1) : -1;
  };
  b.f = integer("f");
  b.l = integer("l");
  b.i = integer("i");
  if (auto c = v.value().find("c")) b.c = std::string(c.value().as_string_view().value_or(""));
  if (auto p = v.value().find("p")) {
    auto bytes = p.value().as_bytes();
    if (bytes) b.p.assign(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  }
  return b;
}

class OtaTest : public SecuredBroker {
 protected:
  OtaTest() {
    own_ca_ = true;
    // The OTA download endpoint on a free port with the broker's server certificate (the
    // fixture's PKI is made in SetUp, at these paths).
    const auto pki = std::filesystem::temp_directory_path() /
                     ("edgekit-secured-" + std::to_string(::getpid())) / "pki";
    fleetd_flags_ = {"--ota-http-tls-cert", (pki / "server.crt").string(), "--ota-http-tls-key",
                     (pki / "server.key").string(), "--ota-http-port", "0"};
  }

  json call(const std::string& method, const std::string& path, const json& body, int status) {
    auto r = admin(method, path, body.is_null() ? "" : body.dump());
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, status) << method << " " << path << " -> " << r->body;
    return json::parse(r->body, nullptr, false);
  }

  json upload(const std::string& name, const std::string& version, const std::string& bytes,
              int status = 201, const json& extra = json::object()) {
    json body{{"name", name}, {"version", version}, {"deviceType", "sensor"},
              {"image", ota::base64_encode(bytes)}};
    body.update(extra);
    return call("POST", "/admin/v1/ota/images", body, status);
  }

  // An image "app" 2.0.0, signed by fleetd, rolled out to t1 over MQTT (1 KB blocks) and HTTP.
  json roll_out(const std::string& update = "u1") {
    upload("app", "2.0.0", image_);
    signed_ = call("POST", "/admin/v1/ota/images/app/2.0.0/sign", json(), 200);
    return call("POST", "/admin/v1/ota/updates",
                {{"otaUpdateId", update},
                 {"imageName", "app"},
                 {"imageVersion", "2.0.0"},
                 {"protocols", {"MQTT", "HTTP"}},
                 {"blockSize", 1024},
                 {"filePath", "/ota/app.bin"},
                 {"targets", {{"things", {"t1"}}}}},
                201);
  }

  void connect(Peer& p, const char* name) {
    auto c = device(p, name, name);
    ASSERT_TRUE(c) << mqtt::to_string(c.error());
  }

  // Publishes a stream request and collects what comes back on the stream's reply topics until
  // `done` says so (or 5 s pass).
  static std::vector<Peer::Message> ask(Peer& p, const std::string& topic, const std::string& payload,
                                        const std::function<bool(const std::vector<Peer::Message>&)>& done) {
    const std::size_t from = p.received.size();
    EXPECT_EQ(p.publish(topic, payload), ReasonCode::Success) << topic;
    std::vector<Peer::Message> got;
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < end && p.client().connected()) {
      got.assign(p.received.begin() + static_cast<std::ptrdiff_t>(from), p.received.end());
      if (done(got)) break;
      p.pump(20ms, p.received.size() + 1);
    }
    got.assign(p.received.begin() + static_cast<std::ptrdiff_t>(from), p.received.end());
    return got;
  }

  // A request that must be rejected: its …/rejected message, parsed.
  static json rejected(Peer& p, const std::string& stream, const std::string& fmt,
                       const std::string& op, const std::string& payload,
                       const std::string& thing = "t1") {
    const std::string base = "$aws/things/" + thing + "/streams/" + stream;
    const std::string expected = base + "/rejected/" + (fmt == "xml" ? "json" : fmt);
    // A device subscribed to the request's own topic also gets its request back: skip it.
    auto got = ask(p, base + "/" + op + "/" + fmt, payload, [&](const auto& m) {
      return std::any_of(m.begin(), m.end(), [&](const auto& x) { return x.topic == expected; });
    });
    auto it = std::find_if(got.begin(), got.end(), [&](const auto& x) { return x.topic == expected; });
    if (it == got.end()) {
      ADD_FAILURE() << "no rejection of " << payload;
      return {};
    }
    EXPECT_EQ(std::count_if(got.begin(), got.end(),
                            [](const auto& x) { return x.topic.find("/data/") != std::string::npos; }),
              0);
    if (fmt != "cbor") return json::parse(it->payload, nullptr, false);
    auto v = doc::cbor::parse(std::as_bytes(std::span<const char>(it->payload.data(), it->payload.size())));
    if (!v) return {};
    json j;
    for (const char* k : {"o", "m", "c"}) {
      if (auto m = v.value().find(k)) j[k] = std::string(m.value().as_string_view().value_or(""));
    }
    return j;
  }

  const std::string image_ = firmware();
  json signed_;
};

TEST_F(OtaTest, AnUpdateIsAnAfrOtaJobWithAwsDocumentAndAVerifiableSignature) {
  const json update = roll_out();
  EXPECT_EQ(update["jobId"], "AFR_OTA-u1");
  EXPECT_EQ(update["streamId"], "u1");
  ASSERT_TRUE(signed_["signed"].get<bool>()) << signed_;
  const std::string sig = signed_["signature"];
  const json& file = update["document"]["afr_ota"]["files"][0];
  const std::string url = file.value("update_data_url", "");
  EXPECT_EQ(url.rfind("https://127.0.0.1:", 0), 0u) << url;
  // The document, member for member (the URL is checked by the HTTP test).
  const json expected{{"afr_ota",
                       {{"protocols", {"MQTT", "HTTP"}},
                        {"streamname", "u1"},
                        {"files",
                         {{{"filepath", "/ota/app.bin"},
                           {"filesize", 10'000},
                           {"fileid", 0},
                           {"certfile", "fleetd-code-signing.pem"},
                           {"fileType", 0},
                           {"sig-sha256-ecdsa", sig},
                           {"update_data_url", url},
                           {"auth_scheme", "aws.s3.presigned"}}}}}}};
  EXPECT_EQ(update["document"], expected);
  // The job as the device reads it.
  Peer t1;
  connect(t1, "t1");
  auto got = ask(t1, "$aws/things/t1/jobs/$next/get", R"({"clientToken":"1:t1"})",
                 [](const auto& m) { return !m.empty(); });
  ASSERT_FALSE(got.empty());
  const json next = json::parse(got[0].payload, nullptr, false);
  EXPECT_EQ(next["execution"]["jobId"], "AFR_OTA-u1");
  EXPECT_EQ(next["execution"]["jobDocument"], expected);
  // The signature is ECDSA P-256 over the image by a code-signing certificate of fleetd's CA.
  const auto root = pki::parse_certificate(testing::read_text_file((dir_ / "state" / "ca" / "root.pem").string()));
  ASSERT_TRUE(root);
  const auto der = ota::base64_decode(sig);
  ASSERT_TRUE(der);
  const std::vector<pki::CertificateInfo> anchors{*root};
  auto checked = ota::verify_image_signature(image_, *der, signed_["certificate"].get<std::string>(),
                                             anchors, std::time(nullptr));
  EXPECT_TRUE(checked) << checked.error().message;
  std::string tampered = image_;
  tampered[5000] ^= 1;
  EXPECT_FALSE(ota::verify_image_signature(tampered, *der, signed_["certificate"].get<std::string>(),
                                           anchors, std::time(nullptr)));
  // Status: t1's execution, as the Jobs service keeps it.
  const json status = call("GET", "/admin/v1/ota/updates/u1", json(), 200);
  EXPECT_EQ(status["job"]["jobProcessDetails"]["numberOfQueuedThings"], 1) << status;
  ASSERT_EQ(status["executions"].size(), 1u);
  EXPECT_EQ(status["executions"][0]["thingName"], "t1");
  EXPECT_EQ(status["executions"][0]["status"], "QUEUED");
  call("GET", "/admin/v1/ota/updates/nope", json(), 404);
}

TEST_F(OtaTest, GetStreamReturnsExactlyTheBlocksAskedByteForByteInJsonAndCbor) {
  roll_out();
  Peer t1;
  connect(t1, "t1");
  const std::string base = "$aws/things/t1/streams/u1";
  // JSON, the docs' example shape: o = 2, bits 0, 1, 4 -> blocks 2, 3, 6.
  auto json_blocks = ask(t1, base + "/get/json",
                         R"({"c":"j1","s":1,"f":0,"l":1024,"o":2,"n":32,"b":"0x1300"})",
                         [](const auto& m) { return m.size() >= 3; });
  // (A stray fourth block would come before the CBOR answers below, which are checked to be
  // exactly CBOR data.)
  ASSERT_EQ(json_blocks.size(), 3u);
  std::vector<std::int64_t> ids;
  for (const auto& m : json_blocks) {
    EXPECT_EQ(m.topic, base + "/data/json");
    const Block b = read_block(m.payload, false);
    EXPECT_EQ(b.c, "j1");
    EXPECT_EQ(b.f, 0);
    EXPECT_EQ(b.l, 1024);
    EXPECT_EQ(b.p, image_.substr(static_cast<std::size_t>(b.i) * 1024, 1024)) << b.i;
    ids.push_back(b.i);
  }
  EXPECT_EQ(ids, (std::vector<std::int64_t>{2, 3, 6}));

  // CBOR, as the FreeRTOS agent asks (c, f, l, o, b, n): the whole-file bitmap, 10 blocks.
  std::string assembled(image_.size(), '\0');
  std::vector<bool> seen(10, false);
  auto cbor_blocks = ask(t1, base + "/get/cbor",
                         cbor_map({{"c", std::string("rdy")}, {"f", 0}, {"l", 1024}, {"o", 0},
                                   {"b", std::vector<std::uint8_t>{0xff, 0x03}}, {"n", 10}}),
                         [](const auto& m) { return m.size() >= 10; });
  ASSERT_EQ(cbor_blocks.size(), 10u);
  for (const auto& m : cbor_blocks) {
    EXPECT_EQ(m.topic, base + "/data/cbor");
    const Block b = read_block(m.payload, true);
    ASSERT_GE(b.i, 0);
    ASSERT_LT(b.i, 10);
    EXPECT_FALSE(seen[static_cast<std::size_t>(b.i)]) << "block " << b.i << " twice";
    seen[static_cast<std::size_t>(b.i)] = true;
    EXPECT_EQ(b.c, "rdy");
    EXPECT_EQ(b.l, b.i == 9 ? 10'000 - 9 * 1024 : 1024);
    assembled.replace(static_cast<std::size_t>(b.i) * 1024, b.p.size(), b.p);
  }
  EXPECT_EQ(assembled, image_) << "the blocks make the image";

  // No bitmap: n blocks from o, capped at 128 KB (here: the file's end).
  auto tail = ask(t1, base + "/get/json", R"({"f":0,"l":4096,"o":1})",
                  [](const auto& m) { return m.size() >= 2; });
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(read_block(tail[1].payload, false).p, image_.substr(8192));

  // Describe in both formats.
  auto d = ask(t1, base + "/describe/json", R"({"c":"d1"})", [](const auto& m) { return !m.empty(); });
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].topic, base + "/description/json");
  EXPECT_EQ(json::parse(d[0].payload, nullptr, false),
            (json{{"c", "d1"}, {"s", 1}, {"d", "OTA update u1"}, {"r", {{{"f", 0}, {"z", 10'000}}}}}));
  auto dc = ask(t1, base + "/describe/cbor", "", [](const auto& m) { return !m.empty(); });
  ASSERT_EQ(dc.size(), 1u);
  EXPECT_EQ(dc[0].topic, base + "/description/cbor");
  auto v = doc::cbor::parse(std::as_bytes(std::span<const char>(dc[0].payload.data(), dc[0].payload.size())));
  ASSERT_TRUE(v);
  EXPECT_EQ(v.value().find("s").value().as_int64().value(), 1);
  auto r0 = v.value().find("r").value().at(0);
  ASSERT_TRUE(r0);
  EXPECT_EQ(r0.value().find("z").value().as_int64().value(), 10'000);

  // edgekit's device library (libs/ota) against the service: its GetStream and DescribeStream
  // requests in both formats, its data and description readers on the replies.
  for (const auto format : {edgekit::ota::Format::Json, edgekit::ota::Format::Cbor}) {
    const bool cbor = format == edgekit::ota::Format::Cbor;
    const std::string fmt = cbor ? "cbor" : "json";
    const std::uint8_t bitmap[] = {0x05};  // blocks 4 and 6 (o = 4)
    edgekit::ota::GetStreamRequest rq;
    rq.client_token = "dev";
    rq.block_size = 1024;
    rq.offset = 4;
    rq.block_count = 8;
    rq.bitmap = bitmap;
    rq.stream_version = 1;
    std::uint8_t out[256];
    auto n = edgekit::ota::write_get_stream_request(format, rq, out);
    ASSERT_TRUE(n);
    auto got = ask(t1, base + "/get/" + fmt, std::string(reinterpret_cast<char*>(out), *n),
                   [](const auto& m) { return m.size() >= 2; });
    ASSERT_EQ(got.size(), 2u) << fmt;
    std::vector<std::uint32_t> read_ids;
    for (const auto& m : got) {
      std::byte block[1024];
      char scratch[64];
      auto data = edgekit::ota::read_data(
          format, std::span(reinterpret_cast<const std::uint8_t*>(m.payload.data()), m.payload.size()),
          block, scratch);
      ASSERT_TRUE(data) << fmt << " " << edgekit::ota::to_string(data.error());
      EXPECT_EQ(data->client_token, "dev");
      read_ids.push_back(data->block_id);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(data->payload.data()), data->payload.size()),
                image_.substr(data->block_id * 1024, 1024));
    }
    EXPECT_EQ(read_ids, (std::vector<std::uint32_t>{4, 6})) << fmt;
    n = edgekit::ota::write_describe_stream_request(format, "dd", out);
    ASSERT_TRUE(n);
    got = ask(t1, base + "/describe/" + fmt, std::string(reinterpret_cast<char*>(out), *n),
              [](const auto& m) { return !m.empty(); });
    ASSERT_EQ(got.size(), 1u);
    edgekit::ota::StreamFile files[2];
    char scratch[64];
    auto desc = edgekit::ota::read_description(
        format, std::span(reinterpret_cast<const std::uint8_t*>(got[0].payload.data()), got[0].payload.size()),
        files, scratch);
    ASSERT_TRUE(desc) << fmt;
    EXPECT_EQ(desc->client_token, "dd");
    ASSERT_EQ(desc->file_count, 1u);
    EXPECT_EQ(files[0].size, 10'000u);
  }
}

TEST_F(OtaTest, EachMalformedOrOutOfBoundsRequestIsRejectedWithAwsCode) {
  roll_out();
  Peer t1;
  connect(t1, "t1");
  struct Case {
    std::string fmt, op, payload, code;
    bool token_echoed;
  };
  const std::string big_bitmap = "0x" + std::string(2 * 12'288, 'f');
  const std::vector<Case> cases{
      {"json", "get", "{not json", "InvalidJson", false},
      {"cbor", "get", std::string("\xa1\x61", 2), "InvalidCbor", false},
      {"json", "get", R"({"c":"t","l":1024})", "InvalidRequest", true},
      {"json", "get", R"({"c":")" + std::string(65, 'x') + R"(","f":0,"l":1024})", "InvalidRequest", false},
      {"json", "get", R"({"c":"t","f":0,"l":255})", "BlockSizeOutOfBounds", true},
      {"json", "get", R"({"c":"t","f":0,"l":131073})", "BlockSizeOutOfBounds", true},
      {"json", "get", R"({"c":"t","f":0,"l":1024,"o":98305})", "OffsetOutOfBounds", true},
      {"json", "get", R"({"c":"t","f":0,"l":1024,"o":10})", "OffsetOutOfBounds", true},
      {"json", "get", R"({"c":"t","f":0,"l":1024,"n":98305})", "BlockCountLimitExceeded", true},
      {"json", "get", R"({"c":"t","f":0,"l":1024,"b":")" + big_bitmap + R"("})", "BlockBitmapLimitExceeded", true},
      {"json", "get", R"({"c":"t","f":7,"l":1024})", "ResourceNotFound", true},
      {"json", "get", R"({"c":"t","f":0,"l":1024,"o":9,"b":"0x02"})", "ResourceNotFound", true},
      {"json", "get", R"({"c":"t","s":2,"f":0,"l":1024})", "VersionMismatch", true},
      {"json", "describe", "[1]", "InvalidRequest", false},
  };
  for (const auto& c : cases) {
    const json r = rejected(t1, "u1", c.fmt, c.op, c.payload);
    EXPECT_EQ(r.value("o", ""), c.code) << c.payload.substr(0, 80) << " -> " << r;
    EXPECT_FALSE(r.value("m", "").empty()) << r;
    EXPECT_EQ(r.contains("c"), c.token_echoed) << r;
  }
  // CBOR: a wrong type, and a rejection written in CBOR with the token echoed.
  const json cbor = rejected(t1, "u1", "cbor", "get",
                             cbor_map({{"c", std::string("k")}, {"f", 0}, {"l", 100}}));
  EXPECT_EQ(cbor.value("o", ""), "BlockSizeOutOfBounds");
  EXPECT_EQ(cbor.value("c", ""), "k");
  EXPECT_EQ(rejected(t1, "u1", "cbor", "get", cbor_map({{"f", std::string("0")}, {"l", 1024}})).value("o", ""),
            "InvalidRequest");
  EXPECT_EQ(rejected(t1, "nope", "json", "get", R"({"f":0,"l":1024})").value("o", ""), "ResourceNotFound");
  EXPECT_EQ(rejected(t1, "u1", "xml", "get", R"({"f":0,"l":1024})").value("o", ""), "InvalidTopic");
}

TEST_F(OtaTest, AThingReadsOnlyStreamsOfItsOwnUpdatesAndNoOneElseSeesItsBlocks) {
  roll_out();
  // t2 may read and publish on t1's topics (a too-wide policy): it is still refused the data.
  auto p = admin("POST", "/admin/v1/policies", json{{"policyName", "spy"}, {"policyDocument", R"({"Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
      {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/$aws/things/t1/*"},
      {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/$aws/things/t1/*"}]})"}}.dump());
  ASSERT_TRUE(p && p->status == 201) << (p ? p->body : "no answer");
  auto a = admin("PUT", "/admin/v1/policies/spy/certificates/" + ids_["t2"]);
  ASSERT_TRUE(a && a->status == 204) << (a ? a->body : "no answer");
  Peer spy;
  connect(spy, "t2");
  EXPECT_EQ(spy.subscribe("$aws/things/t1/streams/#"), ReasonCode::GrantedQoS1);

  Peer t1;
  connect(t1, "t1");
  auto blocks = ask(t1, "$aws/things/t1/streams/u1/get/json", R"({"f":0,"l":1024,"n":3})",
                    [](const auto& m) { return m.size() >= 3; });
  EXPECT_EQ(blocks.size(), 3u);
  spy.pump(300ms);
  for (const auto& m : spy.received) {
    // It reads t1's requests (its policy allows that), never the stream's replies.
    EXPECT_EQ(m.topic, "$aws/things/t1/streams/u1/get/json") << "the spy got " << m.topic;
  }

  // Asking on t1's topics as t2: Unauthorized (to t2 alone).
  EXPECT_EQ(rejected(spy, "u1", "json", "get", R"({"f":0,"l":1024})").value("o", ""), "Unauthorized");
  // On its own topics, t2 is not targeted by u1: the stream does not exist for it.
  EXPECT_EQ(rejected(spy, "u1", "json", "get", R"({"f":0,"l":1024})", "t2").value("o", ""),
            "ResourceNotFound");
  // t3 (the plugin's usual policy: its own topics only) cannot even publish on t1's.
  Peer t3;
  connect(t3, "t3");
  EXPECT_EQ(t3.publish("$aws/things/t1/streams/u1/get/json", R"({"f":0,"l":1024})"),
            ReasonCode::NotAuthorized);
  EXPECT_NE(t3.subscribe("$aws/things/t1/streams/u1/data/json"), ReasonCode::GrantedQoS1);
  t1.pump(300ms);
  t3.pump(300ms);
  EXPECT_TRUE(t3.received.empty());

  // Once t1's execution is over, its stream is closed to it too.
  auto done = ask(t1, "$aws/things/t1/jobs/AFR_OTA-u1/update", R"({"status":"SUCCEEDED"})",
                  [](const auto& m) { return !m.empty(); });
  ASSERT_FALSE(done.empty());
  EXPECT_EQ(done[0].topic, "$aws/things/t1/jobs/AFR_OTA-u1/update/accepted") << done[0].payload;
  EXPECT_EQ(rejected(t1, "u1", "json", "get", R"({"f":0,"l":1024})").value("o", ""), "ResourceNotFound");
}

// A client of the download endpoint of a rolled-out update's presigned URL
// (https://127.0.0.1:<port><path>?expires=..&signature=..), verifying the server; `target` is
// the URL's path and query.
std::unique_ptr<httplib::SSLClient> download_client(const json& update, const std::string& ca_file,
                                                    std::string& target) {
  const std::string url = update["document"]["afr_ota"]["files"][0]["update_data_url"];
  const auto slash = url.find('/', 8);
  const int port = std::stoi(url.substr(url.rfind(':', slash) + 1));
  target = url.substr(slash);
  auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  c->set_ca_cert_path(ca_file.c_str());
  c->enable_server_certificate_verification(true);
  c->set_connection_timeout(5);
  return c;
}

TEST_F(OtaTest, TheDownloadEndpointServesRangesOnAPresignedUrl) {
  std::string target;
  auto client = download_client(roll_out(), ca_->cert_file(), target);
  httplib::SSLClient& c = *client;
  auto whole = c.Get(target.c_str());
  ASSERT_TRUE(whole) << httplib::to_string(whole.error());
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->body, image_);
  auto part = c.Get(target.c_str(), {{"Range", "bytes=1000-2999"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, image_.substr(1000, 2000));
  EXPECT_EQ(part->get_header_value("Content-Range"), "bytes 1000-2999/10000");
  auto rest = c.Get(target.c_str(), {{"Range", "bytes=9000-"}});
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->status, 206);
  EXPECT_EQ(rest->body, image_.substr(9000));
  auto beyond = c.Get(target.c_str(), {{"Range", "bytes=10000-10010"}});
  ASSERT_TRUE(beyond);
  EXPECT_EQ(beyond->status, 416);
  // The URL is the credential: another image, a changed expiry or signature are refused.
  std::string other = target;
  other.replace(other.find("2.0.0"), 5, "2.0.1");
  std::string later = target;
  later.replace(later.find("expires=") + 8, 1, "9");
  std::string forged = target;
  forged.back() = forged.back() == '0' ? '1' : '0';
  for (const auto& t : {other, later, forged, target.substr(0, target.find('?'))}) {
    auto r = c.Get(t.c_str());
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->status, 403) << t;
  }
}

// A device's ranges stay on one kept connection: the server does not close it after
// cpp-httplib's default of 5 requests (a TLS handshake every 5 ranges), but only after 100.
TEST_F(OtaTest, TheDownloadEndpointKeepsAConnectionForManyRanges) {
  std::string target;
  auto client = download_client(roll_out(), ca_->cert_file(), target);
  httplib::SSLClient& c = *client;
  c.set_keep_alive(true);
  int closed_after = 0;
  for (int i = 1; i <= 100 && closed_after == 0; ++i) {
    auto r = c.Get(target.c_str(), {{"Range", "bytes=" + std::to_string(i * 10) + "-" +
                                                  std::to_string(i * 10 + 9)}});
    ASSERT_TRUE(r) << i << ": " << httplib::to_string(r.error());
    ASSERT_EQ(r->status, 206) << i;
    EXPECT_EQ(r->body, image_.substr(static_cast<std::size_t>(i) * 10, 10)) << i;
    if (r->get_header_value("Connection") == "close") closed_after = i;
  }
  EXPECT_EQ(closed_after, 100) << "the server closed the connection after request " << closed_after;
}

TEST_F(OtaTest, UploadsAreCheckedForTheirSignerAndEdgekitHeader) {
  upload("app", "1.0.0", image_);
  const json s = call("POST", "/admin/v1/ota/images/app/1.0.0/sign", json(), 200);
  ASSERT_TRUE(s.contains("signature")) << s;
  // The same bytes with fleetd's signature: a valid code signer of a trusted CA.
  const json pre = upload("app", "1.0.1", image_, 201,
                          {{"signature", s["signature"]}, {"certificate", s["certificate"]}});
  EXPECT_TRUE(pre.value("signed", false)) << pre;
  EXPECT_EQ(pre["sha256"], s["sha256"]);
  // Tampered bytes; a device certificate (no codeSigning); a signature that is no base64.
  std::string tampered = image_;
  tampered[0] ^= 0x55;
  EXPECT_NE(upload("app", "1.0.2", tampered, 400, {{"signature", s["signature"]}, {"certificate", s["certificate"]}})
                .value("message", "")
                .find("does not verify"),
            std::string::npos);
  EXPECT_NE(upload("app", "1.0.3", image_, 400,
                   {{"signature", s["signature"]},
                    {"certificate", testing::read_text_file(issued("t1").cert_file)}})
                .value("message", "")
                .find("code signing"),
            std::string::npos);
  upload("app", "1.0.4", image_, 400, {{"signature", "%%%"}, {"certificate", s["certificate"]}});
  upload("app", "1.0.5", image_, 400, {{"signature", s["signature"]}});
  // An edgekit image: its header must agree with the upload (the device checks the header).
  const std::string fw = edgekit_image(1, 2, 300, "sensor", firmware(5000));
  EXPECT_EQ(upload("fw", "1.2.300", fw)["deviceType"], "sensor");
  EXPECT_NE(upload("fw", "1.2.4", fw, 400).value("message", "").find("says version 1.2.300"),
            std::string::npos);
  EXPECT_NE(upload("fw", "1.2.300", edgekit_image(1, 2, 300, "other", "x"), 400)
                .value("message", "")
                .find("device type other"),
            std::string::npos);
  EXPECT_NE(upload("fw", "9", fw.substr(0, 4000), 400).value("message", "").find("damaged"),
            std::string::npos);
  // An unsigned image cannot be rolled out.
  upload("raw", "1", image_);
  call("POST", "/admin/v1/ota/updates",
       {{"otaUpdateId", "u9"}, {"imageName", "raw"}, {"imageVersion", "1"},
        {"targets", {{"things", {"t1"}}}}},
       409);
  call("GET", "/admin/v1/ota/streams/u9", json(), 404);
}

TEST_F(OtaTest, TheEdgekitOtaCommandUploadsSignsRollsOutAndReportsStatus) {
  const std::string file = (dir_ / "app-3.bin").string();
  {
    std::ofstream out(file, std::ios::binary);
    out << image_;
  }
  const std::string cli = "EDGEKIT_FLEET_TOKEN_FILE=" + (dir_ / "state" / "admin.token").string() +
                          " " + EDGEKIT_CLI + " ota --url http://127.0.0.1:" +
                          std::to_string(admin_port_) + " ";
  auto up = testing::run_command(cli + "upload app 3.0.0 --file " + file + " --device-type sensor --json");
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_EQ(json::parse(up.out, nullptr, false)["size"], 10'000) << up.out;
  auto sign = testing::run_command(cli + "sign app 3.0.0 --json");
  ASSERT_EQ(sign.code, 0) << sign.out;
  EXPECT_TRUE(json::parse(sign.out, nullptr, false)["signed"].get<bool>()) << sign.out;
  auto create = testing::run_command(cli + "create-update u3 --image app --version 3.0.0 --thing t1 "
                                           "--protocol MQTT --block-size 2048 --json");
  ASSERT_EQ(create.code, 0) << create.out;
  const json made = json::parse(create.out, nullptr, false);
  EXPECT_EQ(made["jobId"], "AFR_OTA-u3");
  EXPECT_EQ(made["document"]["afr_ota"]["protocols"], json::array({"MQTT"}));
  EXPECT_EQ(call("GET", "/admin/v1/ota/streams/u3", json(), 200)["blockSize"], 2048);
  // The device reports progress as the FreeRTOS agent does; the status shows it.
  Peer t1;
  connect(t1, "t1");
  auto upd = ask(t1, "$aws/things/t1/jobs/AFR_OTA-u3/update",
                 R"({"status":"IN_PROGRESS","statusDetails":{"receive":"3/5"}})",
                 [](const auto& m) { return !m.empty(); });
  ASSERT_FALSE(upd.empty());
  auto status = testing::run_command(cli + "status u3");
  ASSERT_EQ(status.code, 0) << status.out;
  EXPECT_NE(status.out.find("job AFR_OTA-u3 IN_PROGRESS"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("receive=3/5"), std::string::npos) << status.out;
  auto missing = testing::run_command(cli + "status nope");
  EXPECT_EQ(missing.code, 1) << missing.out;
  auto unsigned_update = testing::run_command(cli + "upload raw 1 --file " + file + " && " + cli +
                                              "create-update u4 --image raw --version 1 --thing t1");
  EXPECT_EQ(unsigned_update.code, 1) << unsigned_update.out;
  EXPECT_NE(unsigned_update.out.find("not signed"), std::string::npos) << unsigned_update.out;
}

// The update's rollout is the Jobs service's: t1 first, t2 once t1 succeeded. A thing reads the
// stream only once its own execution is queued.
TEST_F(OtaTest, AnUpdateRollsOutInGroupsAndAThingReadsTheStreamOnlyOnceItsTurnCame) {
  upload("app", "2.0.0", image_);
  call("POST", "/admin/v1/ota/images/app/2.0.0/sign", json(), 200);
  call("POST", "/admin/v1/ota/updates",
       {{"otaUpdateId", "staged"},
        {"imageName", "app"},
        {"imageVersion", "2.0.0"},
        {"targets", {{"things", {"t1", "t2"}}}},
        {"rolloutGroups", {{{"count", 1}, {"successThreshold", 100}}, {{"count", 1}}}}},
       201);
  auto executions = [&] {
    std::vector<std::string> out;
    const json status = call("GET", "/admin/v1/ota/updates/staged", json(), 200);
    for (const auto& e : status["executions"]) {
      out.push_back(e["thingName"].get<std::string>() + ":" + e["status"].get<std::string>());
    }
    return out;
  };
  EXPECT_EQ(executions(), std::vector<std::string>{"t1:QUEUED"});
  Peer t2;
  connect(t2, "t2");
  ASSERT_EQ(t2.subscribe("$aws/things/t2/jobs/notify-next"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(rejected(t2, "staged", "json", "get", R"({"f":0,"l":1024})", "t2").value("o", ""),
            "ResourceNotFound");
  Peer t1;
  connect(t1, "t1");
  auto done = ask(t1, "$aws/things/t1/jobs/AFR_OTA-staged/update", R"({"status":"SUCCEEDED"})",
                  [](const auto& m) { return !m.empty(); });
  ASSERT_FALSE(done.empty());
  // The next tick opens the second group: t2 is told, and may read the stream.
  auto told = ask(t2, "$aws/things/t2/jobs/$next/get", "{}", [](const auto& m) {
    return std::any_of(m.begin(), m.end(), [](const auto& x) {
      return x.topic == "$aws/things/t2/jobs/notify-next" &&
             json::parse(x.payload, nullptr, false)["execution"]["jobId"] == "AFR_OTA-staged";
    });
  });
  EXPECT_EQ(executions(), (std::vector<std::string>{"t1:SUCCEEDED", "t2:QUEUED"}));
  auto blocks = ask(t2, "$aws/things/t2/streams/staged/get/json", R"({"f":0,"l":4096,"o":2})",
                    [](const auto& m) { return !m.empty(); });
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(read_block(blocks[0].payload, false).p, image_.substr(8192));
}

}  // namespace
}  // namespace edgekit::fleetd::test
