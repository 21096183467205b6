#pragma once
/// \file
/// edgekit's PKI library in one include: errors, keys and signers, token keys, names, CSRs,
/// certificates and CRLs. See docs/pki.md.

#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/crl.hpp>
#include <edgekit/pki/csr.hpp>
#include <edgekit/pki/error.hpp>
#include <edgekit/pki/keys.hpp>
#include <edgekit/pki/name.hpp>
#include <edgekit/pki/token.hpp>
