// Loads the installed edgekit PKCS#11 module through the installed client and lists its slots.
#include <cstdio>
#include <edgekit/pkcs11/client.hpp>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : EDGEKIT_PKCS11_MODULE;
  auto module = edgekit::pkcs11::Module::load(path);
  if (!module) {
    std::fprintf(stderr, "pkcs11 consumer: %s\n", module.error().message().c_str());
    return 1;
  }
  auto slots = module->slots(false);
  if (!slots) {
    std::fprintf(stderr, "pkcs11 consumer: %s\n", slots.error().message().c_str());
    return 1;
  }
  if (slots->empty()) {
    std::fprintf(stderr, "pkcs11 consumer: the module has no slot\n");
    return 1;
  }
  for (CK_SLOT_ID slot : *slots) std::printf("pkcs11 consumer: slot %lu\n", static_cast<unsigned long>(slot));
  std::printf("pkcs11 consumer: loaded %s, %zu slot(s)\n", path.c_str(), slots->size());
  return 0;
}
