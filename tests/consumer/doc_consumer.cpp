// Writes and reads a JSON and a CBOR document through the installed edgekit::doc headers and
// library, and names an error through its installed error category.
#include <cstdio>
#include <edgekit/doc/cbor.hpp>
#include <edgekit/doc/json.hpp>
#include <system_error>

int main() {
  using namespace edgekit::doc;
  char text[64];
  json::Writer jw(text);
  jw.begin_object().member("thing", "t1").member("n", 3).end_object();
  const auto j = jw.finish();
  if (!j) return 1;
  const auto doc = json::parse(*j);
  if (!doc || doc->find("n")->as_int64().value_or(0) != 3) return 1;
  std::byte bytes[64];
  cbor::Writer cw(bytes);
  cw.begin_object().member("thing", "t1").end_object();
  const auto item = cbor::parse(*cw.finish());
  if (!item || item->find("thing")->as_string_view().value_or("") != "t1") return 1;
  const std::error_code e = json::parse("[1,]").error().code;
  std::printf("doc_consumer: %.*s, %zu bytes as CBOR; [1,] is '%s'\n", static_cast<int>(j->size()),
              j->data(), cw.size(), e.message().c_str());
  return e == Errc::TrailingComma ? 0 : 1;
}
