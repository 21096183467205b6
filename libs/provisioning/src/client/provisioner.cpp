// Provisioner: the three fleet-provisioning requests run to the end, with resume after a power
// loss at any step. See client.hpp for the rules; comments here say why.
#include <algorithm>
#include <array>
#include <cctype>
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/csr.hpp>
#include <edgekit/pki/token.hpp>
#include <thread>

#include "edgekit/provisioning/client.hpp"

namespace edgekit::provisioning {
namespace {

bool same_hex(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

pkcs11::ObjectQuery Provisioner::device_query(std::optional<CK_OBJECT_CLASS> object_class) const {
  pkcs11::ObjectQuery q;
  q.object_class = object_class;
  q.label = options_.device_label;
  return q;
}

void ThreadSleeper::sleep(Duration duration) noexcept {
  std::this_thread::sleep_for(duration);
}

Provisioner::Provisioner(pkcs11::Session& session, StateStore& store, const WallClock& wall_clock,
                         Sleeper& sleeper, backoff::RandomSource& random, Options options)
    : session_(&session),
      store_(&store),
      wall_(&wall_clock),
      sleeper_(&sleeper),
      random_(&random),
      options_(std::move(options)),
      request_(options_.reply_buffer_size),
      reply_(options_.reply_buffer_size),
      scratch_(options_.reply_buffer_size) {}

Provisioner::~Provisioner() {
  wipe_buffers();
}

void Provisioner::wipe_buffers() noexcept {
  wipe(std::span<std::uint8_t>(reply_));
  wipe(std::span<char>(scratch_));
  wipe(std::span<std::uint8_t>(request_));
}

Errc Provisioner::failed(Errc e, std::string detail) {
  detail_ = std::move(detail);
  return e;
}

Result<void, Errc> Provisioner::save(const State& state) {
  if (auto r = store_->save(state); !r) {
    return fail(failed(r.error(), "the provisioning state could not be written"));
  }
  return {};
}

Result<std::size_t, Errc> Provisioner::device_object_count() {
  auto found = session_->find(device_query());
  if (!found) return fail(failed(Errc::TokenFailed, found.error().message()));
  return found->size();
}

Result<bool, Errc> Provisioner::device_identity_present() {
  std::size_t keys = 0, certs = 0;
  for (CK_OBJECT_CLASS c : {CKO_PRIVATE_KEY, CKO_CERTIFICATE}) {
    auto found = session_->find(device_query(c));
    if (!found) return fail(failed(Errc::TokenFailed, found.error().message()));
    (c == CKO_PRIVATE_KEY ? keys : certs) = found->size();
  }
  return keys == 1 && certs == 1;
}

Result<void, Errc> Provisioner::destroy_device_objects() {
  auto found = session_->find(device_query());
  if (!found) return fail(failed(Errc::TokenFailed, found.error().message()));
  for (CK_OBJECT_HANDLE h : *found) {
    if (auto r = session_->destroy(h); !r) {
      return fail(failed(Errc::TokenFailed,
                         "cannot destroy a leftover device object: " + r.error().message()));
    }
  }
  return {};
}

Result<std::optional<Identity>, Errc> Provisioner::provisioned() {
  auto state = store_->load();
  if (!state) {
    if (state.error() == Errc::StateCorrupted) return std::optional<Identity>{};
    return fail(failed(state.error(), "the provisioning state could not be read"));
  }
  if (!*state || (*state)->step != Step::Registered) return std::optional<Identity>{};
  auto present = device_identity_present();
  if (!present) return fail(present.error());
  if (!*present) return std::optional<Identity>{};
  Identity id;
  id.thing_name = (*state)->thing_name;
  id.certificate_id = (*state)->certificate_id;
  id.device_label = options_.device_label;
  id.already_provisioned = true;
  return std::optional<Identity>(std::move(id));
}

Result<Identity, Errc> Provisioner::run(Channel& channel) {
  detail_.clear();
  if (!valid_template_name(options_.template_name)) {
    return fail(failed(Errc::InvalidArgument, "invalid template name"));
  }
  if (options_.device_label.empty() || options_.device_label == options_.claim_label) {
    return fail(failed(Errc::InvalidArgument, "the device and claim labels must differ"));
  }
  if (options_.parameters.size() > kMaxParameters) {
    return fail(failed(Errc::InvalidArgument, "too many template parameters"));
  }
  bool restart = false;
  auto r = run_once(channel, restart);
  // A resumed registration whose stored token the service refused: start over once, with a
  // new certificate (client.hpp).
  if (!r && restart) r = run_once(channel, restart);
  wipe_buffers();
  if (r) detail_.clear();
  return r;
}

Result<Identity, Errc> Provisioner::run_once(Channel& channel, bool& restart) {
  auto loaded = store_->load();
  std::optional<State> state;
  if (loaded) {
    state = std::move(*loaded);
  } else if (loaded.error() != Errc::StateCorrupted) {
    // A store we cannot read may still hold a valid state: do not destroy anything over it.
    return fail(failed(loaded.error(), "the provisioning state could not be read"));
  }
  if (state && (state->step == Step::Registered || state->step == Step::CertificateReceived)) {
    auto present = device_identity_present();
    if (!present) return fail(present.error());
    if (*present && state->step == Step::Registered) {
      auto id = provisioned();
      if (!id) return fail(id.error());
      return std::move(**id);
    }
    const bool token_valid =
        state->expires_at - wall_->epoch_seconds() >= options_.token_margin_seconds;
    if (*present && state->step == Step::CertificateReceived && token_valid && !restart) {
      auto r = register_step(channel, *state, true);
      if (!r && r.error() == Errc::InvalidCertificateOwnershipToken) {
        // The stored token is refused (used, or expired sooner than we counted): as good as
        // expired, so start over (run() calls us again). Other rejections would meet the new
        // certificate too: they are returned.
        restart = true;
      }
      return r;
    }
  }
  restart = false;
  // Anything else starts from the beginning, without leftovers under the device label.
  EDGEKIT_TRY(destroy_device_objects());
  State fresh;
  fresh.step = Step::Started;
  EDGEKIT_TRY(save(fresh));
  EDGEKIT_TRY(certificate_step(channel, fresh));
  return register_step(channel, fresh, false);
}

Result<Reply, Errc> Provisioner::exchange(Channel& channel, Api api, std::size_t request_size) {
  std::array<char, kMaxTopicLength> request_topic{}, accepted{}, rejected{};
  const auto t =
      topic(api, options_.format, TopicKind::Request, request_topic, options_.template_name);
  const auto a = topic(api, options_.format, TopicKind::Accepted, accepted, options_.template_name);
  const auto j = topic(api, options_.format, TopicKind::Rejected, rejected, options_.template_name);
  if (!t || !a || !j) return fail(failed(Errc::InvalidArgument, "invalid template name"));
  const ReplyTopics topics{*a, *j};
  // [aws-iot-protocols.md 4.2] subscribe before publishing, or the reply may be lost.
  if (auto s = channel.subscribe(topics, options_.subscribe_timeout); !s) {
    return fail(
        failed(s.error(), std::string("cannot subscribe to the replies of ") + to_string(api)));
  }
  struct Unsubscribe {
    Channel& c;
    ReplyTopics t;
    Duration d;
    ~Unsubscribe() { c.unsubscribe(t, d); }
  } unsubscribe{channel, topics, options_.subscribe_timeout};
  backoff::Backoff backoff(options_.backoff, *random_);
  const std::uint32_t attempts = std::max<std::uint32_t>(options_.attempts, 1);
  for (std::uint32_t attempt = 1;; ++attempt) {
    auto reply = channel.request(*t, std::span(request_.data(), request_size), topics,
                                 std::span<std::uint8_t>(reply_), options_.reply_timeout);
    Errc error = Errc::Ok;
    if (!reply) {
      error = reply.error();
    } else if (reply->kind == TopicKind::Rejected) {
      auto rejected_doc =
          read_rejected(options_.format, std::span(reply_.data(), reply->size), scratch_);
      if (!rejected_doc) return fail(failed(Errc::MalformedReply, "unreadable rejection"));
      rejection_ = Rejection{api, rejected_doc->status_code, std::string(rejected_doc->error_code),
                             std::string(rejected_doc->error_message)};
      error = rejected_doc->errc;
      detail_ = std::string(to_string(api)) +
                " rejected: " + std::to_string(rejection_.status_code) + " " +
                rejection_.error_code + " " + rejection_.error_message;
    } else {
      return reply;
    }
    if (!is_retryable(error) || attempt >= attempts) {
      if (!is_rejection(error)) {
        detail_ = std::string(to_string(api)) + ": " + provisioning::to_string(error) + " after " +
                  std::to_string(attempt) + " attempt(s)";
      }
      return fail(error);
    }
    sleeper_->sleep(backoff.next());
  }
}

Result<void, Errc> Provisioner::certificate_step(Channel& channel, State& state) {
  const bool csr_flow = options_.method == Method::CreateCertificateFromCsr;
  const Api api = csr_flow ? Api::CreateCertificateFromCsr : Api::CreateKeysAndCertificate;
  // One CKA_ID for the key pair and the certificate (the PKCS#11 convention that pairs them).
  pki::Bytes id(options_.device_label.begin(), options_.device_label.end());
  if (auto random = session_->random(16)) id = std::move(*random);
  std::optional<pkcs11::KeyPair> key;
  std::size_t request_size = 0;
  if (csr_flow) {
    auto subject = pki::Name::parse(options_.csr_subject);
    if (!subject) return fail(failed(Errc::InvalidArgument, subject.error().message));
    auto pair =
        pki::generate_token_key(*session_, options_.key_algorithm, options_.device_label, id);
    if (!pair) return fail(failed(Errc::TokenFailed, pair.error().message));
    key = *pair;
    auto signer = pki::TokenSigner::create(*session_, pair->private_key);
    if (!signer) return fail(failed(Errc::TokenFailed, signer.error().message));
    auto csr = pki::make_csr(*signer, *subject);
    if (!csr) return fail(failed(Errc::CsrFailed, csr.error().message));
    auto n = write_create_from_csr_request(options_.format, *csr, request_);
    if (!n) return fail(failed(n.error(), "the CSR request does not fit the request buffer"));
    request_size = *n;
  } else {
    auto n = write_create_keys_request(options_.format, request_);
    if (!n) return fail(failed(n.error(), "the request does not fit"));
    request_size = *n;
  }
  auto reply = exchange(channel, api, request_size);
  if (!reply) return fail(reply.error());
  auto accepted = read_certificate_accepted(options_.format, api,
                                            std::span(reply_.data(), reply->size), scratch_);
  if (!accepted) return fail(failed(accepted.error(), "unreadable certificate reply"));
  auto certificate = pki::parse_certificate(accepted->certificate_pem);
  if (!certificate) {
    return fail(failed(Errc::MalformedReply, "certificatePem: " + certificate.error().message));
  }
  // The id is AWS's SHA-256 of the DER: a reply whose id and certificate disagree is refused,
  // since the id is what RegisterThing and every later AWS call name.
  if (!same_hex(accepted->certificate_id, certificate->id)) {
    return fail(
        failed(Errc::CertificateMismatch, "certificateId is not the certificate's SHA-256"));
  }
  if (!csr_flow) {
    // The private key goes into the token; the copies in reply_ and scratch_ are wiped by run().
    auto pair =
        pki::import_private_key(*session_, accepted->private_key, options_.device_label, id);
    if (!pair) return fail(failed(Errc::TokenFailed, pair.error().message));
    key = *pair;
  }
  auto signer = pki::TokenSigner::create(*session_, key->private_key);
  if (!signer) return fail(failed(Errc::TokenFailed, signer.error().message));
  if (!pki::same_public_key(signer->public_key_der(), certificate->public_key_der)) {
    return fail(failed(Errc::CertificateMismatch, "the certificate is not for the device key"));
  }
  if (auto stored = pki::store_certificate(*session_, *certificate, options_.device_label, id);
      !stored) {
    return fail(failed(Errc::TokenFailed, stored.error().message));
  }
  state.step = Step::CertificateReceived;
  state.certificate_id = certificate->id;
  state.ownership_token.assign(accepted->ownership_token);
  state.expires_at = wall_->epoch_seconds() + options_.token_lifetime_seconds;
  wipe_buffers();
  return save(state);
}

Result<Identity, Errc> Provisioner::register_step(Channel& channel, State& state, bool resumed) {
  std::vector<KeyValue> parameters;
  parameters.reserve(options_.parameters.size());
  for (const auto& [k, v] : options_.parameters) parameters.push_back(KeyValue{k, v});
  auto n =
      write_register_thing_request(options_.format, state.ownership_token, parameters, request_);
  if (!n) return fail(failed(n.error(), "the RegisterThing request cannot be written"));
  auto reply = exchange(channel, Api::RegisterThing, *n);
  if (!reply) return fail(reply.error());
  std::array<KeyValue, kMaxParameters> configuration{};
  auto accepted = read_register_thing_accepted(
      options_.format, std::span(reply_.data(), reply->size), configuration, scratch_);
  if (!accepted) return fail(failed(accepted.error(), "unreadable RegisterThing reply"));
  Identity id;
  id.thing_name.assign(accepted->thing_name);
  id.certificate_id = state.certificate_id;
  id.device_label = options_.device_label;
  id.resumed = resumed;
  for (std::size_t i = 0; i < accepted->configuration_count; ++i) {
    id.device_configuration.emplace_back(std::string(configuration[i].key),
                                         std::string(configuration[i].value));
  }
  state.step = Step::Registered;
  state.thing_name = id.thing_name;
  state.ownership_token.clear();  // used; not kept past its purpose
  state.expires_at = 0;
  EDGEKIT_TRY(save(state));
  return id;
}

}  // namespace edgekit::provisioning
