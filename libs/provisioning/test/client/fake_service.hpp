#pragma once
// A scripted stand-in for the provisioning service (fleetd's side, branch `claim`), on the real
// topics of a real Mosquitto: an agent subscribed to the three request topics that answers with
// certificates issued by a throw-away CA, ownership tokens it remembers, and RegisterThing
// replies — or, as a test scripts it, silence, rejections and malformed replies.
#include <array>
#include <ctime>
#include <edgekit/agent/agent.hpp>
#include <edgekit/doc/cbor.hpp>
#include <edgekit/doc/json.hpp>
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/csr.hpp>
#include <edgekit/pki/keys.hpp>
#include <edgekit/provisioning/topics.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace edgekit::provisioning::test {

/// What the service does with one request of a kind, in order: each entry is used once, then
/// Answer (the default) for the rest.
/// Late: answered, but published only `late_by` later (from a thread of its own, so that the
/// service goes on answering other requests meanwhile).
/// Twice: answered, and the same reply published a second time right behind the first (a
/// duplicate delivery).
enum class Script { Answer, Drop, Throttle, Reject, Malformed, ForgetTokens, Late, Twice };

class FakeService {
 public:
  explicit FakeService(std::uint16_t port)
      : factory_("127.0.0.1", port), agent_(config(), connect_options(), factory_, clock_) {
    auto ca = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
    ca_key_.emplace(std::move(*ca));
    pki::IssueOptions o;
    o.profile = pki::Profile::Ca;
    o.subject = *pki::Name::parse("/CN=Fake provisioning CA");
    o.not_before = now() - 3600;
    o.not_after = now() + 86400;
    o.path_length = 0;
    ca_cert_ = *pki::issue_certificate(ca_key_->public_key_der(), o, nullptr, *ca_key_);
  }

  ~FakeService() {
    // The agent thread first: it is the one that starts delayed replies.
    agent_.stop();
    for (std::thread& t : delayed_) t.join();
  }
  FakeService(const FakeService&) = delete;
  FakeService& operator=(const FakeService&) = delete;

