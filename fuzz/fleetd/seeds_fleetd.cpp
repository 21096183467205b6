// Seeds for fleetd's fuzz targets: policy documents as administrators write them, and the
// decision interface's requests and answers.
#include <cstdint>
#include <string>
#include <vector>

namespace edgekit::fuzz {

using Seed = std::vector<std::uint8_t>;
using WriteSeed = void (*)(const char*, const Seed&);

namespace {
Seed bytes(const std::string& s) { return Seed(s.begin(), s.end()); }
Seed tagged(std::uint8_t tag, const std::string& s) {
  Seed b{tag};
  b.insert(b.end(), s.begin(), s.end());
  return b;
}
}  // namespace

void fleetd_seeds(WriteSeed write) {
  const char* policies[] = {
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/*"]},{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/delete"}]})",
      R"({"Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}})",
      R"({"Statement":[{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:r:a:topicfilter/${iot:ClientId}/?/*"}]})",
  };
  for (const char* p : policies) {
    write("fuzz_fleetd_policy", bytes(std::string("thing-1\n") + p));
    write("fuzz_fleetd_policy", bytes(std::string("a*?\\\n") + p));
  }
  write("fuzz_fleetd_policy",
        bytes(R"([{"permission":"allow","action":"publish","topic":"t1/*"},{"permission":"deny","action":"receive","topic":"t1/x"}])"));

  write("fuzz_fleetd_hooks", tagged(0, R"({"clientid":"t1","username":"?SDK=JS","peerhost":"127.0.0.1","certificate_id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})"));
  write("fuzz_fleetd_hooks", tagged(1, R"({"clientid":"t1","certificate_id":"ab","action":"subscribe","topic":"$share/g/t1/#"})"));
  write("fuzz_fleetd_hooks", tagged(2, R"({"result":"allow","reason":"ok","is_superuser":false,"acl":[{"permission":"allow","action":"publish","topic":"t1/*"}],"client_attrs":{"thing_name":"t1","certificate_id":"ab"}})"));
  write("fuzz_fleetd_hooks", tagged(2, R"({"result":"deny","reason":"certificate x is REVOKED"})"));
}

}  // namespace edgekit::fuzz
