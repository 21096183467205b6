#pragma once
// The seed writers of the fuzz targets, called by fuzz_seeds (seeds.cpp). Each writes its targets'
// seeds through `write(target, bytes)`.
#include <cstdint>
#include <vector>

namespace edgekit::fuzz {
// fuzz/pkcs11/seeds_pkcs11.cpp: seeds of the PKCS#11 token targets.
void pkcs11_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/fleetd/seeds_fleetd.cpp: seeds of fleetd's targets.
void fleetd_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/pki_seeds.cpp: seeds of fuzz_pki.
void pki_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/doc_seeds.cpp: seeds of fuzz_json and fuzz_cbor.
void doc_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/provisioning_seeds.cpp: seeds of fuzz_provisioning.
void provisioning_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/shadow_seeds.cpp: seeds of fuzz_shadow.
void shadow_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/jobs_seeds.cpp: seeds of fuzz_jobs.
void jobs_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/ota_seeds.cpp: seeds of fuzz_ota_job_document and fuzz_ota_stream.
void ota_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
// fuzz/sim_seeds.cpp: seeds of fuzz_sim_report (built when the simulator's report library is).
void sim_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&));
}  // namespace edgekit::fuzz