  bool start() {
    if (!agent_.start()) return false;
    for (const char* filter : {"$aws/certificates/create/+", "$aws/certificates/create-from-csr/+",
                               "$aws/provisioning-templates/+/provision/+"}) {
      auto r = agent_.subscribe_and_wait(filter, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce},
                                         agent::MessageHandler{&on_request, this}, Duration{5000});
      if (!r || !r->ok()) return false;
    }
    return true;
  }

  void script(Api api, std::vector<Script> steps) {
    std::lock_guard lock(mutex_);
    scripts_[api] = std::move(steps);
  }
  std::chrono::milliseconds late_by{600};

  void set_rejection(std::int64_t status, std::string code, std::string message) {
    std::lock_guard lock(mutex_);
    reject_status_ = status;
    reject_code_ = std::move(code);
    reject_message_ = std::move(message);
  }
  /// Requests seen per API (answered or not).
  int requests(Api api) {
    std::lock_guard lock(mutex_);
    return requests_[api];
  }
  int certificates_issued() {
    std::lock_guard lock(mutex_);
    return issued_;
  }
  std::map<std::string, std::string> last_parameters() {
    std::lock_guard lock(mutex_);
    return parameters_;
  }
  /// The CA that issues device certificates, PEM (what a broker trusts for device connections).
  std::string ca_pem() const { return ca_cert_.pem(); }
  std::set<std::string> registered_certificates() {
    std::lock_guard lock(mutex_);
    return registered_;
  }

 private:
  static std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }
  static agent::Config config() {
    agent::Config c;
    c.slot_size = 16 * 1024;  // replies carry certificates and keys
    c.receive_buffer_size = 16 * 1024;
    return c;
  }
  static mqtt::ConnectOptions connect_options() {
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = "fake-provisioning-service";
    return o;
  }

  template <class F>
  static std::vector<std::uint8_t> write(Format format, F&& fill) {
    std::vector<std::uint8_t> out(16 * 1024);
    std::size_t n = 0;
    if (format == Format::Json) {
      doc::json::Writer w(std::span<char>(reinterpret_cast<char*>(out.data()), out.size()));
      fill(w);
      n = w.finish()->size();
    } else {
      doc::cbor::Writer w(std::as_writable_bytes(std::span(out)));
      fill(w);
      n = w.finish()->size();
    }
    out.resize(n);
    return out;
  }

  // The request's root object, handed to `read_root` as JSON or CBOR.
  template <class F>
  static void read(Format format, mqtt::Bytes payload, F&& read_root) {
    if (format == Format::Json) {
      auto root = doc::json::parse(mqtt::as_string(payload));
      if (root) read_root(*root);
    } else {
      auto root = doc::cbor::parse(payload);
      if (root) read_root(*root);
    }
  }

  template <class V>
  static std::string text(const V& value) {
    std::vector<char> buf(16 * 1024);
    auto s = value.copy_string(buf);
    return s ? std::string(*s) : std::string();
  }

  void reply(const TopicMatch& m, TopicKind kind, const std::vector<std::uint8_t>& payload) {
    std::array<char, kMaxTopicLength> buf{};
    auto t = topic(m.api, m.format, kind, buf, m.template_name);
    mqtt::Publish p;
    p.topic = *t;
    p.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
    p.qos = mqtt::QoS::AtLeastOnce;
    if (delay_.count() == 0) {
      (void)agent_.publish(p);
      if (twice_) (void)agent_.publish(p);
      return;
    }
    // The agent copies what it publishes; the thread keeps the topic and payload until then.
    delayed_.emplace_back([this, topic_text = std::string(*t), payload, delay = delay_] {
      std::this_thread::sleep_for(delay);
      mqtt::Publish late;
      late.topic = topic_text;
      late.payload =
          mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
      late.qos = mqtt::QoS::AtLeastOnce;
      (void)agent_.publish(late);
    });
  }

  void reject(const TopicMatch& m, std::int64_t status, const std::string& code,
              const std::string& message) {
    reply(m, TopicKind::Rejected, write(m.format, [&](auto& w) {
            w.begin_object()
                .member("statusCode", status)
                .member("errorCode", code)
                .member("errorMessage", message)
                .end_object();
          }));
  }

  // Issues a certificate for `spki` and answers with it (and `private_key_pem` when set).
  void answer_certificate(const TopicMatch& m, const pki::Bytes& spki,
                          const std::string& private_key_pem) {
    pki::IssueOptions o;
    o.subject = *pki::Name::parse("/CN=provisioned-device");
    o.not_before = now() - 60;
    o.not_after = now() + 86400;
    auto cert = pki::issue_certificate(spki, o, &ca_cert_, *ca_key_);
    if (!cert) return;
    const std::string token = "token-" + std::to_string(++issued_) + "-" + cert->id.substr(0, 8);
    tokens_[token] = cert->id;
    reply(
        m, TopicKind::Accepted, write(m.format, [&](auto& w) {
          w.begin_object().member("certificateId", cert->id).member("certificatePem", cert->pem());
          if (!private_key_pem.empty()) w.member("privateKey", private_key_pem);
          w.member("certificateOwnershipToken", token).end_object();
        }));
  }

  static void on_request(void* context, const mqtt::Publish& message) {
    static_cast<FakeService*>(context)->handle(message);
  }

  void handle(const mqtt::Publish& message) {
    auto m = match_topic(message.topic);
    if (!m || m->kind != TopicKind::Request) return;
    std::lock_guard lock(mutex_);
    ++requests_[m->api];
    Script step = Script::Answer;
    delay_ = std::chrono::milliseconds{0};
    twice_ = false;
    auto& steps = scripts_[m->api];
    if (!steps.empty()) {
      step = steps.front();
      steps.erase(steps.begin());
    }
    switch (step) {
      case Script::Drop:
        return;
      case Script::Throttle:
        return reject(*m, 429, "ThrottlingException", "Rate exceeded");
      case Script::Reject:
        return reject(*m, reject_status_, reject_code_, reject_message_);
      case Script::Malformed:
        return reply(*m, TopicKind::Accepted, {'{', '"', 'x'});
      case Script::ForgetTokens:
        tokens_.clear();
        break;
      case Script::Late:
        delay_ = late_by;
        break;
      case Script::Twice:
        twice_ = true;
        break;
      case Script::Answer:
        break;
    }
    if (m->api == Api::CreateCertificateFromCsr) {
      std::string csr_pem;
      read(m->format, message.payload, [&](const auto& root) {
        if (auto v = root.find("certificateSigningRequest")) csr_pem = text(*v);
      });
      auto csr = pki::parse_csr(csr_pem);
      if (!csr) return reject(*m, 400, "InvalidRequest", "bad CSR");
      return answer_certificate(*m, csr->public_key_der, "");
    }
    if (m->api == Api::CreateKeysAndCertificate) {
      auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
      return answer_certificate(*m, key->public_key_der(), key->private_key_pem());
    }
    std::string token;
    std::map<std::string, std::string> params;
    read(m->format, message.payload, [&](const auto& root) {
      if (auto v = root.find("certificateOwnershipToken")) token = text(*v);
      if (auto p = root.find("parameters")) {
        for (const auto& member : p->members()) params[text(member.key)] = text(member.value);
      }
    });
    parameters_ = params;
    auto it = tokens_.find(token);
    if (token.empty() || it == tokens_.end()) {
      return reject(*m, 400, "InvalidCertificateOwnershipToken",
                    "Certificate ownership token cannot be empty.");
    }
    registered_.insert(it->second);
    tokens_.erase(it);  // a token is good for one registration
    const std::string thing = "thing-" + params["SerialNumber"];
    reply(*m, TopicKind::Accepted, write(m->format, [&](auto& w) {
      w.begin_object()
          .key("deviceConfiguration")
          .begin_object()
          .member("Fleet", "blue")
          .member("Interval", std::int64_t{30})
          .end_object()
          .member("thingName", thing)
          .end_object();
    }));
  }

  SteadyClock clock_;
  agent::TcpTransportFactory factory_;
  agent::Agent agent_;
  std::optional<pki::SoftwareSigner> ca_key_;
  pki::CertificateInfo ca_cert_;
  std::mutex mutex_;
  std::map<Api, std::vector<Script>> scripts_;
  std::map<Api, int> requests_;
  std::map<std::string, std::string> tokens_;  // token -> certificate id
  std::set<std::string> registered_;
  std::map<std::string, std::string> parameters_;
  int issued_ = 0;
  std::chrono::milliseconds delay_{0};  // of the reply being made (Script::Late)
  std::vector<std::thread> delayed_;
  bool twice_ = false;  // of the reply being made (Script::Twice)
  std::int64_t reject_status_ = 400;
  std::string reject_code_ = "InvalidParameters";
  std::string reject_message_ = "Cannot resolve reference value: SerialNumber";
};

}  // namespace edgekit::provisioning::test
