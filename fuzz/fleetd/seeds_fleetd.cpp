// Seeds for fleetd's fuzz targets: policy documents as administrators write them, and the
// decision interface's requests and answers.
#include <cstdint>
#include <string>
#include <vector>

#include "seeds.hpp"

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
  write("fuzz_fleetd_hooks", tagged(0, R"({"clientid":"d1","certificate_id":"ab","certificate_pem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","certificate_chain":""})"));
  write("fuzz_fleetd_hooks", tagged(1, R"({"clientid":"t1","certificate_id":"ab","action":"subscribe","topic":"$share/g/t1/#"})"));
  write("fuzz_fleetd_hooks", tagged(2, R"({"result":"allow","reason":"ok","is_superuser":false,"acl":[{"permission":"allow","action":"publish","topic":"t1/*"}],"client_attrs":{"thing_name":"t1","certificate_id":"ab"}})"));
  write("fuzz_fleetd_hooks", tagged(2, R"({"result":"deny","reason":"certificate x is REVOKED"})"));

  // The admin API (fuzz_fleetd_admin): the first byte picks the parser.
  const std::string pem =
      "-----BEGIN CERTIFICATE-----\n"
      "MIIBgDCCASegAwIBAgIUBYhzZ/6gh3hBIBA0C2ZNEYiMtv8wCgYIKoZIzj0EAwIw\n"
      "FjEUMBIGA1UEAwwLc2VlZC1kZXZpY2UwHhcNMjYxMjAyMTc0MjQ1WhcNMzYxMTI5\n"
      "MTc0MjQ1WjAWMRQwEgYDVQQDDAtzZWVkLWRldmljZTBZMBMGByqGSM49AgEGCCqG\n"
      "SM49AwEHA0IABHXPm6KixQNzYHwNwsDdf9IDQO/puFKenTMcghM79MDI7GO9x8dy\n"
      "JhGXxVrafG2lVeGuMW7AFJgdxGmq0g2N9wejUzBRMB0GA1UdDgQWBBSJkCnxbQIR\n"
      "/vhb+Fa8yj1jQT7uhjAfBgNVHSMEGDAWgBSJkCnxbQIR/vhb+Fa8yj1jQT7uhjAP\n"
      "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIHMR088+rq1GvCkLquik\n"
      "eQP6KjbDJOzRDNncfhUEySwmAiAMpT5dBcLyBENd8ocqNO7VpcuC3ivOsBX7Ncab\n"
      "CgmHcw==\n"
      "-----END CERTIFICATE-----\n";
  const std::string csr =
      "-----BEGIN CERTIFICATE REQUEST-----\n"
      "MIHQMHgCAQAwFjEUMBIGA1UEAwwLc2VlZC1kZXZpY2UwWTATBgcqhkjOPQIBBggq\n"
      "hkjOPQMBBwNCAASmF2bLolW6z+UqFD2Q+BYhp/Ror5dD8XF72PrYYjY/N/eN1Lmo\n"
      "07lIvDp4/CNJBYWQQ62MRU7WN+Uy9pWXtmIdoAAwCgYIKoZIzj0EAwIDSAAwRQIg\n"
      "fVxj1iI0aK++Eigvscyv8KZE7iATdvxPh/0Lil/97PoCIQDURbsCaIIoLJkoHwp/\n"
      "OVGkWx9begiAetKDhhR0UuAsrA==\n"
      "-----END CERTIFICATE REQUEST-----\n";
  const std::string tmpl =
      R"({"Parameters":{"SerialNumber":{"Type":"String"}},"Resources":{"thing":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Fn::Join":["",["sensor-",{"Ref":"SerialNumber"}]]},"AttributePayload":{"a":"b"}},"OverrideSettings":{"AttributePayload":"MERGE"}},"certificate":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateId":{"Ref":"AWS::IoT::Certificate::Id"},"Status":"ACTIVE"}},"policy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyName":"p"}}},"DeviceConfiguration":{"k":"v"}})";
  auto quoted = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out + "\"";
  };
  write("fuzz_fleetd_admin", tagged(0, R"({"thingName":"sensor-1","thingTypeName":"t","attributes":{"site":"lab"}})"));
  write("fuzz_fleetd_admin", tagged(12, "{\"certificateSigningRequest\":" + quoted(csr) +
                                            ",\"setAsActive\":true,\"thingName\":\"sensor-1\","
                                            "\"validityDays\":30}"));
  write("fuzz_fleetd_admin", tagged(1, R"({"thingTypeName":"","attributes":{"a":""},"merge":true,"expectedVersion":"3"})"));
  write("fuzz_fleetd_admin", tagged(2, R"({"groupName":"floor-2","description":"x"})"));
  write("fuzz_fleetd_admin", tagged(3, "{\"certificatePem\":" + quoted(pem) + ",\"status\":\"ACTIVE\"}"));
  write("fuzz_fleetd_admin", tagged(4, std::string(R"({"policyName":"p","policyDocument":)") + quoted(policies[0]) + "}"));
  write("fuzz_fleetd_admin", tagged(5, "{\"caCertificatePem\":" + quoted(pem) + ",\"autoRegistration\":true,\"registrationTemplate\":\"jitp\"}"));
  write("fuzz_fleetd_admin", tagged(6, R"({"autoRegistration":false,"registrationTemplate":""})"));
  write("fuzz_fleetd_admin", tagged(7, R"({"templateName":"sensors","type":"FLEET_PROVISIONING","enabled":true,"templateBody":)" + tmpl + "}"));
  write("fuzz_fleetd_admin", tagged(8, R"({"enabled":false,"templateBody":)" + quoted(tmpl) + "}"));
  write("fuzz_fleetd_admin", tagged(9, R"({"type":"JITP","templateBody":)" + tmpl + "}"));
  write("fuzz_fleetd_admin", tagged(10, tmpl));
  write("fuzz_fleetd_admin", tagged(11, "100&sensor-1"));
  write("fuzz_fleetd_admin", tagged(11, pem));

  // Device Shadow: tag bit 0 = get/delete (token only), else update (applied twice).
  write("fuzz_fleetd_shadow", tagged(1, ""));
  write("fuzz_fleetd_shadow", tagged(1, std::string(R"({"clientToken":"g-1"})") + '\0'));
  write("fuzz_fleetd_shadow", tagged(0, std::string(R"({"state":{"reported":{"temp":21.5,"on":true}},"clientToken":"c"})") + '\0'));
  write("fuzz_fleetd_shadow", tagged(0, R"({"state":{"desired":{"mode":{"a":1,"b":null},"list":[1,"x",{"k":2}]},"reported":{"mode":{"a":1.0}}},"version":3})"));
  write("fuzz_fleetd_shadow", tagged(0, R"({"state":{"desired":null,"reported":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}})"));
  write("fuzz_fleetd_shadow", tagged(0, R"({"state":null,"clientToken":"z"})"));
  write("fuzz_fleetd_shadow", tagged(0, R"({"state":{"desired":{"x":[1,null]}}})"));

  // Fleet provisioning: tag bit 0 = CBOR, tag >> 1 = the reader.
  write("fuzz_fleetd_provisioning", tagged(0, ""));
  write("fuzz_fleetd_provisioning", tagged(0, std::string("{}\0", 3)));
  write("fuzz_fleetd_provisioning",
        tagged(2, "{\"certificateSigningRequest\":" + quoted(csr) + "}"));
  write("fuzz_fleetd_provisioning",
        tagged(4, std::string(R"({"certificateOwnershipToken":"AQ-_x","parameters":{"SerialNumber":"42","Site":"lab"}})") + '\0'));
  // The same in CBOR: {"certificateOwnershipToken": "tok", "parameters": {"a": "b"}}.
  write("fuzz_fleetd_provisioning",
        Seed{5, 0xa2, 0x78, 0x19, 'c', 'e', 'r', 't', 'i', 'f', 'i', 'c', 'a', 't', 'e', 'O', 'w', 'n',
             'e', 'r', 's', 'h', 'i', 'p', 'T', 'o', 'k', 'e', 'n', 0x63, 't', 'o', 'k', 0x6a, 'p',
             'a', 'r', 'a', 'm', 'e', 't', 'e', 'r', 's', 0xa1, 0x61, 'a', 0x61, 'b'});
  write("fuzz_fleetd_provisioning", tagged(6, "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  write("fuzz_fleetd_provisioning", tagged(8, "$aws/provisioning-templates/fleet/provision/cbor"));
  write("fuzz_fleetd_provisioning", tagged(10, R"({"allowProvisioning":true,"parameterOverrides":{"SerialNumber":"7"}})"));

  // Jobs: tag bit 0 = a topic; else tag >> 1 = the operation (get, start-next, describe, update).
  write("fuzz_fleetd_jobs", tagged(1, "$aws/things/t1/jobs/get"));
  write("fuzz_fleetd_jobs", tagged(1, "$aws/things/t1/jobs/$next/get"));
  write("fuzz_fleetd_jobs", tagged(1, "$aws/things/t1/jobs/fw-1/update"));
  write("fuzz_fleetd_jobs", tagged(0, ""));
  write("fuzz_fleetd_jobs", tagged(2, R"({"clientToken":"c","statusDetails":{"step":"one"},"stepTimeoutInMinutes":5})"));
  write("fuzz_fleetd_jobs", tagged(4, R"({"executionNumber":1,"includeJobDocument":false})"));
  write("fuzz_fleetd_jobs", tagged(6, R"({"status":"SUCCEEDED","expectedVersion":"2","includeJobExecutionState":true,"clientToken":"u"})"));

  // OTA streams: tag bit 0 = a topic; else bit 1 = CBOR, bit 2 = DescribeStream.
  write("fuzz_fleetd_ota", tagged(1, "$aws/things/t1/streams/fw-2/get/cbor"));
  write("fuzz_fleetd_ota", tagged(1, "$aws/things/t1/streams/fw-2/describe/json"));
  write("fuzz_fleetd_ota", tagged(1, "$aws/things/t1/streams/fw-2/get/xml"));
  write("fuzz_fleetd_ota", tagged(0, R"({"c":"1","s":1,"l":256,"f":1,"o":20,"n":32,"b":"0x130080"})"));
  write("fuzz_fleetd_ota", tagged(0, R"({"f":0,"l":4096,"n":40})"));
  write("fuzz_fleetd_ota", tagged(4, R"({"c":"d1"})"));
  write("fuzz_fleetd_ota", tagged(4, ""));
  // The FreeRTOS agent's request: {"c":"rdy","f":0,"l":4096,"o":0,"b":h'ff03',"n":1}.
  write("fuzz_fleetd_ota", Seed{2, 0xa6, 0x61, 'c', 0x63, 'r', 'd', 'y', 0x61, 'f', 0x00, 0x61, 'l',
                                0x19, 0x10, 0x00, 0x61, 'o', 0x00, 0x61, 'b', 0x42, 0xff, 0x03,
                                0x61, 'n', 0x01});
  write("fuzz_fleetd_ota", Seed{6, 0xa1, 0x61, 'c', 0x61, 'x'});
}

}  // namespace edgekit::fuzz
