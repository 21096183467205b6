#pragma once
/// \file
/// Validation of provisioning templates (AWS's template language, shared by fleet provisioning
/// and JITP; aws-iot-protocols.md 4.3) before they are stored, so that a template that cannot
/// work is refused when an operator writes it, not when a device tries to use it.
///
/// Checked: a JSON object of at most 10,240 bytes (AWS's limit) and bounded nesting; only the
/// sections Parameters, Resources, Mappings and (fleet provisioning only) DeviceConfiguration;
/// each parameter has Type "String" and an optional string Default; Resources has exactly one
/// AWS::IoT::Thing (with ThingName) and exactly one AWS::IoT::Certificate (exactly one of
/// CertificateId, CertificateSigningRequest, CertificatePem; CACertificatePem only with
/// CertificatePem; Status ACTIVE or INACTIVE), any number of AWS::IoT::Policy (PolicyName xor
/// PolicyDocument; a literal document must be a valid policy); only the properties AWS defines;
/// OverrideSettings values DO_NOTHING, REPLACE, FAIL, MERGE (MERGE only for ThingGroups and
/// AttributePayload); every {"Ref": X} names a declared parameter or one of the
/// AWS::IoT::Certificate::* pseudo parameters; intrinsic functions are Fn::Join, Fn::Select,
/// Fn::FindInMap, Fn::Split, Fn::Sub with argument lists; a JITP template's certificate uses
/// CertificateId (as AWS requires); DeviceConfiguration is flat.

#include <string>
#include <string_view>

#include "store/errc.hpp"

namespace edgekit::fleetd::admin {

/// AWS's limit on a template body.
inline constexpr std::size_t kMaxTemplateBody = 10 * 1024;

/// `type` is "FLEET_PROVISIONING" or "JITP". InvalidArgument naming the section, resource or
/// property at fault.
[[nodiscard]] Res<void> validate_template(std::string_view body, std::string_view type);

}  // namespace edgekit::fleetd::admin
