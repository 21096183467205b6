#pragma once

/// nlohmann::json for edgekit's hosted code (fleetd, its broker plugin, the edgekit command, the
/// simulator, their tests and benchmarks). Include this header instead of <nlohmann/json.hpp>;
/// link `edgekit::json` (it brings nlohmann_json with it).
///
/// Why: nlohmann::json is header-only, so every file that includes it used to generate its own
/// copy of the parser, lexer, serializer and basic_json's member functions: under the dev
/// preset's flags that code was most of a fleetd object file and most of its compile time. The
/// declarations below tell the compiler those specializations are instantiated elsewhere, once,
/// in libs/json/src/instances.cpp; at -O0 (Debug) the compiler then generates none of them, and
/// with optimisation it still may inline them but emits no out-of-line copy. The measured
/// figures are in README.md, "Build time".
///
/// Nothing here changes behaviour: the same template code runs, compiled in one file. A file that
/// includes <nlohmann/json.hpp> directly still builds and links (it generates its own copies, as
/// before), it only compiles slower. The declarations must match the definitions in
/// instances.cpp: one declared here but not defined there fails the link of a Debug build.
///
/// Errors, ownership and thread safety are nlohmann::json's own (a `json` value is not safe to
/// modify from two threads; parse and dump throw on bad input unless asked not to).

#include <nlohmann/json.hpp>
#include <string>

namespace edgekit::json_instances {
/// The two inputs edgekit parses from: std::string (and anything passed as one), and contiguous
/// characters — const char*, string literals and std::string_view (whose iterator is a pointer in
/// libstdc++).
using StringInput = nlohmann::detail::iterator_input_adapter<std::string::const_iterator>;
using CharsInput = nlohmann::detail::iterator_input_adapter<const char*>;
}  // namespace edgekit::json_instances

// basic_json's non-template members (constructors, access, comparison, dump, destroy, ...). Its
// member templates (get<T>, value, the converting constructors) are instantiated per use as before.
extern template class nlohmann::basic_json<>;
// dump()
extern template class nlohmann::detail::serializer<nlohmann::json>;
// parse(): the DOM builders, and the lexer and parser for each input above.
extern template class nlohmann::detail::json_sax_dom_parser<nlohmann::json>;
extern template class nlohmann::detail::json_sax_dom_callback_parser<nlohmann::json>;
extern template class nlohmann::detail::lexer<nlohmann::json,
                                              edgekit::json_instances::StringInput>;
extern template class nlohmann::detail::lexer<nlohmann::json, edgekit::json_instances::CharsInput>;
extern template class nlohmann::detail::parser<nlohmann::json,
                                               edgekit::json_instances::StringInput>;
extern template class nlohmann::detail::parser<nlohmann::json,
                                               edgekit::json_instances::CharsInput>;
// const iteration (range-for over a const json, find, items()). The mutable iterator cannot be
// instantiated as a whole class: its converting constructor from the const iterator only compiles
// for the const specialization, so it stays implicit.
extern template class nlohmann::detail::iter_impl<const nlohmann::json>;
