// The std::error_category of the agent's Errc (its names are in agent.cpp).
#include "edgekit/agent/agent.hpp"
#include "edgekit/core/error_category.hpp"

namespace edgekit::agent {

const std::error_category& agent_category() noexcept {
  static const EnumErrorCategory<Errc, to_string> category("edgekit.agent");
  return category;
}

}  // namespace edgekit::agent
