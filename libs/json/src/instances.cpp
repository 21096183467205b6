// The one place where the nlohmann::json specializations declared `extern template` in
// edgekit/json/json.hpp are instantiated: every member of each, compiled once for the whole build
// instead of once per file. Keep this list and the header's in step (a declaration without its
// definition here is a link error in a Debug build; a definition without its declaration only
// costs compile time).
#include "edgekit/json/json.hpp"

template class nlohmann::basic_json<>;
template class nlohmann::detail::serializer<nlohmann::json>;
template class nlohmann::detail::json_sax_dom_parser<nlohmann::json>;
template class nlohmann::detail::json_sax_dom_callback_parser<nlohmann::json>;
template class nlohmann::detail::lexer<nlohmann::json, edgekit::json_instances::StringInput>;
template class nlohmann::detail::lexer<nlohmann::json, edgekit::json_instances::CharsInput>;
template class nlohmann::detail::parser<nlohmann::json, edgekit::json_instances::StringInput>;
template class nlohmann::detail::parser<nlohmann::json, edgekit::json_instances::CharsInput>;
template class nlohmann::detail::iter_impl<const nlohmann::json>;
