// Seeds for fuzz_shadow: Device Shadow documents as AWS sends them (aws-iot-protocols.md 1.3,
// 1.6) and shadow topics written by the library's own builder.
#include <array>
#include <cstdint>
#include <edgekit/shadow/topics.hpp>
#include <string_view>
#include <vector>

#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

std::vector<std::uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

}  // namespace

// Declared in seeds.hpp; seeds.cpp calls it.
void shadow_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&)) {
  const char* t = "fuzz_shadow";
  for (
      std::string_view doc : {
          // get/accepted
          R"({"state":{"desired":{"color":"RED","sequence":["RED","GREEN","BLUE"]},)"
          R"("reported":{"color":"GREEN"},"delta":{"color":"RED","sequence":["RED","GREEN","BLUE"]}},)"
          R"("metadata":{"desired":{"color":{"timestamp":12345},"sequence":[{"timestamp":12345},)"
          R"({"timestamp":12345},{"timestamp":12345}]},"reported":{"color":{"timestamp":12345}}},)"
          R"("version":10,"clientToken":"UniqueClientToken","timestamp":123456789})",
          // update/accepted, with a deleted key and a deleted section
          R"({"state":{"reported":{"color":null,"level":3},"desired":null},)"
          R"("metadata":{"reported":{"color":{"timestamp":1469564492}}},"version":27,)"
          R"("timestamp":1469564492,"clientToken":"tok"})",
          R"({"state":null,"version":28,"timestamp":1})",
          // update/delta
          R"({"state":{"color":"RED","lights":{"front":"on"}},"metadata":{"color":)"
          R"({"timestamp":1469564492}},"version":26,"timestamp":1469564492,"clientToken":"a"})",
          // update/delta over the fuzzer's binding table (fields of each type, one nested)
          R"({"state":{"power":true,"led":{"level":3,"on":false},"energy":12,"name":"de\"sk"},)"
          R"("version":9,"timestamp":1})",
          // update/documents
          R"({"previous":{"state":{"desired":{"color":"RED"},"reported":{"color":"GREEN"}},)"
          R"("metadata":{"desired":{"color":{"timestamp":12345}}},"version":1},)"
          R"("current":{"state":{"desired":{"color":"DOUBLE RED"},"reported":{"color":"GREEN"}},)"
          R"("metadata":{"desired":{"color":{"timestamp":123456}}},"version":2},)"
          R"("timestamp":123456,"clientToken":"x"})",
          // delete/accepted
          R"({"version":42,"timestamp":1700000000,"clientToken":"del-1"})",
          // rejected
          R"({"code":409,"message":"Version conflict","timestamp":1469564492,"clientToken":"t"})",
          R"({"code":400,"message":"JSON contains too many levels of nesting; maximum is 6"})",
          R"({"code":404,"message":"No shadow exists with name: 'lamp-1'"})",
          R"({"code":400,"message":"Invalid\u0020version"})",
      }) {
    write(t, bytes(doc));
  }
  std::array<char, shadow::kMaxTopicLength> buf{};
  for (std::string_view name : {std::string_view{}, std::string_view{"config"}}) {
    for (shadow::TopicKind kind :
         {shadow::TopicKind::Accepted, shadow::TopicKind::Delta, shadow::TopicKind::Documents}) {
      if (auto topic = shadow::topic("lamp-1", name, shadow::Operation::Update, kind, buf)) {
        write(t, bytes(*topic));
      }
    }
  }
}

}  // namespace edgekit::fuzz
