#pragma once
/// \file
/// The vocabulary of AWS's provisioning template language (aws-iot-protocols.md 4.3 and 5),
/// shared by the validator that checks a template when it is written (admin/templates.cpp) and
/// the engine that runs it (provisioning/engine.cpp), so that both accept the same names.

#include <algorithm>
#include <array>
#include <string_view>

namespace edgekit::fleetd::provisioning {

/// The prefix of the certificate pseudo parameters; the rest of the name is the subject field.
inline constexpr std::string_view kCertificatePseudoPrefix = "AWS::IoT::Certificate::";

/// The AWS::IoT::Certificate::* pseudo parameters: AWS's certificate id and the subject fields
/// JITP takes from the device certificate.
inline constexpr std::array<std::string_view, 8> kCertificatePseudo{
    "AWS::IoT::Certificate::Country",
    "AWS::IoT::Certificate::Organization",
    "AWS::IoT::Certificate::OrganizationalUnit",
    "AWS::IoT::Certificate::DistinguishedNameQualifier",
    "AWS::IoT::Certificate::StateName",
    "AWS::IoT::Certificate::CommonName",
    "AWS::IoT::Certificate::SerialNumber",
    "AWS::IoT::Certificate::Id"};

/// The intrinsic functions AWS's templates allow.
inline constexpr std::array<std::string_view, 5> kFunctions{
    "Fn::Join", "Fn::Select", "Fn::FindInMap", "Fn::Split", "Fn::Sub"};

[[nodiscard]] inline bool is_certificate_pseudo(std::string_view name) noexcept {
  return std::find(kCertificatePseudo.begin(), kCertificatePseudo.end(), name) !=
         kCertificatePseudo.end();
}

[[nodiscard]] inline bool is_function(std::string_view name) noexcept {
  return std::find(kFunctions.begin(), kFunctions.end(), name) != kFunctions.end();
}

}  // namespace edgekit::fleetd::provisioning
